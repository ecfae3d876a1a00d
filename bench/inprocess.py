"""In-process figures: what the app adds over its database, without HTTP.

For each route, the cost of one WSGI call (the App called directly with a
prebuilt environ, many times) against the raw SQLite statements that call
runs, in a plain loop on a persistent connection with the app's pragmas.
The two loops alternate in blocks on the same database, and each figure is
the median over blocks, so drift (page cache, checkpoints, neighbours)
hits both sides alike. And the 200 path with one webhook endpoint against
none, the app against itself on two copies of a database.

Used by bench/run.py; also runs alone on a database of its own:

    .venv/bin/python bench/inprocess.py [--payouts 20000] [--profile failed|webhook|conflict|list|deep|user]
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

from triport_payouts import create_app
from triport_payouts.db import open_database
from triport_payouts.db.sqlite import SQLiteDatabase
from triport_payouts.webhooks import EVENT_TYPES, Webhooks

# The statements the app runs, written out as the work itself: if the
# repository changes its SQL, this stays the yardstick the issue names.
STATUS = "SELECT status FROM payouts WHERE id = ?"
CAS = (
    "UPDATE payouts SET status = ?, reason = coalesce(?, reason), tx_hash = coalesce(?, tx_hash),"
    " updated_at = ? WHERE id = ? AND status = ?"
)
EVENT = (
    "INSERT INTO payout_events (payout_id, from_status, to_status, reason, tx_hash, actor, at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = "id, user_id, amount, currency, destination, status, reason, tx_hash, created_at, updated_at"
LIST_FIRST = f"SELECT {_COLUMNS} FROM payouts ORDER BY created_at DESC, id DESC LIMIT ?"
LIST_AFTER = (
    f"SELECT {_COLUMNS} FROM payouts WHERE (created_at, id) < (?, ?)"
    " ORDER BY created_at DESC, id DESC LIMIT ?"
)
LIST_USER = f"SELECT {_COLUMNS} FROM payouts WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?"
USER_ROWS = (
    "SELECT currency, 'credit', amount, 1 FROM credits WHERE user_id = ?"
    " UNION ALL SELECT currency, status, amount, 1 FROM payouts WHERE user_id = ?"
)
EVENTS = (
    "SELECT payout_id, from_status, to_status, reason, tx_hash, actor, at FROM payout_events"
    " WHERE payout_id = ? ORDER BY id"
)
NOW = "2026-01-01T00:00:00.000000Z"
BODY = b'{"reason":"bench"}'
FAILED = "/v1/admin/referrals/payouts/{}/failed"
WEBHOOK_URL = "http://127.0.0.1:9/bench"  # never sent to: no delivery process runs


def environ(method: str, path: str, token: str, query: str = "", body: bytes = b"") -> dict:
    """What gunicorn hands the app for such a request."""
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_X_ADMIN_TOKEN": token,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if body:
        env["CONTENT_LENGTH"] = str(len(body))
        env["CONTENT_TYPE"] = "application/json"
    return env


def _start_response(status, headers, exc_info=None):
    _start_response.status = status


def raw_connection(path: str) -> sqlite3.Connection:
    """A persistent connection with the app's guarantees, the plain way: WAL,
    foreign keys, autocommit, cached statements, and every COMMIT synced by
    SQLite itself (synchronous=FULL) where the app syncs the log after its
    lock (group commit); one writer alone, the two cost the same."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=256)
    for pragma in (*SQLiteDatabase.PRAGMAS, "PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL"):
        conn.execute(pragma)
    return conn


class Route:
    """One route's two loops: `app(n)` and `raw(n)` each do n calls and
    return the seconds they took. `against` names what raw is when it is
    not the raw statements."""

    def __init__(self, name, label, app_loop, raw_loop, expect, target=None, writes=False, against=None):
        self.name, self.label, self.app_loop, self.raw_loop = name, label, app_loop, raw_loop
        self.expect, self.target, self.writes, self.against = expect, target, writes, against


