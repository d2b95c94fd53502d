"""Grafana dashboards over the read model: provisioning files, dashboard JSON and a pusher for the HTTP API."""
