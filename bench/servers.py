"""gunicorn as a child process: started as `serve` runs it, asked over HTTP,
its workers and their memory read from /proc."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, BenchmarkFailed


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

    def exchange(self, method: str, path: str, headers: dict, body: str | None = None):
        """(status, headers as sent, body) of one request."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
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
