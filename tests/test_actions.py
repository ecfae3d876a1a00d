"""The /sent and /processing actions, and the whole state machine over HTTP.
Which check answers when several fail is in test_order_of_checks.py."""

from __future__ import annotations

import re

import pytest

from helpers import AUTH, PAYOUTS, UNKNOWN_ID, move_to, snapshot, transitions

STATUSES = ("requested", "processing", "sent", "failed", "cancelled")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def url(payout_id, action):
    return f"{PAYOUTS}/{payout_id}/{action}"




# -- /sent: tx_hash ----------------------------------------------------------

INVALID_TX_HASH_BODIES = [
    pytest.param({}, id="missing"),
    pytest.param({"tx_hash": None}, id="null"),
    pytest.param({"tx_hash": ""}, id="empty"),
    pytest.param({"tx_hash": 123}, id="int"),
    pytest.param({"tx_hash": 1.5}, id="float"),
    pytest.param({"tx_hash": True}, id="bool"),
    pytest.param({"tx_hash": ["0xabc"]}, id="list"),
    pytest.param({"tx_hash": {"hash": "0xabc"}}, id="object"),
    pytest.param({"tx_hash": "a" * 257}, id="257-chars"),
    pytest.param({"tx_hash": " "}, id="space"),
    pytest.param({"tx_hash": " \t\n "}, id="whitespace-only"),
    pytest.param({"tx_hash": "0xab\x00cd"}, id="nul"),
    pytest.param({"tx_hash": "0xab\ncd"}, id="newline"),
    pytest.param({"tx_hash": "0xab\rcd"}, id="carriage-return"),
    pytest.param({"tx_hash": "0xab\x1bcd"}, id="escape"),
    pytest.param({"tx_hash": "0xab\x7fcd"}, id="delete"),
    pytest.param({"tx_hash": "0xab\x85cd"}, id="c1-control"),
    pytest.param({"tx_hash": "0xab\u2028cd"}, id="line-separator"),
]


@pytest.mark.parametrize("body", INVALID_TX_HASH_BODIES)
def test_sent_refuses_invalid_tx_hash_before_the_database(bare_client, body):
    res = bare_client.post_json(url(UNKNOWN_ID, "sent"), body, headers=AUTH, status=400)
    assert res.json == {"error": "invalid_tx_hash"}


@pytest.mark.parametrize("body", [
    pytest.param({}, id="missing"),
    pytest.param({"tx_hash": None}, id="null"),
    pytest.param({"tx_hash": "a" * 257}, id="257-chars"),
    pytest.param({"tx_hash": " \t "}, id="whitespace-only"),
    pytest.param({"tx_hash": "0xab\x00cd"}, id="nul"),
])
def test_sent_refusing_tx_hash_changes_nothing(client, repo, make_payout, body):
    payout_id = make_payout()
    before = snapshot(repo, payout_id)
    res = client.post_json(url(payout_id, "sent"), body, headers=AUTH, status=400)
    assert res.json == {"error": "invalid_tx_hash"}
    assert snapshot(repo, payout_id) == before


def test_sent_with_no_body_is_invalid_tx_hash(client, repo, make_payout):
    payout_id = make_payout()
    res = client.post(url(payout_id, "sent"), headers=AUTH, status=400)
    assert res.json == {"error": "invalid_tx_hash"}
    assert repo.get_payout(payout_id)["status"] == "requested"


@pytest.mark.parametrize("tx_hash", [
    pytest.param("a" * 256, id="256-chars"),
    pytest.param("0x" + "f" * 64, id="hex"),
    pytest.param("ü" * 256, id="256-non-ascii-chars"),
])
def test_sent_stores_tx_hash_on_payout_and_event(client, repo, make_payout, tx_hash):
    payout_id = make_payout()
    res = client.post_json(url(payout_id, "sent"), {"tx_hash": tx_hash},
                           headers={**AUTH, "X-Admin-Actor": "ops-bob"})
    assert res.json == {"ok": True}
    payout = repo.get_payout(payout_id)
    assert (payout["status"], payout["tx_hash"], payout["reason"]) == ("sent", tx_hash, None)
    events = transitions(client.get(url(payout_id, "events"), headers=AUTH).json["events"])
    assert len(events) == 1 and TIME.fullmatch(events[0]["at"])
    assert events == [{
        "payout_id": payout_id, "from_status": "requested", "to_status": "sent",
        "reason": None, "tx_hash": tx_hash, "actor": "ops-bob", "at": events[0]["at"],
        "on_behalf_of": None,
    }]
    assert payout["updated_at"] == events[0]["at"]


def test_sent_ignores_unknown_keys(client, repo, make_payout):
    payout_id = make_payout()
    res = client.post_json(url(payout_id, "sent"), {"tx_hash": "0xabc", "extra": [1, 2]}, headers=AUTH)
    assert res.json == {"ok": True}
    assert repo.get_payout(payout_id)["tx_hash"] == "0xabc"


# -- /processing -------------------------------------------------------------

def test_processing_moves_requested_to_processing(client, repo, make_payout):
    payout_id = make_payout()
    res = client.post(url(payout_id, "processing"), headers=AUTH)
    assert res.json == {"ok": True}
    payout = repo.get_payout(payout_id)
    assert (payout["status"], payout["reason"], payout["tx_hash"]) == ("processing", None, None)
    events = transitions(repo, payout_id)
    assert events == [{
        "payout_id": payout_id, "from_status": "requested", "to_status": "processing",
        "reason": None, "tx_hash": None, "actor": None, "at": payout["updated_at"],
        "on_behalf_of": None,
    }]