def _app_loop(app, make_environ, expect):
    def loop(n):
        envs = [make_environ() for _ in range(n)]
        start = time.perf_counter()
        for env in envs:
            app(env, _start_response)
        elapsed = time.perf_counter() - start
        if not _start_response.status.startswith(expect):
            raise RuntimeError(f"in-process call answered {_start_response.status}, expected {expect}")
        return elapsed

    return loop


def deep_cursor(app, token: str, rows: int) -> str:
    """The next_cursor after `rows` rows of the unfiltered list (pages of 50)."""
    import json

    cursor, seen = None, 0
    while seen < rows:
        query = "limit=50" + (f"&cursor={cursor}" if cursor else "")
        body = b"".join(app(environ("GET", "/v1/admin/referrals/payouts", token, query), _start_response))
        page = json.loads(body)
        seen += len(page["payouts"])
        cursor = page["next_cursor"]
        if cursor is None:
            raise RuntimeError(f"the list ends before {rows} rows")
    return cursor


def routes(  # noqa: C901 - one closure per route, in the order measured
    databases: dict, fresh_ids: list, failed_id: str, user_id: str, token: str, deep_rows: int = 5000
) -> list[Route]:
    """The routes to measure. databases: {"10k": path, "1M": path}, the
    write database being the last; fresh_ids: payouts in `requested` there,
    consumed from the front; failed_id: a payout already failed there.
    """
    out = []
    labels = list(databases)
    write_label = labels[-1]
    apps = {label: create_app(database=path, admin_token=token) for label, path in databases.items()}
    raws = {label: raw_connection(path) for label, path in databases.items()}
    write_app, write_raw = apps[write_label], raws[write_label]
    ids = iter(fresh_ids)
    path = FAILED

    def raw_write(n):
        batch = [next(ids) for _ in range(n)]
        conn = write_raw
        start = time.perf_counter()
        for pid in batch:
            current = conn.execute(STATUS, (pid,)).fetchone()[0]
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute(CAS, ("failed", "bench", None, NOW, pid, current))
            if cur.rowcount != 1:
                raise RuntimeError("raw compare-and-set missed")
            conn.execute(EVENT, (pid, current, "failed", "bench", None, None, NOW))
            conn.execute("COMMIT")
        return time.perf_counter() - start

    out.append(
        Route(
            "failed_200",
            f"mark-failed, 200 ({write_label})",
            _app_loop(write_app, lambda: environ("POST", path.format(next(ids)), token, body=BODY), "200"),
            raw_write,
            "200",
            target=1.2,
            writes=True,
        )
    )

    def raw_status(n):
        conn = write_raw
        start = time.perf_counter()
        for _ in range(n):
            conn.execute(STATUS, (failed_id,)).fetchone()
        return time.perf_counter() - start

    out.append(
        Route(
            "failed_409",
            f"mark-failed, 409 ({write_label})",
            _app_loop(write_app, lambda: environ("POST", path.format(failed_id), token, body=BODY), "409"),
            raw_status,
            "409",
            target=2.0,
        )
    )

    def raw_events(n):
        conn = write_raw
        start = time.perf_counter()
        for _ in range(n):
            conn.execute(EVENTS, (failed_id,)).fetchall()
        return time.perf_counter() - start

    out.append(
        Route(
            "events",
            f"payout events ({write_label})",
            _app_loop(
                write_app,
                lambda: environ("GET", f"/v1/admin/referrals/payouts/{failed_id}/events", token),
                "200",
            ),
            raw_events,
            "200",
        )
    )

    for label in labels:
        app, conn = apps[label], raws[label]
        cursor = deep_cursor(app, token, deep_rows)
        after = app.services.cursors.decode(cursor, (None, None))

        def raw_first(n, conn=conn):
            start = time.perf_counter()
            for _ in range(n):
                conn.execute(LIST_FIRST, (51,)).fetchall()
            return time.perf_counter() - start

        def raw_deep(n, conn=conn, after=after):
            start = time.perf_counter()
            for _ in range(n):
                conn.execute(LIST_AFTER, (*after, 51)).fetchall()
            return time.perf_counter() - start

        def raw_user(n, conn=conn):
            start = time.perf_counter()
            for _ in range(n):
                conn.execute(USER_ROWS, (user_id, user_id)).fetchall()
                conn.execute(LIST_USER, (user_id, 21)).fetchall()
            return time.perf_counter() - start

        out.append(
            Route(
                f"list_first_{label}",
                f"list, first page of 50 ({label})",
                _app_loop(
                    app,
                    lambda app=app: environ("GET", "/v1/admin/referrals/payouts", token, "limit=50"),
                    "200",
                ),
                raw_first,
                "200",
            )
        )
        out.append(
            Route(
                f"list_deep_{label}",
                f"list, page {deep_rows // 50 + 1} of 50 ({label})",
                _app_loop(
                    app,
                    lambda app=app, cursor=cursor: environ(
                        "GET", "/v1/admin/referrals/payouts", token, f"limit=50&cursor={cursor}"
                    ),
                    "200",
                ),
                raw_deep,
                "200",
            )
        )
        out.append(
            Route(
                f"user_{label}",
                f"user view ({label})",
                _app_loop(
                    app, lambda app=app: environ("GET", f"/v1/admin/referrals/users/{user_id}", token), "200"
                ),
                raw_user,
                "200",
            )
        )

    out.append(
        Route(
            "healthz",
            "healthz (no database)",
            _app_loop(write_app, lambda: environ("GET", "/healthz", token), "200"),
            None,
            "200",
        )
    )
    return out


