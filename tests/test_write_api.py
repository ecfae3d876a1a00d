"""The write API: POST .../credits, POST .../payouts and POST
.../payouts/{id}/cancel, on both backends through the WSGI app (the races
across processes and hosts are in tests/test_tokens_live.py)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from helpers import AUTH, CREDITS, PAYOUTS, UNKNOWN_ID, data_rows, events_of, is_creation, move_to, user_view

from triport_payouts import cli

CREDIT = {"user_id": "alice", "amount": "25.50", "currency": "USDT", "note": "march referrals"}
PAYOUT = {"user_id": "alice", "amount": "10.00", "currency": "USDT", "destination": "0xalice"}
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"


def post(client, path, body, headers=AUTH, status="*"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, raw, headers=headers, content_type="application/json", status=status)


def credit(client, **fields):
    return post(client, CREDITS, {**CREDIT, **fields}, status=201).json


# -- credits -------------------------------------------------------------------------


def test_a_credit_is_201_with_the_credit(client, repo):
    res = post(client, CREDITS, CREDIT, status=201)
    body = res.json
    assert set(body) == {"id", "user_id", "amount", "currency", "note", "created_at"}
    assert {k: body[k] for k in CREDIT} == CREDIT
    assert res.content_type == "application/json"
    [balance] = user_view(repo, "alice")["balances"]
    assert (balance["earned"], balance["available"]) == ("25.50", "25.50")


def test_a_credit_without_a_note_has_note_null(client):
    body = {k: v for k, v in CREDIT.items() if k != "note"}
    assert post(client, CREDITS, body, status=201).json["note"] is None


@pytest.mark.parametrize("amount", ["0.000000000000000001", "123456789012345678.123456789012345678", "7"])
def test_amounts_are_exact(client, repo, amount):
    assert credit(client, amount=amount)["amount"] == amount
    [balance] = user_view(repo, "alice")["balances"]
    assert Decimal(balance["earned"]) == Decimal(amount)


# -- field errors: the same for credits and payouts -------------------------------------

BAD_FIELDS = [
    ("user_id", None, "invalid_user_id"),
    ("user_id", "", "invalid_user_id"),
    ("user_id", "a/b", "invalid_user_id"),
    ("user_id", 7, "invalid_user_id"),
    ("user_id", "u" * 129, "invalid_user_id"),
    ("amount", None, "invalid_amount"),
    ("amount", 10, "invalid_amount"),
    ("amount", 10.5, "invalid_amount"),
    ("amount", "0", "invalid_amount"),
    ("amount", "-1", "invalid_amount"),
    ("amount", "1e3", "invalid_amount"),
    ("amount", "01.5", "invalid_amount"),
    ("amount", "1.", "invalid_amount"),
    ("amount", " 1", "invalid_amount"),
    ("currency", None, "invalid_currency"),
    ("currency", "usdt", "invalid_currency"),
    ("currency", "U", "invalid_currency"),
    ("currency", ["USDT"], "invalid_currency"),
]


@pytest.mark.parametrize("backend", ["sqlite"])  # refused before any database: one backend says it
@pytest.mark.parametrize(("field", "value", "tag"), BAD_FIELDS)
@pytest.mark.parametrize("path", [CREDITS, PAYOUTS], ids=["credit", "payout"])
def test_a_bad_field_is_400_with_its_tag_and_writes_nothing(client, repo, database_url, path, field, value,
                                                             tag):
    credit(client, amount="100.00")
    before = data_rows(database_url)
    body = {**(CREDIT if path == CREDITS else PAYOUT)}
    if value is None:
        del body[field]
    else:
        body[field] = value
    assert post(client, path, body, status=400).json == {"error": tag}
    assert data_rows(database_url) == before


@pytest.mark.parametrize("destination", [None, "", " ", "d" * 257, 12, "a\x00b"])
def test_a_bad_destination_is_invalid_destination(client, database_url, destination):
    credit(client, amount="100.00")
    body = {**PAYOUT, "destination": destination}
    if destination is None:
        del body["destination"]
    assert post(client, PAYOUTS, body, status=400).json == {"error": "invalid_destination"}


@pytest.mark.parametrize("note", [5, ["x"], "a\x00b"])
def test_a_note_that_is_not_text_is_invalid_json(client, note):
    assert post(client, CREDITS, {**CREDIT, "note": note}, status=400).json == {"error": "invalid_json"}


@pytest.mark.parametrize("backend", ["sqlite"])  # refused before any database: one backend says it
@pytest.mark.parametrize("raw", [b"[]", b'"x"', b"{", b"\xff", b"{" + b" " * 4100 + b"}"])
@pytest.mark.parametrize("path", [CREDITS, PAYOUTS], ids=["credit", "payout"])
def test_a_body_that_is_not_one_json_object_under_4_kib_is_invalid_json(client, database_url, path, raw):
    before = data_rows(database_url)
    res = post(client, path, raw, status=400)
    assert res.json == {"error": "invalid_json"}
    assert data_rows(database_url) == before


def test_an_empty_body_is_an_empty_object_whose_first_missing_field_is_named(client):
    assert post(client, CREDITS, b"", status=400).json == {"error": "invalid_user_id"}


def test_a_bad_field_on_postgresql_too(client, database_url):
    """The field checks above run before the database; here is one per tag on the other backend."""
    credit(client, amount="100.00")
    before = data_rows(database_url)
    for body, tag in (({**PAYOUT, "user_id": ""}, "invalid_user_id"), ({**PAYOUT, "amount": 1}, "invalid_amount"),
                      ({**PAYOUT, "currency": "usd"}, "invalid_currency"), ({**PAYOUT, "destination": ""},
                                                                            "invalid_destination")):
        assert post(client, PAYOUTS, body, status=400).json == {"error": tag}
    assert data_rows(database_url) == before


def test_unknown_members_are_ignored(client):
    assert post(client, CREDITS, {**CREDIT, "extra": 1}, status=201).json["user_id"] == "alice"


# -- payouts -------------------------------------------------------------------------


def test_a_payout_request_is_201_with_the_payout_in_requested(client, repo):
    credit(client)
    res = post(client, PAYOUTS, PAYOUT, status=201)
    payout = res.json
    assert {k: payout[k] for k in PAYOUT} == PAYOUT
    assert (payout["status"], payout["reason"], payout["tx_hash"]) == ("requested", None, None)
    assert payout == repo.get_payout(payout["id"])
    listed = client.get(PAYOUTS, headers=AUTH).json["payouts"]
    assert listed == [payout]
    [creation] = client.get(f"{PAYOUTS}/{payout['id']}/events", headers=AUTH).json["events"]
    assert is_creation(creation) and creation["at"] == payout["created_at"]


def test_the_creation_event_names_who_asked(client, repo):
    credit(client)
    payout = post(client, PAYOUTS, PAYOUT, headers={**AUTH, "X-Admin-Actor": "billing"}, status=201).json
    [creation] = events_of(repo, payout["id"])
    assert (creation["actor"], creation["on_behalf_of"]) == ("billing", None)


def test_more_than_the_available_balance_is_409_insufficient_balance(client, repo, database_url):
    credit(client, amount="15.00")
    post(client, PAYOUTS, PAYOUT, status=201)
    before = data_rows(database_url)
    res = post(client, PAYOUTS, PAYOUT, status=409)
    assert res.json == {"error": "insufficient_balance"}
    assert data_rows(database_url) == before
    assert post(client, PAYOUTS, {**PAYOUT, "amount": "5.00"}, status=201).json["status"] == "requested"


def test_a_user_with_no_credit_in_that_currency_has_nothing_to_pay_out(client):
    credit(client, currency="USDC")
    assert post(client, PAYOUTS, PAYOUT, status=409).json == {"error": "insufficient_balance"}


def test_concurrent_requests_never_overdraw(client, app, repo):
    """32 threads on one app (one connection each), a balance that covers 3."""
    credit(client, amount="30.00")
    barrier = threading.Barrier(32)

    def one(_):
        barrier.wait()
        return post(client, PAYOUTS, PAYOUT).status_int

    with ThreadPoolExecutor(32) as pool:
        statuses = sorted(pool.map(one, range(32)))
    assert statuses == [201] * 3 + [409] * 29
    view = user_view(repo, "alice")
    assert view["counts"]["requested"] == 3
    assert view["balances"][0]["available"] == "0.00"


# -- cancel --------------------------------------------------------------------------


def test_cancel_a_requested_payout(client, repo, make_payout):
    payout_id = make_payout()
    res = post(client, f"{PAYOUTS}/{payout_id}/cancel", b"", headers={**AUTH, "X-Admin-Actor": "maria"},
               status=200)
    assert res.json == {"ok": True}
    assert repo.get_payout(payout_id)["status"] == "cancelled"
    event = events_of(repo, payout_id)[-1]
    assert (event["from_status"], event["to_status"], event["actor"]) == ("requested", "cancelled", "maria")
    # The money is available again.
    assert user_view(repo, "alice")["balances"][0]["available"] == "10.00"


@pytest.mark.parametrize("status", ["processing", "sent", "failed", "cancelled"])
def test_cancel_from_any_other_status_is_409_and_changes_nothing(client, repo, database_url, make_payout,
                                                                 status):
    payout_id = make_payout()
    move_to(repo, payout_id, status)
    before = data_rows(database_url)
    res = post(client, f"{PAYOUTS}/{payout_id}/cancel", {}, status=409)
    assert res.json == {"error": "payout_not_actionable"}
    assert data_rows(database_url) == before


def test_cancel_an_unknown_or_malformed_id(client):
    assert post(client, f"{PAYOUTS}/{UNKNOWN_ID}/cancel", {}, status=404).json == {"error": "payout_not_found"}
    assert post(client, f"{PAYOUTS}/nope/cancel", {}, status=400).json == {"error": "invalid_payout_id"}


# -- idempotency ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [CREDITS, PAYOUTS], ids=["credit", "payout"])
def test_a_retried_create_makes_one_and_answers_the_same_bytes(client, repo, database_url, path):
    credit(client, amount="100.00")
    body = CREDIT if path == CREDITS else PAYOUT
    headers = {**AUTH, "Idempotency-Key": "create-1"}
    first = post(client, path, body, headers=headers, status=201)
    before = data_rows(database_url)
    again = post(client, path, body, headers=headers, status=201)
    assert again.body == first.body
    assert data_rows(database_url) == before
    # Another body under the same key is refused; the same body under a new key makes a second.
    assert post(client, path, {**body, "amount": "1.00"}, headers=headers, status=422).json == {
        "error": "idempotency_key_reused"}
    assert post(client, path, body, headers={**AUTH, "Idempotency-Key": "create-2"}, status=201).json[
        "id"] != first.json["id"]


def test_a_refused_create_is_answered_again_as_refused(client, database_url):
    headers = {**AUTH, "Idempotency-Key": "too-much"}
    assert post(client, PAYOUTS, PAYOUT, headers=headers, status=409).json == {"error": "insufficient_balance"}
    credit(client, amount="100.00")
    # The key's answer stands, though the balance now covers it: a retry is a retry.
    assert post(client, PAYOUTS, PAYOUT, headers=headers, status=409).json == {"error": "insufficient_balance"}


def test_a_retried_cancel_answers_ok_again(client, make_payout):
    payout_id = make_payout()
    headers = {**AUTH, "Idempotency-Key": "cancel-1"}
    assert post(client, f"{PAYOUTS}/{payout_id}/cancel", {}, headers=headers, status=200).json == {"ok": True}
    assert post(client, f"{PAYOUTS}/{payout_id}/cancel", {}, headers=headers, status=200).json == {"ok": True}


def test_a_key_is_bound_to_its_route(client, make_payout):
    credit(client, amount="100.00")
    headers = {**AUTH, "Idempotency-Key": "shared"}
    post(client, CREDITS, CREDIT, headers=headers, status=201)
    assert post(client, PAYOUTS, CREDIT, headers=headers, status=422).json == {"error": "idempotency_key_reused"}


# -- the command line takes the same path ---------------------------------------------


def test_the_command_line_and_the_api_refuse_alike(client, database_url, capsys):
    environ = {"TRIPORT_DATABASE": database_url}
    assert cli.main(["credit", "--user-id", "a/b", "--amount", "1", "--currency", "USDT"], environ) == 1
    assert "user id" in capsys.readouterr().err
    assert post(client, CREDITS, {**CREDIT, "user_id": "a/b"}, status=400).json == {"error": "invalid_user_id"}
    assert cli.main(["create-payout", "--user-id", "zed", "--amount", "1", "--currency", "USDT",
                     "--destination", "0x"], environ) == 1
    assert "available balance" in capsys.readouterr().err
    assert post(client, PAYOUTS, {**PAYOUT, "user_id": "zed"}, status=409).json == {
        "error": "insufficient_balance"}
