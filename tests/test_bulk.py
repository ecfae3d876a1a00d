"""POST /v1/admin/referrals/payouts/bulk: one action on many payouts by id,
each item its own compare-and-set and event, answered item by item, on both
backends."""

from __future__ import annotations

import json

import pytest
from helpers import AUTH, PAYOUTS, UNKNOWN_ID, data_rows, events_of, move_to, transitions

from triport_payouts.db.base import DatabaseUnavailable

BULK = f"{PAYOUTS}/bulk"


def bulk(client, body, headers=AUTH, status=200):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(BULK, raw, headers=headers, content_type="application/json", status=status)


def test_every_item_is_applied_with_its_own_event(client, repo, make_payout):
    ids = [make_payout() for _ in range(3)]
    res = bulk(client, {"action": "processing", "items": [{"id": i} for i in ids]},
               headers={**AUTH, "X-Admin-Actor": "maria"})
    assert res.json == {"results": [{"id": i, "ok": True} for i in ids], "succeeded": 3, "failed": 0}
    for payout_id in ids:
        [event] = transitions(repo, payout_id)
        assert (event["from_status"], event["to_status"], event["actor"]) == ("requested", "processing", "maria")


def test_one_batch_transfer_may_settle_several_payouts(client, repo, make_payout):
    ids = [make_payout() for _ in range(4)]
    items = [{"id": i, "tx_hash": "0xbatch"} for i in ids]
    assert bulk(client, {"action": "sent", "items": items}).json["succeeded"] == 4
    assert {repo.get_payout(i)["tx_hash"] for i in ids} == {"0xbatch"}
    assert {repo.get_payout(i)["status"] for i in ids} == {"sent"}


def test_each_item_answers_what_the_single_action_would(client, repo, database_url, make_payout):
    good, settled, no_hash = make_payout(), make_payout(), make_payout()
    move_to(repo, settled, "failed")
    items = [
        {"id": good.upper(), "tx_hash": "0x1"},
        {"id": UNKNOWN_ID, "tx_hash": "0x2"},
        {"id": "not-a-uuid", "tx_hash": "0x3"},
        {"id": settled, "tx_hash": "0x4"},
        {"id": no_hash},
        {"id": no_hash.replace(no_hash[:8], "0" * 8), "tx_hash": ""},
    ]
    before = {i: events_of(repo, i) for i in (settled, no_hash)}
    res = bulk(client, {"action": "sent", "items": items})
    assert res.json == {"results": [
        {"id": good.upper(), "ok": True},
        {"id": UNKNOWN_ID, "ok": False, "error": "payout_not_found"},
        {"id": "not-a-uuid", "ok": False, "error": "invalid_payout_id"},
        {"id": settled, "ok": False, "error": "payout_not_actionable"},
        {"id": no_hash, "ok": False, "error": "invalid_tx_hash"},
        {"id": items[5]["id"], "ok": False, "error": "invalid_tx_hash"},
    ], "succeeded": 1, "failed": 5}
    assert repo.get_payout(good)["status"] == "sent"
    assert {i: events_of(repo, i) for i in (settled, no_hash)} == before


def test_failed_items_carry_their_reasons(client, repo, make_payout):
    a, b = make_payout(), make_payout()
    bulk(client, {"action": "failed", "items": [{"id": a, "reason": "wallet closed"}, {"id": b}]})
    assert (repo.get_payout(a)["reason"], repo.get_payout(b)["reason"]) == ("wallet closed", None)
    c = make_payout()
    res = bulk(client, {"action": "failed", "items": [{"id": c, "reason": 5}]})
    assert res.json["results"] == [{"id": c, "ok": False, "error": "invalid_json"}]


@pytest.mark.parametrize("backend", ["sqlite"])  # refused before any database: one backend says it
@pytest.mark.parametrize("body", [
    {"items": [{"id": UNKNOWN_ID}]},
    {"action": "cancel", "items": [{"id": UNKNOWN_ID}]},
    {"action": "sent"},
    {"action": "sent", "items": {"id": UNKNOWN_ID}},
    {"action": "sent", "items": []},
    {"action": "sent", "items": [{"id": f"00000000-0000-4000-8000-{i:012d}", "tx_hash": "0x"} for i in range(101)]},
    {"action": "processing", "items": [{"id": UNKNOWN_ID}, {"id": UNKNOWN_ID}]},
    {"action": "processing", "items": ["00000000-0000-4000-8000-000000000001"]},
    {"action": "processing", "items": [{"tx_hash": "0x"}]},
    {"action": "processing", "items": [{"id": 7}]},
    {"action": "processing", "items": [None]},
], ids=["no-action", "unknown-action", "no-items", "items-not-a-list", "empty", "101-items", "duplicate",
        "item-not-an-object", "item-without-id", "id-not-a-string", "null-item"])
