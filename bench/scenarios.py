"""The scenario table: every route the load rounds measure, with its
expected status and its target, and the ceiling they are measured against."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from common import API, BODY, DEEP_ROWS, DEMO_USER, BenchmarkFailed
from databases import PAYEES
from servers import Server


@dataclass
class Scenario:
    key: str
    label: str
    server: str  # key into the servers dict
    path: str  # URL path and query (for fresh_ids: any path; the script builds its own)
    script: str = "static.lua"
    args: dict = field(default_factory=dict)
    expect: int = 200
    writes: bool = False  # the 200 path: fresh ids, drained, checked against the database
    target: float | None = None  # at least this ratio to the ceiling's req/s
    p99_target: float | None = None  # at most this ratio to the ceiling's p99
    webhook: bool = False  # one endpoint subscribed to every event type, registered for each run
    named_token: bool = False  # a named operator token in X-Admin-Token instead of the environment's
    # Measured side by side with this scenario: the two run next to each other
    # in every round, in alternating order, and are compared run to run.
    versus: str | None = None
    versus_target: float | None = None  # at least this ratio to the versus scenario's req/s
    # A hand-written reference's scenario: it must answer this app scenario's
    # request with the same status and bytes (checked before the rounds).
    same_as: str | None = None
    creates: bool = False  # the create path: new payouts, drained, checked against the database
    creation_event: bool = True  # the server writes each new payout's creation event
    postgres: bool = False  # on the PostgreSQL database (bench/pg.py), not the SQLite ones
    # The load split across these servers (keys into the servers dict), one wrk
    # process each with its share of the connections, all at once; server is the first.
    hosts: tuple[str, ...] = ()


CEILING = Scenario("ceiling", 'ceiling: bare WSGI {"ok": true}', "ceiling", "/")


def table(small_label: str, large_label: str, failed_id: str, cursors: dict) -> list[Scenario]:
    """The scenarios in the order a round runs them; failed_id is the 409
    path's payout, cursors the deep page's cursor for each database."""
    scenarios = [
        Scenario(
            "failed_200",
            "mark-failed, fresh payout (200)",
            large_label,
            "",
            "fresh_ids.lua",
            {"path": f"{API}/payouts/{{id}}/failed", "body": BODY},
            writes=True,
            target=0.58,
            p99_target=2.0,
        ),
        # The same, with one webhook endpoint registered: every transition also
        # writes its outbox row (issue 13: at most 5% slower).
        Scenario(
            "failed_200_webhook",
            "mark-failed, fresh payout, one webhook endpoint (200)",
            large_label,
            "",
            "fresh_ids.lua",
            {"path": f"{API}/payouts/{{id}}/failed", "body": BODY},
            writes=True,
            webhook=True,
            versus="failed_200",
            versus_target=0.95,
        ),
        # For scale: the same writes by a bare hand-written endpoint (bench/reference.py).
        *(
            Scenario(
                f"reference_{name}_200",
                f"reference endpoint, synchronous={level} (200)",
                f"reference-{name}",
                "",
                "fresh_ids.lua",
                {"path": f"{API}/payouts/{{id}}/failed", "body": BODY},
                writes=True,
            )
            for name, level in (("durable", "FULL"), ("normal", "NORMAL"))
        ),
        Scenario(
            "failed_409",
            "mark-failed, already failed (409)",
            large_label,
            f"{API}/payouts/{failed_id}/failed",
            args={"method": "POST", "body": BODY},
            expect=409,
            target=0.85,
        ),
        # The same with a named operator token (issue 14: within 5%): a hash
        # and a lookup in the worker's copy of the live tokens.
        Scenario(
            "failed_409_named",
            "mark-failed, already failed, named token (409)",
            large_label,
            f"{API}/payouts/{failed_id}/failed",
            args={"method": "POST", "body": BODY},
            expect=409,
            named_token=True,
            versus="failed_409",
            versus_target=0.95,
        ),
    ]
    for label in (small_label, large_label):
        scenarios.append(
            Scenario(
                f"list_first_{label}",
                f"list, first page of 50 ({label})",
                label,
                f"{API}/payouts?limit=50",
                target=0.6,
            )
        )
    for label in (small_label, large_label):
        scenarios.append(
            Scenario(
                f"list_deep_{label}",
                f"list, page {DEEP_ROWS // 50 + 1} of 50 ({label})",
                label,
                f"{API}/payouts?limit=50&cursor={cursors[label]}",
            )
        )
    for label in (small_label, large_label):
        scenarios.append(
            Scenario(f"user_{label}", f"user view, 100 payouts ({label})", label, f"{API}/users/{DEMO_USER}")
        )
    return with_references(scenarios, large_label, failed_id)


# The reference endpoints' server (bench/reference_reads.py) and the app
# without the creation event (bench/variants.py), both on the large database.
READS_REFERENCE = "reference-reads"
NO_CREATION_EVENT = "no-creation-event"
# The create path's payees (databases.PAYEES): so many that a payee's
# balance check reads a handful of rows, each credited far beyond a run.
PAYEE_COUNT = 10_000


def with_references(scenarios: list[Scenario], large_label: str, failed_id: str) -> list[Scenario]:
    """The table with the read paths against their hand-written references
    (issue 17) and the create path against itself without the creation
    event, side by side. Each app scenario is measured against the one just
    before it (rounds.round_order), and carries the target: at least 1.0
    times the reference's req/s; for the creation event, 0.95 times the
    variant's."""
    events = Scenario("events", f"payout events, 2 events ({large_label})", large_label,
                      f"{API}/payouts/{failed_id}/events")
    pairs = {
        "failed_409": Scenario(
            "reference_409", "reference endpoint, mark-failed, already failed (409)", READS_REFERENCE,
            f"{API}/payouts/{failed_id}/failed", args={"method": "POST", "body": BODY}, expect=409,
        ),
        "events": Scenario(
            "reference_events", f"reference endpoint, payout events, 2 events ({large_label})", READS_REFERENCE,
            f"{API}/payouts/{failed_id}/events",
        ),
        f"list_first_{large_label}": Scenario(
            "reference_list_first", f"reference endpoint, list, first page of 50 ({large_label})",
            READS_REFERENCE, f"{API}/payouts?limit=50",
        ),
    }
    create = {"script": "create.lua", "expect": 201, "creates": True,
              "args": {"users": PAYEE_COUNT, "prefix": PAYEES, "amount": "0.01", "currency": "USDT"}}
    keys = [s.key for s in scenarios]
    at = keys.index("failed_409_named") + 1 if "failed_409_named" in keys else len(keys)
    out = []
    for scenario in [*scenarios[:at], events, *scenarios[at:]]:
        reference = pairs.get(scenario.key)
        if reference is not None:
            reference.same_as = scenario.key
            scenario.versus, scenario.versus_target = reference.key, 1.0
            out.append(reference)
        out.append(scenario)
    return out + [
        Scenario("create_201_no_event", "create payout, no creation event: bench variant (201)",
                 NO_CREATION_EVENT, f"{API}/payouts", creation_event=False, **create),
        Scenario("create_201", f"create payout ({large_label}, 201)", large_label, f"{API}/payouts",
                 versus="create_201_no_event", versus_target=0.95, **create),
    ]


