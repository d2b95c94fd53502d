"""Interactive Brokers (stocks, options, futures, spot metals) over the Client Portal Web API."""

from connectors.ibkr.config import IbkrConfig, WatchEntry, load_config
from connectors.ibkr.connector import IbkrConnector

__all__ = ["IbkrConfig", "IbkrConnector", "WatchEntry", "load_config"]
