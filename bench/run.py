"""The benchmark suite: ``make bench`` (``.venv/bin/python bench/run.py``).

Every route, under gunicorn with the project's settings and driven by wrk,
as a ratio to a bare WSGI callable (bench/ceiling.py) served the same way
and measured in the same round; in-process figures against the raw SQLite
statements; seed-demo throughput; a worker's memory. Writes
docs/benchmarks.md and docs/benchmarks.png (a --quick smoke run writes
under var/bench/quick/ instead).

A load run on the 200 path that loses or invents a write (payouts moved,
events and counted 200s disagree) fails the benchmark: exit status 1.
A target missed does not: it is reported, as the issue asks.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import inprocess

from triport_payouts import gunicorn_conf

VAR = ROOT / "var" / "bench"
CACHE = VAR / "cache"
WRK_DIR = BENCH / "wrk"
API = "/v1/admin/referrals"
BODY = '{"reason":"bench"}'
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
DEMO_USER = "demo-user-0001"
DEEP_ROWS = 5000  # how deep the "deep page" is: the page after this many rows


class BenchmarkFailed(Exception):
    """A check failed: the figures cannot be trusted."""


def log(message: str = "") -> None:
    print(message, flush=True)


# -- databases -----------------------------------------------------------------


def cli(database: Path, *args: str, stdout=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRIPORT_DATABASE": str(database)}
    return subprocess.run(
        [sys.executable, "-m", "triport_payouts", *args],
        env=env,
        check=True,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".ids"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def seed(path: Path, payouts: int, users: int) -> tuple[list[str], float]:
    """A fresh database made by init-db and seed-demo: (payout ids oldest first, seconds seed-demo took)."""
    remove_db(path)
    cli(path, "init-db")
    ids_path = Path(str(path) + ".ids")
    with open(ids_path, "w") as out:
        start = time.perf_counter()
        cli(path, "seed-demo", "--payouts", str(payouts), "--users", str(users), stdout=out)
        seconds = time.perf_counter() - start
    ids = ids_path.read_text().split()
    if len(ids) != payouts:
        raise BenchmarkFailed(f"seed-demo printed {len(ids)} ids, expected {payouts}")
    return ids, seconds


def schema_key() -> str:
    """What a seeded database depends on: the schema and the code that seeds it."""
    digest = hashlib.sha256()
    for name in ("sql/sqlite.sql", "repository.py", "domain.py"):
        digest.update((ROOT / "triport_payouts" / name).read_bytes())
    return digest.hexdigest()[:10]


def cached_seed(payouts: int, users: int, work: Path, name: str, fresh: bool) -> tuple[Path, list[str]]:
    """A working copy of a seeded database kept in var/bench/cache/ between
    runs, keyed by size, users and a hash of the schema and the seeding code
    (a change to either seeds anew). The copy is what the run uses (and
    writes to)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    pristine = CACHE / f"payouts-{payouts}-users-{users}-code-{schema_key()}.sqlite3"
    ids_path = Path(str(pristine) + ".ids")
    if fresh or not (pristine.exists() and ids_path.exists()):
        for old in CACHE.glob(f"payouts-{payouts}-users-{users}-*"):
            old.unlink()
        log(f"seeding {payouts:,} payouts into {pristine.relative_to(ROOT)} (cached for later runs)...")
        _, seconds = seed(pristine, payouts, users)
        with sqlite3.connect(pristine) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        log(f"  seed-demo: {seconds:.1f} s ({payouts / seconds:,.0f} payouts/s)")
    ids = ids_path.read_text().split()
    copy = work / name
    remove_db(copy)
    shutil.copyfile(pristine, copy)
    counts = db_counts(copy)
    if len(ids) != payouts or counts["payouts"] != payouts or counts["requested"] != payouts:
        raise BenchmarkFailed(f"the cached {pristine.name} is not as seeded: {counts}; rerun with --fresh")
    return copy, ids


def db_counts(path: Path) -> dict:
    conn = sqlite3.connect(path)
    try:
        return {
            "payouts": conn.execute("SELECT count(*) FROM payouts").fetchone()[0],
            "requested": conn.execute("SELECT count(*) FROM payouts WHERE status = 'requested'").fetchone()[
                0
            ],
            "failed": conn.execute("SELECT count(*) FROM payouts WHERE status = 'failed'").fetchone()[0],
            "events": conn.execute("SELECT count(*) FROM payout_events").fetchone()[0],
        }
    finally:
        conn.close()


