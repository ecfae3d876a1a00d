"""The database encodes a page's payouts (SQLite's json_object, PostgreSQL's
to_json): the bytes must be exactly what json.dumps would write for the same
payouts, whatever text they hold."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import quote

from helpers import AUTH, PAYOUTS, user_view

# Text an operator or a client can store: quotes, backslashes, control
# characters (only a failure reason may hold them), non-ASCII, the line
# separators JavaScript chokes on, and characters outside the BMP.
AWKWARD = ['say "hi"', "back\\slash", "é ü ß", "日本語", "\u2028\u2029", "emoji \U0001F600", "tab\tnew\nline\x01\x1f\x7f"]


def dumps(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def awkward_payouts(repo) -> list[str]:
    ids = []
    for i, text in enumerate(AWKWARD):
        printable = text if text.isprintable() else f"user {i}"
        user = printable.replace("/", "")
        repo.credit(user, Decimal("100"), "USDT")
        payout = repo.create_payout(user, Decimal("0.00000001") * (i + 1), "USDT", printable)["id"]
        if i % 3 == 0:
            repo.transition(payout, "failed", reason=text)
        elif i % 3 == 1:
            repo.transition(payout, "sent", tx_hash=printable)
        ids.append(payout)
    return ids


def test_a_page_is_byte_for_byte_what_json_dumps_writes(client, repo):
    ids = awkward_payouts(repo)
    body = client.get(PAYOUTS, {"limit": "200"}, headers=AUTH).body
    expected = [repo.get_payout(payout) for payout in reversed(ids)]
    assert body == dumps({"payouts": expected, "next_cursor": None})
    assert {p["reason"] for p in expected} >= {AWKWARD[0], AWKWARD[3], AWKWARD[6]}


def test_a_page_with_a_cursor_is_byte_for_byte_what_json_dumps_writes(client, repo):
    awkward_payouts(repo)
    first = client.get(PAYOUTS, {"limit": "3"}, headers=AUTH).json
    body = client.get(PAYOUTS, {"limit": "3", "cursor": first["next_cursor"]}, headers=AUTH).body
    page = json.loads(body)
    assert body == dumps({"payouts": [repo.get_payout(p["id"]) for p in page["payouts"]],
                          "next_cursor": page["next_cursor"]})


def test_the_user_view_is_byte_for_byte_what_json_dumps_writes(client, repo):
    awkward_payouts(repo)
    user = AWKWARD[2]
    body = client.get(f"/v1/admin/referrals/users/{quote(user)}", headers=AUTH).body
    assert body == dumps(user_view(repo, user))
    assert json.loads(body)["payouts"][0]["destination"] == user


def test_every_code_point_is_quoted_as_json_dumps_quotes_it(client, repo):
    # Every character a reason can hold (all but NUL and lone surrogates),
    # spread over a few payouts: the database's quoting must be Python's.
    text = "".join(chr(c) for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF)
    chunks = [text[i:i + 0x20000] for i in range(0, len(text), 0x20000)]
    repo.credit("alice", Decimal(len(chunks)), "USDT")
    ids = []
    for chunk in chunks:
        payout = repo.create_payout("alice", Decimal(1), "USDT", "0xdest")["id"]
        repo.transition(payout, "failed", reason=chunk)
        ids.append(payout)
    body = client.get(PAYOUTS, {"limit": "200"}, headers=AUTH).body
    expected = [repo.get_payout(payout) for payout in reversed(ids)]
    assert "".join(p["reason"] for p in reversed(expected)) == text
    assert body == dumps({"payouts": expected, "next_cursor": None})
