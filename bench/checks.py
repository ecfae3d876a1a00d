"""One load run with its database check: the 200 path loses or invents no
write (and queues one outbox row per event when a webhook endpoint is
registered, none otherwise), a read-only scenario changes nothing and
answers only what it should."""

from __future__ import annotations

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
    db: Path,
    pool: WritePool,
    duration: float,
    work: Path,
    budget: int,
    drain: str,
) -> Load:
    """One load run on the 200 path, then the database check."""
    taken = pool.take(budget)
    ids_file = work / "write-ids.txt"
    ids_file.write_text("\n".join(taken) + "\n")
    before = db_counts(db)
    load = wrk.run(
        scenario.key,
        server.base + "/",
        scenario.script,
        duration,
        {**scenario.args, "ids": ids_file, "drain": drain},
    )
    threads = sorted(load.raw["threads"], key=lambda t: t["index"])
    if any(t["exhausted"] for t in threads):
        raise BenchmarkFailed(f"the 200 path used up its {budget} ids before the end: raise the budget")
    used, unused = pool.consume(taken, [t["sent"] for t in threads], len(threads))
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


def run_read(wrk: Wrk, scenario: Scenario, server: Server, db: Path | None, duration: float,
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
