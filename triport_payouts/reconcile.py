"""The reconciliation import, ``import-results FILE``: the results of
transfers made outside the service (an exchange's CSV, or this service's own
export) applied as the operator actions they stand for.

The file is read and checked whole before anything is applied: a malformed
one (not UTF-8 text, not CSV, a required column missing, a row of another
length than the header, a status other than ``sent`` or ``failed``) raises
MalformedFile and changes nothing. Each row is
then checked and applied exactly as its HTTP action (``handlers.action_fields``,
then ``Repository.transition``), and its outcome is the one the API would
give: ``applied``, ``unchanged`` (the payout is already in that state with
that tx_hash or reason, so a second run changes nothing), or refused with the
API's tag.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from . import domain, errors, handlers
from .repository import Repository

# The columns a file must have, in any order among others (the export's
# have these and more; extra ones are ignored).
COLUMNS = ("id", "status", "tx_hash", "reason")
ACTIONS = ("sent", "failed")  # what a row can say happened to a transfer

APPLIED, UNCHANGED, REFUSED = "applied", "unchanged", "refused"


class MalformedFile(Exception):
    """The file cannot be imported as a whole; nothing was applied."""


class Row(NamedTuple):
    line: int
    id: str
    status: str
    tx_hash: str
    reason: str


@dataclass(frozen=True)
class Outcome:
    row: Row
    result: str  # APPLIED, UNCHANGED or REFUSED
    tag: str | None = None  # the API's error tag of a refusal


def read(data: bytes) -> list[Row]:
    """Every row of a CSV file with a header row; raises MalformedFile."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedFile(f"not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise MalformedFile(f"a NUL character on line {text.count(chr(10), 0, text.index(chr(0))) + 1}:"
                            " not a text file")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise MalformedFile("the file is empty: it needs a header row " + ",".join(COLUMNS))
        missing = [name for name in COLUMNS if name not in header]
        if missing:
            raise MalformedFile(f"the header row has no column {', '.join(missing)}"
                                f" (it needs {','.join(COLUMNS)})")
        if len(set(header)) != len(header):
            raise MalformedFile("the header row names a column twice")
        return list(_rows(reader, header))
    except csv.Error as exc:
        raise MalformedFile(f"not CSV, line {reader.line_num}: {exc}") from None


def _rows(reader, header: list[str]) -> Iterator[Row]:
    where = {name: header.index(name) for name in COLUMNS}
    for fields in reader:
        if not fields:
            continue  # a blank line
        if len(fields) != len(header):
            raise MalformedFile(f"line {reader.line_num} has {len(fields)} fields, the header {len(header)}")
        row = Row(reader.line_num, *(fields[where[name]] for name in COLUMNS))
        if row.status not in ACTIONS:
            raise MalformedFile(f"line {row.line}: status is {row.status!r}, not sent or failed")
        yield row


def apply(repo: Repository, rows: list[Row], *, actor: str | None, dry_run: bool = False) -> Iterator[Outcome]:
    """Each row's outcome, in order, applied as it is yielded; with `dry_run`
    what would happen, writing nothing (a row follows the rows before it:
    the same payout marked twice is unchanged the second time)."""
    planned: dict[str, dict] = {}  # a dry run's payouts as the rows before left them
    for row in rows:
        try:
            payout_id = domain.parse_payout_id(row.id)
            fields = handlers.action_fields(row.status, _body(row))
            payout = planned.get(payout_id) or repo.get_payout(payout_id)
            if _already(payout, row.status, fields):
                yield Outcome(row, UNCHANGED)
                continue
            if dry_run:
                if payout["status"] not in domain.TRANSITIONS[row.status].sources:
                    raise domain.PayoutNotActionable()
                planned[payout_id] = {**payout, "status": row.status, **fields}
            else:
                repo.transition(payout_id, row.status, actor=actor, **fields)
        except (domain.DomainError, errors.ApiError) as exc:
            yield Outcome(row, REFUSED, errors.tag_of(exc))
        else:
            yield Outcome(row, APPLIED)


def _body(row: Row) -> dict:
    """The row as its action's JSON body: an empty cell is an absent field
    (the export writes null as empty)."""
    if row.status == "sent":
        return {"tx_hash": row.tx_hash} if row.tx_hash else {}
    return {"reason": row.reason} if row.reason else {}


def _already(payout: dict, status: str, fields: dict) -> bool:
    """Whether the payout is in `status` with exactly the row's tx_hash or reason."""
    return payout["status"] == status and all(payout[name] == value for name, value in fields.items())
