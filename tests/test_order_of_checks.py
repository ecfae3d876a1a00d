"""Which check answers when a request fails several: the README's "Checks run
in this order, and the first that fails answers", each check shown winning
over the ones after it:

1. 404 not_found (no route has the path)
2. 405 method_not_allowed, with Allow
3. 401 admin_token_unset, then 401 admin_token_invalid
4. 400 invalid_payout_id
5. the other 400s: on the actions invalid_actor, invalid_idempotency_key,
   invalid_json, invalid_tx_hash (in that order); on the list invalid_status,
   invalid_user_id, invalid_limit, invalid_cursor (in that order)
6. 422 idempotency_key_reused, 409 idempotency_key_in_use, then
   404 payout_not_found, 404 user_not_found, 409 payout_not_actionable
7. 503 database_unavailable

Checks 1 to 5 need no database: most requests refused by them go to
`bare_client`, whose database has no schema (a request that reached it would
answer 500); those on a real payout show it unchanged.
Some neighbours cannot fail together, so no request can order them:
payout_not_found, user_not_found and payout_not_actionable (other routes, or
an unknown payout that cannot be settled), and the checks of 6, which need
the database, with 503. Which route a path and method reach is in
test_routing.py.
"""

from __future__ import annotations

import pytest

from helpers import AUTH, PAYOUTS, UNKNOWN_ID, assert_untouched, call, Input, make_environ, move_to, post_body, snapshot
from triport_payouts import idempotency

USERS = "/v1/admin/referrals/users"
ACTIONS = ("failed", "processing", "sent")
BAD_ID = "not-a-uuid"
NOT_JSON = b"{not json"
NO_TOKEN = {}
WRONG_TOKEN = {"X-Admin-Token": "wrong"}
BAD_ACTOR = {"X-Admin-Actor": "x" * 129}
EMPTY_ACTOR = {"X-Admin-Actor": ""}
BAD_KEY = {"Idempotency-Key": ""}


def url(payout_id, action):
    return f"{PAYOUTS}/{payout_id}/{action}"


def events_url(payout_id):
    return f"{PAYOUTS}/{payout_id}/events"








@pytest.fixture
def client_with_token(make_client, repo, database_url):
    """client_with_token(admin_token) -> a WebTest client of an app over the test's database
    (with its schema) configured with that token."""
    return lambda admin_token: make_client(database_url, admin_token)


@pytest.fixture
def unopenable_client(make_client, tmp_path):
    """A client of an app whose database cannot even be opened: any access answers 503."""
    return make_client(str(tmp_path / "nodir" / "x.sqlite3"))


# -- 1. 404 not_found before everything -----------------------------------------------


@pytest.mark.parametrize("headers", [NO_TOKEN, WRONG_TOKEN], ids=["no-token", "wrong-token"])
@pytest.mark.parametrize("path", [f"{PAYOUTS}/{UNKNOWN_ID}", f"{PAYOUTS}/{UNKNOWN_ID}/nope", "/nope"])
def test_unknown_path_with_bad_token_is_404(client, path, headers):
    res = post_body(client, path, b"{}", headers, 404)
    assert res.json == {"error": "not_found"}


@pytest.mark.parametrize("path", [f"{PAYOUTS}/{UNKNOWN_ID}", "/nope"])
def test_unknown_path_with_wrong_method_is_404(client, path):
    res = client.get(path, status=404)
    assert res.json == {"error": "not_found"}


def test_body_problems_on_other_routes_are_not_reached_before_routing(app):
    stream = Input(blocking=True)
    environ = make_environ(stream, path="/nope", content_length="1000000000")
    status, _, answer = call(app, environ)
    assert (status, answer) == (404, {"error": "not_found"})
    assert stream.reads == 0


# -- 2. 405 method_not_allowed before the token and the handler's checks ---------------


# A wrong method on a path with a bad or unknown id: 405 wins over 400 and 404 too.
WRONG_METHOD = [
    *(pytest.param("GET", url(payout_id, action), "POST", id=f"GET-{action}-{name}")
      for action in ACTIONS for payout_id, name in [(UNKNOWN_ID, "unknown-id"), (BAD_ID, "bad-id")]),
    pytest.param("PATCH", PAYOUTS, "GET, POST", id="PATCH-list"),
    pytest.param("POST", events_url(UNKNOWN_ID), "GET", id="POST-events-unknown-id"),
    pytest.param("POST", events_url(BAD_ID), "GET", id="POST-events-bad-id"),
    pytest.param("POST", f"{USERS}/x", "GET", id="POST-user"),
]