def statuses_of(path: Path, ids: list[str]) -> dict[str, int]:
    """How many of these payouts are in each status."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TEMP TABLE bench_ids (id TEXT PRIMARY KEY)")
        conn.executemany("INSERT OR IGNORE INTO bench_ids VALUES (?)", ((i,) for i in ids))
        rows = conn.execute(
            "SELECT p.status, count(*) FROM bench_ids b JOIN payouts p ON p.id = b.id GROUP BY p.status"
        ).fetchall()
        return dict(rows)
    finally:
        conn.close()


# -- servers -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn with the project's config module, as `serve` runs it."""

    def __init__(self, name: str, app: str, workers: int, database: Path, token: str, work: Path):
        self.name, self.app, self.workers = name, app, workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "python:triport_payouts.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            app,
        ]
        env = {**os.environ, "TRIPORT_DATABASE": str(database), "TRIPORT_ADMIN_TOKEN": token}
        self.log_path = work / f"gunicorn-{name}.log"
        # stdout is the access log: one line a request, not worth keeping here.
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "wb"),  # noqa: SIM115  (the child keeps it; closed with us)
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise BenchmarkFailed(
                    f"gunicorn ({name}) exited with {self.process.returncode}: see {self.log_path}"
                )
            try:
                if self.get("/healthz", {})[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise BenchmarkFailed(f"gunicorn ({name}) did not start: see {self.log_path}")
            time.sleep(0.05)

    def request(self, method: str, path: str, headers: dict, body: str | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def get(self, path: str, headers: dict):
        return self.request("GET", path, headers)

    def workers_pids(self) -> list[int]:
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(child) for child in children]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchmarkFailed(f"no VmRSS for {pid}")


# -- wrk -----------------------------------------------------------------------


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


@dataclass
class Load:
    """The figures of one wrk run."""

    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    answered: int
    statuses: dict
    socket_errors: int
    raw: dict

    @classmethod
    def from_report(cls, report: dict) -> Load:
        threads = report["threads"]
        for thread in threads:
            if not thread["stopped"] or thread["elapsed"] <= 0:
                raise BenchmarkFailed(
                    "a wrk thread did not stop by itself (requests still in flight when wrk's -d ran out):"
                    f" {thread}"
                )
        statuses: dict[str, int] = {}
        for thread in threads:
            for status, count in (thread["statuses"] or {}).items():
                statuses[status] = statuses.get(status, 0) + count
        errors = report["summary"]["errors"]
        latency = report["latency_us"]
        return cls(
            rps=sum(t["answered"] / t["elapsed"] for t in threads),
            p50_ms=latency["p50"] / 1000,
            p90_ms=latency["p90"] / 1000,
            p99_ms=latency["p99"] / 1000,
            max_ms=latency["max"] / 1000,
            answered=sum(t["answered"] for t in threads),
            statuses=statuses,
            socket_errors=sum(errors[k] for k in ("connect", "read", "write", "timeout")),
            raw=report,
        )


class Wrk:
    def __init__(self, token: str, connections: int, threads: int):
        self.token, self.connections, self.threads = token, connections, threads
        self.commands: dict[str, str] = {}

    def run(
        self,
        key: str,
        url: str,
        script: str,
        duration: float | None,
        args: dict,
        limit: int | None = None,
        threads: int | None = None,
    ) -> Load:
        threads = threads or self.threads
        script_args = {"nthreads": threads, **args}
        if limit is not None:
            script_args["limit"] = limit
            safety = 900
        else:
            script_args["duration"] = duration
            # wrk's own -d is only a safety net: the script stops each thread once its
            # duration is over and its writes are answered, and says so on stdout;
            # then wrk is interrupted, which ends its run at once.
            safety = int(duration) + 30
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{self.connections}",
            f"-d{safety}s",
            "--timeout",
            "10s",
            "-H",
            f"X-Admin-Token: {self.token}",
            "-s",
            str(WRK_DIR / script),
            url,
            "--",
            *(f"{k}={v}" for k, v in script_args.items()),
        ]
        self.commands[key] = _shell(command, self.token)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stopped, lines, interrupter = set(), [], None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("BENCH-STOPPED "):
                stopped.add(line.split()[1])
                if len(stopped) == threads and interrupter is None:
                    interrupter = threading.Thread(target=_interrupt, args=(process,), daemon=True)
                    interrupter.start()
        stderr = process.stderr.read()
        returncode = process.wait()
        line = next((l for l in lines if l.startswith("BENCH-RESULT ")), None)
        if returncode != 0 or line is None:
            raise BenchmarkFailed(f"wrk failed ({returncode}): {stderr.strip() or ''.join(lines)[-2000:]}")
        return Load.from_report(json.loads(line[len("BENCH-RESULT ") :]))


