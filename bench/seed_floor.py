"""The floor under seed-demo on this machine: seed-demo's own code
(demo.seed_demo, Repository.bulk_load) loading into a database whose tables
have its columns and nothing else (no constraint, trigger or index), against
the same call into the schema, in process, alternating:

    .venv/bin/python bench/seed_floor.py [--payouts 100000] [--runs 3] [--parts]

What the bare tables take is what any seed-demo would take here before it
checks, indexes or counts anything; make bench reports it beside the
command's own rate (bench/databases.py, measure_seed). --parts adds the
schema without its triggers (the running totals' upsert of each payout,
the outbox's INSERT ... SELECT of each event).
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT

sys.path.insert(0, str(ROOT))

from triport_payouts.db import SCHEMA_VERSION, open_database
from triport_payouts.db.migrations import RECORD_TABLE
from triport_payouts.demo import seed_demo
from triport_payouts.repository import CREDIT_COLUMNS, EVENT_COLUMNS, PAYOUT_COLUMNS, Repository


def bare(path: Path) -> Repository:
    """A database with the three tables bulk_load writes, their columns only
    (payout_events.id still numbers the rows), at the code's schema version."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as raw:
        raw.execute(f"CREATE TABLE credits ({', '.join(CREDIT_COLUMNS)})")
        raw.execute(f"CREATE TABLE payouts ({', '.join(PAYOUT_COLUMNS)})")
        raw.execute(f"CREATE TABLE payout_events (id INTEGER PRIMARY KEY, {', '.join(EVENT_COLUMNS)})")
        raw.execute(RECORD_TABLE)
        raw.execute("INSERT INTO schema_migrations VALUES (?, '')", (SCHEMA_VERSION,))
    return Repository(open_database(str(path)))


def schema(path: Path) -> Repository:
    db = open_database(str(path))
    db.migrate()
    return Repository(db)


def without_triggers(path: Path) -> Repository:
    repository = schema(path)
    conn = repository.db.connection()
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    return repository


VARIANTS = {"schema": schema, "no triggers": without_triggers, "bare": bare}


def load_seconds(make, path: Path, payouts: int) -> float:
    """seed_demo's time into a fresh database made by `make`."""
    repository = make(path)
    start = time.perf_counter()
    seed_demo(repository, payouts, max(1, payouts // 100))
    took = time.perf_counter() - start
    repository.db.close()
    return took


def measure(payouts: int, runs: int, names=("schema", "bare")) -> dict:
    """payouts/s into each variant, median of `runs` rounds (the order reversed every other round)."""
    rates: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="triport-seed-floor-") as tmp:
        for run in range(runs):
            for name in names if run % 2 == 0 else names[::-1]:
                path = Path(tmp) / f"{run}-{len(rates[name])}-{name.replace(' ', '-')}.sqlite3"
                rates[name].append(payouts / load_seconds(VARIANTS[name], path, payouts))
    return {name: {"rates": values, "median": statistics.median(values)} for name, values in rates.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payouts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parts", action="store_true", help="also the schema without its triggers")
    args = parser.parse_args(argv)
    result = measure(args.payouts, args.runs, tuple(VARIANTS) if args.parts else ("schema", "bare"))
    for name, figures in result.items():
        print(f"{name:15} {figures['median']:9,.0f} payouts/s  ({', '.join(f'{r:,.0f}' for r in figures['rates'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