@pytest.mark.parametrize("headers", [NO_TOKEN, WRONG_TOKEN, AUTH], ids=["no-token", "wrong-token", "token"])
@pytest.mark.parametrize(("method", "path", "allowed"), WRONG_METHOD)
def test_wrong_method_is_405_whatever_else_is_wrong(bare_client, method, path, allowed, headers):
    res = bare_client.request(path, method=method, headers=headers, status=405)
    assert res.json == {"error": "method_not_allowed"}
    assert res.headers["Allow"] == allowed


@pytest.mark.parametrize(("method", "path", "allowed"), [
    pytest.param("DELETE", url(UNKNOWN_ID, "failed"), "POST", id="DELETE-failed"),
    pytest.param("GET", url(BAD_ID, "sent"), "POST", id="GET-sent-bad-id"),
    pytest.param("PATCH", PAYOUTS, "GET, POST", id="PATCH-list"),
    pytest.param("PUT", events_url(UNKNOWN_ID), "GET", id="PUT-events"),
])
def test_wrong_method_with_token_unset_is_405(client_with_token, method, path, allowed):
    client = client_with_token("")
    res = client.request(path, method=method, status=405)
    assert res.json == {"error": "method_not_allowed"}
    assert res.headers["Allow"] == allowed


# -- 3. 401: admin_token_unset, then admin_token_invalid, before the handler's checks ----


@pytest.mark.parametrize("admin_token", [None, ""], ids=["none", "empty"])
@pytest.mark.parametrize("headers", [{}, {"X-Admin-Token": ""}, {"X-Admin-Token": "anything"}],
                         ids=["no-header", "empty-header", "some-header"])
def test_unset_admin_token_refuses_every_request(client_with_token, repo, make_payout, admin_token, headers):
    client = client_with_token(admin_token)
    payout_id = make_payout()
    res = post_body(client, url(payout_id, "failed"), b"{}", headers, 401)
    assert res.json == {"error": "admin_token_unset"}
    assert_untouched(repo, payout_id)


# Requests that fail the token check and later ones, to a server without a token.
UNSET_CASES = [
    pytest.param("POST", url(BAD_ID, "failed"), b"{", AUTH, id="failed-bad-id-bad-body"),
    pytest.param("POST", url(UNKNOWN_ID, "sent"), NOT_JSON, {**AUTH, **BAD_ACTOR, **BAD_KEY},
                 id="sent-bad-actor-key-and-body"),
    pytest.param("POST", url(UNKNOWN_ID, "processing"), b"{}", NO_TOKEN, id="processing-unknown-id-no-token"),
    pytest.param("GET", f"{PAYOUTS}?status=bogus&limit=0", None, WRONG_TOKEN, id="list-bad-query"),
    pytest.param("GET", events_url(BAD_ID), None, NO_TOKEN, id="events-bad-id"),
    pytest.param("GET", f"{USERS}/nobody", None, WRONG_TOKEN, id="unknown-user"),
]


@pytest.mark.parametrize(("method", "path", "body", "headers"), UNSET_CASES)
def test_unset_token_comes_before_the_rest(client_with_token, method, path, body, headers):
    client = client_with_token(None)
    if method == "POST":
        res = post_body(client, path, body, headers, 401)
    else:
        res = client.get(path, headers=headers, status=401)
    assert res.json == {"error": "admin_token_unset"}


@pytest.mark.parametrize("headers", [NO_TOKEN, WRONG_TOKEN], ids=["no-token", "wrong-token"])
@pytest.mark.parametrize("path", [
    pytest.param(events_url("nope"), id="events-bad-id"),
    pytest.param(events_url(UNKNOWN_ID), id="events-unknown-id"),
    pytest.param(f"{PAYOUTS}?status=bogus&limit=0&cursor=x", id="list-bad-query"),
    pytest.param(f"{USERS}/nobody", id="unknown-user"),
])
def test_token_is_checked_before_a_read_routes_own_checks(bare_client, path, headers):
    res = bare_client.get(path, headers=headers, status=401)
    assert res.json == {"error": "admin_token_invalid"}


