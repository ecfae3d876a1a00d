"""The load phase: the app on each database and the ceiling under gunicorn,
a warm-up, then rounds of wrk runs, each scenario between two ceiling runs;
the medians over rounds of each round's ratios, and of the run-to-run
ratios of the scenarios measured side by side."""

from __future__ import annotations

import contextlib
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from checks import WritePool, run_create, run_read, run_write, same_answers
from common import API, BODY, DEEP_ROWS, BenchmarkFailed, log
from databases import credit_payees, named_token, warm, webhook_endpoint
from load import Load, Wrk, shell
from machine import loadavg
from scenarios import (
    CEILING, NO_CREATION_EVENT, PAYEE_COUNT, PG_KEYS, READS_REFERENCE, Scenario, deep_cursor, pg_table, table,
)
from servers import Server


def run_load(
    args, token: str, work: Path, dbs: dict, pool: WritePool, results: dict, servers: dict, pg=None
) -> tuple[str, str, str]:
    """The whole load phase, into results["load"] and results["commands"].
    dbs maps the small and the large database's labels to their paths, in
    that order; servers is the caller's, to stop them if a check fails.
    pg: the PostgreSQL database and its pool of fresh payouts (run.py's
    PgSetup), or None to leave its scenarios out.
    Returns what the memory run reuses: the 409 path's payout, the large
    database's deep cursor and the path a wrk thread drains on."""
    (small_label, small_db), (large_label, large_db) = dbs.items()
    for name, app, db in (
        ("ceiling", "bench.ceiling:application", small_db),
        (small_label, "triport_payouts.wsgi:application", small_db),
        (large_label, "triport_payouts.wsgi:application", large_db),
        ("reference-durable", "bench.reference:durable", large_db),
        ("reference-normal", "bench.reference:normal", large_db),
    ):
        servers[name] = Server(name, app, args.workers, db, token, work)
    if pg is not None:
        start_pg_servers(args, token, work, pg, servers)
    results["commands"] = {"gunicorn": {name: shell(s.command, token) for name, s in servers.items()}}
    auth = {"X-Admin-Token": token}

    # The 409 path hammers one of the write database's fresh payouts, failed first.
    failed_id = fail_one(servers[large_label], pool, auth)
    cursors = {label: deep_cursor(servers[label], auth) for label in (small_label, large_label)}

    scenarios = table(small_label, large_label, failed_id, cursors)
    pg_drain = None
    if pg is not None:
        pg_failed_id = fail_one(servers["pg-app"], pg.pool, auth)
        pg_drain = f"{API}/payouts/{pg_failed_id}/failed"
        scenarios += pg_table(pg_failed_id)
    scenarios = select(scenarios, getattr(args, "only", None))
    dbs = {**dbs, "ceiling": None}
    start_references(args, token, work, large_db, scenarios, servers, results)
    dbs.update({READS_REFERENCE: large_db, NO_CREATION_EVENT: large_db})

    wrk = Wrk(token, args.connections, args.threads)
    named = named_token(large_db) if any(s.named_token for s in scenarios) else None
    budget = int(args.duration * 8000)
    drain = f"{API}/payouts/{failed_id}/failed"

    def one(scenario: Scenario, duration: float) -> Load:
        server = servers[scenario.server]
        if scenario.postgres:
            if scenario.writes:
                hosts = [servers[name] for name in scenario.hosts]
                return run_write(wrk, scenario, server, pg.db, pg.pool, duration, work, budget, pg_drain, hosts)
            return run_read(wrk, scenario, server, pg.db, duration)
        if scenario.writes:
            warm(large_db)
            with webhook_endpoint(large_db) if scenario.webhook else contextlib.nullcontext():
                return run_write(wrk, scenario, server, large_db, pool, duration, work, budget, drain)
        if scenario.creates:
            warm(large_db)
            return run_create(wrk, scenario, server, large_db, duration, drain)
        return run_read(wrk, scenario, server, dbs[scenario.server], duration,
                        token=named if scenario.named_token else None)

    rounds = run_rounds(one, scenarios, args.rounds, args.duration)
    results["load"] = summarize(rounds, CEILING, scenarios, small_label, large_label)
    results["commands"]["wrk"] = wrk.commands
    results["deep_rows"] = DEEP_ROWS
    for server in servers.values():
        server.stop()
    servers.clear()
    return failed_id, cursors[large_label], drain


