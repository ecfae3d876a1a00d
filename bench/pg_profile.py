"""Where a PostgreSQL request's time goes, for bench/notes.md: the app
against the raw loop (bench/reference_pg.py: the app's statements) and the
raw loop with the app's first shape of a transition (its SEVERAL_STATEMENTS:
BEGIN, UPDATE, INSERT, COMMIT), each under gunicorn with the
project's config, on a copy of the bench's seeded PostgreSQL database.

1. Round trips per request: one worker under ``strace -f -e sendto,recvfrom
   -yy``, the sends to the server's port counted over sequential requests
   (after a warm-up, so the connection, the schema check and psycopg's
   prepared statements are done), with the protocol messages of one request.
2. Under load (wrk, as the load rounds drive the 200 path, fresh payouts):
   the CPU of the gunicorn workers and of the PostgreSQL backends serving
   them, from /proc/PID/stat, per request; the server's WAL counters
   (pg_stat_wal: records, bytes, writes, syncs) and the database's commits;
   and what the backends were doing, sampled from pg_stat_activity every
   10 ms (running, waiting for the WAL to reach the disk, waiting for the
   app's next statement, ...).

pg_stat_wal counts the whole server: whatever else runs on it (a test suite)
is in its deltas. Run as root (strace attaches to a worker):

    .venv/bin/python bench/pg_profile.py [--payouts 50000] [--duration 5] [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from common import API, BODY, ROOT, VAR, BenchmarkFailed, log

sys.path.insert(0, str(ROOT))

import pg
from load import Wrk
from servers import Server

COPY = "triport_bench_profile"  # not the run's copy: a load run may be going on beside this
TICK = os.sysconf("SC_CLK_TCK")
# A backend sends its counters to the shared statistics at most once a
# second, and when idle after 10 s: the counts are read after this long.
SETTLE = 11
APPS = {"app": "triport_payouts.wsgi:application", "raw": "bench.reference_pg:application",
        "raw-several-statements": "bench.reference_pg:several_statements"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_cpu() -> dict[str, int]:
    """The machine's CPU time so far, in ticks, from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return dict(zip(names, (int(f) for f in fields)))


def backends(conn, dbname: str) -> list[int]:
    return [row[0] for row in conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,))]


def server_processes(conn) -> dict[str, list[int]]:
    """The server's own processes (WAL writer, checkpointer, ...), by type."""
    out: dict[str, list[int]] = {}
    for pid, kind in conn.execute(
            "SELECT pid, backend_type FROM pg_stat_activity WHERE backend_type <> 'client backend'"):
        out.setdefault(kind, []).append(pid)
    return out


def wal_and_commits(conn, dbname: str) -> dict:
    wal = conn.execute("SELECT wal_records, wal_bytes, wal_write, wal_sync FROM pg_stat_wal").fetchone()
    commits = conn.execute(
        "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = %s", (dbname,)).fetchone()
    return dict(zip(("wal_records", "wal_bytes", "wal_write", "wal_sync", "commits", "rollbacks"),
                    (*(int(x) for x in wal), *commits)))


# -- 1. round trips --------------------------------------------------------

def describe(payload: bytes) -> str:
    """One send to the server, as its protocol messages: Q (a simple query,
    with its text), or an extended-protocol batch: P (parse, with the start
    of its statement), B (bind, with the prepared statement's name if any),
    D, E, S."""
    parts, i = [], 0
    while i + 5 <= len(payload):
        kind = chr(payload[i])
        length = int.from_bytes(payload[i + 1 : i + 5], "big")
        body = payload[i + 5 : i + 1 + length]
        if kind == "Q":
            parts.append("Q " + body.rstrip(b"\0").decode(errors="replace")[:30])
        elif kind == "P":
            parts.append("P " + body.split(b"\0")[1].decode(errors="replace")[:30])
        elif kind == "B":
            name = body.split(b"\0")[1].decode(errors="replace")
            parts.append(f"B {name}" if name else "B")
        else:
            parts.append(kind)
        i += 1 + length
    return " ".join(parts)


