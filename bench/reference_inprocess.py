"""In process: the app's read paths against their hand-written references
(bench/reference_reads.py), one WSGI call with a prebuilt environ against
the other, as bench/inprocess.py times the app against raw statements; the
two answering alike first, on valid requests and on each refusal; and where
the app's 409 call spends its time, per call, under cProfile.

    .venv/bin/python bench/reference_inprocess.py [--payouts 20000] [--profile conflict|events|list | --parts]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from inprocess import BODY, Route, _app_loop, _seed, _start_response, environ, measure

from bench.reference_reads import ReadsReference
from triport_payouts import create_app

API = "/v1/admin/referrals/payouts"


def call(app, env) -> tuple[str, list, bytes]:
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, list(headers)

    body = b"".join(app(env, start_response))
    return answer["status"], answer["headers"], body


def requests(failed_id: str, fresh_id: str, token: str, cursor: str) -> list[tuple[str, dict]]:
    """(what, environ) of requests on the three routes, valid or refused at each check."""
    failed, events = f"{API}/{failed_id}/failed", f"{API}/{failed_id}/events"
    unknown = "00000000-0000-4000-8000-000000000000"

    def with_headers(env, **headers):
        env.update({f"HTTP_{name.upper()}": value for name, value in headers.items()})
        return env

    return [
        ("409", environ("POST", failed, token, body=BODY)),
        ("409, upper-case id", environ("POST", f"{API}/{failed_id.upper()}/failed", token, body=BODY)),
        ("409, no body", environ("POST", failed, token)),
        ("409, an actor", with_headers(environ("POST", failed, token, body=BODY), x_admin_actor="alice")),
        ("409, an idempotency key", with_headers(environ("POST", failed, token, body=BODY),
                                                 idempotency_key=secrets.token_hex(8))),
        ("400, actor", with_headers(environ("POST", failed, token, body=BODY), x_admin_actor=" ")),
        ("400, key", with_headers(environ("POST", failed, token, body=BODY), idempotency_key="\x7f")),
        ("400, json", environ("POST", failed, token, body=b"{")),
        ("400, not an object", environ("POST", failed, token, body=b"[]")),
        ("400, NaN", environ("POST", failed, token, body=b'{"reason": NaN}')),
        ("400, reason", environ("POST", failed, token, body=b'{"reason": 5}')),
        ("400, id", environ("POST", f"{API}/nope/failed", token, body=BODY)),
        ("401", environ("POST", failed, token + "x", body=BODY)),
        ("404", environ("POST", f"{API}/{unknown}/failed", token, body=BODY)),
        ("405", environ("GET", failed, token)),
        ("events", environ("GET", events, token)),
        ("events, one", environ("GET", f"{API}/{fresh_id}/events", token)),
        ("events, 404", environ("GET", f"{API}/{unknown}/events", token)),
        ("events, 400", environ("GET", f"{API}/nope/events", token)),
        ("events, 401", environ("GET", events, "")),
        ("events, 405", environ("POST", events, token, body=BODY)),
        ("list", environ("GET", API, token, "limit=50")),
        ("list, default limit", environ("GET", API, token)),
        ("list, 200", environ("GET", API, token, "limit=200")),
        ("list, next page", environ("GET", API, token, f"limit=50&cursor={cursor}")),
        *((f"list, limit={bad}", environ("GET", API, token, f"limit={bad}")) for bad in ("0", "201", "x", "")),
        ("list, two limits", environ("GET", API, token, "limit=5&limit=5")),
        ("list, cursor altered", environ("GET", API, token, f"cursor={cursor[:-2]}AA")),
        ("list, cursor empty", environ("GET", API, token, "cursor=")),
        ("list, 401", environ("GET", API, "", "limit=50")),
    ]


def compare(app, reference, cases) -> int:
    """Prints each request whose answers differ; returns how many did."""
    differ = 0
    for what, env in cases:
        copy = {**env, "wsgi.input": type(env["wsgi.input"])(env["wsgi.input"].getvalue())}
        ours, theirs = call(reference, copy), call(app, env)
        if ours != theirs:
            differ += 1
            print(f"{what}: reference {ours!r}\n{'':{len(what)}}  app       {theirs!r}")
    print(f"{len(cases) - differ} of {len(cases)} requests answered alike")
    return differ


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payouts", type=int, default=20000)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--profile", choices=["conflict", "events", "list"],
                        help="cProfile of the app's loop of that route, per call, instead")
    parser.add_argument("--parts", action="store_true", help="the app's 409 call taken apart, step by step, instead")
    args = parser.parse_args(argv)
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="triport-reference-") as tmp:
        path = os.path.join(tmp, "bench.sqlite3")
        ids = _seed(path, args.payouts, max(1, args.payouts // 100))
        app, reference = create_app(database=path, admin_token=token), ReadsReference(path, token)
        failed_id = ids.pop(0)
        call(app, environ("POST", f"{API}/{failed_id}/failed", token, body=BODY))
        page = json.loads(call(app, environ("GET", API, token, "limit=50"))[2])
        if compare(app, reference, requests(failed_id, ids[-1], token, page["next_cursor"])):
            return 1
        paths = {
            "conflict": ("POST", f"{API}/{failed_id}/failed", "", BODY, "409"),
            "events": ("GET", f"{API}/{failed_id}/events", "", b"", "200"),
            "list": ("GET", API, "limit=50", b"", "200"),
        }
        if args.profile:
            return profile(app, token, *paths[args.profile])
        if args.parts:
            parts(app, reference, token, failed_id)
            return 0
        for name, (method, route, query, body, expect) in paths.items():
            def loop(callable_, method=method, route=route, query=query, body=body, expect=expect):
                return _app_loop(callable_, lambda: environ(method, route, token, query, body), expect)

            result = measure(Route(name, name, loop(app), loop(reference), expect), 2000, args.blocks)
            print(f"{name:10} app {result['app_us']:7.1f} us  reference {result['raw_us']:7.1f} us"
                  f"  app / reference {result['ratio']:.2f}  (blocks: app"
                  f" {', '.join(f'{x:.1f}' for x in result['app_us_blocks'])}; reference"
                  f" {', '.join(f'{x:.1f}' for x in result['raw_us_blocks'])})")
        result = measure(create_route(path, token), 300, args.blocks)
        print(f"create     app {result['app_us']:7.1f} us  without the creation event {result['raw_us']:7.1f} us"
              f"  ratio {result['ratio']:.3f} (of the block means {result['mean_ratio']:.3f}; blocks' medians: app"
              f" {', '.join(f'{x:.0f}' for x in result['app_us_blocks'])}; without"
              f" {', '.join(f'{x:.0f}' for x in result['raw_us_blocks'])})")
    return 0


def create_route(path: str, token: str, payees: int = 1000) -> Route:
    """The create path (a new payout for each payee in turn) by the app
    against the same without the creation event (bench/variants.py), on one
    database, calls alternating one by one."""
    from databases import PAYEES, credit_payees

    from bench.variants import app_without_creation_event
    from triport_payouts.config import Config

    credit_payees(path, payees)
    bodies = [json.dumps({"user_id": f"{PAYEES}{i:05d}", "amount": "0.01", "currency": "USDT",
                          "destination": "bench-wallet"}).encode() for i in range(1, payees + 1)]

    def loop(app):
        turn = iter(range(10**9))
        return _app_loop(app, lambda: environ("POST", API, token, body=bodies[next(turn) % payees]), "201")

    return Route("create_201", "create payout, 201", loop(create_app(database=path, admin_token=token)),
                 loop(app_without_creation_event(Config(database=path, admin_token=token))), "201",
                 writes=True, against="the same without the creation event")


def parts(app, reference, token: str, failed_id: str, calls: int = 20000, repeats: int = 7) -> None:
    """The app's 409 call taken apart: each step of it timed alone on the
    same request, best of `repeats` loops, in microseconds per call (the
    environ of each call made beforehand, as in the loops above)."""
    import time

    from triport_payouts import domain, handlers, http, inputs

    path = f"{API}/{failed_id}/failed"
    route, params = app.router.match(path, "POST")
    request = inputs.action(environ("POST", path, token, body=BODY), params)["request"]
    conn = app.repository.db.connection()

    def refused():
        try:
            handlers.mark_failed(app.services, request)
        except domain.PayoutNotActionable as exc:
            return exc

    def answer():
        try:
            raise domain.PayoutNotActionable()
        except domain.DomainError as exc:
            http.Response.refusal(exc).start(_start_response)

    def best(step, make=None) -> float:
        times = []
        for _ in range(repeats):
            args = [make() for _ in range(calls)] if make else [None] * calls
            start = time.perf_counter()
            for arg in args:
                step(arg)
            times.append(time.perf_counter() - start)
        return min(times) / calls * 1e6

    def fresh():
        return environ("POST", path, token, body=BODY)

    steps = [
        ("the app's whole call", lambda env: app(env, _start_response), fresh),
        ("the reference's whole call", lambda env: reference(env, _start_response), fresh),
        ("route: Router.match", lambda _: app.router.match(path, "POST"), None),
        ("token: sent_token + Authenticator.check",
         lambda env: app.auth.check(http.sent_token(env), route.right), fresh),
        ("id, actor, key, body: inputs.action", lambda env: inputs.action(env, params), fresh),
        ("  of which the body: read_body + parse_object",
         lambda env: http.parse_object(http.read_body(env)), fresh),
        ("reason: handlers.action_fields", lambda _: handlers.action_fields("failed", request.body), None),
        ("handler to refusal: mark_failed .. transition, raised", lambda _: refused(), None),
        ("  of which the status read: Repository._status", lambda _: app.repository._status(failed_id), None),
        ("  of which the statement: execute + fetchone",
         lambda _: conn.execute("SELECT status FROM payouts WHERE id = ?", (failed_id,)).fetchone(), None),
        ("the answer: raise, catch, Response.refusal, start", lambda _: answer(), None),
    ]
    for label, step, make in steps:
        print(f"{best(step, make):7.2f} us  {label}")


def profile(app, token: str, method: str, route: str, query: str, body: bytes, expect: str,
            calls: int = 20000) -> int:
    """The app's loop under cProfile: each function's own time and its time
    with what it calls, in microseconds per request (cProfile's own cost
    included: the sum exceeds the unprofiled call)."""
    import cProfile
    import pstats

    loop = _app_loop(app, lambda: environ(method, route, token, query, body), expect)
    loop(200)
    unprofiled = min(loop(calls) for _ in range(3)) / calls * 1e6
    profiler = cProfile.Profile()
    profiler.enable()
    loop(calls)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    rows = sorted(stats.items(), key=lambda item: -item[1][2])
    print(f"{method} {route}{'?' + query if query else ''}: {unprofiled:.1f} us a call unprofiled;"
          f" under cProfile, per call ({calls} calls):")
    print(f"{'own us':>8} {'with callees':>12} {'calls':>6}  function")
    for (filename, line, name), (_, ncalls, tottime, cumtime, _) in rows[:25]:
        where = f"{os.path.relpath(filename) if filename.startswith('/') else filename}:{line}({name})"
        print(f"{tottime / calls * 1e6:8.2f} {cumtime / calls * 1e6:12.2f} {ncalls / calls:6.1f}  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