def test_oversized_body_is_not_read_before_the_token_check(app, make_payout):
    stream = Input(blocking=True)
    environ = make_environ(stream, path=url(make_payout(), "failed"), content_length="1000000000",
                           HTTP_X_ADMIN_TOKEN="wrong")
    status, _, answer = call(app, environ)
    assert (status, answer) == (401, {"error": "admin_token_invalid"})
    assert stream.reads == 0


# -- 3 to 6 on the actions, none reaching the database -------------------------------

# (payout id, headers, body, status, tag), the same on each action.
ORDER_CASES = [
    pytest.param(BAD_ID, NO_TOKEN, NOT_JSON, 401, "admin_token_invalid", id="no-token-before-bad-id"),
    pytest.param(BAD_ID, WRONG_TOKEN, NOT_JSON, 401, "admin_token_invalid", id="wrong-token-before-bad-id"),
    pytest.param(BAD_ID, EMPTY_ACTOR, b"{", 401, "admin_token_invalid",
                 id="no-token-before-bad-id-empty-actor"),
    pytest.param(BAD_ID, {**WRONG_TOKEN, **EMPTY_ACTOR}, b"{", 401, "admin_token_invalid",
                 id="wrong-token-before-bad-id-empty-actor"),
    pytest.param(BAD_ID, {**NO_TOKEN, **BAD_KEY}, b"{}", 401, "admin_token_invalid",
                 id="no-token-before-bad-id-bad-key"),
    pytest.param(UNKNOWN_ID, NO_TOKEN, b"{}", 401, "admin_token_invalid", id="no-token-before-not-found"),
    pytest.param(UNKNOWN_ID, WRONG_TOKEN, b"{}", 401, "admin_token_invalid",
                 id="wrong-token-before-not-found"),
    pytest.param(BAD_ID, {**AUTH, **BAD_ACTOR}, NOT_JSON, 400, "invalid_payout_id",
                 id="bad-id-before-bad-actor"),
    pytest.param(BAD_ID, {**AUTH, **EMPTY_ACTOR}, b"{", 400, "invalid_payout_id",
                 id="bad-id-before-empty-actor-and-bad-body"),
    pytest.param(BAD_ID, {**AUTH, **BAD_KEY}, b"{}", 400, "invalid_payout_id", id="bad-id-before-bad-key"),
    pytest.param(BAD_ID, AUTH, NOT_JSON, 400, "invalid_payout_id", id="bad-id-before-bad-body"),
    pytest.param(BAD_ID, AUTH, b"x" * 5000, 400, "invalid_payout_id", id="bad-id-before-oversized-body"),
    pytest.param(UNKNOWN_ID, {**AUTH, **BAD_ACTOR, **BAD_KEY}, b"{}", 400, "invalid_actor",
                 id="bad-actor-before-bad-key"),
    pytest.param(UNKNOWN_ID, {**AUTH, **BAD_ACTOR}, NOT_JSON, 400, "invalid_actor",
                 id="bad-actor-before-bad-body"),
    pytest.param(UNKNOWN_ID, {**AUTH, "X-Admin-Actor": "   "}, b"{}", 400, "invalid_actor",
                 id="blank-actor-before-not-found"),
    pytest.param(UNKNOWN_ID, {**AUTH, **EMPTY_ACTOR}, b"{}", 400, "invalid_actor",
                 id="empty-actor-before-not-found"),
    # The README lists invalid_idempotency_key last among the 400s; the key is checked before the body.
    pytest.param(UNKNOWN_ID, {**AUTH, **BAD_KEY}, NOT_JSON, 400, "invalid_idempotency_key",
                 id="bad-key-before-bad-body"),
    pytest.param(UNKNOWN_ID, {**AUTH, "Idempotency-Key": "k" * 256}, b"{}", 400, "invalid_idempotency_key",
                 id="bad-key-before-not-found"),
    pytest.param(UNKNOWN_ID, AUTH, NOT_JSON, 400, "invalid_json", id="bad-json-before-not-found"),
    pytest.param(UNKNOWN_ID, AUTH, b"[]", 400, "invalid_json", id="array-body-before-not-found"),
]

