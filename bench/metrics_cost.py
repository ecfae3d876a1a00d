"""What GET /metrics costs, and what its running totals cost the writes.

    .venv/bin/python -m bench.metrics_cost scrape DATABASE [--scrapes 200]
        a scrape in process (Metrics.render) on a database made by seed-demo,
        and each statement's plan (EXPLAIN QUERY PLAN / EXPLAIN)
    .venv/bin/python -m bench.metrics_cost writes-sqlite [--rounds 2] [--calls 150]
        mark-failed 200s alternating call by call between an app whose
        database keeps the totals and one whose triggers were dropped (the
        code before metrics), as bench/webhooks_cost.py does
    .venv/bin/python -m bench.metrics_cost writes-postgres POSTGRES_URL [--writers 8] [--seconds 5]
        concurrent mark-failed transitions (one connection per thread, each
        on payouts of its own), in three fresh schemas: without the totals'
        triggers, with them (a slot per session), and with every session on
        one slot (the single hot row per key the slots avoid)

Each figure is printed; bench/notes.md has those of the last sitting.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal

from bench import inprocess
from triport_payouts import create_app, demo
from triport_payouts.db import open_database
from triport_payouts.metrics import SQL, Metrics
from triport_payouts.repository import Repository

FAILED = "/v1/admin/referrals/payouts/{}/failed"
TRIGGERS = {
    "sqlite": ("payout_totals_insert", "payout_totals_update", "payout_event_totals_insert"),
    "postgres": ("payout_totals_insert ON payouts", "payout_totals_update ON payouts",
                 "payout_event_totals_insert ON payout_events"),
}


def scrape(args) -> int:
    db = open_database(args.database)
    scraper = Metrics(db)
    text = scraper.render()
    print(f"{len(text.splitlines())} lines; payouts: "
          + ", ".join(line.split(" ", 1)[1].replace("triport_payouts{", "").replace('"}', "")
                      for line in text.splitlines() if line.startswith("triport_payouts{")))
    times = []
    for _ in range(args.scrapes):
        start = time.perf_counter()
        scraper.render()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(f"{db.dialect}: scrape median {statistics.median(times):.3f} ms,"
          f" p99 {times[int(len(times) * 0.99) - 1]:.3f} ms, max {times[-1]:.3f} ms over {len(times)}")
    conn = db.connection()
    explain = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN (ANALYZE, COSTS OFF) "
    statements = [("amounts", scraper._amounts, ())]
    statements += [(name, sql, ("requested",) if name == "oldest" else ()) for name, sql in scraper._sql.items()]
    assert {name for name, _, _ in statements} == {"amounts", *SQL}
    for name, sql, params in statements:
        rows = conn.execute(explain + sql, params).fetchall()
        plan = [row[3] if db.dialect == "sqlite" else row[0] for row in rows]
        print(f"-- {name}\n   " + "\n   ".join(plan))
    db.close()
    return 0


def writes_sqlite(args) -> int:
    token = secrets.token_urlsafe(16)
    per_run = 50 + args.calls * args.blocks
    with tempfile.TemporaryDirectory(prefix="triport-metrics-cost-") as tmp:
        apps, ids = {}, {}
        for name in ("before", "control", "totals"):
            path = os.path.join(tmp, f"{name}.sqlite3")
            uses = per_run * args.rounds * (2 if name == "before" else 1)
            ids[name] = iter(inprocess._seed(path, uses + 10, 50))
            if name != "totals":
                db = open_database(path)
                with db.transaction() as conn:
                    for trigger in TRIGGERS["sqlite"]:
                        conn.execute(f"DROP TRIGGER {trigger}")
                db.close()
            apps[name] = create_app(database=path, admin_token=token)

        def loop(name):
            return inprocess._app_loop(
                apps[name], lambda: inprocess.environ("POST", FAILED.format(next(ids[name])), token,
                                                      body=inprocess.BODY), "200")

        for round_ in range(args.rounds):
            for name in ("control", "totals"):
                route = inprocess.Route(name, name, loop(name), loop("before"), "200", writes=True)
                result = inprocess.measure(route, args.calls, args.blocks)
                print(f"round {round_} {name:8} {result['app_us']:7.1f} us vs {result['raw_us']:7.1f} us"
                      f" without the totals: {result['ratio']:.3f}", flush=True)
    return 0


def writes_postgres(args) -> int:
    import psycopg

    admin = psycopg.connect(args.database, autocommit=True)
    try:
        for variant in args.variants:
            schema = f"bench_metrics_{uuid.uuid4().hex[:8]}"
            admin.execute(f"CREATE SCHEMA {schema}")
            url = f"{args.database}{'&' if '?' in args.database else '?'}options=-csearch_path%3D{schema}"
            try:
                rate, p99 = _postgres_run(url, variant, args.writers, args.seconds, args.per_writer)
                print(f"{variant:10} {args.writers} writers: {rate:8.0f} transitions/s, p99 {p99:.2f} ms",
                      flush=True)
            finally:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        admin.close()
    return 0


def _postgres_run(url: str, variant: str, writers: int, seconds: float, per_writer: int) -> tuple[float, float]:
    db = open_database(url)
    db.init_schema()
    repo = Repository(db)
    ids = demo.seed_demo(repo, per_writer * writers, writers * 10)
    with db.transaction() as conn:
        if variant == "none":
            for trigger in TRIGGERS["postgres"]:
                conn.execute(f"DROP TRIGGER {trigger}")
        elif variant == "one-slot":
            conn.execute("CREATE OR REPLACE FUNCTION payout_totals_slot() RETURNS integer"
                         " LANGUAGE sql STABLE AS $$ SELECT 0 $$")
    db.close()
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def writer(mine: list[str]) -> None:
        own = Repository(open_database(url))
        done = []
        for payout_id in mine:
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            own.transition(payout_id, "failed", reason="bench")
            done.append(time.perf_counter() - start)
        own.db.close()
        with lock:
            latencies.extend(done)

    threads = [threading.Thread(target=writer, args=(ids[i::writers],)) for i in range(writers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    check = Repository(open_database(url))
    text = Metrics(check.db).render()
    check.db.close()
    if variant != "none":
        failed = next(line for line in text.splitlines() if line.startswith('triport_payouts{status="failed"}'))
        assert Decimal(failed.split()[1]) == len(latencies), (failed, len(latencies))
    return len(latencies) / elapsed, latencies[int(len(latencies) * 0.99) - 1] * 1000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(required=True)
    sub = commands.add_parser("scrape")
    sub.add_argument("database")
    sub.add_argument("--scrapes", type=int, default=200)
    sub.set_defaults(run=scrape)
    sub = commands.add_parser("writes-sqlite")
    sub.add_argument("--rounds", type=int, default=2)
    sub.add_argument("--calls", type=int, default=150)
    sub.add_argument("--blocks", type=int, default=5)
    sub.set_defaults(run=writes_sqlite)
    sub = commands.add_parser("writes-postgres")
    sub.add_argument("database")
    sub.add_argument("--writers", type=int, default=8)
    sub.add_argument("--seconds", type=float, default=5.0)
    sub.add_argument("--per-writer", type=int, default=3000, help="payouts seeded for each writer")
    sub.add_argument("--variants", nargs="+", default=["none", "slots", "one-slot"])
    sub.set_defaults(run=writes_postgres)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
