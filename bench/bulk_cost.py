"""Bulk settlement against single actions, over HTTP: N payouts marked sent
by N requests on one keep-alive connection, against one bulk request of N
items, on the same gunicorn and SQLite database, in alternating rounds.
Also how long a single action waits while a bulk request of 100 runs
beside it (the bulk holds the write lock one item at a time).

    .venv/bin/python bench/bulk_cost.py [--rounds 7] [--items 100]

Figures: per round, milliseconds for the N singles and for the bulk; the
median of the ratio singles / bulk.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from triport_payouts.db import open_database  # noqa: E402
from triport_payouts.repository import Repository  # noqa: E402

TOKEN = "bench-bulk-token"
API = "/v1/admin/referrals/payouts"


def serve(database: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "TRIPORT_DATABASE": database, "TRIPORT_ADMIN_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "python:triport_payouts.gunicorn_conf",
         "--bind", f"127.0.0.1:{port}", "--workers", "2", "triport_payouts.wsgi:application"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("gunicorn did not start")


def post(conn: http.client.HTTPConnection, path: str, body: dict) -> dict:
    conn.request("POST", path, json.dumps(body), {"X-Admin-Token": TOKEN, "Content-Type": "application/json"})
    response = conn.getresponse()
    payload = json.loads(response.read())
    if response.status != 200:
        raise RuntimeError(f"{response.status} {payload}")
    return payload


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--items", type=int, default=100)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bulk-cost-")
    database = os.path.join(work, "bulk.sqlite3")
    repo = Repository(open_database(database))
    repo.db.init_schema()
    needed = args.rounds * (args.items * 3 + 1) + 50
    repo.credit("bench", Decimal(needed), "USDT")
    ids = [repo.create_payout("bench", Decimal(1), "USDT", "0xbench")["id"] for _ in range(needed)]
    port = 8700 + os.getpid() % 200
    server = serve(database, port)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        ratios = []
        for r in range(args.rounds):
            singles, batch = [ids.pop() for _ in range(args.items)], [ids.pop() for _ in range(args.items)]
            timings = {}
            for kind in (("singles", "bulk") if r % 2 == 0 else ("bulk", "singles")):
                start = time.perf_counter()
                if kind == "singles":
                    for payout_id in singles:
                        post(conn, f"{API}/{payout_id}/sent", {"tx_hash": "0xsingle"})
                else:
                    answer = post(conn, f"{API}/bulk", {"action": "sent", "items": [
                        {"id": payout_id, "tx_hash": "0xbatch"} for payout_id in batch]})
                    assert answer["succeeded"] == args.items, answer
                timings[kind] = (time.perf_counter() - start) * 1000
            ratios.append(timings["singles"] / timings["bulk"])
            print(f"round {r + 1}: {args.items} singles {timings['singles']:.0f} ms,"
                  f" one bulk of {args.items} {timings['bulk']:.0f} ms, ratio {ratios[-1]:.2f}")
        print(f"median singles / bulk: {statistics.median(ratios):.2f}")

        # A single action while a bulk of 100 runs beside it, on another connection.
        waits = []
        for _ in range(args.rounds):
            batch = [ids.pop() for _ in range(args.items)]
            lone = ids.pop()
            other = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            runner = threading.Thread(target=post, args=(other, f"{API}/bulk", {"action": "processing", "items": [
                {"id": payout_id} for payout_id in batch]}))
            runner.start()
            time.sleep(0.01)
            start = time.perf_counter()
            post(conn, f"{API}/{lone}/processing", {})
            waits.append((time.perf_counter() - start) * 1000)
            runner.join()
        print(f"a single action beside a running bulk of {args.items}: median {statistics.median(waits):.1f} ms,"
              f" max {max(waits):.1f} ms")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