# The same for what only one action's body holds.
FIELD_CASES = [
    pytest.param("sent", BAD_ID, AUTH, b'{"tx_hash": ""}', 400, "invalid_payout_id",
                 id="sent-bad-id-before-bad-tx-hash"),
    pytest.param("sent", UNKNOWN_ID, {**AUTH, **BAD_ACTOR}, b'{"tx_hash": ""}', 400, "invalid_actor",
                 id="sent-bad-actor-before-bad-tx-hash"),
    pytest.param("sent", UNKNOWN_ID, {**AUTH, **BAD_KEY}, b'{"tx_hash": ""}', 400, "invalid_idempotency_key",
                 id="sent-bad-key-before-bad-tx-hash"),
    pytest.param("sent", UNKNOWN_ID, AUTH, b'{"tx_hash": ""', 400, "invalid_json",
                 id="sent-bad-json-before-bad-tx-hash"),
    pytest.param("failed", UNKNOWN_ID, AUTH, b'{"reason": 1}', 400, "invalid_json",
                 id="failed-bad-reason-before-not-found"),
]


@pytest.mark.parametrize(("action", "payout_id", "headers", "body", "status", "tag"), [
    *(pytest.param(action, *case.values, id=f"{action}-{case.id}")
      for action in ACTIONS for case in ORDER_CASES),
    *FIELD_CASES,
])
def test_order_of_checks_on_an_action(bare_client, action, payout_id, headers, body, status, tag):
    res = post_body(bare_client, url(payout_id, action), body, headers, status)
    assert res.json == {"error": tag}


@pytest.mark.parametrize("body", [b"{", b"[]", b"x" * 5000], ids=["malformed", "array", "oversized"])
@pytest.mark.parametrize("action", ACTIONS)
def test_bad_actor_comes_before_bad_body(client, repo, make_payout, action, body):
    payout_id = make_payout()
    res = post_body(client, url(payout_id, action), body, AUTH, 400,
               extra_environ={"HTTP_X_ADMIN_ACTOR": "a" * 129})
    assert res.json == {"error": "invalid_actor"}
    assert_untouched(repo, payout_id)


# -- 5. the list's own 400s ---------------------------------------------------------


@pytest.mark.parametrize(("query", "tag"), [
    ("status=bogus&user_id=&limit=0&cursor=x", "invalid_status"),
    ("user_id=&limit=0&cursor=x&status=bogus", "invalid_status"),
    ("user_id=&limit=0&cursor=x", "invalid_user_id"),
    ("limit=0&cursor=x&user_id=", "invalid_user_id"),
    ("limit=0&cursor=x", "invalid_limit"),
    ("cursor=x&limit=0", "invalid_limit"),
    ("cursor=x", "invalid_cursor"),
])
def test_list_query_checks_in_order(bare_client, query, tag):
    res = bare_client.get(f"{PAYOUTS}?{query}", headers=AUTH, status=400)
    assert res.json == {"error": tag}


# -- 3 to 5 before 409 payout_not_actionable -------------------------------------------

# (headers, body, status, tag) on a settled payout, the same on each action.
SETTLED_CASES = [
    pytest.param(NO_TOKEN, b"{}", 401, "admin_token_invalid", id="no-token-before-409"),
    pytest.param(WRONG_TOKEN, b"{}", 401, "admin_token_invalid", id="wrong-token-before-409"),
    pytest.param(AUTH, NOT_JSON, 400, "invalid_json", id="bad-json-before-409"),
    pytest.param({**AUTH, **BAD_ACTOR}, b"{}", 400, "invalid_actor", id="bad-actor-before-409"),
    pytest.param({**AUTH, **BAD_KEY}, b"{}", 400, "invalid_idempotency_key", id="bad-key-before-409"),
]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize(("headers", "body", "status", "tag"), SETTLED_CASES)
def test_order_of_checks_on_settled_payout(client, repo, make_payout, action, headers, body, status, tag):
    payout_id = make_payout()
    move_to(repo, payout_id, "sent")
    before = snapshot(repo, payout_id)
    res = post_body(client, url(payout_id, action), body, headers, status)
    assert res.json == {"error": tag}
    assert snapshot(repo, payout_id) == before


@pytest.mark.parametrize("status", ["sent", "failed", "cancelled"])
@pytest.mark.parametrize(("action", "body", "tag"), [
    pytest.param("sent", b'{"tx_hash": ""}', "invalid_tx_hash", id="sent-empty-tx-hash"),
    pytest.param("failed", b'{"reason": 1}', "invalid_json", id="failed-reason-not-text"),
])
def test_invalid_field_before_409(client, repo, make_payout, action, body, tag, status):
    payout_id = make_payout()
    move_to(repo, payout_id, status)
    before = snapshot(repo, payout_id)
    res = post_body(client, url(payout_id, action), body, AUTH, 400)
    assert res.json == {"error": tag}
    assert snapshot(repo, payout_id) == before


