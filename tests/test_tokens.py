"""Named operator tokens: the command line that makes them, the scopes that
bound them, the actor they stand for, and revocation, on both backends
(through the WSGI app; tests/test_tokens_live.py runs real gunicorns)."""

from __future__ import annotations

import csv
import io
import json
import logging
import re

import pytest
import webtest
from changefeed import caught_up, webtest_get
from helpers import AUTH, CREDITS, PAYOUTS, TOKEN, UNKNOWN_ID, data_rows, events_of

from triport_payouts import auth, cli
from triport_payouts.app import create_app
from triport_payouts.routing import ROUTES
from triport_payouts.tokens import TokenStore, digest

BAD_ID = "not-a-uuid"


@pytest.fixture
def run(repo, run):
    """conftest's run, on a database with the schema."""
    return run


@pytest.fixture
def create_token(run):
    def create(name, scope):
        code, out, err = run("token", "create", "--name", name, "--scope", scope)
        assert code == 0, err
        return json.loads(out)["token"]

    return create


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(app):
    """The app's authenticator on a clock the test moves."""
    fake = Clock()
    app.auth = auth.Authenticator(TOKEN, TokenStore(app.repository.db), clock=fake)
    return fake


def named(token, actor=None):
    headers = {"X-Admin-Token": token}
    if actor is not None:
        headers["X-Admin-Actor"] = actor
    return headers


# -- the command line -----------------------------------------------------------------


def test_token_create_prints_the_token_once_and_stores_only_its_hash(run, repo):
    code, out, err = run("token", "create", "--name", "maria", "--scope", "operator")
    assert code == 0, err
    shown = json.loads(out)
    assert set(shown) == {"name", "scope", "token", "created_at"}
    assert (shown["name"], shown["scope"]) == ("maria", "operator")
    assert re.fullmatch(r"tpk_[A-Za-z0-9_-]{43}", shown["token"])
    rows = repo.db.connection().execute("SELECT * FROM operator_tokens").fetchall()
    assert len(rows) == 1
    assert shown["token"] not in repr(rows)
    assert digest(shown["token"].encode()) in [value for value in rows[0]]


def test_token_list_shows_no_secret_and_revoke_removes_it(run, create_token):
    token = create_token("maria", "operator")
    create_token("billing-service", "system")
    code, out, _ = run("token", "list")
    assert code == 0
    listed = [json.loads(line) for line in out.splitlines()]
    assert [(t["name"], t["scope"]) for t in listed] == [("billing-service", "system"), ("maria", "operator")]
    assert all(set(t) == {"name", "scope", "created_at", "last_used_at"} for t in listed)
    assert all(t["last_used_at"] is None for t in listed)
    assert token not in out and digest(token.encode()) not in out
    code, _, err = run("token", "revoke", "maria")
    assert code == 0 and "maria" in err
    assert [json.loads(line)["name"] for line in run("token", "list")[1].splitlines()] == ["billing-service"]


def test_names_are_unique_among_live_tokens_and_a_revoked_name_can_be_reused(run, create_token):
    first = create_token("maria", "read")
    code, out, err = run("token", "create", "--name", "maria", "--scope", "admin")
    assert (code, out) == (1, "") and err.count("\n") == 1 and "maria" not in out
    assert run("token", "revoke", "maria")[0] == 0
    second = create_token("maria", "admin")
    assert second != first


@pytest.mark.parametrize("argv", [
    ("token", "create", "--name", "x", "--scope", "root"),
    ("token", "create", "--name", "", "--scope", "read"),
    ("token", "create", "--name", " ", "--scope", "read"),
    ("token", "create", "--name", "a" * 129, "--scope", "read"),
    ("token", "create", "--scope", "read"),
])
def test_a_bad_name_or_scope_is_a_usage_error(run, argv):
    with pytest.raises(SystemExit) as exited:
        run(*argv)
    assert exited.value.code == 2


def test_revoking_an_unknown_name_is_refused(run):
    code, _, err = run("token", "revoke", "nobody")
    assert code == 1 and err.startswith("triport-payouts: ") and err.count("\n") == 1


# -- who may call -------------------------------------------------------------------


