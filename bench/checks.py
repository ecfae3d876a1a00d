"""One load run with its database check: the 200 path loses or invents no
write (and queues one outbox row per event when a webhook endpoint is
registered, none otherwise), a read-only scenario changes nothing and
answers only what it should."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import BenchmarkFailed
from databases import db_counts, statuses_of
from load import Load, Wrk
from scenarios import Scenario
from servers import Server


class WritePool:
    """Payout ids never touched, in the write database; a run takes a slice
    and gives back what its threads did not send."""

    def __init__(self, ids: list[str]):
        self.ids = ids

    def take(self, n: int) -> list[str]:
        return self.ids[:n]

    def consume(
        self, taken: list[str], sent_per_thread: list[int], threads: int
    ) -> tuple[list[str], list[str]]:
        used, unused = [], []
        for index in range(threads):
            stripe = taken[index::threads]
            used.extend(stripe[: sent_per_thread[index]])
            unused.extend(stripe[sent_per_thread[index] :])
        self.ids = unused + self.ids[len(taken) :]
        return used, unused


def run_write(
    wrk: Wrk,
    scenario: Scenario,
    server: Server,
    db,
    pool: WritePool,
    duration: float,
    work: Path,
    budget: int,
    drain: str,
    hosts: list[Server] | None = None,
) -> Load:
    """One load run on the 200 path, then the database check. db: a SQLite
    path or a PostgreSQL database (bench/pg.py). hosts: servers of one
    database to split the load across (see split_run), instead of server."""
    taken = pool.take(budget)
    before = db_counts(db)
    if hosts:
        load, sent = split_run(wrk, scenario, hosts, taken, duration, work, drain)
    else:
        ids_file = work / "write-ids.txt"
        ids_file.write_text("\n".join(taken) + "\n")
        load = wrk.run(
            scenario.key,
            server.base + "/",
            scenario.script,
            duration,
            {**scenario.args, "ids": ids_file, "drain": drain},
        )
        sent = [t["sent"] for t in sorted(load.raw["threads"], key=lambda t: t["index"])]
    if any(t["exhausted"] for t in load.raw["threads"]):
        raise BenchmarkFailed(f"the 200 path used up its {budget} ids before the end: raise the budget")
    used, unused = pool.consume(taken, sent, len(sent))
    after = db_counts(db)
    ok = load.statuses.get("200", 0)
    moved, events = after["failed"] - before["failed"], after["events"] - before["events"]
    outbox = after["outbox"] - before["outbox"]
    problems = []
    if set(load.statuses) - {"200"}:
        problems.append(f"statuses other than 200: {load.statuses}")
    if load.socket_errors:
        problems.append(f"{load.socket_errors} socket errors (a write may be lost in flight)")
    if not (ok == moved == events == len(used)):
        problems.append(
            f"wrk counted {ok} 200s for {len(used)} requests sent, the database moved"
            f" {moved} payouts to failed and recorded {events} events"
        )
    if outbox != (events if scenario.webhook else 0):
        problems.append(
            f"{outbox} outbox rows for {events} events"
            f" ({'one' if scenario.webhook else 'no'} webhook endpoint registered)"
        )
    used_statuses = statuses_of(db, used)
    if used_statuses != ({"failed": len(used)} if used else {}):
        problems.append(f"the payouts sent are {used_statuses}, expected all {len(used)} failed")
    unused_statuses = statuses_of(db, unused)
    if unused_statuses != ({"requested": len(unused)} if unused else {}):
        problems.append(f"the payouts not sent are {unused_statuses}, expected all requested")
    if problems:
        raise BenchmarkFailed("the 200 path's database check failed: " + "; ".join(problems))
    return load


def split_run(
    wrk: Wrk, scenario: Scenario, hosts: list[Server], taken: list[str], duration: float, work: Path, drain: str
) -> tuple[Load, list[int]]:
    """The 200 path across several servers at once: one wrk process per
    server with its share of the connections (and wrk's threads each), all
    started together. Server h gets every k-th id from h, and its thread j
    every t-th of those: the ids of thread h + k * j of k * t threads, as
    WritePool.consume counts them. The load: req/s summed, each latency
    percentile the worse of the servers'. Returns it and the ids sent per
    thread in that numbering."""
    k = len(hosts)
    if wrk.connections // k < wrk.threads:
        raise BenchmarkFailed(f"{wrk.connections} connections cannot be split across {k} servers"
                              f" of {wrk.threads} wrk threads each")
    runs = []
    for h, host in enumerate(hosts):
        ids_file = work / f"write-ids-{h}.txt"
        ids_file.write_text("\n".join(taken[h::k]) + "\n")
        runs.append((Wrk(wrk.token, wrk.connections // k, wrk.threads), host, ids_file))
    with ThreadPoolExecutor(k) as executor:
        futures = [
            executor.submit(part.run, scenario.key, host.base + "/", scenario.script, duration,
                            {**scenario.args, "ids": ids_file, "drain": drain})
            for part, host, ids_file in runs
        ]
        loads = [future.result() for future in futures]
    for part, host, _ in runs:
        wrk.commands[f"{scenario.key} ({host.name})"] = part.commands[scenario.key]
    threads, sent = [], [0] * (k * wrk.threads)
    for h, load in enumerate(loads):
        for thread in load.raw["threads"]:
            threads.append({**thread, "index": h + k * thread["index"]})
            sent[h + k * thread["index"]] = thread["sent"]
    statuses: dict[str, int] = {}
    for load in loads:
        for status, count in load.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    combined = Load(
        rps=sum(load.rps for load in loads),
        p50_ms=max(load.p50_ms for load in loads),
        p90_ms=max(load.p90_ms for load in loads),
        p99_ms=max(load.p99_ms for load in loads),
        max_ms=max(load.max_ms for load in loads),
        answered=sum(load.answered for load in loads),
        statuses=statuses,
        socket_errors=sum(load.socket_errors for load in loads),
        raw={"threads": threads, "hosts": [load.raw for load in loads]},
    )
    return combined, sent


def run_read(wrk: Wrk, scenario: Scenario, server: Server, db, duration: float,
             token: str | None = None) -> Load:
    before = db_counts(db) if db else None
    load = wrk.run(scenario.key, server.base + scenario.path, scenario.script, duration, scenario.args, token=token)
    unexpected = set(load.statuses) - {str(scenario.expect)}
    if unexpected or not load.answered:
        raise BenchmarkFailed(f"{scenario.label}: expected only {scenario.expect}, got {load.statuses}")
    after = db_counts(db) if db else None
    if after != before:
        raise BenchmarkFailed(
            f"{scenario.label}: the database changed under a read-only scenario: {before} -> {after}"
        )
    return load


def run_create(wrk: Wrk, scenario: Scenario, server: Server, db: Path, duration: float, drain: str) -> Load:
    """One load run on the create path, then the database check: as many
    payouts created as 201s counted and requests sent, each with its
    creation event, or with none on the variant that leaves it out."""
    before = db_counts(db)
    load = wrk.run(scenario.key, server.base + scenario.path, scenario.script, duration,
                   {**scenario.args, "drain": drain})
    after = db_counts(db)
    sent = sum(t["sent"] for t in load.raw["threads"])
    created, events = after["payouts"] - before["payouts"], after["events"] - before["events"]
    problems = []
    if set(load.statuses) - {"201"}:
        problems.append(f"statuses other than 201: {load.statuses}")
    if load.socket_errors:
        problems.append(f"{load.socket_errors} socket errors (a write may be lost in flight)")
    if not (load.statuses.get("201", 0) == created == sent):
        problems.append(f"wrk counted {load.statuses.get('201', 0)} 201s for {sent} requests sent,"
                        f" the database has {created} new payouts")
    expected = created if scenario.creation_event else 0
    if events != expected or after["outbox"] != before["outbox"]:
        problems.append(f"{events} events for {created} new payouts (expected {expected}),"
                        f" {after['outbox'] - before['outbox']} outbox rows (expected none)")
    if problems:
        raise BenchmarkFailed(f"{scenario.label}: the database check failed: " + "; ".join(problems))
    return load


def same_answers(reference: Server, app: Server, scenario: Scenario, token: str) -> None:
    """The reference answers a scenario's request as the app does: the same
    status, the same bytes, and the same headers of the app's own (the
    server's Date and the like aside): else the two are not measured alike."""
    method, body = scenario.args.get("method", "GET"), scenario.args.get("body")
    headers = {"X-Admin-Token": token, **({"Content-Type": "application/json"} if body else {})}
    answers = [server.exchange(method, scenario.path, headers, body) for server in (reference, app)]
    ours = ("content-type", "cache-control", "content-length", "allow")
    (status, headers, body), (app_status, app_headers, app_body) = (
        (status, {k.lower(): v for k, v in headers if k.lower() in ours}, body) for status, headers, body in answers
    )
    if (status, headers, body) != (app_status, app_headers, app_body):
        raise BenchmarkFailed(
            f"{scenario.label}: the reference answers {status} {headers} {body[:300]!r}, the app"
            f" {app_status} {app_headers} {app_body[:300]!r}: not the same request's answer"
        )
    if status != scenario.expect:
        raise BenchmarkFailed(f"{scenario.label}: both answer {status}, expected {scenario.expect}")