# -- 5 before 6: a malformed request never reaches its Idempotency-Key ----------------


@pytest.mark.parametrize(("action", "target", "headers", "body", "tag"), [
    pytest.param("failed", "other", {**AUTH, **BAD_ACTOR}, b"{}", "invalid_actor", id="bad-actor"),
    pytest.param("failed", "same", AUTH, b"[]", "invalid_json", id="bad-json"),
    pytest.param("sent", "same", AUTH, b'{"tx_hash": ""}', "invalid_tx_hash", id="bad-tx-hash"),
    pytest.param("processing", BAD_ID, AUTH, b"{}", "invalid_payout_id", id="bad-id"),
])
def test_a_400_wins_over_a_reused_key(client, repo, make_payout, action, target, headers, body, tag):
    payout_id, other_id = make_payout(), make_payout(user_id="bob")
    key = {"Idempotency-Key": "used"}
    assert post_body(client, url(payout_id, "failed"), b"{}", {**AUTH, **key}, 200).json == {"ok": True}
    target = {"same": payout_id, "other": other_id}.get(target, target)
    res = post_body(client, url(target, action), body, {**headers, **key}, 400)
    assert res.json == {"error": tag}
    assert_untouched(repo, other_id)
    # The key still holds the first answer.
    assert post_body(client, url(payout_id, "failed"), b"{}", {**AUTH, **key}, 200).json == {"ok": True}


@pytest.mark.parametrize(("action", "headers", "body", "tag"), [
    pytest.param("processing", {**AUTH, **BAD_ACTOR}, b"{}", "invalid_actor", id="bad-actor"),
    pytest.param("failed", AUTH, b"[]", "invalid_json", id="bad-json"),
    pytest.param("sent", AUTH, b'{"tx_hash": ""}', "invalid_tx_hash", id="bad-tx-hash"),
])
def test_a_400_wins_over_a_key_in_use(client, repo, make_payout, action, headers, body, tag):
    payout_id = make_payout()
    # The very same request is running under the key.
    assert repo.claim_key("running", idempotency.fingerprint(action, payout_id, body),
                          "2000-01-01T00:00:00.000000Z") is None
    res = post_body(client, url(payout_id, action), body, {**headers, "Idempotency-Key": "running"}, 400)
    assert res.json == {"error": tag}
    assert_untouched(repo, payout_id)


# -- 6. 422 idempotency_key_reused, 409 idempotency_key_in_use, then the payout -------


def test_a_reused_key_is_422_even_while_its_first_request_runs(client, repo, make_payout):
    payout_id = make_payout()
    fingerprint = idempotency.fingerprint("processing", payout_id, b"{}")
    assert repo.claim_key("running", fingerprint, "2000-01-01T00:00:00.000000Z") is None
    res = post_body(client, url(payout_id, "processing"), b'{"other": 1}', {**AUTH, "Idempotency-Key": "running"},
               422)
    assert res.json == {"error": "idempotency_key_reused"}
    assert_untouched(repo, payout_id)


@pytest.mark.parametrize("action", ACTIONS)
def test_a_reused_key_is_422_before_payout_not_found(client, make_payout, action):
    key = {"Idempotency-Key": "used"}
    assert post_body(client, url(make_payout(), "failed"), b"{}", {**AUTH, **key}, 200).json == {"ok": True}
    res = post_body(client, url(UNKNOWN_ID, action), b'{"tx_hash": "0x1"}', {**AUTH, **key}, 422)
    assert res.json == {"error": "idempotency_key_reused"}


@pytest.mark.parametrize("action", ACTIONS)
def test_a_key_in_use_is_409_before_payout_not_found(client, repo, action):
    body = b'{"tx_hash": "0x1"}'
    assert repo.claim_key("running", idempotency.fingerprint(action, UNKNOWN_ID, body),
                          "2000-01-01T00:00:00.000000Z") is None
    res = post_body(client, url(UNKNOWN_ID, action), body, {**AUTH, "Idempotency-Key": "running"}, 409)
    assert res.json == {"error": "idempotency_key_in_use"}


