"""Verifying the webhooks triport_payouts sends (Standard Webhooks), with
the standard library only:

    from triport.webhooks import verify, WebhookVerificationError

    event = verify(secret, request_headers, raw_body)   # the event, as the change feed shows it

``verify`` checks ``webhook-signature`` (any one of its space-separated
``v1,`` signatures may match: during a secret rotation two are sent) against
HMAC-SHA256 over ``{webhook-id}.{webhook-timestamp}.{body}`` keyed with the
secret's decoded bytes, compared in constant time, and refuses a timestamp
more than 5 minutes off, so a captured request cannot be replayed later.
Deliveries are at least once: deduplicate on ``webhook-id``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

__all__ = ["TOLERANCE", "WebhookVerificationError", "verify"]

TOLERANCE = 5 * 60  # seconds either way
_PREFIX = "whsec_"


class WebhookVerificationError(Exception):
    """The request is not a genuine, fresh webhook of this secret's endpoint."""


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header by case-insensitive name (a dict, an email.message.Message, a WSGI-ish mapping)."""
    value = headers.get(name)
    if value is None:
        for key, item in headers.items():
            if key.lower() == name:
                value = item
                break
    if value is None:
        raise WebhookVerificationError(f"missing header {name}")
    return value


def verify(secret: str, headers: Mapping[str, str], body: bytes | str, *, now: float | None = None) -> dict:
    """The event (a dict) if `body` is signed with `secret` and its timestamp
    is within TOLERANCE of `now`; raises WebhookVerificationError otherwise.
    Pass the raw body as received (bytes), never a re-encoded one."""
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("invalid webhook-timestamp") from None
    if abs((time.time() if now is None else now) - sent_at) > TOLERANCE:
        raise WebhookVerificationError("webhook-timestamp too far from now (a replay, or a clock off)")
    try:
        key = base64.b64decode(secret.removeprefix(_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the secret is not a whsec_ secret") from None
    digest = hmac.new(key, f"{msg_id}.{sent_at}.".encode() + raw, hashlib.sha256).digest()
    expected = base64.b64encode(digest)
    matched = False
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        # Every candidate is compared, in constant time: no early exit to time.
        if version == "v1" and hmac.compare_digest(value.encode("ascii", "replace"), expected):
            matched = True
    if not matched:
        raise WebhookVerificationError("no matching signature")
    try:
        event = json.loads(raw)
    except ValueError:
        raise WebhookVerificationError("the body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return event
