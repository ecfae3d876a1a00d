"""Opaque keyset cursors for the payout list.

A cursor names the last payout of a page, (created_at, id), and is signed
with a key derived from the operator token, over the filters it was made
for: a cursor that was altered, or is replayed with other filters, is
refused instead of silently starting somewhere else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

_MAC_BYTES = 16
_KEY = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


class InvalidCursor(Exception):
    """the cursor was not issued by this API for these filters"""


class Cursors:
    def __init__(self, secret: str | None):
        self._key = hashlib.sha256(b"triport-payouts cursor\0" + (secret or "").encode("utf-8")).digest()

    def encode(self, key: tuple[str, str], filters: tuple) -> str:
        payload = "|".join(key).encode("ascii")
        raw = payload + self._mac(payload, filters)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def decode(self, cursor: str, filters: tuple) -> tuple[str, str]:
        """(created_at, id) of the page's last payout; raises InvalidCursor."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCursor() from None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(payload, filters)):
            raise InvalidCursor()
        text = payload.decode("ascii")
        if not _KEY.fullmatch(text):
            raise InvalidCursor()
        created_at, payout_id = text.split("|")
        return created_at, payout_id

    def _mac(self, payload: bytes, filters: tuple) -> bytes:
        message = payload + b"\0" + repr(filters).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]
