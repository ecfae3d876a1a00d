"""A tiny TCP proxy in front of a live server that misbehaves on purpose.

Connection n follows ``script[n]``; once the script is used up it forwards.
- "forward": relay the request and the whole answer.
- "drop": relay the request, wait for the server's whole answer, then close
  the client's connection without a byte: the answer is lost in transit.
- "stall": like "drop", but hold the connection open until the client gives up.
- bytes: answer those bytes (see ``answer``) without reaching the server.
Every request is recorded as (method, path, headers, body).
"""

from __future__ import annotations

import json
import socket
import threading

HOST = "127.0.0.1"


def answer(status: int, payload=None, text: str | None = None) -> bytes:
    """A canned HTTP/1.1 answer: JSON ``payload``, or ``text`` as HTML."""
    if text is None:
        body, kind = json.dumps(payload).encode(), "application/json"
    else:
        body, kind = text.encode(), "text/html"
    head = (f"HTTP/1.1 {status} Canned\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + body


class FlakyProxy:
    def __init__(self, upstream_port: int | None, script=(), stall_seconds: float = 5.0):
        self.upstream_port = upstream_port
        self.script = list(script)
        self.stall_seconds = stall_seconds
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.05)
        self._closing = threading.Event()
        self.port = self._listener.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(10)
            request = _read_request(client)
            with self._lock:
                self.requests.append(_parse(request))
                action = self.script.pop(0) if self.script else "forward"
            if isinstance(action, bytes):
                client.sendall(action)
                return
            with socket.create_connection((HOST, self.upstream_port), timeout=10) as upstream:
                upstream.sendall(request)
                response = _read_to_end(upstream)
            if action == "forward":
                client.sendall(response)
            elif action == "stall":
                client.settimeout(self.stall_seconds)
                try:
                    client.recv(1)  # returns once the client closes its end
                except OSError:
                    pass
            # "drop": leave the with-block, closing the connection unanswered

    def close(self) -> None:
        self._closing.set()
        self._accepting.join(5)
        self._listener.close()
        for thread in self._threads:
            thread.join(self.stall_seconds + 5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read_request(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _read_to_end(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _parse(request: bytes) -> tuple[str, str, dict, bytes]:
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = (lines[0].split(" ") + ["", "", ""])[:3]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers, body
