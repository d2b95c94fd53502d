"""The audit trail as the API shows it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEntryPublic(BaseModel):
    seq: int
    at: datetime
    action: str
    actor: str
    subject: str
    trace_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    hash: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AuditEntryPublic:
        event = json.loads(row["event_json"])
        return cls(seq=row["seq"], at=row["at"], action=row["action"], actor=row["actor"], subject=row["subject"],
                   trace_id=row["trace_id"], before=event.get("before"), after=event.get("after"), hash=row["hash"])


class AuditEntries(BaseModel):
    data: list[AuditEntryPublic]