def webhook_route(database: str, fresh_ids: list, token: str, work: str) -> Route:
    """mark-failed on two copies of `database`, made here in `work`: one
    with an endpoint subscribed to every event type (each call also writes
    its outbox row), against one without. fresh_ids: payouts in `requested`
    in `database`; each copy's loop consumes them from the front."""
    apps = {}
    for name in ("none", "one"):
        path = os.path.join(work, f"webhook-{name}.sqlite3")
        source, copy = sqlite3.connect(database), sqlite3.connect(path)
        try:
            source.backup(copy)  # the log's pages included
        finally:
            source.close()
            copy.close()
        if name == "one":
            db = open_database(path)
            try:
                Webhooks(db).add(WEBHOOK_URL, EVENT_TYPES)
            finally:
                db.close()
        apps[name] = create_app(database=path, admin_token=token)

    def loop(name):
        ids = iter(fresh_ids)
        return _app_loop(apps[name], lambda: environ("POST", FAILED.format(next(ids)), token, body=BODY), "200")

    return Route("failed_200_webhook", "mark-failed, 200, one webhook endpoint", loop("one"), loop("none"),
                 "200", writes=True, against="the same, no endpoint")


def measure(route: Route, calls: int, blocks: int) -> dict:
    """Median over blocks of the microseconds per call, app and raw alternating.

    Reads alternate by block of `calls`. A write's cost is mostly its fsync,
    whose time varies a lot from one to the next: writes alternate call by
    call, and a block's figure is its median call. Not its mean: the two
    loops write to one log, and each checkpoint (tens to hundreds of ms,
    for the pages of both) falls on whichever connection crosses SQLite's
    threshold, so a block's mean says more about where the few checkpoints
    fell than about either side. The means are kept in the results too.
    """
    route.app_loop(min(calls, 50))  # warm: connection opened, statements cached
    if route.raw_loop:
        route.raw_loop(min(calls, 50))
    app_us, raw_us, means = [], [], {"app": [], "raw": []}
    for _ in range(blocks):
        if route.writes:
            app_calls, raw_calls = [], []
            for _ in range(calls):
                app_calls.append(route.app_loop(1) * 1e6)
                raw_calls.append(route.raw_loop(1) * 1e6)
            app_us.append(statistics.median(app_calls))
            raw_us.append(statistics.median(raw_calls))
            means["app"].append(statistics.mean(app_calls))
            means["raw"].append(statistics.mean(raw_calls))
            continue
        app_us.append(route.app_loop(calls) / calls * 1e6)
        if route.raw_loop:
            raw_us.append(route.raw_loop(calls) / calls * 1e6)
    app = statistics.median(app_us)
    raw = statistics.median(raw_us) if raw_us else None
    return {
        "name": route.name,
        "label": route.label,
        "calls": calls,
        "blocks": blocks,
        "app_us": app,
        "raw_us": raw,
        "ratio": app / raw if raw else None,
        "target": route.target,
        "against": route.against,
        "app_us_blocks": app_us,
        "raw_us_blocks": raw_us,
        **({"mean_ratio": statistics.median(means["app"]) / statistics.median(means["raw"]),
            "app_mean_us_blocks": means["app"], "raw_mean_us_blocks": means["raw"]}
           if route.writes else {}),
    }


