"""Kalshi Trade API v2 connector (event contracts), speaking the 2026 wire format."""

from connectors.kalshi.config import KalshiConfig, KalshiConfigError
from connectors.kalshi.connector import KalshiConnector

__all__ = ["KalshiConfig", "KalshiConfigError", "KalshiConnector"]