@pytest.mark.parametrize("action", ACTIONS)
def test_a_reused_key_is_422_before_payout_not_actionable(client, repo, make_payout, action):
    payout_id = make_payout()
    key = {"Idempotency-Key": "used"}
    other_id = make_payout(user_id="bob")
    assert post_body(client, url(other_id, "failed"), b"{}", {**AUTH, **key}, 200).json == {"ok": True}
    move_to(repo, payout_id, "sent")
    before = snapshot(repo, payout_id)
    res = post_body(client, url(payout_id, action), b'{"tx_hash": "0x1"}', {**AUTH, **key}, 422)
    assert res.json == {"error": "idempotency_key_reused"}
    assert snapshot(repo, payout_id) == before


@pytest.mark.parametrize("action", ACTIONS)
def test_a_key_in_use_is_409_in_use_before_payout_not_actionable(client, repo, make_payout, action):
    payout_id = make_payout()
    move_to(repo, payout_id, "sent")
    before = snapshot(repo, payout_id)
    body = b'{"tx_hash": "0x1"}'
    assert repo.claim_key("running", idempotency.fingerprint(action, payout_id, body),
                          "2000-01-01T00:00:00.000000Z") is None
    res = post_body(client, url(payout_id, action), body, {**AUTH, "Idempotency-Key": "running"}, 409)
    assert res.json == {"error": "idempotency_key_in_use"}
    assert snapshot(repo, payout_id) == before


# -- 1 to 5 before 7: what needs no database is answered without it ---------------------


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "tag"), [
    pytest.param("GET", "/nope", None, AUTH, 404, "not_found", id="no-route"),
    pytest.param("GET", url(UNKNOWN_ID, "failed"), None, AUTH, 405, "method_not_allowed", id="wrong-method"),
    pytest.param("GET", PAYOUTS, None, NO_TOKEN, 401, "admin_token_invalid", id="list-no-token"),
    pytest.param("GET", events_url(UNKNOWN_ID), None, NO_TOKEN, 401, "admin_token_invalid",
                 id="events-no-token"),
    pytest.param("GET", f"{USERS}/alice", None, NO_TOKEN, 401, "admin_token_invalid", id="user-no-token"),
    pytest.param("POST", url(UNKNOWN_ID, "processing"), b"{}", NO_TOKEN, 401, "admin_token_invalid",
                 id="processing-no-token"),
    pytest.param("POST", url(UNKNOWN_ID, "sent"), b'{"tx_hash": "0xabc"}', NO_TOKEN, 401,
                 "admin_token_invalid", id="sent-no-token"),
    pytest.param("POST", url(UNKNOWN_ID, "failed"), b"{}", NO_TOKEN, 401, "admin_token_invalid",
                 id="failed-no-token"),
    pytest.param("POST", url(BAD_ID, "failed"), b"{}", AUTH, 400, "invalid_payout_id", id="bad-id"),
    pytest.param("GET", events_url(BAD_ID), None, AUTH, 400, "invalid_payout_id", id="events-bad-id"),
    pytest.param("POST", url(UNKNOWN_ID, "failed"), b"{}", {**AUTH, **BAD_ACTOR}, 400, "invalid_actor",
                 id="bad-actor"),
    pytest.param("POST", url(UNKNOWN_ID, "failed"), b"{}", {**AUTH, **BAD_KEY}, 400,
                 "invalid_idempotency_key", id="bad-key"),
    pytest.param("POST", url(UNKNOWN_ID, "failed"), NOT_JSON, AUTH, 400, "invalid_json", id="bad-json"),
    pytest.param("POST", url(UNKNOWN_ID, "sent"), b"{}", AUTH, 400, "invalid_tx_hash", id="bad-tx-hash"),
    pytest.param("GET", f"{PAYOUTS}?status=bogus", None, AUTH, 400, "invalid_status", id="bad-status"),
    pytest.param("GET", f"{PAYOUTS}?user_id=", None, AUTH, 400, "invalid_user_id", id="bad-user-id"),
    pytest.param("GET", f"{PAYOUTS}?limit=0", None, AUTH, 400, "invalid_limit", id="bad-limit"),
    pytest.param("GET", f"{PAYOUTS}?cursor=x", None, AUTH, 400, "invalid_cursor", id="bad-cursor"),
])
def test_checks_before_the_database_win_over_database_unavailable(unopenable_client, method, path, body,
                                                                    headers, status, tag):
    if method == "POST":
        res = post_body(unopenable_client, path, body, headers, status)
    else:
        res = unopenable_client.get(path, headers=headers, status=status)
    assert res.json == {"error": tag}
