"""Side by side at once: the app and a hand-written reference loaded at the
same moment, each with half the connections, each on its own copy of the
large database, so that whatever the machine does meanwhile (neighbours,
the disk, page-outs) falls on both alike:

    .venv/bin/python bench/at_once.py [--pairs 200,409,events,list] [--rounds 5] [--duration 6]

`make bench` runs each pair one after the other, alternating, and a
neighbour's burst can land on one side only: on this machine a round's
ratio moved by up to 15% there. Here a ratio is taken within one run.
What it measures is which side does more with the same share of the
machine, not either side's speed alone. Each write run gets the database
check of bench/checks.py; the pairs are the app against bench/reference.py
(synchronous=NORMAL, and FULL) on the 200 path, and against
bench/reference_reads.py on the 409, a payout's events and the first list
page, and the create path against the app without its creation event
(bench/variants.py). The copies start identical, and both sides write the same fresh
payouts, each in its own copy. Results: var/bench/at-once/results.json.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor

from common import API, BODY, ROOT, VAR, log

sys.path.insert(0, str(ROOT))

from checks import WritePool, run_create, run_read, run_write
from databases import PAYEES, cached_seed, credit_payees, remove_db, warm
from load import Wrk
from scenarios import NO_CREATION_EVENT, PAYEE_COUNT, READS_REFERENCE, Scenario
from servers import Server

from triport_payouts import gunicorn_conf
from triport_payouts.db import open_database
from triport_payouts.repository import Repository

WORK = VAR / "at-once"
APP = "triport_payouts.wsgi:application"
REFERENCE_APPS = {"reference-normal": "bench.reference:normal", "reference-durable": "bench.reference:durable",
                  READS_REFERENCE: "bench.reference_reads:application",
                  NO_CREATION_EVENT: "bench.variants:without_creation_event"}


def pairs(failed_id: str) -> dict[str, tuple[str, Scenario, Scenario]]:
    """name: (the reference's server, the app's scenario, the reference's)."""
    fresh = Scenario("at_once_200", "mark-failed, fresh payout (200)", "", "", "fresh_ids.lua",
                     {"path": f"{API}/payouts/{{id}}/failed", "body": BODY}, writes=True)
    reads = {
        "409": Scenario("at_once_409", "mark-failed, already failed (409)", "", f"{API}/payouts/{failed_id}/failed",
                        args={"method": "POST", "body": BODY}, expect=409),
        "events": Scenario("at_once_events", "payout events", "", f"{API}/payouts/{failed_id}/events"),
        "list": Scenario("at_once_list", "list, first page of 50", "", f"{API}/payouts?limit=50"),
    }
    create = {"script": "create.lua", "expect": 201, "creates": True,
              "args": {"users": PAYEE_COUNT, "prefix": PAYEES, "amount": "0.01", "currency": "USDT"}}
    return {
        "200": ("reference-normal", fresh, fresh),
        "200-durable": ("reference-durable", fresh, fresh),
        **{name: (READS_REFERENCE, scenario, scenario) for name, scenario in reads.items()},
        "create": (NO_CREATION_EVENT, Scenario("at_once_create", "create payout (201)", "", f"{API}/payouts", **create),
                   Scenario("at_once_create_no_event", "create payout, no creation event (201)", "",
                            f"{API}/payouts", creation_event=False, **create)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default="200,200-durable,409,events,list,create")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--payouts", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=4, help="per side")
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(18)
    app_db, ids = cached_seed(args.payouts, args.users, WORK, "app.sqlite3", fresh=False)
    pool_ids = ids[1:]
    # The 409's and the events' payout, failed before the copy, and the log
    # copied into the database file, which is what is copied: in both.
    credit_payees(app_db, PAYEE_COUNT)  # the create path's payees
    db = open_database(str(app_db))
    try:
        Repository(db).transition(ids[0], "failed", reason="at once")
        db.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    reference_db = WORK / "reference.sqlite3"
    remove_db(reference_db)
    shutil.copyfile(app_db, reference_db)
    drain = f"{API}/payouts/{ids[0]}/failed"
    workers = gunicorn_conf.workers
    log(f"at once: {args.rounds} rounds of {args.duration:g} s, {args.connections} connections a side,"
        f" {workers} workers a server, {args.payouts:,} payouts in each copy")
    # Each copy's payouts never touched yet, across the pairs.
    pools = {"app": WritePool(list(pool_ids)), "reference": WritePool(list(pool_ids))}
    results = {}
    for name in args.pairs.split(","):
        reference_name, *scenarios = pairs(ids[0])[name]
        sides = {
            "app": (Server("app", APP, workers, app_db, token, WORK), app_db, pools["app"]),
            "reference": (Server(reference_name, REFERENCE_APPS[reference_name], workers, reference_db, token, WORK),
                          reference_db, pools["reference"]),
        }
        budget = int(args.duration * 8000)
        rounds = []
        try:
            for _ in range(args.rounds):
                rounds.append(one_round(sides, dict(zip(sides, scenarios)), token, args, budget, drain))
                app, reference = rounds[-1]["app"], rounds[-1]["reference"]
                log(f"  {name:12s} app {app['rps']:7.0f} req/s  {reference_name} {reference['rps']:7.0f} req/s"
                    f"  ratio {app['rps'] / reference['rps']:.3f}")
        finally:
            for server, _, _ in sides.values():
                server.stop()
        ratios = [r["app"]["rps"] / r["reference"]["rps"] for r in rounds]
        results[name] = {"reference": reference_name, "rounds": rounds, "ratios": ratios,
                         "median": statistics.median(ratios)}
        log(f"{name:12s} app / {reference_name}: {statistics.median(ratios):.3f}"
            f" (rounds: {', '.join(f'{r:.3f}' for r in ratios)})")
    (WORK / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def one_round(sides: dict, scenarios: dict[str, Scenario], token: str, args, budget: int, drain: str) -> dict:
    """Both sides' loads, started together; each checked as make bench checks it."""
    def load(side: str):
        server, db, pool = sides[side]
        scenario = scenarios[side]
        wrk = Wrk(token, args.connections, 2)
        if scenario.writes:
            work = WORK / side
            work.mkdir(exist_ok=True)
            return run_write(wrk, scenario, server, db, pool, args.duration, work, budget, drain)
        if scenario.creates:
            return run_create(wrk, scenario, server, db, args.duration, drain)
        return run_read(wrk, scenario, server, db, args.duration)

    with ThreadPoolExecutor(2) as executor:
        if scenarios["app"].writes or scenarios["app"].creates:
            # Both copies read back at once: one read first would sit idle, paged out, while the other is.
            list(executor.map(warm, [db for _, db, _ in sides.values()]))
        futures = {side: executor.submit(load, side) for side in sides}
        loads = {side: future.result() for side, future in futures.items()}
    return {side: {"rps": load.rps, "p50_ms": load.p50_ms, "p99_ms": load.p99_ms, "answered": load.answered}
            for side, load in loads.items()}


if __name__ == "__main__":
    sys.exit(main())