@pytest.mark.parametrize("status", ["processing", "sent", "failed", "cancelled"])
def test_processing_from_any_other_status_is_409(client, repo, make_payout, status):
    payout_id = make_payout()
    move_to(repo, payout_id, status)
    before = snapshot(repo, payout_id)
    res = client.post(url(payout_id, "processing"), headers=AUTH, status=409)
    assert res.json == {"error": "payout_not_actionable"}
    assert snapshot(repo, payout_id) == before


# -- the state machine -------------------------------------------------------

ACTION_BODIES = {
    "processing": {},
    "sent": {"tx_hash": "0xmachine"},
    "failed": {"reason": "bank said no"},
}

# (from status, action): the status after a 200, or None for a 409.
STATE_MACHINE = {
    ("requested", "processing"): "processing",
    ("requested", "sent"): "sent",
    ("requested", "failed"): "failed",
    ("processing", "processing"): None,
    ("processing", "sent"): "sent",
    ("processing", "failed"): "failed",
    ("sent", "processing"): None,
    ("sent", "sent"): None,
    ("sent", "failed"): None,
    ("failed", "processing"): None,
    ("failed", "sent"): None,
    ("failed", "failed"): None,
    ("cancelled", "processing"): None,
    ("cancelled", "sent"): None,
    ("cancelled", "failed"): None,
}


def test_state_machine_table_covers_every_pair():
    assert set(STATE_MACHINE) == {(s, a) for s in STATUSES for a in ACTION_BODIES}


@pytest.mark.parametrize(("start", "action"), list(STATE_MACHINE))
def test_state_machine(client, repo, make_payout, start, action):
    payout_id = make_payout()
    move_to(repo, payout_id, start)
    before_payout, before_events = snapshot(repo, payout_id)
    target = STATE_MACHINE[start, action]
    body = ACTION_BODIES[action]
    if target is None:
        res = client.post_json(url(payout_id, action), body, headers=AUTH, status=409)
        assert res.json == {"error": "payout_not_actionable"}
        assert snapshot(repo, payout_id) == (before_payout, before_events)
        return
    res = client.post_json(url(payout_id, action), body, headers=AUTH, status=200)
    assert res.json == {"ok": True}
    after_payout, after_events = snapshot(repo, payout_id)
    assert after_payout == {
        **before_payout,
        "status": target,
        "reason": body.get("reason", before_payout["reason"]),
        "tx_hash": body.get("tx_hash", before_payout["tx_hash"]),
        "updated_at": after_payout["updated_at"],
    }
    assert after_payout["updated_at"] > before_payout["updated_at"]
    assert after_events == before_events + [{
        "payout_id": payout_id, "from_status": start, "to_status": target,
        "reason": body.get("reason"), "tx_hash": body.get("tx_hash"), "actor": None,
        "at": after_payout["updated_at"], "on_behalf_of": None,
    }]


@pytest.mark.parametrize(("start", "expected"), [
    ("requested", "cancelled"),
    ("processing", None),
    ("sent", None),
    ("failed", None),
    ("cancelled", None),
])
def test_cancel_state_machine(repo, make_payout, start, expected):
    from triport_payouts.domain import PayoutNotActionable

    payout_id = make_payout()
    move_to(repo, payout_id, start)
    before = snapshot(repo, payout_id)
    if expected is None:
        with pytest.raises(PayoutNotActionable):
            repo.cancel_payout(payout_id)
        assert snapshot(repo, payout_id) == before
    else:
        assert repo.cancel_payout(payout_id) == (start, expected)
        assert repo.get_payout(payout_id)["status"] == expected


@pytest.mark.parametrize("action", ["processing", "sent"])
def test_action_on_unknown_payout_is_404(client, action):
    res = client.post_json(url(UNKNOWN_ID, action), ACTION_BODIES[action], headers=AUTH, status=404)
    assert res.json == {"error": "payout_not_found"}


@pytest.mark.parametrize("action", ["processing", "sent"])
def test_action_accepts_upper_case_id(client, repo, make_payout, action):
    payout_id = make_payout()
    res = client.post_json(url(payout_id.upper(), action), ACTION_BODIES[action], headers=AUTH)
    assert res.json == {"ok": True}
    assert repo.get_payout(payout_id)["status"] == action
    assert [e["payout_id"] for e in transitions(repo, payout_id)] == [payout_id]


@pytest.mark.parametrize("payout_id", [
    "not-a-uuid",
    "6f1c2a4e00004000800000000000000",
    "6f1c2a4e-0000-4000-8000-00000000000",
    "6f1c2a4e-0000-4000-8000-0000000000000",
    "{6f1c2a4e-0000-4000-8000-000000000000}",
    "6f1c2a4e-0000-4000-8000-00000000000g",
])
@pytest.mark.parametrize("action", ["processing", "sent"])
def test_malformed_id_is_400(bare_client, payout_id, action):
    res = bare_client.post_json(url(payout_id, action), ACTION_BODIES[action], headers=AUTH, status=400)
    assert res.json == {"error": "invalid_payout_id"}