def round_trips(name: str, server: Server, auth: dict, requests: list[tuple[str, str, str | None]],
                work: Path) -> dict:
    """The one worker of server traced over these (method, path, body)
    requests: sends to and receives from PostgreSQL per request."""
    worker = server.workers_pids()[0]
    trace = work / f"strace-{name}.txt"
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-yy", "-s", "1024", "-xx", "-e", "trace=sendto,recvfrom",
                               "-o", str(trace), "-p", str(worker)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached
    statuses = Counter()
    for method, path, body in requests:
        statuses[server.request(method, path, auth, body)[0]] += 1
    time.sleep(0.2)
    tracer.send_signal(signal.SIGINT)
    tracer.wait()
    port = pg.url_of("x").split(":")[-1].split("/")[0]
    sends, receives, first = 0, 0, []
    for line in trace.read_text().splitlines():
        if f":{port}]" not in line:
            continue
        if "sendto(" in line:
            sends += 1
            if len(first) < 12:
                payload = re.search(r'sendto\(\d+<.*?\]>, "((?:\\x[0-9a-f]{2})*)"', line)
                first.append(describe(bytes.fromhex(payload.group(1).replace("\\x", ""))) if payload
                             else line[:80])
        elif "recvfrom(" in line and "EAGAIN" not in line:
            receives += 1
    n = len(requests)
    return {"requests": n, "statuses": dict(statuses), "sends_per_request": sends / n,
            "receives_per_request": receives / n, "first_sends": first}


# -- 2. under load ---------------------------------------------------------

class Sampler(threading.Thread):
    """pg_stat_activity of the database's backends every 10 ms: counts of
    (state, wait event) over the samples."""

    def __init__(self, dbname: str):
        super().__init__(daemon=True)
        self.dbname, self.counts, self.samples = dbname, Counter(), 0
        self.stop = threading.Event()

    def run(self):
        import psycopg

        with psycopg.connect(pg.ADMIN_URL, autocommit=True) as conn:
            while not self.stop.is_set():
                for state, kind, event in conn.execute(
                        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity"
                        " WHERE datname = %s AND pid <> pg_backend_pid()", (self.dbname,)):
                    if state == "active":
                        label = f"active, waiting: {kind}/{event}" if event else "active, running (CPU)"
                    else:
                        label = f"{state}: {kind}/{event}" if event else str(state)
                    self.counts[label] += 1
                self.samples += 1
                time.sleep(0.01)


