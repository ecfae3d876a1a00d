"""The Python client's triport.webhooks.verify against the server's own
signing and the reference library's: good, tampered, stale, rotated."""

from __future__ import annotations

import json
import time

import pytest
import standardwebhooks
from triport import webhooks as client_webhooks
from triport.webhooks import WebhookVerificationError, verify

from triport_payouts import signing

BODY = json.dumps({"id": "42", "type": "payout.sent", "payout": {"id": "p", "amount": "1.50"}},
                  separators=(",", ":")).encode()


def signed(secrets, body=BODY, msg_id="42", timestamp=None):
    return signing.headers(secrets, msg_id, int(time.time()) if timestamp is None else timestamp, body)


def test_a_good_delivery_gives_the_event():
    secret = signing.new_secret()
    headers = signed([secret])
    assert verify(secret, headers, BODY) == json.loads(BODY)
    assert verify(secret, {k.upper(): v for k, v in headers.items()}, BODY.decode()) == json.loads(BODY)
    # The reference library agrees with the server's signature.
    assert standardwebhooks.Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_a_signature_made_by_the_reference_library_verifies():
    secret = signing.new_secret()
    import datetime

    now = datetime.datetime.now(datetime.UTC)
    signature = standardwebhooks.Webhook(secret).sign("msg_1", now, BODY.decode())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}
    assert verify(secret, headers, BODY)["id"] == "42"


@pytest.mark.parametrize("change", ["body", "id", "timestamp", "secret", "signature", "version"])
def test_anything_tampered_is_refused(change):
    secret = signing.new_secret()
    headers = signed([secret])
    body = BODY
    if change == "body":
        body = BODY.replace(b"1.50", b"9.50")
    elif change == "id":
        headers["webhook-id"] = "43"
    elif change == "timestamp":
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) + 1)
    elif change == "secret":
        secret = signing.new_secret()
    elif change == "signature":
        headers["webhook-signature"] = headers["webhook-signature"][:-6] + "AAAAA="
    else:
        headers["webhook-signature"] = "v2" + headers["webhook-signature"][2:]
    with pytest.raises(WebhookVerificationError):
        verify(secret, headers, body)


@pytest.mark.parametrize("offset", [-301, 301, -3600])
def test_a_timestamp_more_than_5_minutes_off_is_refused(offset):
    secret = signing.new_secret()
    with pytest.raises(WebhookVerificationError, match="timestamp"):
        verify(secret, signed([secret], timestamp=int(time.time()) + offset), BODY)


def test_a_timestamp_within_5_minutes_passes():
    secret = signing.new_secret()
    assert verify(secret, signed([secret], timestamp=int(time.time()) - 290), BODY)


def test_rotated_secrets_either_one_verifies():
    old, new = signing.new_secret(), signing.new_secret()
    headers = signed([new, old])
    assert len(headers["webhook-signature"].split()) == 2
    assert verify(old, headers, BODY) == verify(new, headers, BODY)
    with pytest.raises(WebhookVerificationError):
        verify(signing.new_secret(), headers, BODY)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing):
    secret = signing.new_secret()
    headers = signed([secret])
    del headers[missing]
    with pytest.raises(WebhookVerificationError, match=missing):
        verify(secret, headers, BODY)


def test_the_module_is_standard_library_only():
    import ast
    import pathlib
    import sys

    tree = ast.parse(pathlib.Path(client_webhooks.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
