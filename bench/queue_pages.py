"""The queue's pages on 1,000,000 payouts: the first page against one deep in
the list, in both orders, for the list's filters, in process (the
repository's own statement, no HTTP), on SQLite and, given a URL, PostgreSQL.
Also how long schema step 5 takes to build its indexes on that table.

    .venv/bin/python bench/queue_pages.py [--payouts 1000000] [--postgres postgresql://...]

A quarter of the payouts are moved to processing, their updated_at a year
after their created_at, so the updated_at indexes hold another order than the
created_at ones. The deep page starts at the middle of each filter's rows.
Figures: the median of many calls, in microseconds; the ratio deep / first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from triport_payouts import demo  # noqa: E402
from triport_payouts.db import open_database  # noqa: E402
from triport_payouts.repository import PageFilters, Repository  # noqa: E402

LIMIT = 50
INDEXES = ("payouts_changed", "payouts_by_status_changed", "payouts_by_user_changed")
STEP_5 = {
    "payouts_changed": "(updated_at, id)",
    "payouts_by_status_changed": "(status, updated_at, id)",
    "payouts_by_user_changed": "(user_id, updated_at, id)",
}
SCENARIOS = {
    "all": {},
    "status=requested": {"status": "requested"},
    "user_id": {"user_id": "demo-user-0007"},
    "created window (a third)": {"created_after": "{t1}", "created_before": "{t2}"},
    "stalled: status=processing&updated_before": {"status": "processing", "updated_before": "{u}"},
    "updated_before": {"updated_before": "{u}"},
    "user_id&updated_before": {"user_id": "demo-user-0007", "updated_before": "{u}"},
}


def prepare(repo: Repository, payouts: int) -> dict:
    t0 = time.perf_counter()
    demo.seed_demo(repo, payouts, max(10, payouts // 1000))
    seeded = time.perf_counter() - t0
    with repo.db.transaction() as conn:
        # A quarter moved to processing a year later (the schema's triggers allow it).
        conn.execute(repo.db.sql(
            "UPDATE payouts SET status = 'processing', updated_at = '2027' || substr(created_at, 5)"
            " WHERE substr(id, 23, 1) IN ('0', '1', '2', '3')"))
    conn = repo.db.connection()
    times = [row[0] for row in conn.execute("SELECT created_at FROM payouts ORDER BY created_at").fetchall()]
    updated = [row[0] for row in conn.execute(
        "SELECT updated_at FROM payouts WHERE status = 'processing' ORDER BY updated_at").fetchall()]
    return {"seeded": seeded, "t1": times[len(times) // 3], "t2": times[2 * len(times) // 3],
            "u": updated[3 * len(updated) // 4]}


def timed(call, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def middle_key(repo: Repository, filters: PageFilters) -> tuple:
    """The key of the payout in the middle of the filter's rows (found with an
    OFFSET: a scan, once, to set the bench up)."""
    sql, params = repo.page_query(filters, limit=0)
    head, placeholder = sql.rsplit(" LIMIT ", 1)
    conn = repo.db.connection()
    count = conn.execute(f"SELECT count(*) FROM ({sql}) AS page", [*params[:-1], 10**9]).fetchone()[0]
    row = conn.execute(f"{head} LIMIT {placeholder} OFFSET {placeholder}", [*params[:-1], 1, count // 2]).fetchone()
    return tuple(row[1:])


def cost(repo: Repository, filters: PageFilters, after) -> str:
    """What a page reads, independent of the machine's load: SQLite's virtual
    machine steps, or PostgreSQL's buffers (hit + read)."""
    sql, params = repo.page_query(filters, limit=LIMIT, after=after)
    conn = repo.db.connection()
    if repo.db.dialect == "sqlite":
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        conn.set_progress_handler(count, 100)
        try:
            conn.execute(sql, params).fetchall()
        finally:
            conn.set_progress_handler(None, 0)
        return f"{steps[0] * 100:,} steps"
    plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params).fetchone()[0][0]["Plan"]
    return f"{plan['Shared Hit Blocks'] + plan['Shared Read Blocks']} buffers"


def measure(repo: Repository, marks: dict, rounds: int) -> list[tuple]:
    rows = []
    for name, given in SCENARIOS.items():
        for oldest in (False, True):
            filters = PageFilters(**{k: v.format(**marks) if isinstance(v, str) else v
                                     for k, v in given.items()}, oldest=oldest)
            deep = middle_key(repo, filters)
            first_us = timed(lambda f=filters: repo.payout_page(f, limit=LIMIT), rounds)
            deep_us = timed(lambda f=filters, d=deep: repo.payout_page(f, limit=LIMIT, after=d), rounds)
            assert len(repo.payout_page(filters, limit=LIMIT, after=deep)[0]) == LIMIT
            rows.append((name, "oldest" if oldest else "newest", first_us, deep_us,
                         cost(repo, filters, None), cost(repo, filters, deep)))
    return rows


def index_build(repo: Repository) -> float:
    """Seconds to build schema step 5's indexes on the table as it is."""
    with repo.db.transaction() as conn:
        for name in INDEXES:
            conn.execute(f"DROP INDEX {name}")
    t0 = time.perf_counter()
    with repo.db.transaction() as conn:
        for name, columns in STEP_5.items():
            conn.execute(f"CREATE INDEX {name} ON payouts {columns}")
    return time.perf_counter() - t0


def report(label: str, marks: dict, rows: list[tuple], build: float) -> None:
    print(f"\n{label}: seeded in {marks['seeded']:.0f} s; step 5's indexes built in {build:.1f} s")
    print("| filter | order | first page (µs) | middle page (µs) | middle / first | first reads | middle reads |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, order, first_us, deep_us, first_cost, deep_cost in rows:
        print(f"| {name} | {order} | {first_us:.0f} | {deep_us:.0f} | {deep_us / first_us:.2f}"
              f" | {first_cost} | {deep_cost} |")
    sys.stdout.flush()


def run(url: str, label: str, payouts: int, rounds: int) -> None:
    db = open_database(url)
    db.init_schema()
    repo = Repository(db)
    if db.dialect == "postgres":
        # Loading a million rows on a busy server may take longer than the app allows a statement.
        db.connection().execute("SET statement_timeout = 0")
    try:
        marks = prepare(repo, payouts)
        if db.dialect == "postgres":
            db.connection().execute("ANALYZE payouts")
        rows = measure(repo, marks, rounds)
        build = index_build(repo)
        report(label, marks, rows, build)
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payouts", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--postgres", metavar="URL", help="also on PostgreSQL, in a schema of its own (dropped)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        if not args.skip_sqlite:
            run(str(Path(work) / "queue.sqlite3"), "SQLite", args.payouts, args.rounds)
    if args.postgres:
        import psycopg

        schema = f"bench_queue_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.postgres, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
            try:
                sep = "&" if "?" in args.postgres else "?"
                run(f"{args.postgres}{sep}options=-csearch_path%3D{schema}", "PostgreSQL", args.payouts, args.rounds)
            finally:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