def under_load(name: str, server: Server, db, pool, wrk: Wrk, duration: float, work: Path, admin) -> dict:
    taken = pool.take(int(duration * 8000))
    ids = work / f"ids-{name}.txt"
    ids.write_text("\n".join(taken) + "\n")
    workers = server.workers_pids()
    pids = backends(admin, db.dbname)
    own = server_processes(admin)
    time.sleep(SETTLE)  # the backends' counters of the warm-up reach the shared statistics
    before_cpu = {pid: cpu_seconds(pid) for pid in [*workers, *pids, *(p for v in own.values() for p in v)]}
    before = wal_and_commits(admin, db.dbname)
    before_machine = machine_cpu()
    sampler = Sampler(db.dbname)
    sampler.start()
    load = wrk.run(name, server.base + "/", "fresh_ids.lua", duration,
                   {"path": f"{API}/payouts/{{id}}/failed", "body": BODY, "ids": ids,
                    "drain": f"{API}/payouts/x/failed"})
    sampler.stop.set()
    sampler.join()
    after_machine = machine_cpu()
    after_cpu = {pid: cpu_seconds(pid) for pid in before_cpu}
    time.sleep(SETTLE)
    after = wal_and_commits(admin, db.dbname)
    threads = sorted(load.raw["threads"], key=lambda t: t["index"])
    pool.consume(taken, [t["sent"] for t in threads], len(threads))
    n = load.statuses.get("200", 0)

    def used(group):
        return sum(after_cpu[pid] - before_cpu[pid] for pid in group)

    delta = {k: after[k] - before[k] for k in after}
    total = sum(sampler.counts.values()) or 1
    activity = {label: count / total for label, count in sampler.counts.most_common()}
    # Time a backend spends in the commit's WAL flush (its own fdatasync, or
    # waiting for another backend's to cover its commit), per write: the
    # sampled share of backend time, times the backends, over the run.
    flushing = sum(share for label, share in activity.items()
                   if label.endswith(("IO/WALSync", "LWLock/WALWrite", "IO/WALWrite")))
    elapsed = max(t["elapsed"] for t in threads)
    machine = {k: (after_machine[k] - before_machine[k]) / max(1, sum(after_machine.values())
                                                               - sum(before_machine.values()))
               for k in after_machine}
    return {
        "machine_cpu_shares": machine,
        "commit_wait_ms_per_request": 1000 * flushing * len(pids) * elapsed / max(1, n),
        "rps": load.rps, "p50_ms": load.p50_ms, "p99_ms": load.p99_ms, "ok": n, "statuses": load.statuses,
        "worker_cpu_us": 1e6 * used(workers) / n,
        "backend_cpu_us": 1e6 * used(pids) / n,
        "server_processes_cpu_us": {kind: 1e6 * used(group) / n for kind, group in own.items()},
        "commits_per_request": delta["commits"] / n,
        "wal_syncs_per_request": delta["wal_sync"] / n,
        "wal_writes_per_request": delta["wal_write"] / n,
        "wal_bytes_per_request": delta["wal_bytes"] / n,
        "wal_records_per_request": delta["wal_records"] / n,
        "backends": len(pids),
        "activity": activity,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payouts", type=int, default=50_000, help="the seeded database's size (cached)")
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--requests", type=int, default=200, help="traced requests per kind")
    parser.add_argument("--workers", type=int, help="gunicorn workers under load (default: the config's)")
    args = parser.parse_args(argv)
    reason = pg.unreachable()
    if reason:
        log(f"PostgreSQL: {reason}")
        return 1
    from triport_payouts import gunicorn_conf

    workers = args.workers or gunicorn_conf.workers
    work = VAR / "pg_profile"
    work.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(18)
    setup, info = pg.setup(args.payouts, max(1, args.payouts // 100), False, COPY)
    servers: list[Server] = []
    results: dict = {"postgres": info, "workers": workers, "round_trips": {}, "load": {}}
    try:
        import psycopg

        admin = psycopg.connect(pg.ADMIN_URL, autocommit=True)
        auth = {"X-Admin-Token": token}
        # 1. One worker each, sequential requests.
        for name, app in APPS.items():
            server = Server(f"profile-{name}-1", app, 1, setup.db.url, token, work)
            servers.append(server)
            fresh = setup.pool.take(args.requests + 20)
            setup.pool.consume(fresh, [len(fresh)], 1)
            failed = fresh[0]
            for payout in fresh[:20]:  # warm-up: the connection, the schema check, prepared statements
                server.request("POST", f"{API}/payouts/{payout}/failed", auth, BODY)
            kinds = {
                "200": [("POST", f"{API}/payouts/{p}/failed", BODY) for p in fresh[20:]],
                "409": [("POST", f"{API}/payouts/{failed}/failed", BODY)] * args.requests,
            }
            if name == "app":
                kinds["list"] = [("GET", f"{API}/payouts?limit=50", None)] * args.requests
            for kind, requests in kinds.items():
                figures = round_trips(f"{name}-{kind}", server, {**auth, "Content-Type": "application/json"},
                                      requests, work)
                results["round_trips"][f"{name} {kind}"] = figures
                log(f"{name} {kind}: {figures['sends_per_request']:.2f} sends and"
                    f" {figures['receives_per_request']:.2f} receives per request ({figures['statuses']});"
                    f" one request: {' | '.join(figures['first_sends'][: round(figures['sends_per_request'])])}")
            server.stop()
        # 2. Under load, the config's workers.
        wrk = Wrk(token, 8, 2)
        for name, app in APPS.items():
            server = Server(f"profile-{name}", app, workers, setup.db.url, token, work)
            servers.append(server)
            under_load(f"warm-{name}", server, setup.db, setup.pool, wrk, 2, work, admin)
            figures = under_load(name, server, setup.db, setup.pool, wrk, args.duration, work, admin)
            results["load"][name] = figures
            log(f"{name} under load: {figures['rps']:.0f} req/s, p50 {figures['p50_ms']:.1f} ms,"
                f" p99 {figures['p99_ms']:.1f} ms; per request: workers {figures['worker_cpu_us']:.0f} us CPU,"
                f" backends {figures['backend_cpu_us']:.0f} us CPU, server processes"
                f" {json.dumps({k: round(v) for k, v in figures['server_processes_cpu_us'].items()})} us;"
                f" {figures['commits_per_request']:.2f} commits, {figures['wal_syncs_per_request']:.2f} WAL syncs,"
                f" {figures['wal_writes_per_request']:.2f} WAL writes, {figures['wal_bytes_per_request']:.0f}"
                f" WAL bytes; commit flush ~{figures['commit_wait_ms_per_request']:.2f} ms per write")
            log("  machine CPU: " + ", ".join(f"{k} {v:.0%}" for k, v in figures["machine_cpu_shares"].items()
                                             if v >= 0.005))
            log("  backends' time (samples every 10 ms): " + ", ".join(
                f"{label} {share:.0%}" for label, share in figures["activity"].items() if share >= 0.01))
            server.stop()
        admin.close()
    except BenchmarkFailed as exc:
        log(f"failed: {exc}")
        return 1
    finally:
        for server in servers:
            server.stop()
        pg.drop_run_copy(COPY)
    (work / "pg_profile.json").write_text(json.dumps(results, indent=2))
    log(f"wrote {work / 'pg_profile.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
