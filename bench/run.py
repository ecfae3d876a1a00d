"""The benchmark suite: ``make bench`` (``.venv/bin/python bench/run.py``).

Every route, under gunicorn with the project's settings and driven by wrk,
as a ratio to a bare WSGI callable (bench/ceiling.py) served the same way
and measured in the same round; the 200 path with one webhook endpoint
registered beside the same without, side by side; in-process figures
against the raw SQLite statements; seed-demo throughput; a worker's memory. Writes
docs/benchmarks.md and docs/benchmarks.png (a --quick smoke run writes
under var/bench/quick/ instead).

A load run on the 200 path that loses or invents a write (payouts moved,
events and counted 200s disagree) fails the benchmark: exit status 1.
A target missed does not: it is reported, as the issue asks.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import time
from pathlib import Path

from common import DEMO_USER, ROOT, VAR, BenchmarkFailed, log

sys.path.insert(0, str(ROOT))

import inprocess
import pg
from checks import WritePool
from databases import cached_seed, measure_seed, seed
from machine import loadavg, machine
from memory import measure_rss
from rounds import run_load
from scenarios import PG_KEYS
from servers import Server

from triport_payouts import gunicorn_conf


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of about four minutes: small databases, one short round; "
        "writes under var/bench/quick/, not docs/",
    )
    parser.add_argument("--rounds", type=int, help="load rounds (default 5, quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per load run (default 6, quick 2)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--workers",
        type=int,
        default=gunicorn_conf.workers,
        help="gunicorn workers, app and ceiling alike (default: the config module's, %(default)s)",
    )
    parser.add_argument("--fresh", action="store_true", help="reseed the cached large database")
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        help="only these load scenarios (keys such as failed_200,list_first_10k), nothing"
        " else; for trying a change: writes under var/bench/only/, not docs/",
    )
    parser.add_argument("--out", type=Path, help="the Markdown report (default docs/benchmarks.md)")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only write the report again from the last run's results.json (after"
        " editing bench/notes.md, say)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = args.rounds or 1
        args.duration = args.duration or 2
        args.small, args.large = 10_000, 100_000
        args.seed_payouts, args.seed_repeats = 20_000, 1
        args.rss_points = (1_000, 10_000)
        args.read_calls, args.write_calls, args.blocks = 300, 100, 2
        args.pg_payouts = 50_000
        args.out = args.out or VAR / "quick" / "benchmarks.md"
    else:
        args.rounds = args.rounds or 5
        args.duration = args.duration or 6
        args.small, args.large = 10_000, 1_000_000
        args.seed_payouts, args.seed_repeats = 100_000, 3
        args.rss_points = (1_000, 10_000, 50_000, 100_000)
        args.read_calls, args.write_calls, args.blocks = 2000, 500, 7
        # Enough fresh payouts for a full run's PostgreSQL writes (three 200-path
        # scenarios, five rounds and a warm-up of up to ~2,500 writes/s: ~240k),
        # seeded in about 20 s and copied for each run in about 3 s.
        args.pg_payouts = 300_000
        args.out = args.out or ROOT / "docs" / "benchmarks.md"
    if args.only:
        args.out = VAR / "only" / "benchmarks.md"
    return args


def preflight() -> None:
    if shutil.which("wrk") is None:
        sys.exit(
            "bench: wrk is not installed. On Debian or Ubuntu: sudo apt-get install wrk"
            " (the Debian package; any wrk 4.x with LuaJIT will do)."
        )
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        sys.exit("bench: matplotlib is missing (it draws the chart): .venv/bin/pip install -e '.[bench]'")


def size_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report_only:
        import report

        results = json.loads((VAR / ("quick" if args.quick else "work") / "results.json").read_text())
        report.write(results, args.out, quick=args.quick)
        log(f"wrote {args.out} and {args.out.with_suffix('.png')}")
        return 0
    preflight()
    started = time.monotonic()
    work = VAR / ("only" if args.only else "quick" if args.quick else "work")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    token = secrets.token_urlsafe(18)
    info = machine()
    log(
        f"bench: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, SQLite {info['sqlite']},"
        f" gunicorn {info['gunicorn']}, {info['wrk']}; {args.workers} workers, {args.rounds} rounds"
        f" of {args.duration:g} s, {args.connections} connections, {args.threads} threads"
    )
    results = {
        "machine": info,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    servers: dict[str, Server] = {}
    cleanups: list = []
    try:
        measure(args, work, token, started, results, servers, cleanups)
        (work / "results.json").write_text(json.dumps(results, indent=2, default=str))
        if args.only:
            for row in results["load"]["scenarios"]:
                log(f"{row['key']:16} {row['ratio']:.3f} of the ceiling (rounds:"
                    f" {', '.join(f'{r:.3f}' for r in row['ratios'])}), p99 {row['p99_ratio']:.2f}x")
                if "versus" in row:
                    versus = row["versus"]
                    log(f"{'':16} {versus['ratio']:.3f} of {versus['key']}'s req/s, side by side (pairs of rounds:"
                        f" {', '.join(f'{r:.3f}' for r in versus['pair_ratios'])}; rounds:"
                        f" {', '.join(f'{r:.3f}' for r in versus['ratios'])}), p99 {versus['p99_ratio']:.2f}x")
            return 0
        import report

        report.write(results, args.out, quick=args.quick)
        log(f"wrote {args.out} and {args.out.with_suffix('.png')} in {results['elapsed_s'] / 60:.1f} min")
        report.print_summary(results, log)
        return 0
    except BenchmarkFailed as exc:
        log("")
        log("=" * 78)
        log(f"BENCHMARK FAILED: {exc}")
        log("=" * 78)
        return 1
    finally:
        for server in servers.values():
            server.stop()
        for cleanup in cleanups:
            cleanup()


def measure(args, work: Path, token: str, started: float, results: dict, servers: dict, cleanups: list) -> None:
    """Every phase in turn, its figures into results; the load phase's
    servers go into main's dict, for main to stop whatever happens, and
    what else to undo afterwards (the PostgreSQL copy) into cleanups."""
    phases: dict[str, float] = {}
    small_label, large_label = size_label(args.small), size_label(args.large)
    log(f"seeding the {small_label} database...")
    small_db = work / f"payouts-{small_label}.sqlite3"
    small_ids, _ = seed(small_db, args.small, max(1, args.small // 100))
    large_db, large_ids = cached_seed(
        args.large, max(1, args.large // 100), work, f"payouts-{large_label}.sqlite3", args.fresh
    )

    pg_setup = None
    if not args.only or any(key in PG_KEYS for key in args.only):
        pg_setup, results["postgres"] = pg.setup(args.pg_payouts, max(1, args.pg_payouts // 100), args.fresh)
        if pg_setup is not None:
            cleanups.append(pg.drop_run_copy)

    phases["databases"] = time.monotonic() - started
    if args.only:
        pool = WritePool(large_ids)
        dbs = {small_label: small_db, large_label: large_db}
        run_load(args, token, work, dbs, pool, results, servers, pg_setup)
        return
    mark = time.monotonic()
    results["seed"] = measure_seed(work, args)
    phases["seed-demo"] = time.monotonic() - mark
    mark = time.monotonic()

    # The write database is the large one: the 200 path, the memory run and
    # the in-process writes take their fresh payouts from there.
    pool = WritePool(large_ids)
    dbs = {small_label: small_db, large_label: large_db}
    failed_id, cursor, drain = run_load(args, token, work, dbs, pool, results, servers, pg_setup)

    phases["load"] = time.monotonic() - mark
    mark = time.monotonic()
    results["rss"] = measure_rss(args, token, large_db, pool, failed_id, cursor, work, drain)

    phases["memory"] = time.monotonic() - mark
    mark = time.monotonic()
    log("in-process figures...")
    fresh = pool.take(args.write_calls * (args.blocks + 1) * 2 + 200)
    # Webhooks' cost in process, on two copies of the small database: only
    # the load phase's reads have touched it, so its payouts are all fresh.
    webhooks = inprocess.webhook_route(str(small_db), small_ids, token, str(work))
    results["inprocess"] = inprocess.run(
        {small_label: str(small_db), large_label: str(large_db)},
        fresh,
        failed_id,
        DEMO_USER,
        token,
        read_calls=args.read_calls,
        write_calls=args.write_calls,
        blocks=args.blocks,
        log=log,
        extra=[webhooks],
    )
    phases["in-process"] = time.monotonic() - mark
    results["phases"] = phases
    results["machine"]["loadavg_end"] = loadavg()
    results["elapsed_s"] = time.monotonic() - started
    results["sizes"] = {
        "small": args.small,
        "large": args.large,
        "small_label": small_label,
        "large_label": large_label,
    }


if __name__ == "__main__":
    sys.exit(main())
