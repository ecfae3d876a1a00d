"""The Python client (``triport``) against a live gunicorn on both backends:
every method, every error class, paging, and retries that replay the first
answer. A FlakyProxy between client and server loses answers on purpose.
"""

from __future__ import annotations

import datetime
import json
import os
import time
import logging
import pathlib
import pickle
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
from helpers import PAYOUTS, TOKEN, UNKNOWN_ID as UNKNOWN, events_of, transitions
from flaky_proxy import FlakyProxy, answer
from live import Gunicorn, free_port

import triport
from triport import (
    AdminTokenInvalid,
    AdminTokenUnset,
    DatabaseUnavailable,
    Forbidden,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    Internal,
    InsufficientBalance,
    InvalidActor,
    InvalidBulk,
    InvalidAmount,
    InvalidCurrency,
    InvalidCursor,
    InvalidDestination,
    InvalidIdempotencyKey,
    InvalidJson,
    InvalidLimit,
    InvalidOrder,
    InvalidPayoutId,
    InvalidStatus,
    InvalidTime,
    InvalidTxHash,
    InvalidUserId,
    MethodNotAllowed,
    InvalidType,
    NotFound,
    PayoutNotActionable,
    PayoutNotFound,
    TransportError,
    TriportAdmin,
    TriportError,
    UserNotFound,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Fast retries for tests; the defaults back off for seconds.
FAST = {"backoff": 0.01, "max_backoff": 0.02, "timeout": 5}
IN_USE = answer(409, {"error": "idempotency_key_in_use"})
UNAVAILABLE = answer(503, {"error": "database_unavailable"})

# The seed page's Python example (spec/mark-payout-failed.txt), verbatim.
SEED_EXAMPLE = '''\
import os
from triport import TriportAdmin
admin = TriportAdmin(admin_token=os.environ["TRIPORT_ADMIN_TOKEN"])
admin.referrals.payouts.mark_failed(
payout_id,
reason="destination wallet rejected the transfer",
)
'''


@pytest.fixture
def server(repo, database_url, tmp_path):
    with Gunicorn(database_url, TOKEN, workers=2, log_path=tmp_path / "gunicorn.log") as server:
        yield server


def client(url_or_port, token=TOKEN, **options) -> TriportAdmin:
    url = url_or_port if isinstance(url_or_port, str) else f"http://127.0.0.1:{url_or_port}"
    return TriportAdmin(admin_token=token, base_url=url, **{**FAST, **options})


def statuses(events):
    return [(e["from_status"], e["to_status"]) for e in events]


# -- every method, live ------------------------------------------------------

@pytest.mark.live
def test_every_method_against_a_live_server(server, repo, make_payout, monkeypatch):
    monkeypatch.setenv("TRIPORT_BASE_URL", f"http://127.0.0.1:{server.port}")
    admin = TriportAdmin(admin_token=TOKEN, actor="ops@example.com", **FAST)
    sent, failed, quiet = make_payout("alice", "7.50"), make_payout("alice", "2.50"), make_payout("bob")

    assert admin.referrals.payouts.mark_processing(sent) is True
    assert admin.referrals.payouts.mark_sent(sent, tx_hash="0xabc") is True
    assert admin.referrals.payouts.mark_failed(uuid.UUID(failed), reason="wallet rejected") is True
    assert admin.referrals.payouts.mark_failed(quiet.upper()) is True  # no reason, either case

    events = admin.referrals.payouts.events(sent)
    assert statuses(events) == [(None, "requested"), ("requested", "processing"), ("processing", "sent")]
    assert events[-1]["tx_hash"] == "0xabc" and {e["actor"] for e in events[1:]} == {"ops@example.com"}
    [event] = transitions(admin.referrals.payouts.events(failed))
    assert (event["to_status"], event["reason"]) == ("failed", "wallet rejected")
    assert transitions(admin.referrals.payouts.events(quiet))[0]["reason"] is None

    listed = list(admin.referrals.payouts.list())
    assert [p["id"] for p in listed] == [quiet, failed, sent]  # newest first
    assert [p["id"] for p in admin.referrals.payouts.list(status="sent")] == [sent]
    assert {p["id"] for p in admin.referrals.payouts.list(user_id="alice", limit=1)} == {sent, failed}
    assert list(admin.referrals.payouts.list(status="processing")) == []
    assert listed[-1]["tx_hash"] == "0xabc" and listed[-1]["amount"] == "7.50"

    view = admin.referrals.users.get("alice")
    assert view["user_id"] == "alice"
    assert view["counts"] == {"requested": 0, "processing": 0, "sent": 1, "failed": 1, "cancelled": 0}
    [usdt] = view["balances"]
    assert Decimal(usdt["sent"]) == Decimal("7.50") and Decimal(usdt["available"]) == Decimal("2.50")


@pytest.mark.live
def test_user_ids_that_need_quoting_reach_the_server_intact(server, make_payout):
    odd = "jörg ?#%&+ 名"
    payout_id = make_payout(odd)
    admin = client(server.port)
    assert admin.referrals.users.get(odd)["user_id"] == odd
    assert [p["id"] for p in admin.referrals.payouts.list(user_id=odd)] == [payout_id]
    with pytest.raises(UserNotFound):
        admin.referrals.users.get("jörg")


@pytest.mark.live
def test_pages_are_followed_to_the_end(server, make_payout):
    created = {make_payout("alice" if i % 2 else "bob", "1.00") for i in range(25)}
    with FlakyProxy(server.port) as proxy:
        admin = client(proxy.url)
        ids = [p["id"] for p in admin.referrals.payouts.list(limit=10)]
        assert len(proxy.requests) == 3  # 10 + 10 + 5
        bob = [p["id"] for p in admin.referrals.payouts.list(user_id="bob", limit=4)]
        stars = [p["id"] for p in admin.referrals.payouts.list(status="requested", limit=200)]
    assert len(ids) == 25 and set(ids) == created
    assert len(bob) == 13 and len(set(bob)) == 13 and set(bob) < created
    assert stars == ids
    cursors = [target for _, target, _, _ in proxy.requests if "cursor=" in target]
    assert len(cursors) == 2 + 3 and all("limit=" in target for target in cursors)


@pytest.mark.live
def test_the_queue_oldest_first_and_by_time(server, repo, make_payout):
    ids = [make_payout("alice", "1.00") for _ in range(5)]
    repo.transition(ids[1], "processing")
    payouts = client(server.port).referrals.payouts
    assert [p["id"] for p in payouts.list(order="oldest", limit=2)] == ids
    second = repo.get_payout(ids[1])
    after = datetime.datetime.fromisoformat(second["created_at"])
    assert [p["id"] for p in payouts.list(created_after=after, order="oldest")] == ids[2:]
    assert [p["id"] for p in payouts.list(created_before=second["created_at"])] == [ids[0]]
    stalled = payouts.list(status="processing", updated_before=datetime.datetime.now(datetime.UTC))
    assert [p["id"] for p in stalled] == [ids[1]]
    with pytest.raises(ValueError):
        payouts.list(updated_before=datetime.datetime.now())


# -- every error class, live -------------------------------------------------

@pytest.mark.live
def test_every_error_the_client_can_provoke(server, make_payout):
    done, open_ = make_payout(), make_payout()
    with FlakyProxy(server.port) as proxy:
        admin = client(proxy.url)
        payouts, users = admin.referrals.payouts, admin.referrals.users
        payouts.mark_failed(done)
        key = str(uuid.uuid4())
        payouts.mark_failed(open_, reason="first", idempotency_key=key)
        cases = [
            (lambda: payouts.mark_failed("not-a-uuid"), InvalidPayoutId, 400),
            (lambda: payouts.events("42"), InvalidPayoutId, 400),
            (lambda: payouts.mark_failed(str(uuid.uuid4())), PayoutNotFound, 404),
            (lambda: payouts.events(str(uuid.uuid4())), PayoutNotFound, 404),
            (lambda: payouts.mark_failed(done, reason="again"), PayoutNotActionable, 409),
            (lambda: payouts.mark_sent(done, tx_hash="0x1"), PayoutNotActionable, 409),
            (lambda: payouts.mark_processing(done), PayoutNotActionable, 409),
            (lambda: payouts.mark_sent(done, tx_hash=""), InvalidTxHash, 400),
            (lambda: payouts.mark_sent(done, tx_hash="x" * 257), InvalidTxHash, 400),
            (lambda: payouts.mark_failed(done, reason=42), InvalidJson, 400),
            (lambda: payouts.mark_failed(done, reason="r" * 5000), InvalidJson, 400),
            (lambda: payouts.list(status="lost"), InvalidStatus, 400),
            (lambda: payouts.list(limit=0), InvalidLimit, 400),
            (lambda: payouts.list(order="asc"), InvalidOrder, 400),
            (lambda: payouts.list(created_after="yesterday"), InvalidTime, 400),
            (lambda: payouts.list(limit=201), InvalidLimit, 400),
            (lambda: payouts.list(user_id="u" * 129), InvalidUserId, 400),
            (lambda: users.get("nobody"), UserNotFound, 404),
            (lambda: users.get("a/b"), NotFound, 404),  # no user id holds a "/"
            (lambda: payouts.mark_failed(done, idempotency_key="k" * 256), InvalidIdempotencyKey, 400),
            (lambda: payouts.mark_failed(open_, reason="second", idempotency_key=key), IdempotencyKeyReused, 422),
            (lambda: client(proxy.url, actor="a" * 129).referrals.payouts.mark_failed(done),
             InvalidActor, 400),
            (lambda: client(proxy.url, token="wrong").referrals.payouts.list(), AdminTokenInvalid, 401),
            (lambda: client(proxy.url, token="").referrals.users.get("alice"), AdminTokenInvalid, 401),
            # Not reachable through the public calls; through the transport they still map.
            (lambda: admin._transport.get(PAYOUTS, {"cursor": "forged"}), InvalidCursor, 400),
            (lambda: admin._transport._send("DELETE", PAYOUTS, None, {}, False), MethodNotAllowed, 405),
        ]
        for call, kind, status in cases:
            before = len(proxy.requests)
            with pytest.raises(kind) as caught:
                call()
            assert (caught.value.status, caught.value.tag) == (status, kind.tag)
            assert isinstance(caught.value, TriportError)
            assert len(proxy.requests) == before + 1, f"{kind.__name__} was retried"
            assert TOKEN not in str(caught.value) + repr(caught.value)
        # A refused action still names the key it sent, for a later safe retry.
        with pytest.raises(PayoutNotActionable) as caught:
            payouts.mark_failed(done)
        assert caught.value.idempotency_key == proxy.requests[-1][2]["idempotency-key"]


@pytest.mark.live
def test_a_server_without_a_token_refuses_everything(repo, database_url, make_payout, tmp_path):
    payout_id = make_payout()
    with Gunicorn(database_url, None, workers=1, log_path=tmp_path / "g.log") as server:
        admin = client(server.port)
        for call in (lambda: admin.referrals.payouts.mark_failed(payout_id),
                     lambda: admin.referrals.payouts.list(),
                     lambda: admin.referrals.users.get("alice")):
            with pytest.raises(AdminTokenUnset) as caught:
                call()
            assert caught.value.status == 401
    assert transitions(repo, payout_id) == [] and repo.get_payout(payout_id)["status"] == "requested"


# -- retries: a lost answer is replayed, never turned into a 409 -------------

@pytest.mark.live
@pytest.mark.parametrize("loss", ["drop", "stall"])
def test_a_lost_answer_is_replayed_by_the_retry(server, repo, make_payout, loss):
    payout_id = make_payout()
    # The stalled attempt times out; the retry gets 2 s, room on a busy machine
    # (0.5 s was once too little for the replay under a loaded CI run).
    with FlakyProxy(server.port, [loss], stall_seconds=6) as proxy:
        admin = client(proxy.url, timeout=2 if loss == "stall" else 5)
        assert admin.referrals.payouts.mark_failed(payout_id, reason="wallet rejected") is True
    assert len(proxy.requests) == 2
    (_, _, first, body1), (_, _, second, body2) = proxy.requests
    assert first["idempotency-key"] == second["idempotency-key"] and body1 == body2
    [event] = transitions(repo, payout_id)
    assert (event["to_status"], event["reason"]) == ("failed", "wallet rejected")


@pytest.mark.live
def test_a_retry_without_the_key_would_have_been_a_409(server, repo, make_payout):
    """The control for the test above: the first attempt did move the payout."""
    payout_id = make_payout()
    with FlakyProxy(server.port, ["drop"]) as proxy:
        with pytest.raises(TransportError):
            client(proxy.url, max_attempts=1).referrals.payouts.mark_failed(payout_id)
        with pytest.raises(PayoutNotActionable):
            client(proxy.url).referrals.payouts.mark_failed(payout_id)  # a new call: a new key
    assert len(transitions(repo, payout_id)) == 1


@pytest.mark.live
def test_in_use_and_5xx_answers_are_retried(server, repo, make_payout):
    payout_id = make_payout()
    html = answer(502, text="<html>bad gateway</html>")
    with FlakyProxy(server.port, [IN_USE, UNAVAILABLE, html]) as proxy:
        admin = client(proxy.url)
        assert admin.referrals.payouts.mark_processing(payout_id) is True
        assert len({headers["idempotency-key"] for _, _, headers, _ in proxy.requests}) == 1
        proxy.script += [UNAVAILABLE, answer(500, {"error": "internal"})]
        assert [p["id"] for p in admin.referrals.payouts.list()] == [payout_id]
        proxy.script += [html]
        assert transitions(admin.referrals.payouts.events(payout_id))[0]["to_status"] == "processing"
    assert len(proxy.requests) == 4 + 3 + 2
    assert len(transitions(repo, payout_id)) == 1


# -- retries, bounded; answers that are not the API's ------------------------

@pytest.mark.parametrize("canned, kind, tag", [
    (UNAVAILABLE, DatabaseUnavailable, "database_unavailable"),
    (answer(500, {"error": "internal"}), Internal, "internal"),
    (answer(502, text="<html>bad gateway</html>"), TriportError, None),
])
def test_retries_are_bounded(canned, kind, tag):
    with FlakyProxy(None, [canned] * 10) as proxy, pytest.raises(kind) as caught:
        client(proxy.url).referrals.payouts.mark_failed(str(uuid.uuid4()))
    assert type(caught.value) is kind and caught.value.tag == tag
    assert len(proxy.requests) == 4


def test_in_use_to_the_end_raises_with_the_key_to_retry_with():
    with FlakyProxy(None, [IN_USE] * 4) as proxy, pytest.raises(IdempotencyKeyInUse) as caught:
        client(proxy.url).referrals.payouts.mark_sent(str(uuid.uuid4()), tx_hash="0x1")
    assert len(proxy.requests) == 4
    assert caught.value.idempotency_key == proxy.requests[0][2]["idempotency-key"]


def test_in_use_is_not_retried_on_reads_and_unknown_tags_stay_readable():
    with FlakyProxy(None, [answer(418, {"error": "brand_new"}), answer(200, text="not json")]) as proxy:
        admin = client(proxy.url)
        with pytest.raises(TriportError) as caught:
            admin.referrals.users.get("alice")
        assert (type(caught.value), caught.value.status, caught.value.tag) == (TriportError, 418, "brand_new")
        with pytest.raises(TriportError) as caught:
            admin.referrals.users.get("alice")
        assert (caught.value.status, caught.value.tag) == (200, None)
    assert len(proxy.requests) == 2


def test_no_server_is_a_transport_error_after_every_attempt():
    admin = client(free_port(), max_attempts=3)
    with pytest.raises(TransportError) as caught:
        admin.referrals.payouts.mark_failed(str(uuid.uuid4()))
    assert caught.value.status is None and caught.value.tag is None
    assert "3 attempt" in str(caught.value) and caught.value.idempotency_key


# -- construction, the token, the error table --------------------------------

def test_base_url_comes_from_the_argument_then_the_environment_then_the_default(monkeypatch):
    monkeypatch.delenv("TRIPORT_BASE_URL", raising=False)
    assert TriportAdmin(admin_token="t").base_url == "https://api.triport.io"
    monkeypatch.setenv("TRIPORT_BASE_URL", "http://127.0.0.1:9/prefix/")
    assert TriportAdmin(admin_token="t").base_url == "http://127.0.0.1:9/prefix"
    assert TriportAdmin(admin_token="t", base_url="https://x.example").base_url == "https://x.example"
    for bad in ("ftp://x", "127.0.0.1:8000", "http://x/?q=1", "http://x y"):
        with pytest.raises(ValueError):
            TriportAdmin(admin_token="t", base_url=bad)


def test_the_token_is_never_shown(caplog):
    secret = "s3cret-token-value"
    with pytest.raises(ValueError) as caught:
        TriportAdmin(admin_token=secret + "\r\nX-Evil: 1")
    assert secret not in str(caught.value)
    with pytest.raises(TypeError):
        TriportAdmin(admin_token=None)
    caplog.set_level(logging.DEBUG)
    with FlakyProxy(None, [UNAVAILABLE] * 2 + [answer(401, {"error": "admin_token_invalid"})]) as proxy:
        admin = client(proxy.url, token=secret, actor="ops")
        with pytest.raises(AdminTokenInvalid) as caught:
            admin.referrals.payouts.mark_failed(str(uuid.uuid4()))
    assert proxy.requests[0][2]["x-admin-token"] == secret
    assert proxy.requests[0][2]["x-admin-actor"] == "ops"
    assert "retrying" in caplog.text
    shown = [repr(admin), repr(admin._transport), str(caught.value), repr(caught.value), caplog.text,
             str(vars(caught.value)), repr(pickle.loads(pickle.dumps(caught.value)))]
    assert not any(secret in text for text in shown)


def test_every_tag_of_the_api_has_its_own_class():
    document = json.loads((ROOT / "triport_payouts" / "openapi.json").read_text())
    tags = document["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
    assert set(tags) == set(triport.errors.ERROR_CLASSES)
    for tag in tags:
        kind = triport.errors.error_for(tag)
        assert kind is not TriportError and issubclass(kind, TriportError) and kind.tag == tag
        assert getattr(triport, kind.__name__) is kind
    assert triport.errors.error_for("brand_new") is TriportError


# -- the seed page's example, as written --------------------------------------

@pytest.mark.live
def test_the_seed_page_python_example_runs_as_written(server, repo, make_payout):
    payout_id = make_payout()
    env = {"PATH": "/usr/bin:/bin", "TRIPORT_ADMIN_TOKEN": TOKEN,
           "TRIPORT_BASE_URL": f"http://127.0.0.1:{server.port}"}
    code = f"payout_id = {payout_id!r}\n" + SEED_EXAMPLE
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    [event] = transitions(repo, payout_id)
    assert (event["to_status"], event["reason"]) == ("failed", "destination wallet rejected the transfer")


def _feed_until(list_events, count: int, seconds: float = 10.0):
    """(events, feed) of list_events() once it gives `count` events: on
    PostgreSQL the feed holds events back while any writing transaction is
    open, other tests' too when the suite runs on several workers."""
    deadline = time.monotonic() + seconds
    while True:
        feed = list_events()
        events = list(feed)
        if len(events) >= count or time.monotonic() > deadline:
            return events, feed
        time.sleep(0.05)


def test_the_feed_is_followed_to_its_end_and_tailed_from_its_cursor(server, repo, make_payout):
    admin = client(server.port)
    first, second = make_payout("alice", "1.00"), make_payout("bob", "2.00")
    admin.referrals.payouts.mark_processing(first)
    events, feed = _feed_until(lambda: admin.referrals.events.list(limit=2), 3)
    assert [(e["payout"]["id"], e["type"]) for e in events] == [
        (first, "payout.requested"), (second, "payout.requested"), (first, "payout.processing")]
    assert events[-1]["payout"]["status"] == "processing"
    assert list(admin.referrals.events.list(after=feed.cursor)) == []

    admin.referrals.payouts.mark_sent(first, tx_hash="0xabc")
    later, _ = _feed_until(lambda: admin.referrals.events.list(after=feed.cursor), 1)
    assert [(e["payout"]["id"], e["type"], e["tx_hash"]) for e in later] == [(first, "payout.sent", "0xabc")]
    settled, _ = _feed_until(lambda: admin.referrals.events.list(type=["payout.sent", "payout.failed"]), 1)
    assert [(e["payout"]["id"], e["type"]) for e in settled] == [(first, "payout.sent")]
    with pytest.raises(InvalidType) as raised:
        admin.referrals.events.list(type="payout.paid")
    assert (raised.value.status, raised.value.tag) == (400, "invalid_type")


# -- the write calls -----------------------------------------------------------


@pytest.mark.live
def test_credits_payout_requests_and_cancel(server, repo):
    admin = client(server.port, actor="billing")
    credit = admin.referrals.credits.create("carol", "30.00", "USDT", note="november")
    assert {k: credit[k] for k in ("user_id", "amount", "currency", "note")} == {
        "user_id": "carol", "amount": "30.00", "currency": "USDT", "note": "november"}
    assert admin.referrals.credits.create("carol", Decimal("0.000000000000000001"), "USDT")["amount"] == (
        "0.000000000000000001")
    payout = admin.referrals.payouts.create("carol", "20.00", "USDT", "0xcarol")
    assert (payout["status"], payout["amount"], payout["destination"]) == ("requested", "20.00", "0xcarol")
    with pytest.raises(InsufficientBalance) as refused:
        admin.referrals.payouts.create("carol", "20.00", "USDT", "0xcarol")
    assert (refused.value.status, refused.value.tag) == (409, "insufficient_balance")
    assert admin.referrals.payouts.cancel(payout["id"]) is True
    with pytest.raises(PayoutNotActionable):
        admin.referrals.payouts.cancel(payout["id"])
    assert [(e["to_status"], e["actor"]) for e in events_of(repo, payout["id"])] == [
        ("requested", "billing"), ("cancelled", "billing")]
    for bad, error in ((("a/b", "1", "USDT", "0x"), InvalidUserId), (("c", "1.", "USDT", "0x"), InvalidAmount),
                       (("c", "1", "usd", "0x"), InvalidCurrency), (("c", "1", "USDT", " "), InvalidDestination)):
        with pytest.raises(error):
            admin.referrals.payouts.create(*bad)
    with pytest.raises(TypeError):
        admin.referrals.payouts.create("carol", 1.5, "USDT", "0x")


@pytest.mark.live
def test_a_lost_201_is_replayed_and_makes_one_payout(server, repo):
    admin = client(server.port)
    admin.referrals.credits.create("dave", "50", "USDT")
    with FlakyProxy(server.port, ["drop"]) as proxy:
        payout = client(proxy.url).referrals.payouts.create("dave", "10", "USDT", "0xdave")
    assert len(proxy.requests) == 2
    assert proxy.requests[0][2]["idempotency-key"] == proxy.requests[1][2]["idempotency-key"]
    assert [p["id"] for p in admin.referrals.payouts.list(user_id="dave")] == [payout["id"]]


@pytest.mark.live
def test_a_token_outside_its_scope_is_forbidden(server, database_url):
    done = subprocess.run([sys.executable, "-m", "triport_payouts", "token", "create", "--name", "viewer",
                           "--scope", "read"], env={**os.environ, "TRIPORT_DATABASE": database_url},
                          capture_output=True, text=True, check=True)
    viewer = client(server.port, token=json.loads(done.stdout)["token"])
    assert list(viewer.referrals.payouts.list()) == []
    with pytest.raises(Forbidden) as refused:
        viewer.referrals.credits.create("eve", "1", "USDT")
    assert (refused.value.status, refused.value.tag) == (403, "forbidden")


@pytest.mark.live
def test_bulk_reports_each_item(server, repo, make_payout):
    admin = client(server.port)
    a, b = make_payout(), make_payout()
    answer = admin.referrals.payouts.bulk("sent", [{"id": a, "tx_hash": "0xbatch"}, {"id": UNKNOWN, "tx_hash": "0x"},
                                                   {"id": b, "tx_hash": "0xbatch"}])
    assert answer == {"results": [{"id": a, "ok": True}, {"id": UNKNOWN, "ok": False, "error": "payout_not_found"},
                                  {"id": b, "ok": True}], "succeeded": 2, "failed": 1}
    with pytest.raises(InvalidBulk):
        admin.referrals.payouts.bulk("sent", [])
