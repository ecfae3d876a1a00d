"""A user's payouts from credit to settlement, as the operator sees them:
balances and counts after every step, the user view's newest payouts, and
each payout's events replaying to its status. Plus decimal exactness."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from helpers import AUTH, PAYOUTS, UNKNOWN_ID, creation_of

USERS = "/v1/admin/referrals/users"
ACTOR = {**AUTH, "X-Admin-Actor": "ops-alice"}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def counts(**given):
    return {s: given.get(s, 0) for s in ("requested", "processing", "sent", "failed", "cancelled")}


def balance(currency, earned, reserved, sent, available):
    return {"currency": currency, "earned": earned, "reserved": reserved, "sent": sent,
            "available": available}


def events_of(client, payout_id):
    return client.get(f"{PAYOUTS}/{payout_id}/events", headers=AUTH).json["events"]


class Walk:
    """What the test expects, tracked by hand alongside the calls it makes."""

    def __init__(self, client, repo, user):
        self.client, self.repo, self.user = client, repo, user
        self.payouts = {}  # id -> the expected payout, updated_at aside
        self.history = {}  # id -> [(from, to, reason, tx_hash, actor)]
        self.order = []  # ids, oldest first

    def create(self, amount, currency="USDT"):
        payout = self.repo.create_payout(self.user, Decimal(amount), currency, f"wallet-{currency}")
        assert payout["amount"] == amount
        self.payouts[payout["id"]] = dict(payout)
        # Its history starts with its creation, at its created_at, by no one.
        self.history[payout["id"]] = [(None, "requested", None, None, None)]
        self.order.append(payout["id"])
        return payout["id"]

    def act(self, payout_id, action, body, target):
        res = self.client.post_json(f"{PAYOUTS}/{payout_id}/{action}", body, headers=ACTOR)
        assert res.json == {"ok": True}
        self._moved(payout_id, target, body.get("reason"), body.get("tx_hash"), "ops-alice")

    def cancel(self, payout_id):
        self.repo.cancel_payout(payout_id, actor="cli-carol")
        self._moved(payout_id, "cancelled", None, None, "cli-carol")

    def _moved(self, payout_id, target, reason, tx_hash, actor):
        expected = self.payouts[payout_id]
        self.history[payout_id].append((expected["status"], target, reason, tx_hash, actor))
        expected["status"] = target
        expected["reason"] = reason if reason is not None else expected["reason"]
        expected["tx_hash"] = tx_hash if tx_hash is not None else expected["tx_hash"]

    def check(self, balances, expected_counts):
        view = self.client.get(f"{USERS}/{self.user}", headers=AUTH).json
        newest = list(reversed(self.order))[:20]
        assert sorted(newest, key=lambda i: (self.payouts[i]["created_at"], i), reverse=True) == newest
        listed = []
        for payout_id in newest:
            events = events_of(self.client, payout_id)
            self.check_events(payout_id, events)
            assert events[0]["at"] == self.payouts[payout_id]["created_at"]
            updated_at = events[-1]["at"]
            listed.append({**self.payouts[payout_id], "updated_at": updated_at})
        assert view == {
            "user_id": self.user,
            "balances": balances,
            "counts": expected_counts,
            "payouts": listed,
        }

    def check_events(self, payout_id, events):
        assert all(TIME.fullmatch(e["at"]) for e in events)
        assert [e["at"] for e in events] == sorted(e["at"] for e in events)
        assert events == [
            {"payout_id": payout_id, "from_status": f, "to_status": t, "reason": r,
             "tx_hash": h, "actor": a, "at": e["at"], "on_behalf_of": None}
            for (f, t, r, h, a), e in zip(self.history[payout_id], events, strict=True)
        ]
        # The replay: from nothing, each event starts where the last ended.
        status = None
        for event in events:
            assert event["from_status"] == status
            status = event["to_status"]
        assert status == self.payouts[payout_id]["status"]


def test_lifecycle_walk(client, repo):
    walk = Walk(client, repo, "walker")

    repo.credit("walker", Decimal("100.00"), "USDT", "referral earnings")
    walk.check([balance("USDT", "100.00", "0", "0", "100.00")], counts())

    a = walk.create("30.00")
    walk.check([balance("USDT", "100.00", "30.00", "0", "70.00")], counts(requested=1))

    walk.act(a, "processing", {}, "processing")
    walk.check([balance("USDT", "100.00", "30.00", "0", "70.00")], counts(processing=1))

    walk.act(a, "sent", {"tx_hash": "0xaaa"}, "sent")
    walk.check([balance("USDT", "100.00", "0", "30.00", "70.00")], counts(sent=1))

    b = walk.create("12.50")
    walk.check([balance("USDT", "100.00", "12.50", "30.00", "57.50")], counts(requested=1, sent=1))

    walk.act(b, "failed", {"reason": "wallet rejected"}, "failed")
    walk.check([balance("USDT", "100.00", "0", "30.00", "70.00")], counts(sent=1, failed=1))

    c = walk.create("7.25")
    walk.check([balance("USDT", "100.00", "7.25", "30.00", "62.75")],
               counts(requested=1, sent=1, failed=1))

    walk.cancel(c)
    walk.check([balance("USDT", "100.00", "0", "30.00", "70.00")],
               counts(sent=1, failed=1, cancelled=1))

    repo.credit("walker", Decimal("5"), "BTC", "referral earnings")
    walk.check([balance("BTC", "5", "0", "0", "5"), balance("USDT", "100.00", "0", "30.00", "70.00")],
               counts(sent=1, failed=1, cancelled=1))

    d = walk.create("0.00000001", "BTC")
    walk.check([balance("BTC", "5", "0.00000001", "0", "4.99999999"),
                balance("USDT", "100.00", "0", "30.00", "70.00")],
               counts(requested=1, sent=1, failed=1, cancelled=1))

    walk.act(d, "sent", {"tx_hash": "btc-tx-1"}, "sent")
    walk.check([balance("BTC", "5", "0", "0.00000001", "4.99999999"),
                balance("USDT", "100.00", "0", "30.00", "70.00")],
               counts(sent=2, failed=1, cancelled=1))


# -- the user view -------------------------------------------------------------

def test_unknown_user_is_404(client, make_payout):
    make_payout("someone-else")
    res = client.get(f"{USERS}/nobody", headers=AUTH, status=404)
    assert res.json == {"error": "user_not_found"}


def test_user_view_needs_token(client, make_payout):
    make_payout("alice")
    res = client.get(f"{USERS}/alice", status=401)
    assert res.json == {"error": "admin_token_invalid"}


def test_user_with_only_credits(client, repo):
    repo.credit("credited", Decimal("10.00"), "USDT", "one")
    repo.credit("credited", Decimal("2.5"), "USDT", "two")
    repo.credit("credited", Decimal("1"), "EUR", "three")
    res = client.get(f"{USERS}/credited", headers=AUTH)
    assert res.json == {
        "user_id": "credited",
        "balances": [balance("EUR", "1", "0", "0", "1"), balance("USDT", "12.50", "0", "0", "12.50")],
        "counts": counts(),
        "payouts": [],
    }


def test_user_with_25_payouts_shows_the_20_newest(client, repo):
    repo.credit("busy", Decimal("1000.00"), "USDT", "earnings")
    created = [repo.create_payout("busy", Decimal("1.00"), "USDT", "wallet") for _ in range(25)]
    newest = sorted(created, key=lambda p: (p["created_at"], p["id"]), reverse=True)[:20]
    res = client.get(f"{USERS}/busy", headers=AUTH)
    assert res.json == {
        "user_id": "busy",
        "balances": [balance("USDT", "1000.00", "25.00", "0", "975.00")],
        "counts": counts(requested=25),
        "payouts": newest,
    }
    assert {p["id"] for p in created[-20:]} == {p["id"] for p in newest}


def test_user_view_shows_only_that_users_payouts(client, repo, make_payout):
    mine = make_payout("me", "3.00")
    make_payout("other", "4.00")
    res = client.get(f"{USERS}/me", headers=AUTH)
    assert [p["id"] for p in res.json["payouts"]] == [mine]
    assert res.json["balances"] == [balance("USDT", "3.00", "3.00", "0", "0.00")]


# -- events ----------------------------------------------------------------------

def test_events_of_unknown_payout_is_404(client, make_payout):
    make_payout()
    res = client.get(f"{PAYOUTS}/{UNKNOWN_ID}/events", headers=AUTH, status=404)
    assert res.json == {"error": "payout_not_found"}


@pytest.mark.parametrize("payout_id", ["nope", "6f1c2a4e-0000-4000-8000-00000000000", "6f1c2a4e00004000800000000000000"])
def test_events_of_malformed_id_is_400(client, payout_id):
    res = client.get(f"{PAYOUTS}/{payout_id}/events", headers=AUTH, status=400)
    assert res.json == {"error": "invalid_payout_id"}


def test_events_of_payout_never_moved_is_its_creation(client, repo, make_payout):
    payout_id = make_payout()
    res = client.get(f"{PAYOUTS}/{payout_id}/events", headers=AUTH)
    assert res.json == {"events": [{**creation_of(payout_id), "at": repo.get_payout(payout_id)["created_at"]}]}


def test_events_by_upper_case_id(client, repo, make_payout):
    payout_id = make_payout()
    repo.transition(payout_id, "processing")
    res = client.get(f"{PAYOUTS}/{payout_id.upper()}/events", headers=AUTH)
    assert [(e["payout_id"], e["to_status"]) for e in res.json["events"]] == [
        (payout_id, "requested"), (payout_id, "processing")]


# -- decimal exactness -----------------------------------------------------------

@pytest.mark.parametrize(("credits", "payouts", "expected"), [
    pytest.param(["0.1", "0.2"], [], ("0.3", "0", "0.3"), id="0.1+0.2"),
    pytest.param(["0.3"], ["0.1", "0.2"], ("0.3", "0.3", "0.0"), id="0.3-0.1-0.2"),
    pytest.param(["1.10", "2.205"], ["0.005"], ("3.305", "0.005", "3.300"), id="mixed-scales"),
    pytest.param(
        ["999999999999999999.999999999999999999", "999999999999999999.999999999999999999"],
        ["0.000001"],
        ("1999999999999999999.999999999999999998", "0.000001", "1999999999999999999.999998999999999998"),
        id="18-digit-sums"),
    pytest.param(
        ["123456789012345678.123456789012345678"], ["123456789012345678.123456789012345677"],
        ("123456789012345678.123456789012345678", "123456789012345678.123456789012345677",
         "0.000000000000000001"),
        id="18-digit-difference"),
    pytest.param(["0.00000001", "0.00000002"], ["0.00000001"],
                 ("0.00000003", "0.00000001", "0.00000002"), id="satoshis"),
    pytest.param(["1.00000000"], ["1.00000000"], ("1.00000000", "1.00000000", "0.00000000"),
                 id="zero-available-at-8-places"),
])
def test_balances_are_exact(client, repo, credits, payouts, expected):
    for amount in credits:
        repo.credit("exact", Decimal(amount), "BTC", "earnings")
    for amount in payouts:
        assert repo.create_payout("exact", Decimal(amount), "BTC", "wallet")["amount"] == amount
    earned, reserved, available = expected
    res = client.get(f"{USERS}/exact", headers=AUTH)
    assert res.json["balances"] == [balance("BTC", earned, reserved, "0", available)]


@pytest.mark.parametrize("amount", [
    "999999999999999999.999999999999999999", "0.000000000000000001", "0.00000001", "12.50", "7",
])
def test_payout_amounts_round_trip_exactly(client, repo, amount):
    repo.credit("exact", Decimal(amount), "ETH", "earnings")
    payout = repo.create_payout("exact", Decimal(amount), "ETH", "wallet")
    listed = client.get(PAYOUTS, {"user_id": "exact"}, headers=AUTH).json["payouts"]
    assert [(p["id"], p["amount"]) for p in listed] == [(payout["id"], amount)]
