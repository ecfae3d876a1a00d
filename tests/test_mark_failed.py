"""POST /v1/admin/referrals/payouts/{id}/failed: the rows of the spec's error
table, the response headers, and what a success stores on the payout and its
audit event. Which check answers when several fail (401 admin_token_unset
among them) is in test_order_of_checks.py; 404 not_found and 405 in
test_routing.py.
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from helpers import AUTH, PAYOUTS, TOKEN, UNKNOWN_ID, assert_untouched, post_body, snapshot, transitions


def failed_url(payout_id: str) -> str:
    return f"{PAYOUTS}/{payout_id}/failed"








# -- 200 ---------------------------------------------------------------------


def test_success_answers_ok_and_moves_the_payout_to_failed(client, repo, make_payout):
    payout_id = make_payout()
    res = client.post_json(failed_url(payout_id), {"reason": "wallet rejected"}, headers=AUTH, status=200)
    assert res.json == {"ok": True}
    payout = repo.get_payout(payout_id)
    assert payout["status"] == "failed"
    assert payout["reason"] == "wallet rejected"
    assert payout["tx_hash"] is None
    [event] = transitions(repo, payout_id)
    assert {k: v for k, v in event.items() if k != "at"} == {
        "payout_id": payout_id,
        "from_status": "requested",
        "to_status": "failed",
        "reason": "wallet rejected",
        "tx_hash": None,
        "actor": None,
        "on_behalf_of": None,
    }
    assert event["at"] == payout["updated_at"]


@pytest.mark.parametrize("reason", [
    "destination wallet rejected the transfer",
    "ünïcödé: Grüße, 你好, Привет",
    "emoji 🚀💸🧾 and a ZWJ family 👩‍👩‍👧",
    "line one\nline two\r\n\ttabbed",
    "  leading and trailing spaces  ",
    "sent",
    '{"status": "sent"}',
    "x" * 4000,
])
def test_reason_is_stored_as_given_and_status_is_always_failed(client, repo, make_payout, reason):
    payout_id = make_payout()
    res = client.post_json(failed_url(payout_id), {"reason": reason}, headers=AUTH, status=200)
    assert res.json == {"ok": True}
    payout = repo.get_payout(payout_id)
    assert payout["status"] == "failed"
    assert payout["reason"] == reason
    [event] = transitions(repo, payout_id)
    assert event["reason"] == reason
    assert event["to_status"] == "failed"


@pytest.mark.parametrize("body", [
    b"",
    b"{}",
    b'{"reason": null}',
    b'{"unknown": 1, "status": "sent", "tx_hash": "0xabc"}',
], ids=["empty", "empty-object", "reason-null", "unknown-keys"])
def test_body_without_a_reason_stores_no_reason(client, repo, make_payout, body):
    payout_id = make_payout()
    res = post_body(client, failed_url(payout_id), body, status=200)
    assert res.json == {"ok": True}
    payout = repo.get_payout(payout_id)
    assert (payout["status"], payout["reason"], payout["tx_hash"]) == ("failed", None, None)
    [event] = transitions(repo, payout_id)
    assert (event["reason"], event["tx_hash"]) == (None, None)


@pytest.mark.parametrize("body", [b"", b"{}", b'{"reason": "no content type"}'])
def test_content_type_is_not_required(client, repo, make_payout, body):
    payout_id = make_payout()
    res = client.request(failed_url(payout_id), method="POST", body=body, headers=AUTH, status=200)
    assert res.json == {"ok": True}
    assert repo.get_payout(payout_id)["status"] == "failed"


def test_unknown_keys_are_ignored(client, repo, make_payout):
    payout_id = make_payout()
    body = {"reason": "r", "status": "sent", "tx_hash": "0xabc", "amount": "999", "nested": {"a": [1, 2]}}
    res = client.post_json(failed_url(payout_id), body, headers=AUTH, status=200)
    assert res.json == {"ok": True}
    payout = repo.get_payout(payout_id)
    assert (payout["status"], payout["reason"], payout["tx_hash"], payout["amount"]) == (
        "failed", "r", None, "10.00")


@pytest.mark.parametrize("actor", [
    "alice@ops",
    "José Ñoño 运营 🛠",
    "a" * 128,
    "é" * 128,
])
def test_actor_is_recorded_from_x_admin_actor(client, repo, make_payout, actor):
    payout_id = make_payout()
    # A WSGI server hands header bytes over decoded as latin-1.
    raw = actor.encode("utf-8").decode("latin-1")
    res = post_body(client, failed_url(payout_id), b"{}", status=200,
                    extra_environ={"HTTP_X_ADMIN_ACTOR": raw})
    assert res.json == {"ok": True}
    [event] = transitions(repo, payout_id)
    assert event["actor"] == actor


def test_actor_is_null_when_absent(client, repo, make_payout):
    payout_id = make_payout()
    post_body(client, failed_url(payout_id), b"{}", status=200)
    [event] = transitions(repo, payout_id)
    assert event["actor"] is None


def test_processing_payout_can_be_marked_failed(client, repo, make_payout):
    payout_id = make_payout()
    repo.transition(payout_id, "processing")
    res = client.post_json(failed_url(payout_id), {"reason": "bank bounced"}, headers=AUTH, status=200)
    assert res.json == {"ok": True}
    payout = repo.get_payout(payout_id)
    assert (payout["status"], payout["reason"]) == ("failed", "bank bounced")
    assert [(e["from_status"], e["to_status"]) for e in transitions(repo, payout_id)] == [
        ("requested", "processing"), ("processing", "failed"),
    ]


@pytest.mark.parametrize("payout_id_form", [str.upper, lambda s: s[:18].upper() + s[18:]], ids=["upper", "mixed"])
def test_upper_case_payout_id_is_accepted_and_canonicalised(client, repo, make_payout, payout_id_form):
    payout_id = make_payout()
    res = post_body(client, failed_url(payout_id_form(payout_id)), b"{}", status=200)
    assert res.json == {"ok": True}
    assert repo.get_payout(payout_id)["status"] == "failed"
    [event] = transitions(repo, payout_id)
    assert event["payout_id"] == payout_id


# -- 400 invalid_payout_id --------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])  # refused before any database: one backend says it
@pytest.mark.parametrize("bad_id", [
    "not-a-uuid",
    "12345",
    "4f2c9b1e7a3d4c0b9e213f8a6d5c1b22",
    "{4f2c9b1e-7a3d-4c0b-9e21-3f8a6d5c1b22}",
    "urn:uuid:4f2c9b1e-7a3d-4c0b-9e21-3f8a6d5c1b22",
    "4f2c9b1e-7a3d-4c0b-9e21-3f8a6d5c1b2",
    "4f2c9b1e-7a3d-4c0b-9e21-3f8a6d5c1b223",
    "4f2c9b1e-7a3d-4c0b-9e21-3f8a6d5c1b2g",
    "4f2c9b1e-7a3d4c0b-9e21-3f8a6d5c1b22-",
    "4f2c9b1e_7a3d_4c0b_9e21_3f8a6d5c1b22",
    " 4f2c9b1e-7a3d-4c0b-9e21-3f8a6d5c1b22",
    "4f2c9b1e-7a3d-4c0b-9e21-3f8a6d5c1b22 ",
    "4f2c9b1e-7a3d-4c0b-9e21-3f8a6d5c1b22\n",
    "４f2c9b1e-7a3d-4c0b-9e21-3f8a6d5c1b22",
    "..",
    "-",
])
def test_malformed_payout_id_is_invalid_payout_id(client, repo, make_payout, bad_id):
    payout_id = make_payout()
    # PATH_INFO as a server gives it: the raw path bytes decoded as latin-1.
    path_info = failed_url(bad_id).encode("utf-8").decode("latin-1")
    res = post_body(client, "/", b"{}", status=400, extra_environ={"PATH_INFO": path_info})
    assert res.json == {"error": "invalid_payout_id"}
    assert_untouched(repo, payout_id)


# -- 400 invalid_json -------------------------------------------------------


INVALID_JSON_BODIES = {
    "truncated": b'{"reason": "x"',
    "garbage": b"not json",
    "trailing-garbage": b'{"reason": "x"} x',
    "two-objects": b"{}{}",
    "single-quotes": b"{'reason': 'x'}",
    "trailing-comma": b'{"reason": "x",}',
    "array": b"[]",
    "array-of-object": b'[{"reason": "x"}]',
    "string": b'"x"',
    "number": b"1",
    "null": b"null",
    "true": b"true",
    "non-utf8-bytes": b'{"reason": "\xff\xfe"}',
    "latin1-text": '{"reason": "caf\u00e9"}'.encode("latin-1"),
    "utf16": '{"reason": "x"}'.encode("utf-16"),
    "nan": b'{"reason": NaN}',
    "infinity": b'{"reason": Infinity}',
    "minus-infinity": b'{"reason": -Infinity}',
    "nan-key-value": b'{"other": NaN}',
    "reason-int": b'{"reason": 1}',
    "reason-float": b'{"reason": 1.5}',
    "reason-list": b'{"reason": ["x"]}',
    "reason-empty-list": b'{"reason": []}',
    "reason-object": b'{"reason": {"text": "x"}}',
    "reason-true": b'{"reason": true}',
    "reason-false": b'{"reason": false}',
    "reason-lone-high-surrogate": b'{"reason": "\\ud800"}',
    "reason-lone-low-surrogate": b'{"reason": "ok \\udfff"}',
    "reason-nul": b'{"reason": "\\u0000"}',
    "reason-embedded-nul": b'{"reason": "before\\u0000after"}',
    "deeply-nested": b'{"x": ' + b"[" * 2000 + b"]" * 2000 + b"}",
    "over-4-kib": json.dumps({"reason": "x" * 5000}).encode(),
}


@pytest.mark.parametrize("backend", ["sqlite"])  # refused before any database: one backend says it
@pytest.mark.parametrize("body", list(INVALID_JSON_BODIES.values()), ids=list(INVALID_JSON_BODIES))
def test_undecodable_body_is_invalid_json(client, repo, make_payout, body):
    payout_id = make_payout()
    res = post_body(client, failed_url(payout_id), body, status=400)
    assert res.json == {"error": "invalid_json"}
    assert_untouched(repo, payout_id)


# -- 400 invalid_actor ------------------------------------------------------------


BAD_ACTORS = {
    "empty": "",
    "too-long": "a" * 129,
    "too-long-multibyte": ("é" * 129).encode("utf-8").decode("latin-1"),
    "control-soh": "ops\x01",
    "control-newline": "ops\nroot",
    "control-tab": "ops\tx",
    "control-del": "ops\x7f",
    "control-nul": "ops\x00",
    "non-utf8-byte": "ops\xff",
    "truncated-utf8": "ops\xc3",
    "utf8-c1-control": "\u0085".encode("utf-8").decode("latin-1"),
}


@pytest.mark.parametrize("backend", ["sqlite"])  # refused before any database: one backend says it
@pytest.mark.parametrize("actor", list(BAD_ACTORS.values()), ids=list(BAD_ACTORS))
def test_malformed_actor_header_is_invalid_actor(client, repo, make_payout, actor):
    payout_id = make_payout()
    res = post_body(client, failed_url(payout_id), b"{}", status=400,
                    extra_environ={"HTTP_X_ADMIN_ACTOR": actor})
    assert res.json == {"error": "invalid_actor"}
    assert_untouched(repo, payout_id)


# -- 401 ----------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {},
    {"X-Admin-Token": ""},
    {"X-Admin-Token": "wrong"},
    {"X-Admin-Token": TOKEN.upper()},
    {"X-Admin-Token": TOKEN[:-1]},
    {"X-Admin-Token": TOKEN + "x"},
    {"X-Admin-Token": TOKEN + " "},
    {"Authorization": f"Bearer {TOKEN}"},
], ids=["missing", "empty", "wrong", "wrong-case", "prefix", "longer", "trailing-space", "bearer"])
def test_missing_or_wrong_token_is_admin_token_invalid(client, repo, make_payout, headers):
    payout_id = make_payout()
    res = post_body(client, failed_url(payout_id), b"{}", headers=headers, status=401)
    assert res.json == {"error": "admin_token_invalid"}
    assert_untouched(repo, payout_id)


def test_token_not_latin1_encodable_is_admin_token_invalid(client, repo, make_payout):
    payout_id = make_payout()
    res = post_body(client, failed_url(payout_id), b"{}", headers={}, status=401,
                    extra_environ={"HTTP_X_ADMIN_TOKEN": "\u20ac" + TOKEN})
    assert res.json == {"error": "admin_token_invalid"}
    assert_untouched(repo, payout_id)


# -- 404 ----------------------------------------------------------------------


def test_unknown_payout_is_payout_not_found(client, repo):
    res = post_body(client, failed_url(str(uuid.uuid4())), b"{}", status=404)
    assert res.json == {"error": "payout_not_found"}


def test_unknown_upper_case_payout_is_payout_not_found(client):
    res = post_body(client, failed_url(UNKNOWN_ID.upper()), b"{}", status=404)
    assert res.json == {"error": "payout_not_found"}


# -- 409 ----------------------------------------------------------------------


def _to_failed(repo, payout_id):
    repo.transition(payout_id, "failed", reason="first")


def _to_sent(repo, payout_id):
    repo.transition(payout_id, "sent", tx_hash="0xabc")


def _to_cancelled(repo, payout_id):
    repo.cancel_payout(payout_id)


@pytest.mark.parametrize("settle", [_to_failed, _to_sent, _to_cancelled], ids=["failed", "sent", "cancelled"])
@pytest.mark.parametrize("body", [b"{}", b'{"reason": "second"}'], ids=["no-reason", "reason"])
def test_settled_payout_is_payout_not_actionable_and_unchanged(client, repo, make_payout, settle, body):
    payout_id = make_payout()
    settle(repo, payout_id)
    before = snapshot(repo, payout_id)
    res = post_body(client, failed_url(payout_id), body, status=409,
                    extra_environ={"HTTP_X_ADMIN_ACTOR": "bob"})
    assert res.json == {"error": "payout_not_actionable"}
    assert snapshot(repo, payout_id) == before


def test_second_mark_failed_is_payout_not_actionable_and_keeps_the_first(client, repo, make_payout):
    payout_id = make_payout()
    client.post_json(failed_url(payout_id), {"reason": "first"}, headers=AUTH, status=200)
    before = snapshot(repo, payout_id)
    res = client.post_json(failed_url(payout_id), {"reason": "second"}, headers=AUTH, status=409)
    assert res.json == {"error": "payout_not_actionable"}
    assert snapshot(repo, payout_id) == before
    assert before[0]["reason"] == "first"
    assert len(transitions(before[1])) == 1


# -- 500 ----------------------------------------------------------------------


def test_unexpected_error_is_internal_and_logged_not_leaked(app, client, repo, make_payout, monkeypatch, caplog):
    payout_id = make_payout()
    secret = "db password is hunter2 at /srv/secret.sqlite3"

    def explode(*args, **kwargs):
        raise RuntimeError(secret)

    monkeypatch.setattr(app.repository, "transition", explode)
    with caplog.at_level(logging.ERROR):
        res = client.post_json(failed_url(payout_id), {"reason": "x"}, headers=AUTH, status=500)
    assert res.json == {"error": "internal"}
    assert secret not in res.text
    assert "Traceback" not in res.text
    logged = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], RuntimeError)]
    assert len(logged) == 1
    assert str(logged[0].exc_info[1]) == secret
    assert "Traceback" in caplog.text
    assert_untouched(repo, payout_id)


# -- response headers on every outcome -------------------------------------------------


def _respond(kind, app, client, repo, make_payout, monkeypatch):
    payout_id = make_payout()
    if kind == 200:
        return post_body(client, failed_url(payout_id), b"{}", status=200)
    if kind == "400-id":
        return post_body(client, failed_url("x"), b"{}", status=400)
    if kind == "400-json":
        return post_body(client, failed_url(payout_id), b"[", status=400)
    if kind == "400-actor":
        return post_body(client, failed_url(payout_id), b"{}", status=400,
                         extra_environ={"HTTP_X_ADMIN_ACTOR": ""})
    if kind == 401:
        return post_body(client, failed_url(payout_id), b"{}", headers={}, status=401)
    if kind == "404-payout":
        return post_body(client, failed_url(UNKNOWN_ID), b"{}", status=404)
    if kind == "404-route":
        return post_body(client, "/nope", b"{}", status=404)
    if kind == 405:
        return client.get(failed_url(payout_id), status=405)
    if kind == 409:
        _to_sent(repo, payout_id)
        return post_body(client, failed_url(payout_id), b"{}", status=409)
    if kind == 500:
        monkeypatch.setattr(app.repository, "transition", lambda *a, **k: 1 / 0)
        return post_body(client, failed_url(payout_id), b"{}", status=500)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", [200, "400-id", "400-json", "400-actor", 401, "404-payout", "404-route",
                                  405, 409, 500])
def test_every_response_is_uncacheable_json_with_a_length(app, client, repo, make_payout, monkeypatch, kind):
    res = _respond(kind, app, client, repo, make_payout, monkeypatch)
    assert res.content_type == "application/json"
    assert res.headers["Content-Length"] == str(len(res.body))
    assert res.headers["Cache-Control"] == "no-store"
    assert isinstance(json.loads(res.body.decode("utf-8")), dict)


def test_a_refusal_the_api_has_no_answer_for_is_a_logged_500(app, client, make_payout, monkeypatch, caplog):
    from triport_payouts import domain

    class Unmapped(domain.DomainError):
        """a refusal no route can give"""

    def overdraw(*args, **kwargs):
        raise Unmapped()

    payout_id = make_payout()
    monkeypatch.setattr(app.repository, "transition", overdraw)
    with caplog.at_level(logging.ERROR, logger="triport_payouts"):
        res = client.post_json(f"{PAYOUTS}/{payout_id}/failed", {}, headers=AUTH, status=500)
    assert res.json == {"error": "internal"}
    assert any("unmapped refusal" in r.getMessage() and "Unmapped" in r.getMessage()
               for r in caplog.records)
