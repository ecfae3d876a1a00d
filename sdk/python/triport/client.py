"""``TriportAdmin`` and its transport: one HTTP exchange per attempt over
``urllib.request``, JSON in and out, and bounded retries with backoff.

What is retried:
- every request: no answer (connection refused, reset or dropped, timeout)
  and any 5xx answer;
- the POST actions also on ``409 idempotency_key_in_use``. Each action call
  sends one ``Idempotency-Key`` (a uuid4) and the same body bytes on every
  attempt, so a retry of an action whose 200 was lost in transit gets that
  200 replayed by the server, never ``409 payout_not_actionable``.
4xx answers are never retried. Redirects are not followed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.client import HTTPException

from ._version import __version__
from .errors import IdempotencyKeyInUse, TransportError, error_from_answer, tag_of
from .resources import Referrals

DEFAULT_BASE_URL = "https://api.triport.io"
log = logging.getLogger("triport")


class TriportAdmin:
    """The operator API.

    ``admin_token``: sent as ``X-Admin-Token``; never logged, never shown in a
    repr or an exception. ``base_url``: the argument, else the environment's
    ``TRIPORT_BASE_URL``, else ``https://api.triport.io`` (a path prefix is
    kept). ``actor``: sent as ``X-Admin-Actor`` so the audit trail names the
    operator. ``timeout``: seconds per attempt. ``max_attempts``, ``backoff``
    and ``max_backoff`` bound the retries: attempt n+1 waits about
    ``backoff * 2**(n-1)`` seconds (jittered, at most ``max_backoff``).

    ``admin.referrals.payouts`` and ``admin.referrals.users`` hold the calls.
    """

    def __init__(self, admin_token: str, base_url: str | None = None, actor: str | None = None,
                 timeout: float | None = 10, *, max_attempts: int = 4, backoff: float = 0.25,
                 max_backoff: float = 4.0):
        if base_url is None:
            base_url = os.environ.get("TRIPORT_BASE_URL") or DEFAULT_BASE_URL
        self._transport = Transport(admin_token, base_url, actor, timeout, max_attempts, backoff, max_backoff)
        self.referrals = Referrals(self._transport)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    def __repr__(self) -> str:
        return f"TriportAdmin(base_url={self.base_url!r})"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 3xx becomes an HTTPError, then a TriportError


class Transport:
    """Sends requests with the operator's headers; returns parsed JSON."""

    def __init__(self, admin_token, base_url, actor, timeout, max_attempts, backoff, max_backoff):
        if not isinstance(admin_token, str):
            raise TypeError("admin_token must be a string")
        if not _sendable(admin_token):
            raise ValueError("admin_token contains characters that cannot be sent in a header")
        if actor is not None and not (isinstance(actor, str) and _sendable(actor)):
            raise ValueError("actor must be a string without control characters")
        parts = urllib.parse.urlsplit(base_url)
        if (parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment
                or not base_url.isprintable() or " " in base_url):
            raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._headers = {
            "X-Admin-Token": _utf8_header(admin_token),  # the server compares UTF-8 bytes
            "Accept": "application/json",
            "User-Agent": f"triport-sdk-python/{__version__}",
        }
        if actor is not None:
            self._headers["X-Admin-Actor"] = _utf8_header(actor)
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r})"

    def get(self, path: str, query: dict | None = None):
        params = {k: v for k, v in (query or {}).items() if v is not None}
        target = path + ("?" + urllib.parse.urlencode(params) if params else "")
        return self._send("GET", target, None, {}, retry_in_use=False)

    def post(self, path: str, payload: dict, idempotency_key: str | None = None):
        """One logical action: one key, the same body bytes on every attempt."""
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        return self._send("POST", path, body, headers, retry_in_use=True, idempotency_key=key)

    def _send(self, method, target, body, headers, retry_in_use, idempotency_key=None):
        path = target.split("?", 1)[0]
        extra = {"idempotency_key": idempotency_key} if idempotency_key is not None else {}
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            try:
                status, answer_headers, raw = self._exchange(method, target, body, headers)
            except (OSError, HTTPException) as exc:
                reason = _describe(exc)
                if last or _is_certificate_error(exc):
                    raise TransportError(f"no answer on {method} {path} after {attempt} attempt(s): {reason}",
                                         method=method, path=path, **extra) from exc
                self._pause(attempt, None, method, path, reason)
                continue
            if 200 <= status < 300:
                return _json(status, raw, method, path, extra)
            retryable = status >= 500 or (
                retry_in_use and status == 409 and tag_of(raw) == IdempotencyKeyInUse.tag)
            if not retryable or last:
                raise error_from_answer(status, raw, method, path, **extra)
            self._pause(attempt, answer_headers.get("Retry-After"), method, path, f"{status} {tag_of(raw)}")
        raise AssertionError("unreachable")

    def _exchange(self, method, target, body, headers):
        request = urllib.request.Request(self.base_url + target, data=body, method=method,
                                         headers={**self._headers, **headers})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as answer:  # a non-2xx answer, not a failure to talk
            with answer:
                return answer.code, answer.headers, answer.read()

    def _pause(self, attempt, retry_after, method, path, reason):
        delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        delay = random.uniform(delay / 2, delay)
        with contextlib.suppress(TypeError, ValueError):  # no Retry-After, or not a number of seconds
            delay = max(delay, min(float(retry_after), self.max_backoff))
        log.info("retrying %s %s in %.2fs (attempt %d of %d failed: %s)",
                 method, path, delay, attempt, self.max_attempts, reason)
        time.sleep(delay)


def _sendable(text: str) -> bool:
    return all(ch >= " " and ch != "\x7f" for ch in text)


def _is_certificate_error(exc: BaseException) -> bool:
    """A server whose certificate fails verification will not pass it on a retry."""
    return isinstance(exc, ssl.SSLCertVerificationError) or isinstance(
        getattr(exc, "reason", None), ssl.SSLCertVerificationError)


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)  # URLError wraps the socket error
    inner = reason if isinstance(reason, BaseException) else exc
    return f"{type(inner).__name__}: {inner}" if str(inner) else type(inner).__name__


def _json(status, raw, method, path, extra):
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise error_from_answer(status, raw, method, path, **extra) from None


def _utf8_header(text: str) -> str:
    """A header value whose bytes on the wire are `text` in UTF-8: http.client
    sends a str header as Latin-1, one byte per character."""
    return text.encode("utf-8").decode("latin-1")
