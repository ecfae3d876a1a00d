"""A real webhook receiver on loopback for the webhook tests: an
``http.server`` in a thread that records every POST (headers, raw body, and
whether another request with the same webhook-id was in flight) and answers
what the test scripts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    overlapped: bool  # another request with this webhook-id was in flight


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    stall: threading.Event | None = None  # wait for it (at most 30 s) before answering
    delay: float = 0.0


class Receiver:
    """Records POSTs; `answer(n, received)` picks the n-th (0-based) request's answer."""

    def __init__(self, answer: Callable[[int, Received], Answer] | None = None):
        self.requests: list[Received] = []
        self.answer = answer or (lambda n, received: Answer())
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self.arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {key.lower(): value for key, value in self.headers.items()}
                msg_id = headers.get("webhook-id", "")
                with receiver._lock:
                    overlapped = receiver._in_flight.get(msg_id, 0) > 0
                    receiver._in_flight[msg_id] = receiver._in_flight.get(msg_id, 0) + 1
                    received = Received(headers, body, overlapped)
                    n = len(receiver.requests)
                    receiver.requests.append(received)
                    receiver.arrived.notify_all()
                try:
                    answer = receiver.answer(n, received)
                    if answer.stall is not None:
                        answer.stall.wait(30)
                    time.sleep(answer.delay)
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                finally:
                    with receiver._lock:
                        receiver._in_flight[msg_id] -= 1

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks?from=triport"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        """Until at least `count` requests arrived."""
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.requests) >= count, timeout), len(self.requests)

    def ids(self) -> list[str]:
        return [received.headers["webhook-id"] for received in self.requests]
