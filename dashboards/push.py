"""Push the dashboards in dashboards/json to a Grafana over its HTTP API (the `grafana-client` package).

    GRAFANA_URL=http://127.0.0.1:3000 GRAFANA_TOKEN=glsa_... .venv/bin/python -m dashboards.push [--folder-uid X]

The token is a Grafana service-account token with dashboard write permission; it is read from the
environment only and never logged. Dashboards are overwritten by uid, into one folder created if missing.
The Postgres datasource they use (uid `tradestream-pg`) comes from provisioning/datasources/tradestream.yaml.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError
from pydantic import SecretStr

from tradestream.logging import configure_logging, get_logger

log = get_logger(__name__)

DASHBOARD_DIR = Path(__file__).resolve().parent / "json"
DEFAULT_FOLDER_UID = "tradestream"
DEFAULT_FOLDER_TITLE = "Tradestream"
HTTP_NOT_FOUND = 404


def load_dashboards(directory: Path = DASHBOARD_DIR) -> list[dict[str, Any]]:
    """Every dashboard JSON in `directory`, sorted by file name."""
    return [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]


def push_dashboards(url: str, token: SecretStr, *, folder_uid: str = DEFAULT_FOLDER_UID,
                    folder_title: str = DEFAULT_FOLDER_TITLE, timeout_s: float = 10.0) -> list[str]:
    """Create the folder when missing and create or overwrite each dashboard in it; return their uids."""
    api = GrafanaApi.from_url(url=url, credential=token.get_secret_value(), timeout=timeout_s)
    try:
        api.folder.get_folder(folder_uid)
    except GrafanaClientError as exc:
        if exc.status_code != HTTP_NOT_FOUND:
            raise
        api.folder.create_folder(folder_title, uid=folder_uid)
        log.info("grafana_folder_created", url=url, folder_uid=folder_uid)
    uids = []
    for dashboard in load_dashboards():
        api.dashboard.update_dashboard({
            "dashboard": {**dashboard, "id": None},  # matched by uid; a numeric id belongs to one Grafana
            "folderUid": folder_uid, "overwrite": True, "message": "pushed by dashboards.push",
        })
        uids.append(dashboard["uid"])
        log.info("grafana_dashboard_pushed", url=url, uid=dashboard["uid"], title=dashboard["title"])
    return uids


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder-uid", default=DEFAULT_FOLDER_UID)
    parser.add_argument("--folder-title", default=DEFAULT_FOLDER_TITLE)
    args = parser.parse_args(argv)
    configure_logging(service="dashboards.push")
    url, token = os.environ.get("GRAFANA_URL"), os.environ.get("GRAFANA_TOKEN")
    if not url or not token:
        print("set GRAFANA_URL and GRAFANA_TOKEN (a service-account token)", file=sys.stderr)
        return 2
    push_dashboards(url, SecretStr(token), folder_uid=args.folder_uid, folder_title=args.folder_title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
