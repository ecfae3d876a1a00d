"""A worker's memory along a long mixed run: one gunicorn worker, every
route in turn, fresh writes included, VmRSS read at each point."""

from __future__ import annotations

from pathlib import Path

from checks import WritePool
from common import API, BODY, DEMO_USER, UNKNOWN_ID, BenchmarkFailed, log
from databases import db_counts
from load import Wrk
from servers import Server, vm_rss_kib


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
