"""Venue connectors. Each speaks its venue's real wire format; `simulated` is the local market-data feed."""
