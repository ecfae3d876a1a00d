"""The schema's versions: the steps in ``sql/<dialect>/NNNN_name.sql``,
applied in order, each in one transaction with the row that records it in
``schema_migrations``.

Version 1 is the first release's schema, whose databases have no
``schema_migrations`` table: one with the tables and without that table is at
version 1, an empty one at 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

# The version this code reads and writes: the number of the last step.
SCHEMA_VERSION = 8

RECORD_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
)
_STEP_FILE = re.compile(r"(\d{4})_(\w+)\.sql")


@dataclass(frozen=True)
class Step:
    version: int
    name: str
    sql: str


def steps(dialect: str) -> list[Step]:
    """The dialect's steps in order; their numbers are 1 to SCHEMA_VERSION."""
    folder = resources.files(__package__).joinpath("sql", dialect)
    found = []
    for entry in folder.iterdir():
        match = _STEP_FILE.fullmatch(entry.name)
        if match:
            found.append(Step(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda step: step.version)
    if [step.version for step in found] != list(range(1, SCHEMA_VERSION + 1)):
        raise RuntimeError(f"the {dialect} schema steps are not numbered 1 to {SCHEMA_VERSION}")
    return found
