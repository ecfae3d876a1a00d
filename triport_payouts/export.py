"""The export for accounting: payouts with their settlement (the terminal
event's actor and time), streamed as RFC 4180 CSV or JSON lines, amounts
exact. Newest first, the order of the API's list.
"""

from __future__ import annotations

import csv
import datetime
import json

from . import domain
from .repository import PAYOUT_COLUMNS

COLUMNS = (*PAYOUT_COLUMNS, "settled_by", "settled_at")
FORMATS = ("csv", "jsonl")

_TERMINAL = ", ".join(f"'{status}'" for status in sorted(domain.TERMINAL))
_SELECT = (
    f"SELECT {', '.join('p.' + c for c in PAYOUT_COLUMNS)}, e.actor, e.at FROM payouts p"
    f" LEFT JOIN payout_events e ON e.payout_id = p.id AND e.to_status IN ({_TERMINAL})"
)
# Filters on updated_at: the time of the payout's last change (its settlement
# once settled); since inclusive, until exclusive.
_FILTERS = {"status": "p.status = ?", "since": "p.updated_at >= ?", "until": "p.updated_at < ?"}


def parse_time(text: str) -> str:
    """An RFC 3339 time (or a date) as the database writes times, in UTC."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise domain.InvalidField(f"not an RFC 3339 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime(domain.TIME_FORMAT)


def export(db, out, fmt: str, status=None, since=None, until=None) -> int:
    """Writes the matching payouts to the text stream `out`; returns how many."""
    if status is not None and status not in domain.STATUSES:
        raise domain.InvalidField(f"status is one of {', '.join(domain.STATUSES)}")
    given = {"status": status, "since": since, "until": until}
    clauses = [_FILTERS[name] for name, value in given.items() if value is not None]
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"{_SELECT}{where} ORDER BY p.created_at DESC, p.id DESC"
    write = _csv_writer(out) if fmt == "csv" else _jsonl_writer(out)
    count = 0
    with db.snapshot() as stream:
        for row in stream(sql, [value for value in given.values() if value is not None]):
            record = dict(zip(COLUMNS, row))
            record["amount"] = domain.format_amount(record["amount"])
            write(record)
            count += 1
    return count


def _csv_writer(out):
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    return lambda record: writer.writerow(["" if v is None else v for v in record.values()])


def _jsonl_writer(out):
    return lambda record: out.write(json.dumps(record, ensure_ascii=False) + "\n")