def test_a_named_token_opens_what_its_scope_allows(client, create_token, make_payout):
    token = create_token("maria", "operator")
    payout_id = make_payout()
    assert client.get(PAYOUTS, headers=named(token)).json["payouts"][0]["id"] == payout_id
    assert client.post_json(f"{PAYOUTS}/{payout_id}/processing", {}, headers=named(token)).json == {"ok": True}


def test_an_unknown_or_revoked_token_is_invalid(client, clock, run, create_token):
    token = create_token("maria", "read")
    assert client.get(PAYOUTS, headers=named(token)).status_int == 200
    res = client.get(PAYOUTS, headers=named(token[:-1] + ("A" if token[-1] != "A" else "B")), status=401)
    assert res.json == {"error": "admin_token_invalid"}
    assert run("token", "revoke", "maria")[0] == 0
    clock.now += auth.REFRESH + 0.01
    assert client.get(PAYOUTS, headers=named(token), status=401).json == {"error": "admin_token_invalid"}


def test_a_revoked_token_works_no_longer_than_the_refresh(client, clock, run, create_token):
    """The worker's copy is read again after REFRESH seconds (the README's "within 5 s")."""
    token = create_token("maria", "read")
    client.get(PAYOUTS, headers=named(token), status=200)
    assert run("token", "revoke", "maria")[0] == 0
    clock.now += auth.REFRESH / 2
    client.get(PAYOUTS, headers=named(token), status=200)  # the copy is still fresh
    clock.now += auth.REFRESH / 2 + 0.01
    client.get(PAYOUTS, headers=named(token), status=401)
    assert auth.REFRESH < 5


def test_a_token_created_after_the_workers_copy_works_at_once(client, clock, create_token):
    client.get(PAYOUTS, headers=AUTH, status=200)
    token = create_token("late", "read")
    client.get(PAYOUTS, headers=named(token), status=200)


def test_without_an_environment_token_named_tokens_still_work(make_client, database_url, repo, create_token):
    client = make_client(database_url, admin_token=None)
    assert client.get(PAYOUTS, status=401).json == {"error": "admin_token_unset"}
    token = create_token("maria", "read")
    client = make_client(database_url, admin_token=None)
    assert client.get(PAYOUTS, headers=named(token)).status_int == 200
    assert client.get(PAYOUTS, status=401).json == {"error": "admin_token_invalid"}
    assert client.get(PAYOUTS, headers=AUTH, status=401).json == {"error": "admin_token_invalid"}


def test_the_environment_token_keeps_every_right_and_the_actor_it_names(client, make_payout, repo):
    payout_id = make_payout()
    client.post_json(f"{PAYOUTS}/{payout_id}/processing", {}, headers={**AUTH, "X-Admin-Actor": "maria"})
    event = events_of(repo, payout_id)[-1]
    assert (event["actor"], event["on_behalf_of"]) == ("maria", None)


# -- scopes against every route -------------------------------------------------------

# Each authenticated route, a request on it (with a payout id the route's
# reader refuses, so an allowed request changes nothing either), and the
# right it needs.
ROUTE_RIGHTS = {
    ("POST", "/v1/admin/referrals/payouts/{payout_id}/failed"): "operator",
    ("POST", "/v1/admin/referrals/payouts/{payout_id}/sent"): "operator",
    ("POST", "/v1/admin/referrals/payouts/{payout_id}/processing"): "operator",
    ("POST", "/v1/admin/referrals/payouts/{payout_id}/cancel"): "system",
    ("POST", "/v1/admin/referrals/payouts"): "system",
    ("POST", "/v1/admin/referrals/payouts/bulk"): "operator",
    ("POST", "/v1/admin/referrals/credits"): "system",
    ("GET", "/v1/admin/referrals/payouts"): "read",
    ("GET", "/v1/admin/referrals/payouts/{payout_id}/events"): "read",
    ("GET", "/v1/admin/referrals/users/{user_id}"): "read",
    ("GET", "/v1/admin/referrals/events"): "read",
    ("GET", "/metrics"): "read",
}
ALLOWED = {
    "read": {"read"},
    "operator": {"read", "operator"},
    "system": {"read", "system"},
    "admin": {"read", "operator", "system"},
}