def start_references(args, token: str, work: Path, large_db: Path, scenarios: list[Scenario], servers: dict,
                     results: dict) -> None:
    """The servers of the hand-written references and of the variant without
    the creation event, if a scenario uses them; each reference answers its
    app scenario's request as the app does, or the run fails here. The
    create path's payees credited, if a scenario creates."""
    for name, app in ((READS_REFERENCE, "bench.reference_reads:application"),
                      (NO_CREATION_EVENT, "bench.variants:without_creation_event")):
        if any(s.server == name for s in scenarios):
            servers[name] = Server(name, app, args.workers, large_db, token, work)
            results["commands"]["gunicorn"][name] = shell(servers[name].command, token)
    by_key = {s.key: s for s in scenarios}
    for scenario in scenarios:
        if scenario.same_as in by_key:
            same_answers(servers[scenario.server], servers[by_key[scenario.same_as].server], scenario, token)
    if any(s.creates for s in scenarios):
        credit_payees(large_db, PAYEE_COUNT)


def start_pg_servers(args, token: str, work: Path, pg, servers: dict) -> None:
    """The app, a second app host on the same database, and the raw loop,
    on PostgreSQL. Each host has the config's workers, as `serve` on two
    machines would: on this machine's two cores the second host adds
    processes and connections to the database, not CPU."""
    for name, app in (
        ("pg-app", "triport_payouts.wsgi:application"),
        ("pg-app-b", "triport_payouts.wsgi:application"),
        ("pg-raw", "bench.reference_pg:application"),
    ):
        servers[name] = Server(name, app, args.workers, pg.db.url, token, work)


def fail_one(server: Server, pool: WritePool, auth: dict) -> str:
    """A fresh payout of the pool, failed through the app: a 409 path's payout."""
    payout_id = pool.take(1)[0]
    pool.consume([payout_id], [1], 1)
    status, body = server.request("POST", f"{API}/payouts/{payout_id}/failed", auth, BODY)
    if status != 200:
        raise BenchmarkFailed(f"could not fail the 409 path's payout ({server.name}): {status} {body!r}")
    return payout_id


def select(scenarios: list[Scenario], only: list[str] | None) -> list[Scenario]:
    """The scenarios --only names (a PostgreSQL one is known even where it cannot run)."""
    if not only:
        return scenarios
    unknown = set(only) - {s.key for s in scenarios} - set(PG_KEYS)
    if unknown:
        raise BenchmarkFailed(f"no such scenario: {', '.join(sorted(unknown))}")
    chosen = [s for s in scenarios if s.key in only]
    if not chosen:
        raise BenchmarkFailed("none of the scenarios asked for can run here (PostgreSQL is not reachable)")
    return chosen


def run_rounds(one, scenarios: list[Scenario], count: int, duration: float) -> list[Round]:
    """A warm-up run of every scenario, then count rounds; one(scenario,
    seconds) is a wrk run with its checks."""
    log("warming up (2 s each, not counted)...")
    for scenario in [CEILING, *scenarios]:
        one(scenario, 2)

    # A round: the ceiling, a scenario, the ceiling, the next scenario, ...,
    # the ceiling. A scenario's ratios are to the mean of the two ceiling
    # runs around it: the machine's drift (and its neighbours) between
    # them is seconds, not the round's minutes.
    rounds = []
    for r in range(count):
        load_average = loadavg()
        log(f"round {r + 1}/{count} (load average {' '.join(load_average)})")
        loads, ceilings = {}, [one(CEILING, duration)]
        log_load(CEILING, ceilings[-1])
        order = round_order(scenarios, r)
        for scenario in order:
            loads[scenario.key] = one(scenario, duration)
            log_load(scenario, loads[scenario.key])
            ceilings.append(one(CEILING, duration))
            log_load(CEILING, ceilings[-1])
        rounds.append(Round(loads, ceilings, [s.key for s in order], load_average))
    return rounds


def round_order(scenarios: list[Scenario], index: int) -> list[Scenario]:
    """A round's order: scenarios measured side by side, each with the one
    before it in the table, run in reverse every other round, so none of
    them always runs first (or after the others' writes, say). A chain of
    three (a, b versus a, c versus b) runs a b c, then c b a: every pair
    stays next to each other both ways round."""
    if not index % 2:
        return list(scenarios)
    order, start = [], 0
    while start < len(scenarios):
        end = start + 1
        while end < len(scenarios) and scenarios[end].versus is not None \
                and scenarios[end].versus == scenarios[end - 1].key:
            end += 1
        order.extend(reversed(scenarios[start:end]))
        start = end
    return order


def log_load(scenario: Scenario, load: Load) -> None:
    log(
        f"  {scenario.label:42} {load.rps:8.0f} req/s  p50 {load.p50_ms:6.1f} ms"
        f"  p99 {load.p99_ms:7.1f} ms  {load.statuses}"
    )