def _interrupt(process: subprocess.Popen) -> None:
    """SIGINT until wrk exits: its handler ends the run, but a signal can land
    on a thread that is just exiting, so it is sent again."""
    while process.poll() is None:
        try:
            process.send_signal(signal.SIGINT)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def _shell(command: list[str], token: str) -> str:
    import shlex

    text = " ".join(shlex.quote(part) for part in command)
    return text.replace(token, "$TOKEN").replace(str(ROOT) + "/", "")


# -- the load rounds -------------------------------------------------------------


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
    used_statuses = statuses_of(db, used)
    if used_statuses != ({"failed": len(used)} if used else {}):
        problems.append(f"the payouts sent are {used_statuses}, expected all {len(used)} failed")
    unused_statuses = statuses_of(db, unused)
    if unused_statuses != ({"requested": len(unused)} if unused else {}):
        problems.append(f"the payouts not sent are {unused_statuses}, expected all requested")
    if problems:
        raise BenchmarkFailed("the 200 path's database check failed: " + "; ".join(problems))
    return load


def run_read(wrk: Wrk, scenario: Scenario, server: Server, db: Path | None, duration: float) -> Load:
    before = db_counts(db) if db else None
    load = wrk.run(scenario.key, server.base + scenario.path, scenario.script, duration, scenario.args)
    unexpected = set(load.statuses) - {str(scenario.expect)}
    if unexpected or not load.answered:
        raise BenchmarkFailed(f"{scenario.label}: expected only {scenario.expect}, got {load.statuses}")
    after = db_counts(db) if db else None
    if after != before:
        raise BenchmarkFailed(
            f"{scenario.label}: the database changed under a read-only scenario: {before} -> {after}"
        )
    return load


# -- the machine -----------------------------------------------------------------


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal:")
    )
    import gunicorn

    wrk_version = subprocess.run(
        ["wrk", "--version"], check=False, capture_output=True, text=True
    ).stdout.splitlines()[0]
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "gunicorn": gunicorn.__version__,
        "wrk": wrk_version.split(" [")[0],
        "loadavg_start": loadavg(),
        "commit": _git("rev-parse", "--short", "HEAD"),
        # the app's code as run may differ from the commit: other work in progress
        "app_changes": _git("status", "--porcelain", "--", "triport_payouts", "schema.sql"),
    }


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], check=False, cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "unknown"