def test_the_table_covers_every_authenticated_route():
    assert {(r.method, r.template): r.right for r in ROUTES if r.right is not None} == ROUTE_RIGHTS


def _request(client, method, template, headers):
    path = template.format(payout_id=BAD_ID, user_id="nobody")
    if method == "GET":
        return client.get(path, headers=headers, status="*")
    # An empty body: a field error, were the request allowed.
    return client.post(path, b"{}", headers=headers, content_type="application/json", status="*")


@pytest.mark.parametrize("scope", list(ALLOWED))
def test_each_scope_against_every_route(client, repo, database_url, create_token, make_payout, scope):
    make_payout()
    token = create_token(f"{scope}-token", scope)
    before = data_rows(database_url)
    for (method, template), right in ROUTE_RIGHTS.items():
        res = _request(client, method, template, named(token))
        if right in ALLOWED[scope]:
            assert res.status_int not in (401, 403), (scope, method, template, res.body)
        else:
            assert (res.status_int, res.json) == (403, {"error": "forbidden"}), (scope, method, template)
            assert "Retry-After" not in res.headers
    assert data_rows(database_url) == before


def test_forbidden_comes_right_after_the_token_before_anything_about_the_request(client, create_token):
    token = create_token("reader", "read")
    bad = {**named(token, actor=" "), "Idempotency-Key": "\x7f"}
    res = client.post(f"{PAYOUTS}/{BAD_ID}/failed", b"not json", headers=bad,
                      content_type="application/json", status=403)
    assert res.json == {"error": "forbidden"}
    res = client.post(CREDITS, b"[", headers=bad, content_type="application/json", status=403)
    assert res.json == {"error": "forbidden"}


def test_a_read_token_scrapes_metrics_as_a_bearer_token(client, create_token):
    token = create_token("prometheus", "read")
    res = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}, status=200)
    assert "triport_payouts{" in res.text
    assert client.get("/metrics", headers={"Authorization": f"Bearer {token}x"}, status=401).json == {
        "error": "admin_token_invalid"}


def test_routes_without_a_token_stay_open(client, create_token):
    for path in ("/healthz", "/readyz", "/v1/admin/openapi.json"):
        assert client.get(path).status_int == 200


# -- the actor ------------------------------------------------------------------------


def test_a_named_token_is_the_actor_and_a_claimed_actor_is_on_behalf_of(client, create_token, make_payout):
    token = create_token("payout-bot", "operator")
    payout_id = make_payout()
    client.post_json(f"{PAYOUTS}/{payout_id}/processing", {}, headers=named(token, actor="maria"))
    client.post_json(f"{PAYOUTS}/{payout_id}/sent", {"tx_hash": "0xabc"}, headers=named(token))
    events = client.get(f"{PAYOUTS}/{payout_id}/events", headers=AUTH).json["events"]
    assert [(e["to_status"], e["actor"], e["on_behalf_of"]) for e in events[1:]] == [
        ("processing", "payout-bot", "maria"), ("sent", "payout-bot", None)]
    # 3 events of this payout (creation, processing, sent); PostgreSQL may
    # hold them back while a transaction is open elsewhere: wait for them.
    feed, _ = caught_up(webtest_get(client), 3)
    assert [(e["type"], e["actor"], e["on_behalf_of"]) for e in feed if e["payout"]["id"] == payout_id] == [
        ("payout.requested", None, None), ("payout.processing", "payout-bot", "maria"),
        ("payout.sent", "payout-bot", None)]


def test_the_export_names_the_token_and_on_whose_behalf(client, database_url, create_token, make_payout, run):
    token = create_token("payout-bot", "operator")
    payout_id = make_payout()
    client.post_json(f"{PAYOUTS}/{payout_id}/failed", {"reason": "no"}, headers=named(token, actor="maria"))
    code, out, _ = run("export", "--format", "csv")
    assert code == 0
    [row] = [r for r in csv.DictReader(io.StringIO(out)) if r["id"] == payout_id]
    assert (row["settled_by"], row["settled_on_behalf_of"]) == ("payout-bot", "maria")


