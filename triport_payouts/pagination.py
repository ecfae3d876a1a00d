"""Opaque keyset cursors: the payout list's and the change feed's.

A cursor names a position (the list: the last payout of a page, (created_at,
id); the feed: the last event read, (transaction, id)) and is signed with a
key derived from the operator token, over its kind and the filters it was
made for: a cursor that was altered, is replayed with other filters, or
belongs to the other kind is refused instead of silently starting somewhere
else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

_MAC_BYTES = 16
_PAYOUT_KEY = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
_FEED_POSITION = re.compile(r"(0|[1-9][0-9]{0,19})\|(0|[1-9][0-9]{0,19})")


class InvalidCursor(Exception):
    """the cursor was not issued by this API for these filters"""


class Cursors:
    def __init__(self, secret: str | None):
        self._key = hashlib.sha256(b"triport-payouts cursor\0" + (secret or "").encode("utf-8")).digest()

    # -- the payout list -------------------------------------------------------

    def encode(self, key: tuple[str, str], filters: tuple) -> str:
        return self._sign("payouts", "|".join(key), filters)

    def decode(self, cursor: str, filters: tuple) -> tuple[str, str]:
        """(created_at, id) of the page's last payout; raises InvalidCursor."""
        text = self._verify("payouts", cursor, filters)
        if not _PAYOUT_KEY.fullmatch(text):
            raise InvalidCursor()
        created_at, payout_id = text.split("|")
        return created_at, payout_id

    # -- the change feed ---------------------------------------------------------

    def encode_position(self, position: tuple[int, int], filters: tuple) -> str:
        return self._sign("events", f"{position[0]}|{position[1]}", filters)

    def decode_position(self, cursor: str, filters: tuple) -> tuple[int, int]:
        """(transaction, event id) of the last event read; raises InvalidCursor."""
        match = _FEED_POSITION.fullmatch(self._verify("events", cursor, filters))
        if match is None:
            raise InvalidCursor()
        return int(match[1]), int(match[2])

    # -- signing -----------------------------------------------------------------

    def _sign(self, kind: str, text: str, filters: tuple) -> str:
        payload = text.encode("ascii")
        raw = payload + self._mac(kind, payload, filters)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def _verify(self, kind: str, cursor: str, filters: tuple) -> str:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCursor() from None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(kind, payload, filters)):
            raise InvalidCursor()
        return payload.decode("ascii")

    def _mac(self, kind: str, payload: bytes, filters: tuple) -> bytes:
        # The list's cursors keep the message they always had: cursors issued
        # before the feed existed stay good.
        prefix = b"" if kind == "payouts" else kind.encode("ascii") + b"\0"
        message = prefix + payload + b"\0" + repr(filters).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]
