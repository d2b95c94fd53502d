"""The KRaft cluster id handed to the StorageTool must never read as a command-line option."""
from __future__ import annotations

import base64
import re

from infra.services import new_kafka_cluster_id

_KAFKA_UUID = re.compile(r"[A-Za-z0-9_-]{22}")


def test_an_id_that_would_start_with_a_dash_is_drawn_again() -> None:
    # 0xF8 encodes to "-" as the first URL-safe base64 character.
    dash_first = bytes([0xF8]) + bytes(15)
    plain = bytes(range(16))
    draws = iter([dash_first, dash_first, plain])
    cluster_id = new_kafka_cluster_id(lambda: next(draws))
    assert base64.urlsafe_b64encode(dash_first).decode().startswith("-")
    assert cluster_id == base64.urlsafe_b64encode(plain).decode().rstrip("=")


def test_ids_have_the_kafka_uuid_shape() -> None:
    for _ in range(2_000):
        cluster_id = new_kafka_cluster_id()
        assert _KAFKA_UUID.fullmatch(cluster_id), cluster_id
        assert not cluster_id.startswith("-")