@dataclass
class Round:
    loads: dict  # scenario key -> Load
    ceilings: list  # the ceiling's runs: before the first scenario, and after each
    order: list  # scenario keys in the order run
    loadavg: list  # /proc/loadavg when the round started

    def ceiling_for(self, key: str) -> tuple[float, float]:
        """(req/s, p99 ms) of the ceiling around a scenario: the mean of the runs before and after."""
        i = self.order.index(key)
        before, after = self.ceilings[i], self.ceilings[i + 1]
        return (before.rps + after.rps) / 2, (before.p99_ms + after.p99_ms) / 2

    def ratio(self, key: str) -> float:
        return self.loads[key].rps / self.ceiling_for(key)[0]

    def p99_ratio(self, key: str) -> float:
        return self.loads[key].p99_ms / self.ceiling_for(key)[1]

    def versus(self, key: str, other: str) -> tuple[float, float]:
        """(req/s, p99) of one scenario over another's, run to run in this round."""
        this, that = self.loads[key], self.loads[other]
        return this.rps / that.rps, this.p99_ms / that.p99_ms


def summarize(rounds: list[Round], ceiling, scenarios, small_label, large_label) -> dict:
    """Medians over rounds of each round's ratios."""
    out = {
        "ceiling": _figures([c for r in rounds for c in r.ceilings]),
        "rounds": len(rounds),
        "scenarios": [],
        "loadavg_rounds": [r.loadavg for r in rounds],
    }
    for scenario in scenarios:
        key = scenario.key
        row = {
            "key": key,
            "label": scenario.label,
            "target": scenario.target,
            "p99_target": scenario.p99_target,
            "expect": scenario.expect,
            **_figures([r.loads[key] for r in rounds]),
            "ratio": statistics.median(r.ratio(key) for r in rounds),
            "p99_ratio": statistics.median(r.p99_ratio(key) for r in rounds),
            "ratios": [r.ratio(key) for r in rounds],
            "ceiling_rps_rounds": [r.ceiling_for(key)[0] for r in rounds],
        }
        if scenario.versus in {s.key for s in scenarios}:
            row["versus"] = _versus(rounds, key, scenario.versus, scenario.versus_target)
        out["scenarios"].append(row)
    deep, first = f"list_deep_{large_label}", f"list_first_{small_label}"
    if not {deep, first} <= {s.key for s in scenarios}:
        return out  # a run of some scenarios only (--only)
    out["deep_vs_first"] = {
        "deep": deep,
        "first": first,
        "target": 1.2,
        # cost per request = 1 / throughput; each side normalised by its own
        # ceiling first, as the two ran a minute apart
        "cost_ratio": statistics.median(r.ratio(first) / r.ratio(deep) for r in rounds),
        "p50_ratio": statistics.median(r.loads[deep].p50_ms / r.loads[first].p50_ms for r in rounds),
    }
    return out


def _versus(rounds: list[Round], key: str, other: str, target: float | None) -> dict:
    """Side by side: the run-to-run ratios of each round, and their median
    over pairs of rounds. The two runs are a ceiling run apart, so no
    ceiling is needed to cancel the machine's drift; but on a busy machine
    the run that comes first of the two can be faster, whichever it is.
    Each pair of rounds (one each way round) cancels that: its figure is the
    geometric mean of its two ratios. With a single round, its ratio."""
    pairs = [r.versus(key, other) for r in rounds]
    both_ways = [
        tuple(math.sqrt(a * b) for a, b in zip(pairs[i], pairs[i + 1])) for i in range(0, len(pairs) - 1, 2)
    ] or pairs
    return {
        "key": other,
        "target": target,
        "ratio": statistics.median(rps for rps, _ in both_ways),
        "p99_ratio": statistics.median(p99 for _, p99 in both_ways),
        "ratios": [rps for rps, _ in pairs],
        "p99_ratios": [p99 for _, p99 in pairs],
        "pair_ratios": [rps for rps, _ in both_ways],
        "ceiling_ratio": statistics.median(r.ratio(key) / r.ratio(other) for r in rounds),
        "first": [key if r.order.index(key) < r.order.index(other) else other for r in rounds],
    }


def _figures(loads) -> dict:
    return {
        "rps": statistics.median(run.rps for run in loads),
        "p50_ms": statistics.median(run.p50_ms for run in loads),
        "p99_ms": statistics.median(run.p99_ms for run in loads),
        "rps_rounds": [run.rps for run in loads],
        "p99_rounds": [run.p99_ms for run in loads],
        "requests": sum(run.answered for run in loads),
        "statuses": _sum_statuses(loads),
    }


def _sum_statuses(loads) -> dict:
    total: dict[str, int] = {}
    for load in loads:
        for status, count in load.statuses.items():
            total[status] = total.get(status, 0) + count
    return total
