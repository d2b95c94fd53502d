"""reconcile.reports -> reconciliation_reports: one row per report, its differences as JSON, each report once."""

from __future__ import annotations

from typing import Any, ClassVar

import psycopg
from psycopg.types.json import Jsonb

from core.reconcile import ReconciliationReport
from sinks.base import BatchSink, Message
from sinks.schema import RECONCILIATION_REPORTS, insert_statement, json_dumps
from streams.records import DeadLetter, decode
from streams.topics import RECONCILIATION, TopicSpec

_DISCREPANCIES = RECONCILIATION_REPORTS.column_names.index("discrepancies")
# A report is one account against one venue at one instant: the same report delivered again adds nothing.
_INSERT = insert_statement(RECONCILIATION_REPORTS, "ON CONFLICT (account_id, venue, at) DO NOTHING")


def report_row(report: ReconciliationReport) -> tuple[Any, ...]:
    """The report as a reconciliation_reports row, in column order (discrepancies still plain JSON values)."""
    return (report.account_id, report.venue, report.at, report.owner.org_id, report.owner.user_id,
            report.mode.value, report.status.value, [d.model_dump(mode="json") for d in report.discrepancies])


class ReconciliationSink(BatchSink[list[tuple[Any, ...]]]):
    name = "reconciliation"
    topics: ClassVar[tuple[TopicSpec, ...]] = (RECONCILIATION,)

    def decode(self, messages: list[Message]) -> tuple[list[tuple[Any, ...]], list[DeadLetter]]:
        rows = []
        dead: list[DeadLetter] = []
        for message in messages:
            row = self.storable_row(message, RECONCILIATION_REPORTS,
                                    lambda m: report_row(decode(ReconciliationReport, m.value())), dead)
            if row is not None:
                rows.append(_with_jsonb(row))
        return rows, dead

    def write(self, cur: psycopg.Cursor[Any], batch: list[tuple[Any, ...]]) -> int:
        if batch:
            cur.executemany(_INSERT, batch)
        return len(batch)


def _with_jsonb(row: tuple[Any, ...]) -> tuple[Any, ...]:
    values = list(row)
    values[_DISCREPANCIES] = Jsonb(values[_DISCREPANCIES], dumps=json_dumps)
    return tuple(values)
