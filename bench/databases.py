"""The databases a run uses: seeded by the CLI (the large one cached between
runs), counted, checked for the statuses of given payouts, and given a
webhook endpoint for a run; and seed-demo's throughput."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import CACHE, ROOT, BenchmarkFailed, log


def cli(database: Path, *args: str, stdout=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRIPORT_DATABASE": str(database)}
    return subprocess.run(
        [sys.executable, "-m", "triport_payouts", *args],
        env=env,
        check=True,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )


def named_token(database: Path) -> str:
    """A named operator token, created with the CLI."""
    created = cli(database, "token", "create", "--name", "bench-operator", "--scope", "operator",
                  stdout=subprocess.PIPE)
    return json.loads(created.stdout)["token"]


def warm(path: Path) -> None:
    """Reads a SQLite database and its log whole, so that a run starts with
    the database in memory (said when it took long). This machine pages
    out file pages left untouched for a few seconds (a DAMON pageout
    scheme: the page cache stays near 0.5 GB), and its disk reads about
    50 MB/s: a 200 run on a cold 1M database, whose fresh payouts are spread
    over every page, read them from disk and fell to 0.02 of the ceiling,
    app and references alike. So each write run, on either side, starts
    warm."""
    start = time.perf_counter()
    for name in (str(path), str(path) + "-wal"):
        with contextlib.suppress(FileNotFoundError), open(name, "rb", buffering=0) as file:
            while file.read(1 << 20):
                pass
    took = time.perf_counter() - start
    if took > 1.0:
        log(f"  (the database was read back into memory first: {took:.1f} s)")


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".ids"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def seed(path: Path, payouts: int, users: int) -> tuple[list[str], float]:
    """A fresh database made by init-db and seed-demo: (payout ids oldest first, seconds seed-demo took)."""
    remove_db(path)
    cli(path, "init-db")
    ids_path = Path(str(path) + ".ids")
    with open(ids_path, "w") as out:
        start = time.perf_counter()
        cli(path, "seed-demo", "--payouts", str(payouts), "--users", str(users), stdout=out)
        seconds = time.perf_counter() - start
    ids = ids_path.read_text().split()
    if len(ids) != payouts:
        raise BenchmarkFailed(f"seed-demo printed {len(ids)} ids, expected {payouts}")
    return ids, seconds


def schema_key(dialect: str = "sqlite") -> str:
    """What a seeded database depends on: the dialect's schema and the code that seeds it."""
    digest = hashlib.sha256()
    package = ROOT / "triport_payouts"
    for path in [*sorted((package / "db" / "sql" / dialect).glob("*.sql")),
                 *(package / name for name in ("repository.py", "domain.py", "demo.py"))]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def cached_seed(payouts: int, users: int, work: Path, name: str, fresh: bool) -> tuple[Path, list[str]]:
    """A working copy of a seeded database kept in var/bench/cache/ between
    runs, keyed by size, users and a hash of the schema and the seeding code
    (a change to either seeds anew). The copy is what the run uses (and
    writes to)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    pristine = CACHE / f"payouts-{payouts}-users-{users}-code-{schema_key()}.sqlite3"
    ids_path = Path(str(pristine) + ".ids")
    if fresh or not (pristine.exists() and ids_path.exists()):
        for old in CACHE.glob(f"payouts-{payouts}-users-{users}-*"):
            old.unlink()
        log(f"seeding {payouts:,} payouts into {pristine.relative_to(ROOT)} (cached for later runs)...")
        _, seconds = seed(pristine, payouts, users)
        with sqlite3.connect(pristine) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        log(f"  seed-demo: {seconds:.1f} s ({payouts / seconds:,.0f} payouts/s)")
    ids = ids_path.read_text().split()
    copy = work / name
    remove_db(copy)
    shutil.copyfile(pristine, copy)
    counts = db_counts(copy)
    if len(ids) != payouts or counts["payouts"] != payouts or counts["requested"] != payouts:
        raise BenchmarkFailed(f"the cached {pristine.name} is not as seeded: {counts}; rerun with --fresh")
    return copy, ids


def db_counts(path) -> dict:
    """The counts the checks compare: of a SQLite file, or of a PostgreSQL
    database (bench/pg.py's PgDatabase, which counts for itself)."""
    if hasattr(path, "counts"):
        return path.counts()
    conn = sqlite3.connect(path)
    try:
        return {
            "payouts": conn.execute("SELECT count(*) FROM payouts").fetchone()[0],
            "requested": conn.execute("SELECT count(*) FROM payouts WHERE status = 'requested'").fetchone()[
                0
            ],
            "failed": conn.execute("SELECT count(*) FROM payouts WHERE status = 'failed'").fetchone()[0],
            "events": conn.execute("SELECT count(*) FROM payout_events").fetchone()[0],
            "outbox": conn.execute("SELECT count(*) FROM webhook_outbox").fetchone()[0],
        }
    finally:
        conn.close()


# Nothing listens there and no delivery process runs: the outbox only fills.
WEBHOOK_URL = "http://127.0.0.1:9/bench"


@contextlib.contextmanager
def webhook_endpoint(database: Path):
    """One endpoint subscribed to every event type, registered with the CLI
    while the servers run, and removed (with its outbox rows) afterwards."""
    added = cli(database, "webhook", "add", WEBHOOK_URL, stdout=subprocess.PIPE)
    endpoint = json.loads(added.stdout)["id"]
    try:
        yield endpoint
    finally:
        cli(database, "webhook", "remove", endpoint)


def statuses_of(path, ids: list[str]) -> dict[str, int]:
    """How many of these payouts are in each status."""
    if hasattr(path, "statuses_of"):
        return path.statuses_of(ids)
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TEMP TABLE bench_ids (id TEXT PRIMARY KEY)")
        conn.executemany("INSERT OR IGNORE INTO bench_ids VALUES (?)", ((i,) for i in ids))
        rows = conn.execute(
            "SELECT p.status, count(*) FROM bench_ids b JOIN payouts p ON p.id = b.id GROUP BY p.status"
        ).fetchall()
        return dict(rows)
    finally:
        conn.close()


def measure_seed(work: Path, args) -> dict:
    log(f"seed-demo throughput ({args.seed_payouts:,} payouts, {args.seed_repeats} runs)...")
    rates = []
    path = work / "seed-throughput.sqlite3"
    for _ in range(args.seed_repeats):
        _, seconds = seed(path, args.seed_payouts, args.seed_payouts // 100)
        rates.append(args.seed_payouts / seconds)
        log(f"  {seconds:.2f} s: {rates[-1]:,.0f} payouts/s")
    remove_db(path)
    from seed_floor import measure as floor

    log("  the floor: seed-demo's load in process, into the schema and into bare tables...")
    return {
        "payouts": args.seed_payouts,
        "rates": rates,
        "median": statistics.median(rates),
        "floor": floor(args.seed_payouts, args.seed_repeats),
        "target": 50_000,
        "command": (
            f"triport-payouts seed-demo --payouts {args.seed_payouts} --users {args.seed_payouts // 100}"
        ),
    }


# The create path's payees (bench/wrk/create.lua): users of their own, so a
# balance check reads a handful of rows, not a demo user's hundred payouts.
PAYEES = "bench-payee-"


def credit_payees(database: Path, count: int, amount: str = "1000000.00", currency: str = "USDT") -> None:
    """Credits `count` payees (PAYEES + 00001 ...) with `amount` each, by the
    repository's bulk load (seed-demo's), once per database."""
    from triport_payouts.db import open_database
    from triport_payouts.domain import new_payout_id, utcnow
    from triport_payouts.repository import Repository

    db = open_database(str(database))
    try:
        if db.connection().execute("SELECT 1 FROM credits WHERE user_id = ?", (f"{PAYEES}00001",)).fetchone():
            return
        now = utcnow()
        Repository(db).bulk_load(credits=[
            (new_payout_id(), f"{PAYEES}{i:05d}", amount, currency, "bench payee", now)
            for i in range(1, count + 1)
        ])
    finally:
        db.close()
