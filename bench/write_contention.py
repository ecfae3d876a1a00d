"""Why the 200 path's tail is long, in figures: N processes (gunicorn's
workers) writing the 200 path's statements to one SQLite file at once.

- busy:  as the app does: BEGIN IMMEDIATE, and SQLite's busy handler
         (sleep and retry: 1, 2, 5, 10, ... 100 ms) when another holds the lock.
- flock: the same, with the write transaction inside an exclusive
         fcntl.flock on a file beside the database: a waiter is woken by the
         kernel the moment the lock is free, instead of sleeping on.
Each under synchronous=FULL (the app's) and NORMAL (no fsync per commit in
WAL mode: a power loss can lose the last commits). --autocheckpoint adds
runs of flock/FULL with other wal_autocheckpoint values (default 1000 pages).

    .venv/bin/python bench/write_contention.py [--workers 5] [--seconds 5] [--autocheckpoint 1000 4000 0]
"""

from __future__ import annotations

import argparse
import fcntl
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import time

import inprocess


def _writer(path, ids, mode, synchronous, seconds, queue, autocheckpoint):
    conn = sqlite3.connect(path, timeout=10, isolation_level=None, cached_statements=256)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(f"PRAGMA wal_autocheckpoint = {autocheckpoint}")
    lock = open(path + ".lock", "a+") if mode == "flock" else None  # noqa: SIM115  (held by the process)
    latencies = []
    deadline = time.monotonic() + seconds
    for pid in ids:
        if time.monotonic() > deadline:
            break
        start = time.perf_counter()
        current = conn.execute(inprocess.STATUS, (pid,)).fetchone()[0]
        if lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(inprocess.CAS, ("failed", "bench", None, inprocess.NOW, pid, current))
            conn.execute(inprocess.EVENT, (pid, current, "failed", "bench", None, None, inprocess.NOW))
            conn.execute("COMMIT")
        finally:
            if lock:
                fcntl.flock(lock, fcntl.LOCK_UN)
        latencies.append(time.perf_counter() - start)
        time.sleep(0.0003)  # the rest of an HTTP request, outside the lock
    queue.put(latencies)


def run(path, ids, mode, synchronous, workers, seconds, autocheckpoint=1000) -> str:
    queue = multiprocessing.Queue()
    processes = [
        multiprocessing.Process(
            target=_writer,
            args=(path, ids[i::workers], mode, synchronous, seconds, queue, autocheckpoint),
        )
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    latencies = sorted(x for _ in processes for x in queue.get())
    for process in processes:
        process.join()
    n = len(latencies)
    return (
        f"{mode:5} synchronous={synchronous:6} {n / seconds:7.0f} writes/s"
        f"   p50 {latencies[n // 2] * 1e3:6.2f} ms"
        f"   p99 {latencies[int(n * 0.99)] * 1e3:7.2f} ms   max {latencies[-1] * 1e3:7.1f} ms"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--payouts", type=int, default=200_000)
    parser.add_argument(
        "--autocheckpoint",
        type=int,
        nargs="*",
        default=[],
        help="also run flock/FULL with these wal_autocheckpoint values",
    )
    args = parser.parse_args(argv)
    runs = [
        ("busy", "FULL", 1000),
        ("flock", "FULL", 1000),
        ("busy", "FULL", 1000),
        ("flock", "FULL", 1000),
        ("busy", "NORMAL", 1000),
        ("flock", "NORMAL", 1000),
    ]
    runs += [("flock", "FULL", pages) for pages in args.autocheckpoint]
    with tempfile.TemporaryDirectory(prefix="triport-contention-") as tmp:
        path = os.path.join(tmp, "bench.sqlite3")
        ids = inprocess._seed(path, args.payouts, args.payouts // 100)
        chunk = len(ids) // len(runs)
        for i, (mode, synchronous, pages) in enumerate(runs):
            line = run(
                path, ids[i * chunk : (i + 1) * chunk], mode, synchronous, args.workers, args.seconds, pages
            )
            print(f"{line}   wal_autocheckpoint={pages}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
