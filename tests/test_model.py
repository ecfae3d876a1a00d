"""A stateful test against a plain in-memory model: credits, payouts, every
action, retries with and without Idempotency-Key, and the payout list.

Hypothesis drives the app through WebTest (the HTTP routes) and the repository
(credits, payout creation and cancellation, which have no route); after every
step the statuses, balances, events and list pages must agree with the model.
SQLite only, a fresh database per example.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
import webtest
from helpers import PAYOUTS, TOKEN
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from triport_payouts import create_app, domain
from triport_payouts.db import open_database
from triport_payouts.repository import Repository

# 200 generated runs of up to 40 steps: part of `make test`, left out of `make test-fast`.
pytestmark = pytest.mark.fuzz

USERS = ("alice", "bob", "carol")
CURRENCIES = ("USDT", "EUR")
ACTORS = (None, "ops-anna", "ops-ben")
USER_VIEW = "/v1/admin/referrals/users"

# The transitions, written out again rather than imported: the model must not
# share the code it checks.
SOURCES = {
    "processing": {"requested"},
    "sent": {"requested", "processing"},
    "failed": {"requested", "processing"},
    "cancel": {"requested"},
}
TARGET = {"processing": "processing", "sent": "sent", "failed": "failed", "cancel": "cancelled"}
RESERVING = {"requested", "processing"}
STATUSES = ("requested", "processing", "sent", "failed", "cancelled")

amounts = st.one_of(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(60), places=2),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(60), places=2),
    st.sampled_from([Decimal("0.000001"), Decimal("12.345678"), Decimal("100000000000.5")]),
)
# Mostly the two accounts that start with earnings, so that payouts get made.
OWNERS = [("alice", "USDT")] * 4 + [("bob", "EUR")] * 4 + [(u, c) for u in USERS for c in CURRENCIES]
earnings = st.decimals(min_value=Decimal(1), max_value=Decimal(200), places=2)


@dataclass
class ModelPayout:
    id: str
    user: str
    currency: str
    amount: Decimal
    created_at: str
    status: str = "requested"
    reason: str | None = None
    tx_hash: str | None = None
    # (from, to, reason, tx_hash, actor), from its creation on
    events: list = field(default_factory=lambda: [(None, "requested", None, None, None)])


@dataclass(frozen=True)
class Sent:
    """One POST as it went over the wire, and what came back."""

    action: str
    payout_id: str
    body: bytes
    key: str | None
    actor: str | None
    fields: dict | str  # what the body sets, or the tag of its 400
    status: int
    answer: bytes


# Per action: (body bytes, the fields it sets, or the tag of its 400).
BODIES = {
    "failed": [
        (b"", {}), (b"{}", {}), (b'{"reason": null}', {}),
        (b'{"reason": "wallet rejected"}', {"reason": "wallet rejected"}),
        (b'{"reason": "limit", "extra": 1}', {"reason": "limit"}),
        (b'{"reason": 5}', "invalid_json"), (b"[1]", "invalid_json"),
    ],
    "sent": [
        (b'{"tx_hash": "0xabc"}', {"tx_hash": "0xabc"}),
        (b'{"tx_hash": "0xdef", "reason": "x"}', {"tx_hash": "0xdef"}),
        (b'{"tx_hash": "%s"}' % (b"f" * 256), {"tx_hash": "f" * 256}),
        (b'{"tx_hash": "%s"}' % (b"f" * 257), "invalid_tx_hash"),
        (b"{}", "invalid_tx_hash"), (b'{"tx_hash": ""}', "invalid_tx_hash"), (b"not json", "invalid_json"),
    ],
    "processing": [(b"", {}), (b"{}", {}), (b'{"ignored": true}', {}), (b"{", "invalid_json")],
}


class PayoutMachine(RuleBasedStateMachine):
    payouts = Bundle("payouts")

    def __init__(self):
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="triport-model-"))
        database = str(self.tmp / "model.sqlite3")
        db = open_database(database)
        db.init_schema()
        self.repo = Repository(db)
        self.app = create_app(database=database, admin_token=TOKEN)
        self.client = webtest.TestApp(self.app, lint=True)
        self.model: dict[str, ModelPayout] = {}
        self.earned: dict[tuple[str, str], Decimal] = {}
        self.keys: dict[str, Sent] = {}  # keys the server stored, with the first answer
        self.history: list[Sent] = []
        self.counter = 0

    def teardown(self):
        self.app.repository.db.close()
        self.repo.db.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the model's arithmetic ----------------------------------------------

    def balance(self, user: str, currency: str) -> dict[str, Decimal]:
        mine = [p for p in self.model.values() if (p.user, p.currency) == (user, currency)]
        earned = self.earned.get((user, currency), Decimal(0))
        reserved = sum((p.amount for p in mine if p.status in RESERVING), Decimal(0))
        sent = sum((p.amount for p in mine if p.status == "sent"), Decimal(0))
        return {"earned": earned, "reserved": reserved, "sent": sent, "available": earned - reserved - sent}

    def apply(self, payout: ModelPayout, action: str, fields: dict, actor: str | None) -> bool:
        if payout.status not in SOURCES[action]:
            return False
        reason, tx_hash = fields.get("reason"), fields.get("tx_hash")
        payout.events.append((payout.status, TARGET[action], reason, tx_hash, actor))
        payout.status = TARGET[action]
        payout.reason = reason if reason is not None else payout.reason
        payout.tx_hash = tx_hash if tx_hash is not None else payout.tx_hash
        return True

    def fresh_key(self) -> str:
        self.counter += 1
        return f"key-{self.counter}-{uuid.uuid4().hex[:8]}"

    # -- the wire --------------------------------------------------------------

    def post(self, action, payout_id, body, fields, key, actor) -> Sent:
        headers = {"X-Admin-Token": TOKEN}
        if key is not None:
            headers["Idempotency-Key"] = key
        if actor is not None:
            headers["X-Admin-Actor"] = actor
        res = self.client.post(f"{PAYOUTS}/{payout_id}/{action}", body, headers=headers, status="*")
        sent = Sent(action, payout_id, body, key, actor, fields, res.status_int, res.body)
        self.history.append(sent)
        return sent

    def get(self, path, params=None, status="*"):
        return self.client.get(path, params=params or {}, headers={"X-Admin-Token": TOKEN}, status=status)

    def expect_fresh(self, sent: Sent):
        """Checks the answer to a request the server had to run, and updates the model."""
        payout, fields = self.model.get(sent.payout_id), sent.fields
        if isinstance(fields, str):
            expected = (400, {"error": fields})
        elif payout is None:
            expected = (404, {"error": "payout_not_found"})
        elif self.apply(payout, sent.action, fields, sent.actor):
            expected = (200, {"ok": True})
        else:
            expected = (409, {"error": "payout_not_actionable"})
        assert (sent.status, json.loads(sent.answer)) == expected, sent
        event(f"{sent.action} -> {sent.status}")
        # Refused before the repository (a bad body): the key is not stored.
        if sent.key is not None and not isinstance(fields, str):
            self.keys[sent.key] = sent

    # -- rules -----------------------------------------------------------------

    @initialize(target=payouts, owner=st.sampled_from([("alice", "USDT"), ("bob", "EUR")]),
                earned=earnings, amount=amounts)
    def start_with_a_payout(self, owner, earned, amount):
        """Earnings and a first payout, so that every run has one to act on."""
        user, currency = owner
        self.credit(user, currency, earned + amount)
        return self.create_payout(owner, amount)

    @rule(user=st.sampled_from(USERS), currency=st.sampled_from(CURRENCIES), amount=earnings | amounts)
    def credit(self, user, currency, amount):
        self.repo.credit(user, amount, currency, "model earnings")
        self.earned[(user, currency)] = self.earned.get((user, currency), Decimal(0)) + amount

    @rule(target=payouts, owner=st.sampled_from(OWNERS), amount=amounts)
    def create_payout(self, owner, amount):
        user, currency = owner
        if amount > self.balance(user, currency)["available"]:
            try:
                self.repo.create_payout(user, amount, currency, "0xdest")
            except domain.WouldOverdraw:
                event("create -> would overdraw")
                return multiple()
            raise AssertionError(f"{amount} {currency} for {user} overdrew {self.balance(user, currency)}")
        payout = self.repo.create_payout(user, amount, currency, "0xdest")
        event("create -> requested")
        self.model[payout["id"]] = ModelPayout(payout["id"], user, currency, amount, payout["created_at"])
        return payout["id"]

    @rule(payout_id=payouts, data=st.data(), use_key=st.booleans(), actor=st.sampled_from(ACTORS))
    def act(self, payout_id, data, use_key, actor):
        action = data.draw(st.sampled_from(["processing", "sent", "failed"]), label="action")
        valid = [(b, f) for b, f in BODIES[action] if not isinstance(f, str)]
        body, fields = data.draw(st.sampled_from(valid) | st.sampled_from(BODIES[action]), label="body")
        key = self.fresh_key() if use_key else None
        self.expect_fresh(self.post(action, payout_id, body, fields, key, actor))

    @rule(action=st.sampled_from(["processing", "sent", "failed"]), use_key=st.booleans())
    def act_on_unknown_payout(self, action, use_key):
        body = b'{"tx_hash": "0x1"}' if action == "sent" else b""
        key = self.fresh_key() if use_key else None
        self.expect_fresh(self.post(action, str(uuid.uuid4()), body, {}, key, None))

    @rule(payout_id=payouts)
    def cancel(self, payout_id):
        payout = self.model[payout_id]
        if payout.status in SOURCES["cancel"]:
            self.repo.cancel_payout(payout_id)
            self.apply(payout, "cancel", {}, None)
        else:
            try:
                self.repo.cancel_payout(payout_id)
            except domain.PayoutNotActionable:
                return
            raise AssertionError(f"cancelled a payout in {payout.status}")

    @precondition(lambda self: self.history)
    @rule(data=st.data())
    def retry(self, data):
        """The same request again, as a client does when the answer was lost."""
        first = data.draw(st.sampled_from(self.history), label="first")
        again = self.post(first.action, first.payout_id, first.body, first.fields, first.key, first.actor)
        stored = self.keys.get(first.key) if first.key is not None else None
        if first.status == 422:
            assert again.answer == b'{"error":"idempotency_key_reused"}\n'
            return
        if stored is None:
            self.expect_fresh(again)
            return
        # Replayed byte for byte, with no second side effect (the invariants
        # check the events).
        assert (again.status, again.answer) == (stored.status, stored.answer)

    @precondition(lambda self: self.keys)
    @rule(data=st.data(), change=st.sampled_from(["body", "route", "payout"]))
    def reuse_key_for_another_request(self, data, change):
        key = data.draw(st.sampled_from(sorted(self.keys)), label="key")
        first = self.keys[key]
        action, payout_id, body = first.action, first.payout_id, first.body
        if change == "body":
            body = {"failed": b'{"reason": "other"}', "sent": b'{"tx_hash": "0xother"}',
                    "processing": b'{"other": 1}'}[action]
            if body == first.body:
                body += b" "
        elif change == "route":
            action, body = ("failed", b"") if action != "failed" else ("processing", b"")
        else:
            payout_id = str(uuid.uuid4())
        again = self.post(action, payout_id, body, {}, key, first.actor)
        assert (again.status, json.loads(again.answer)) == (422, {"error": "idempotency_key_reused"})

    @rule(
        status=st.sampled_from([None, "requested", "processing", "sent", "failed", "cancelled"]),
        user=st.sampled_from((None, *USERS)),
        limit=st.integers(min_value=1, max_value=4),
    )
    def walk_the_list(self, status, user, limit):
        seen = self.walk(limit=limit, status=status, user_id=user)
        wanted = [
            p for p in self.model.values()
            if (status is None or p.status == status) and (user is None or p.user == user)
        ]
        wanted.sort(key=lambda p: (p.created_at, p.id), reverse=True)
        assert [p["id"] for p in seen] == [p.id for p in wanted]

    def walk(self, limit, **filters):
        params = {name: value for name, value in filters.items() if value is not None}
        params["limit"] = str(limit)
        seen, cursor = [], None
        while True:
            page = self.get(PAYOUTS, {**params, **({"cursor": cursor} if cursor else {})}, status=200).json
            assert len(page["payouts"]) <= limit
            seen.extend(page["payouts"])
            cursor = page["next_cursor"]
            if cursor is None:
                return seen
            assert len(page["payouts"]) == limit
            assert len(seen) <= len(self.model), "the list never ends"

    # -- after every step --------------------------------------------------------

    @invariant()
    def payouts_agree(self):
        listed = self.walk(limit=200)
        assert len(listed) == len({p["id"] for p in listed}) == len(self.model)
        for payout in listed:
            model = self.model[payout["id"]]
            assert (payout["status"], payout["user_id"], payout["currency"], payout["reason"],
                    payout["tx_hash"], payout["created_at"]) == (
                model.status, model.user, model.currency, model.reason, model.tx_hash, model.created_at)
            assert Decimal(payout["amount"]) == model.amount

    @invariant()
    def events_replay_to_the_status(self):
        for model in self.model.values():
            events = self.get(f"{PAYOUTS}/{model.id}/events", status=200).json["events"]
            assert [(e["from_status"], e["to_status"], e["reason"], e["tx_hash"], e["actor"]) for e in events] == (
                model.events)
            status = None  # before its creation
            for recorded in events:
                assert recorded["from_status"] == status and recorded["payout_id"] == model.id
                status = recorded["to_status"]
            assert status == model.status

    @invariant()
    def balances_agree_and_are_never_negative(self):
        for user in USERS:
            currencies = sorted({c for (u, c) in self.earned if u == user}
                                | {p.currency for p in self.model.values() if p.user == user})
            res = self.get(f"{USER_VIEW}/{user}")
            if not currencies:
                assert (res.status_int, res.json) == (404, {"error": "user_not_found"})
                continue
            assert res.status_int == 200
            view = res.json
            assert [b["currency"] for b in view["balances"]] == currencies
            for balance in view["balances"]:
                got = {name: Decimal(balance[name]) for name in ("earned", "reserved", "sent", "available")}
                assert got == self.balance(user, balance["currency"])
                assert got["available"] >= 0
            mine = [p for p in self.model.values() if p.user == user]
            assert view["counts"] == {s: sum(p.status == s for p in mine) for s in STATUSES}


PayoutMachine.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_payouts_agree_with_the_model = PayoutMachine.TestCase
