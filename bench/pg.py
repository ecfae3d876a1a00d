"""PostgreSQL for the load rounds: a seeded database cached between runs, a
working copy of it for each run, and the counts the 200 path's check reads.

The server is the local one (TRIPORT_BENCH_POSTGRES names another: a URL of
a database to connect to for administration, ``postgres`` by default). The
bench works only in databases of its own, named triport_bench_*: never in
``test``, which the test suite uses.

- ``triport_bench_<payouts>_<code>``: seeded once by the CLI (``init-db``,
  ``seed-demo``, which loads with COPY), vacuumed and analysed, then only
  used as a template. Keyed like the SQLite cache: size and a hash of the
  PostgreSQL schema and the seeding code. Its payout ids (seed-demo's
  output) are kept in var/bench/cache/.
- ``triport_bench_run``: the run's copy (``CREATE DATABASE ... TEMPLATE``,
  about 2 s for 200,000 payouts), so every run starts from the same untouched
  payouts, as the SQLite copy does; dropped at the end of the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from checks import WritePool
from common import CACHE, BenchmarkFailed, log
from databases import schema_key

ADMIN_URL = os.environ.get("TRIPORT_BENCH_POSTGRES", "postgresql://127.0.0.1:5432/postgres")
PREFIX = "triport_bench"
RUN_DB = f"{PREFIX}_run"


def url_of(dbname: str) -> str:
    """The admin URL with another database name (its host, port, user and options kept)."""
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path="/" + dbname))


def _admin():
    import psycopg

    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)


def unreachable() -> str | None:
    """Why the PostgreSQL scenarios cannot run here (None: they can)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (.venv/bin/pip install -e '.[postgres]')"
    try:
        with _admin() as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # psycopg.Error, and anything its libpq says on the way
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"cannot connect to {urlsplit(ADMIN_URL).netloc or 'the local server'}: {first}"
    return None


class PgDatabase:
    """One bench database: its URL (what TRIPORT_DATABASE gets) and the
    counts and statuses the checks read, over psycopg."""

    def __init__(self, dbname: str):
        self.dbname = dbname
        self.url = url_of(dbname)

    def __str__(self) -> str:
        return self.url

    def _connect(self):
        import psycopg

        return psycopg.connect(self.url, autocommit=True, connect_timeout=5)

    def counts(self) -> dict:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM payouts),"
                " (SELECT count(*) FROM payouts WHERE status = 'requested'),"
                " (SELECT count(*) FROM payouts WHERE status = 'failed'),"
                " (SELECT count(*) FROM payout_events),"
                " (SELECT count(*) FROM webhook_outbox)"
            ).fetchone()
        return dict(zip(("payouts", "requested", "failed", "events", "outbox"), row))

    def statuses_of(self, ids: list[str]) -> dict[str, int]:
        """How many of these payouts are in each status."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT p.status, count(*) FROM payouts p WHERE p.id = ANY(%s) GROUP BY p.status", (list(ids),)
            ).fetchall()
        return dict(rows)


def _cli(database: PgDatabase, *args: str, stdout=subprocess.DEVNULL) -> None:
    env = {**os.environ, "TRIPORT_DATABASE": database.url}
    done = subprocess.run([sys.executable, "-m", "triport_payouts", *args], env=env, check=False, stdout=stdout,
                          stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise BenchmarkFailed(f"triport-payouts {' '.join(args)} on {database.dbname} exited with"
                              f" {done.returncode}: {done.stderr.strip()[-2000:]}")


def _exists(conn, dbname: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is not None


def _drop(conn, dbname: str) -> None:
    # FORCE: a server of an interrupted run may still hold connections.
    conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@dataclass
class PgSetup:
    """What the load rounds need of PostgreSQL: the run's database and its fresh payouts."""

    db: PgDatabase
    pool: WritePool
    info: dict  # for the report: sizes, the seeded database's name, the server's version


def setup(payouts: int, users: int, fresh: bool, copy: str = RUN_DB) -> tuple[PgSetup | None, dict]:
    """The run's PostgreSQL database, or None (and the reason, in one line of
    the log and in the info) when PostgreSQL cannot be reached."""
    reason = unreachable()
    if reason:
        log(f"PostgreSQL: {reason}; the PostgreSQL scenarios are skipped")
        return None, {"skipped": reason}
    db, ids = cached_copy(payouts, users, fresh, copy)
    with db._connect() as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        synchronous_commit = conn.execute("SHOW synchronous_commit").fetchone()[0]
    info = {"payouts": payouts, "users": users, "server_version": version,
            "synchronous_commit": synchronous_commit, "url": url_of("DBNAME")}
    return PgSetup(db, WritePool(ids), info), info


def cached_copy(payouts: int, users: int, fresh: bool, copy: str = RUN_DB) -> tuple[PgDatabase, list[str]]:
    """A fresh copy of the seeded database named copy (seeded first if the
    cache has none of this size and code), and its payout ids, oldest first."""
    CACHE.mkdir(parents=True, exist_ok=True)
    pristine = f"{PREFIX}_{payouts}_{users}_{schema_key('postgres')}"
    ids_path = CACHE / f"{pristine}.ids"
    with _admin() as conn:
        if fresh or not (_exists(conn, pristine) and ids_path.exists()):
            # Other code or a --fresh: the old seeds of this size go.
            for (old,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                       (f"{PREFIX}_{payouts}_{users}_%",)).fetchall():
                _drop(conn, old)
            for old in CACHE.glob(f"{PREFIX}_{payouts}_{users}_*.ids"):
                old.unlink()
            log(f"seeding {payouts:,} payouts into PostgreSQL database {pristine} (cached for later runs)...")
            start = time.perf_counter()
            conn.execute(f'CREATE DATABASE "{pristine}"')
            seeded = PgDatabase(pristine)
            try:
                _cli(seeded, "init-db")
                partial = Path(str(ids_path) + ".partial")
                with open(partial, "w") as out:
                    _cli(seeded, "seed-demo", "--payouts", str(payouts), "--users", str(users), stdout=out)
                with seeded._connect() as db:
                    db.execute("VACUUM ANALYZE")
            except BaseException:
                _drop(conn, pristine)
                raise
            partial.rename(ids_path)
            log(f"  init-db, seed-demo and VACUUM ANALYZE: {time.perf_counter() - start:.1f} s")
        _drop(conn, copy)
        conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{pristine}"')
    ids = ids_path.read_text().split()
    db = PgDatabase(copy)
    counts = db.counts()
    if len(ids) != payouts or counts["payouts"] != payouts or counts["requested"] != payouts:
        raise BenchmarkFailed(f"the cached PostgreSQL database {pristine} is not as seeded: {counts};"
                              " rerun with --fresh")
    return db, ids


def drop_run_copy(copy: str = RUN_DB) -> None:
    """The run's copy goes at the end of the run (the seeded one stays)."""
    try:
        with _admin() as conn:
            _drop(conn, copy)
    except Exception as exc:  # the run's figures are written already: say so, do not fail
        log(f"could not drop the PostgreSQL database {copy}: {exc}")

