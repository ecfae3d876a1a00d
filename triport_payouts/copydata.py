"""``copy-data``: copying a whole database into another (SQLite to PostgreSQL, typically):
credits, payouts and events, streamed in batches, in one transaction on the
target, which must be empty. Events keep their order; their ids are the
target's own.
"""

from __future__ import annotations

from . import domain
from .repository import CREDIT_COLUMNS, EVENT_COLUMNS, PAYOUT_COLUMNS

BATCH = 5_000

# (table, columns, order): payouts before their events, for the foreign key.
TABLES = (
    ("credits", CREDIT_COLUMNS, "created_at, id"),
    ("payouts", PAYOUT_COLUMNS, "created_at, id"),
    ("payout_events", EVENT_COLUMNS, "id"),
)


class TargetNotEmpty(domain.DomainError):
    """the target database already holds data: copy only into an empty one"""


def copy_database(source, target) -> dict[str, int]:
    """Copies every row of source into target; returns the rows copied per table."""
    target.init_schema()
    counts = {}
    with target.transaction() as out:
        for table, _columns, _order in TABLES:
            if out.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
                raise TargetNotEmpty()
        with source.snapshot() as stream:
            for table, columns, order in TABLES:
                rows = stream(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")
                counts[table] = 0
                while batch := rows.fetchmany(BATCH):
                    target.bulk_insert(out, table, columns, [_text_amounts(table, row) for row in batch])
                    counts[table] += len(batch)
    return counts


def _text_amounts(table: str, row) -> tuple:
    # Amounts travel as exact decimal text whichever side they come from.
    if table == "payout_events":
        return tuple(row)
    index = (CREDIT_COLUMNS if table == "credits" else PAYOUT_COLUMNS).index("amount")
    return tuple(domain.format_amount(value) if i == index else value for i, value in enumerate(row))
