"""Coinbase Advanced Trade (crypto spot): JWT-signed REST and websockets, 2026 wire format (venues.md)."""

from connectors.coinbase.auth import CredentialsError, SigningAlgorithm
from connectors.coinbase.config import CoinbaseConfig
from connectors.coinbase.connector import CoinbaseConnector

__all__ = ["CoinbaseConfig", "CoinbaseConnector", "CredentialsError", "SigningAlgorithm"]