def test_a_malformed_request_is_invalid_bulk_and_touches_nothing(client, database_url, make_payout, body):
    make_payout()
    before = data_rows(database_url)
    assert bulk(client, body, status=400).json == {"error": "invalid_bulk"}
    assert data_rows(database_url) == before


def test_one_payout_named_twice_in_two_cases_is_a_duplicate(client, database_url, make_payout):
    payout_id = make_payout()
    before = data_rows(database_url)
    body = {"action": "processing", "items": [{"id": payout_id}, {"id": payout_id.upper()}]}
    assert bulk(client, body, status=400).json == {"error": "invalid_bulk"}
    assert data_rows(database_url) == before


def test_the_body_may_be_up_to_64_kib(client, repo, make_payout):
    ids = [make_payout() for _ in range(2)]
    reason = "r" * 20_000
    body = {"action": "failed", "items": [{"id": i, "reason": reason} for i in ids]}
    assert 40_000 < len(json.dumps(body)) < 64 * 1024
    assert bulk(client, body).json["succeeded"] == 2
    too_big = {"action": "failed", "items": [{"id": UNKNOWN_ID, "reason": "r" * (64 * 1024)}]}
    assert bulk(client, too_big, status=400).json == {"error": "invalid_json"}
    assert bulk(client, b"[1]", status=400).json == {"error": "invalid_json"}


def test_one_key_covers_the_request(client, repo, database_url, make_payout):
    ids = [make_payout() for _ in range(3)]
    move_to(repo, ids[2], "sent")
    headers = {**AUTH, "Idempotency-Key": "batch-2026-12-01"}
    body = {"action": "sent", "items": [{"id": i, "tx_hash": "0xb"} for i in ids]}
    first = bulk(client, body, headers=headers)
    assert first.json["succeeded"] == 2
    before = data_rows(database_url)
    again = bulk(client, body, headers=headers)
    assert again.body == first.body
    assert data_rows(database_url) == before
    other = {"action": "sent", "items": [{"id": ids[0], "tx_hash": "0xc"}]}
    assert bulk(client, other, headers=headers, status=422).json == {"error": "idempotency_key_reused"}


def test_when_the_database_goes_away_the_answer_says_which_items_were_applied(app, client, repo, make_payout,
                                                                            monkeypatch):
    ids = [make_payout() for _ in range(4)]
    transition = app.repository.transition
    calls = []

    def flaky(payout_id, *args, **kwargs):
        calls.append(payout_id)
        if len(calls) == 3:
            raise DatabaseUnavailable("database is locked")
        return transition(payout_id, *args, **kwargs)

    monkeypatch.setattr(app.repository, "transition", flaky)
    res = bulk(client, {"action": "processing", "items": [{"id": i} for i in ids]})
    assert res.json == {"results": [
        {"id": ids[0], "ok": True}, {"id": ids[1], "ok": True},
        {"id": ids[2], "ok": False, "error": "database_unavailable"},
        {"id": ids[3], "ok": False, "error": "database_unavailable"},
    ], "succeeded": 2, "failed": 2}
    assert len(calls) == 3  # the last one was not tried
    assert [repo.get_payout(i)["status"] for i in ids] == ["processing", "processing", "requested", "requested"]


def test_a_named_token_is_the_actor_of_every_item(client, repo, make_payout):
    from triport_payouts.tokens import TokenStore

    token = TokenStore(repo.db).create("batch-bot", "operator")["token"]
    ids = [make_payout() for _ in range(2)]
    bulk(client, {"action": "processing", "items": [{"id": i} for i in ids]},
         headers={"X-Admin-Token": token, "X-Admin-Actor": "maria"})
    assert {(e["actor"], e["on_behalf_of"]) for i in ids for e in transitions(repo, i)} == {("batch-bot", "maria")}


def test_other_methods_are_405(client):
    res = client.get(BULK, headers=AUTH, status=405)
    assert res.headers["Allow"] == "POST"