# -- main --------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run of about a minute: small databases, one short round; "
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
        args.out = args.out or VAR / "quick" / "benchmarks.md"
    else:
        args.rounds = args.rounds or 5
        args.duration = args.duration or 6
        args.small, args.large = 10_000, 1_000_000
        args.seed_payouts, args.seed_repeats = 100_000, 3
        args.rss_points = (1_000, 10_000, 50_000, 100_000)
        args.read_calls, args.write_calls, args.blocks = 2000, 500, 7
        args.out = args.out or ROOT / "docs" / "benchmarks.md"
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
    work = VAR / ("quick" if args.quick else "work")
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
    phases: dict[str, float] = {}
    try:
        small_label, large_label = size_label(args.small), size_label(args.large)
        log(f"seeding the {small_label} database...")
        small_db = work / f"payouts-{small_label}.sqlite3"
        _small_ids, _ = seed(small_db, args.small, max(1, args.small // 100))
        large_db, large_ids = cached_seed(
            args.large, max(1, args.large // 100), work, f"payouts-{large_label}.sqlite3", args.fresh
        )

        phases["databases"] = time.monotonic() - started
        mark = time.monotonic()
        results["seed"] = measure_seed(work, args)
        phases["seed-demo"] = time.monotonic() - mark
        mark = time.monotonic()

        for name, app, db in (
            ("ceiling", "bench.ceiling:application", small_db),
            (small_label, "triport_payouts.wsgi:application", small_db),
            (large_label, "triport_payouts.wsgi:application", large_db),
        ):
            servers[name] = Server(name, app, args.workers, db, token, work)
        results["commands"] = {"gunicorn": {name: _shell(s.command, token) for name, s in servers.items()}}
        auth = {"X-Admin-Token": token}

        # The write database is the large one: the 200 path takes its fresh
        # payouts from there, and the 409 path hammers one of them, failed first.
        pool = WritePool(large_ids)
        failed_id = pool.take(1)[0]
        pool.consume([failed_id], [1], 1)
        status, body = servers[large_label].request("POST", f"{API}/payouts/{failed_id}/failed", auth, BODY)
        if status != 200:
            raise BenchmarkFailed(f"could not fail the 409 path's payout: {status} {body!r}")
        cursors = {label: deep_cursor(servers[label], auth) for label in (small_label, large_label)}

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
            Scenario(
                "failed_409",
                "mark-failed, already failed (409)",
                large_label,
                f"{API}/payouts/{failed_id}/failed",
                args={"method": "POST", "body": BODY},
                expect=409,
                target=0.85,
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
                Scenario(
                    f"user_{label}", f"user view, 100 payouts ({label})", label, f"{API}/users/{DEMO_USER}"
                )
            )
        ceiling = Scenario("ceiling", 'ceiling: bare WSGI {"ok": true}', "ceiling", "/")
        dbs = {small_label: small_db, large_label: large_db, "ceiling": None}

        wrk = Wrk(token, args.connections, args.threads)
        budget = int(args.duration * 8000)
        drain = f"{API}/payouts/{failed_id}/failed"

        def one(scenario: Scenario, duration: float) -> Load:
            server = servers[scenario.server]
            if scenario.writes:
                return run_write(wrk, scenario, server, large_db, pool, duration, work, budget, drain)
            return run_read(wrk, scenario, server, dbs[scenario.server], duration)

        log("warming up (2 s each, not counted)...")
        for scenario in [ceiling, *scenarios]:
            one(scenario, 2)

        # A round: the ceiling, a scenario, the ceiling, the next scenario, ...,
        # the ceiling. A scenario's ratios are to the mean of the two ceiling
        # runs around it: the machine's drift (and its neighbours) between
        # them is seconds, not the round's minutes.
        rounds = []
        for r in range(args.rounds):
            load_average = loadavg()
            log(f"round {r + 1}/{args.rounds} (load average {' '.join(load_average)})")
            loads, ceilings = {}, [one(ceiling, args.duration)]
            log_load(ceiling, ceilings[-1])
            for scenario in scenarios:
                loads[scenario.key] = one(scenario, args.duration)
                log_load(scenario, loads[scenario.key])
                ceilings.append(one(ceiling, args.duration))
                log_load(ceiling, ceilings[-1])
            rounds.append(Round(loads, ceilings, [s.key for s in scenarios], load_average))
        results["load"] = summarize(rounds, ceiling, scenarios, small_label, large_label)
        results["commands"]["wrk"] = wrk.commands
        results["deep_rows"] = DEEP_ROWS
        for server in servers.values():
            server.stop()
        servers.clear()

        phases["load"] = time.monotonic() - mark
        mark = time.monotonic()
        results["rss"] = measure_rss(
            args, token, large_db, pool, failed_id, cursors[large_label], work, drain
        )

        phases["memory"] = time.monotonic() - mark
        mark = time.monotonic()
        log("in-process figures...")
        fresh = pool.take(args.write_calls * (args.blocks + 1) * 2 + 200)
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
        (work / "results.json").write_text(json.dumps(results, indent=2, default=str))
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


def measure_seed(work: Path, args) -> dict:
    log(f"seed-demo throughput ({args.seed_payouts:,} payouts, {args.seed_repeats} runs)...")
    rates = []
    path = work / "seed-throughput.sqlite3"
    for _ in range(args.seed_repeats):
        _, seconds = seed(path, args.seed_payouts, args.seed_payouts // 100)
        rates.append(args.seed_payouts / seconds)
        log(f"  {seconds:.2f} s: {rates[-1]:,.0f} payouts/s")
    remove_db(path)
    return {
        "payouts": args.seed_payouts,
        "rates": rates,
        "median": statistics.median(rates),
        "target": 50_000,
        "command": (
            f"triport-payouts seed-demo --payouts {args.seed_payouts} --users {args.seed_payouts // 100}"
        ),
    }


def measure_rss(
    args, token, db: Path, pool: WritePool, failed_id: str, cursor: str, work: Path, drain: str
) -> dict:
    """A worker's VmRSS along a long mixed run (1 worker, every route)."""
    log("worker memory (1 worker, every route in turn, fresh writes included)...")
    server = Server("rss", "triport_payouts.wsgi:application", 1, db, token, work)
    try:
        (worker,) = server.workers_pids()
        requests_file = work / "mix.txt"
        requests_file.write_text(
            "\n".join(
                [
                    f"GET {API}/payouts?limit=50",
                    f"GET {API}/payouts?limit=50&cursor={cursor}",
                    f"GET {API}/users/{DEMO_USER}",
                    f"POST {API}/payouts/{failed_id}/failed",
                    f"GET {API}/payouts/{failed_id}/events",
                    f"POST {API}/payouts/{UNKNOWN_ID}/failed",
                    "GET /healthz",
                    "GET /v1/admin/openapi.json",
                ]
            )
            + "\n"
        )
        wrk = Wrk(token, args.connections, args.threads)
        points, done = [], 0
        for point in args.rss_points:
            want = point - done
            taken = pool.take(want // 8 + 1000)
            ids_file = work / "mix-ids.txt"
            ids_file.write_text("\n".join(taken) + "\n")
            before = db_counts(db)
            load = wrk.run(
                "rss",
                server.base + "/",
                "mix.lua",
                None,
                {
                    "requests": requests_file,
                    "ids": ids_file,
                    "path": f"{API}/payouts/{{id}}/failed",
                    "body": BODY,
                    "drain": drain,
                },
                limit=want,
                threads=1,
            )
            threads = sorted(load.raw["threads"], key=lambda t: t["index"])
            writes = [t.get("writes_sent") or 0 for t in threads]
            pool.consume(taken, writes, len(threads))
            after = db_counts(db)
            unexpected = set(load.statuses) - {"200", "404", "409"}
            if unexpected or load.socket_errors:
                raise BenchmarkFailed(
                    f"memory run: statuses {load.statuses}, {load.socket_errors} socket errors"
                )
            if not (after["failed"] - before["failed"] == after["events"] - before["events"] == sum(writes)):
                raise BenchmarkFailed(f"memory run: {sum(writes)} writes sent, database {before} -> {after}")
            done += load.answered
            if server.workers_pids() != [worker]:
                raise BenchmarkFailed("memory run: the worker was replaced")
            points.append({"requests": done, "rss_kib": vm_rss_kib(worker)})
            log(f"  after {done:,} requests: VmRSS {points[-1]['rss_kib'] / 1024:.1f} MiB")
        return {
            "points": points,
            "command": wrk.commands.get("rss"),
            "growth": points[-1]["rss_kib"] / points[0]["rss_kib"],
            "target": 1.10,
        }
    finally:
        server.stop()


def log_load(scenario: Scenario, load: Load) -> None:
    log(
        f"  {scenario.label:42} {load.rps:8.0f} req/s  p50 {load.p50_ms:6.1f} ms"
        f"  p99 {load.p99_ms:7.1f} ms  {load.statuses}"
    )


def loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


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
        out["scenarios"].append(row)
    deep, first = f"list_deep_{large_label}", f"list_first_{small_label}"
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


def _figures(loads) -> dict:
    return {
        "rps": statistics.median(l.rps for l in loads),
        "p50_ms": statistics.median(l.p50_ms for l in loads),
        "p99_ms": statistics.median(l.p99_ms for l in loads),
        "rps_rounds": [l.rps for l in loads],
        "p99_rounds": [l.p99_ms for l in loads],
        "requests": sum(l.answered for l in loads),
        "statuses": _sum_statuses(loads),
    }


def _sum_statuses(loads) -> dict:
    total: dict[str, int] = {}
    for load in loads:
        for status, count in load.statuses.items():
            total[status] = total.get(status, 0) + count
    return total


if __name__ == "__main__":
    sys.exit(main())