# The PostgreSQL scenarios' keys, known even when PostgreSQL is not there to run them.
PG_KEYS = ("pg_reference_200", "pg_failed_200", "pg_failed_200_two_hosts", "pg_reference_409", "pg_failed_409",
           "pg_list_first")


def pg_table(failed_id: str) -> list[Scenario]:
    """The PostgreSQL scenarios, on the local server: the app ("pg-app")
    against the raw loop ("pg-raw", bench/reference_pg.py) side by side on
    the 200 and 409 paths, two app hosts against one, and a list page.
    failed_id is the PostgreSQL 409 path's payout."""
    fresh = {"path": f"{API}/payouts/{{id}}/failed", "body": BODY}
    return [
        Scenario("pg_reference_200", "PostgreSQL: raw loop, fresh payout (200)", "pg-raw", "",
                 "fresh_ids.lua", fresh, writes=True, postgres=True),
        Scenario("pg_failed_200", "PostgreSQL: mark-failed, fresh payout (200)", "pg-app", "",
                 "fresh_ids.lua", fresh, writes=True, postgres=True,
                 versus="pg_reference_200", versus_target=0.8),
        # Two app hosts on one database, the connections split between them:
        # against the one host of the row before, side by side.
        Scenario("pg_failed_200_two_hosts", "PostgreSQL: mark-failed, two app hosts (200)", "pg-app", "",
                 "fresh_ids.lua", fresh, writes=True, postgres=True, hosts=("pg-app", "pg-app-b"),
                 versus="pg_failed_200"),
        Scenario("pg_reference_409", "PostgreSQL: raw loop, already failed (409)", "pg-raw",
                 f"{API}/payouts/{failed_id}/failed", args={"method": "POST", "body": BODY}, expect=409,
                 postgres=True),
        Scenario("pg_failed_409", "PostgreSQL: mark-failed, already failed (409)", "pg-app",
                 f"{API}/payouts/{failed_id}/failed", args={"method": "POST", "body": BODY}, expect=409,
                 postgres=True, versus="pg_reference_409"),
        Scenario("pg_list_first", "PostgreSQL: list, first page of 50", "pg-app", f"{API}/payouts?limit=50",
                 postgres=True),
    ]


def deep_cursor(server: Server, auth: dict) -> str:
    cursor, seen = None, 0
    while seen < DEEP_ROWS:
        path = f"{API}/payouts?limit=50" + (f"&cursor={cursor}" if cursor else "")
        status, body = server.get(path, auth)
        page = json.loads(body)
        if status != 200 or page["next_cursor"] is None:
            raise BenchmarkFailed(f"paging to row {DEEP_ROWS} failed at {seen}: {status}")
        seen += len(page["payouts"])
        cursor = page["next_cursor"]
    return cursor
