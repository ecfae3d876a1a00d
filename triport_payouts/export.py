"""The export for accounting: payouts with their settlement (the terminal
event's actor and time), streamed as RFC 4180 CSV or JSON lines, amounts
exact. Newest first, the order of the API's list.
"""

from __future__ import annotations

import csv
import datetime
import json

from . import domain
from .repository import SETTLEMENT_COLUMNS, Repository

FORMATS = ("csv", "jsonl")


def parse_time(text: str) -> str:
    """An RFC 3339 time (or a date) as the database writes times, in UTC."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise domain.InvalidField(f"not an RFC 3339 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime(domain.TIME_FORMAT)


def export(repo: Repository, out, fmt: str, status=None, since=None, until=None) -> int:
    """Writes the matching payouts to the text stream `out`; returns how many.
    Filters on the time of the payout's last change (its settlement once
    settled): since inclusive, until exclusive."""
    if status is not None and status not in domain.STATUSES:
        raise domain.InvalidField(f"status is one of {', '.join(domain.STATUSES)}")
    write = _csv_writer(out) if fmt == "csv" else _jsonl_writer(out)
    count = 0
    with repo.snapshot() as snapshot:
        for record in snapshot.settlements(status=status, since=since, until=until):
            write(record)
            count += 1
    return count


def _csv_writer(out):
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(SETTLEMENT_COLUMNS)
    return lambda record: writer.writerow(["" if v is None else v for v in record.values()])


def _jsonl_writer(out):
    return lambda record: out.write(json.dumps(record, ensure_ascii=False) + "\n")