def run(
    databases, fresh_ids, failed_id, user_id, token, *, read_calls=2000, write_calls=300, blocks=5, log=print,
    extra=(),
) -> list[dict]:
    """measure() for every route of routes() (arguments as there), then the extra routes."""
    results = []
    for route in [*routes(databases, fresh_ids, failed_id, user_id, token), *extra]:
        calls = write_calls if route.writes else read_calls
        result = measure(route, calls, blocks)
        ratio = f"{result['ratio']:.3f}x" if result["ratio"] else "-"
        raw = f"{result['raw_us']:.1f}" if result["raw_us"] else "-"
        log(f"  in-process {route.label}: app {result['app_us']:.1f} us, {route.against or 'raw'} {raw} us, {ratio}")
        results.append(result)
    return results


def _seed(path: str, payouts: int, users: int) -> list[str]:
    env = {**os.environ, "TRIPORT_DATABASE": path}
    subprocess.run(
        [sys.executable, "-m", "triport_payouts", "init-db"], env=env, check=True, stderr=subprocess.DEVNULL
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "triport_payouts",
            "seed-demo",
            "--payouts",
            str(payouts),
            "--users",
            str(users),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.split()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payouts", type=int, default=20000)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument(
        "--profile",
        choices=["failed", "webhook", "conflict", "list", "deep", "user"],
        help="run one route's app loop under cProfile instead, and print the top costs",
    )
    args = parser.parse_args(argv)
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="triport-inprocess-") as tmp:
        path = os.path.join(tmp, "bench.sqlite3")
        ids = _seed(path, args.payouts, max(1, args.payouts // 100))
        webhooks = webhook_route(path, ids[::-1], token, tmp)
        app = create_app(database=path, admin_token=token)
        failed_id = ids.pop(0)
        app(
            environ("POST", f"/v1/admin/referrals/payouts/{failed_id}/failed", token, body=BODY),
            _start_response,
        )
        chosen = routes(
            {"db": path}, ids, failed_id, "demo-user-0001", token, deep_rows=min(5000, len(ids) // 2)
        ) + [webhooks]
        if args.profile:
            import cProfile
            import pstats

            name = {
                "failed": "failed_200",
                "webhook": "failed_200_webhook",
                "conflict": "failed_409",
                "list": "list_first_db",
                "deep": "list_deep_db",
                "user": "user_db",
            }[args.profile]
            route = next(r for r in chosen if r.name == name)
            calls = 2000 if route.writes else 20000
            route.app_loop(50)
            profile = cProfile.Profile()
            profile.enable()
            route.app_loop(calls)
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
            return 0
        for route in chosen:
            result = measure(route, 300 if route.writes else 2000, args.blocks)
            raw = f"{result['raw_us']:9.1f}" if result["raw_us"] else "        -"
            ratio = f"{result['ratio']:6.2f}x" if result["ratio"] else "      -"
            against = "none" if route.against else "raw"
            print(f"{route.label:40} app {result['app_us']:9.1f} us  {against} {raw} us  {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