def test_a_forged_actor_is_never_the_actor(client, repo, create_token, make_payout):
    token = create_token("intern", "operator")
    payout_id = make_payout()
    client.post_json(f"{PAYOUTS}/{payout_id}/failed", {"reason": "x"}, headers=named(token, actor="ceo"))
    event = events_of(repo, payout_id)[-1]
    assert (event["actor"], event["on_behalf_of"]) == ("intern", "ceo")


def test_a_bad_actor_with_a_named_token_is_still_invalid_actor(client, create_token, make_payout):
    token = create_token("intern", "operator")
    payout_id = make_payout()
    res = client.post_json(f"{PAYOUTS}/{payout_id}/failed", {}, headers=named(token, actor=" "), status=400)
    assert res.json == {"error": "invalid_actor"}


# -- last used, and secrets kept out of logs ------------------------------------------------


def test_last_used_is_written_once_not_per_request(client, clock, run, repo, create_token):
    token = create_token("maria", "read")
    for _ in range(5):
        client.get(PAYOUTS, headers=named(token))
    [listed] = [json.loads(line) for line in run("token", "list")[1].splitlines()]
    first = listed["last_used_at"]
    assert first is not None
    writes = []
    store = client.app.auth._store
    original = store.touch
    store.touch = lambda *args: (writes.append(args), original(*args))
    for _ in range(20):
        clock.now += 1
        client.get(PAYOUTS, headers=named(token))
    assert writes == []
    clock.now += auth.TOUCH_EVERY
    client.get(PAYOUTS, headers=named(token))
    assert len(writes) == 1


def test_tokens_never_appear_in_logs(client, caplog, create_token, make_payout):
    token = create_token("maria", "operator")
    payout_id = make_payout()
    with caplog.at_level(logging.DEBUG):
        client.post_json(f"{PAYOUTS}/{payout_id}/failed", {"reason": "x"}, headers=named(token, actor="m"))
        client.get(PAYOUTS, headers=named(token + "x"), status=401)
        client.get(PAYOUTS, headers=named(token))
    assert caplog.records
    assert all(token not in record.getMessage() for record in caplog.records)


def test_a_token_on_an_app_whose_database_lacks_the_table_is_503(tmp_path, repo, database_url, create_token):
    """A named token needs the database; the environment token's refusals do not."""
    bare = create_app(database=str(tmp_path / "empty.sqlite3"), admin_token=TOKEN)
    client = webtest.TestApp(bare)
    assert client.get(PAYOUTS, headers=named("tpk_" + "A" * 43), status=503).json["error"] in (
        "database_unavailable", "schema_outdated")
    assert client.get(PAYOUTS, headers=named("wrong"), status=401).json == {"error": "admin_token_invalid"}
    bare.repository.db.close()


def test_unknown_ids_still_404_for_a_named_token(client, create_token):
    token = create_token("maria", "read")
    res = client.get(f"{PAYOUTS}/{UNKNOWN_ID}/events", headers=named(token), status=404)
    assert res.json == {"error": "payout_not_found"}


def test_copy_data_moves_the_tokens_and_they_keep_working(repo, database_url, tmp_path, make_client):
    """Into each backend from SQLite: a live token opens the new database with
    its scope and name, a revoked one stays revoked; a target holding a token
    is refused."""
    from triport_payouts.copydata import TargetNotEmpty, copy_database
    from triport_payouts.db import open_database
    from triport_payouts.repository import Repository

    source_path = str(tmp_path / "source.sqlite3")
    source = Repository(open_database(source_path))
    source.db.init_schema()
    store = TokenStore(source.db)
    kept = store.create("maria", "operator")["token"]
    gone = store.create("old-bot", "admin")["token"]
    store.revoke("old-bot")
    try:
        counts = copy_database(source, repo)
        assert counts["operator_tokens"] == 2
        with pytest.raises(TargetNotEmpty):
            copy_database(source, repo)
    finally:
        source.db.close()
    assert [t["name"] for t in TokenStore(repo.db).list()] == ["maria"]
    client = make_client(database_url)
    assert client.get(PAYOUTS, headers=named(kept), status=200).json == {"payouts": [], "next_cursor": None}
    assert client.post(CREDITS, b"{}", headers=named(kept), status=403).json == {"error": "forbidden"}
    assert client.get(PAYOUTS, headers=named(gone), status=401).json == {"error": "admin_token_invalid"}
