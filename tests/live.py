"""A real gunicorn serving the app, for what only a real server shows."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

from triport_payouts.db import open_database
from triport_payouts.repository import Repository

START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """gunicorn with the project's settings on a free 127.0.0.1 port."""

    def __init__(self, database: str, token: str | None, workers: int = 4, log_path=None):
        self.port = free_port()
        self.database = database
        self.log_path = log_path
        env = {**os.environ, "TRIPORT_DATABASE": database, "TRIPORT_ADMIN_TOKEN": token or ""}
        self._log_file = open(log_path or os.devnull, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "python:triport_payouts.gunicorn_conf",
             "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
             "triport_payouts.wsgi:application"],
            env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("gunicorn did not start in time")

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 15.0):
        """(status, parsed JSON body, response headers) over a new connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            payload = json.dumps(body).encode() if isinstance(body, dict) else body
            conn.request(method, path, body=payload, headers=headers or {})
            response = conn.getresponse()
            raw = response.read()
            return response.status, json.loads(raw), dict(response.getheaders())
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()

    def log(self) -> str:
        """What gunicorn and the app wrote so far (with log_path given)."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def wait_booted(self, workers: int, timeout: float = START_TIMEOUT) -> None:
        """Until every worker has booted: the server answers once one has."""
        deadline = time.monotonic() + timeout
        while self.booted_workers() < workers and time.monotonic() < deadline:
            time.sleep(0.05)

    def booted_workers(self) -> int:
        return self.log().count("Booting worker")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@contextmanager
def served_sqlite(tmp_dir, token: str, workers: int):
    """gunicorn over a new SQLite database in tmp_dir, with `.repo` on the same database."""
    database = str(tmp_dir / "served.sqlite3")
    db = open_database(database)
    db.init_schema()
    try:
        with Gunicorn(database, token, workers=workers, log_path=tmp_dir / "gunicorn.log") as live:
            live.repo = Repository(db)
            yield live
    finally:
        db.close()
