"""The OpenAPI document: a valid OpenAPI 3.1 document, served as shipped,
covering every route and every error tag of the contract, and true of what
the app answers (through WebTest here, and under gunicorn with schemathesis).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
import webtest
from openapi_spec_validator import validate

import triport_payouts
from helpers import AUTH, TOKEN, UNKNOWN_ID
from live import Gunicorn
from openapi_check import assert_is_error, assert_matches_openapi, document
from triport_payouts import create_app
from triport_payouts.routing import ROUTES
from triport_payouts.tokens import TokenStore

PAYOUT = "/v1/admin/referrals/payouts/{payout_id}"
FAILED, SENT, PROCESSING = PAYOUT + "/failed", PAYOUT + "/sent", PAYOUT + "/processing"
EVENTS = PAYOUT + "/events"
LIST = "/v1/admin/referrals/payouts"
USER = "/v1/admin/referrals/users/{user_id}"
CANCEL = PAYOUT + "/cancel"
CREDITS = "/v1/admin/referrals/credits"
BULK = "/v1/admin/referrals/payouts/bulk"
OPENAPI = "/v1/admin/openapi.json"

# Every (status, tag) the contract (CONTRACT.md, with the /failed page) names,
# invalid_user_id, which the list adds for a malformed user_id filter,
# storage_full, the database's disk full, and the write API's and scopes'.
CONTRACT_ERRORS = {
    (400, "invalid_user_id"), (400, "invalid_amount"), (400, "invalid_currency"), (400, "invalid_destination"),
    (403, "forbidden"), (409, "insufficient_balance"), (400, "invalid_bulk"),
    (400, "invalid_payout_id"), (400, "invalid_actor"), (400, "invalid_json"),
    (400, "invalid_tx_hash"), (400, "invalid_status"), (400, "invalid_limit"),
    (400, "invalid_cursor"), (400, "invalid_type"), (400, "invalid_idempotency_key"),
    (400, "invalid_order"), (400, "invalid_time"),
    (401, "admin_token_unset"), (401, "admin_token_invalid"),
    (404, "not_found"), (404, "payout_not_found"), (404, "user_not_found"),
    (405, "method_not_allowed"), (409, "payout_not_actionable"),
    (409, "idempotency_key_in_use"), (422, "idempotency_key_reused"),
    (500, "internal"), (503, "database_unavailable"), (503, "storage_full"), (503, "schema_outdated"), (503, "schema_too_new"),
}


def call(client, method, template, status, *, params=None, body=None, headers=AUTH, query=""):
    """Sends one request, checks its status and that the document describes the answer."""
    path = template.format(**(params or {})) + (f"?{query}" if query else "")
    if method == "POST":
        res = client.post(path, body or b"", headers=headers, content_type="application/json",
                          status=status)
    else:
        res = client.request(path, method=method, headers=headers, status=status)
    assert_matches_openapi(method, template, status, res.json, res.headers)
    return res


def _documented_tags(status: int) -> set[str]:
    """The error tags any operation documents at a status."""
    tags = set()
    for item in document()["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            ref = operation["responses"].get(str(status), {}).get("$ref")
            if ref is None:
                continue
            response = document()["components"]["responses"][ref.rsplit("/", 1)[1]]
            schema = response["content"]["application/json"]["schema"]
            for part in schema.get("allOf", ()):
                error = part.get("properties", {}).get("error", {})
                tags.update(error.get("enum", ()))
                tags.update([error["const"]] if "const" in error else ())
    return tags


# -- the document itself ---------------------------------------------------

def test_document_is_valid_openapi_3_1():
    validate(document())
    assert document()["openapi"] == "3.1.0"
    assert document()["info"]["version"] == triport_payouts.__version__


def test_every_route_is_documented_and_nothing_else():
    routes = {(route.method.lower(), route.template) for route in ROUTES}
    operations = {
        (method, path)
        for path, item in document()["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    }
    assert operations == routes


def test_only_the_public_routes_need_no_token():
    public = {route.template for route in ROUTES if route.right is None}
    assert document()["security"] == [{"AdminToken": []}]
    for path, item in document()["paths"].items():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                assert (operation.get("security") == []) == (path in public), path


@pytest.mark.parametrize("status, tag", sorted(CONTRACT_ERRORS))
def test_every_contract_error_is_documented(status, tag):
    if tag == "not_found":
        assert "`404 not_found`" in document()["info"]["description"]
    else:
        assert tag in _documented_tags(status)


def test_every_documented_tag_is_in_the_error_schema():
    known = set(document()["components"]["schemas"]["Error"]["properties"]["error"]["enum"])
    assert known == {tag for _, tag in CONTRACT_ERRORS}
    for status in {status for status, _ in CONTRACT_ERRORS}:
        assert _documented_tags(status) <= known


# -- the document as served ------------------------------------------------

def test_served_document_is_the_packaged_one(client):
    res = client.get(OPENAPI, status=200)
    assert res.json == document()
    assert res.content_type == "application/json"
    assert res.headers["Cache-Control"] == "no-store"


def test_served_document_needs_no_token_even_when_unset(database_url, repo):
    client = webtest.TestApp(create_app(database=database_url, admin_token=None), lint=True)
    assert client.get(OPENAPI, status=200).json == document()


# -- the app answers what the document says --------------------------------

def test_lifecycle_matches_the_document(client, repo):
    repo.credit("alice", Decimal("100.00"), "USDT", "referrals")
    to_send = repo.create_payout("alice", Decimal("12.50"), "USDT", "0xalice")["id"]
    to_fail = repo.create_payout("alice", Decimal("7.25"), "USDT", "0xalice")["id"]
    ops = {"X-Admin-Actor": "ops@example.com", **AUTH}

    call(client, "POST", PROCESSING, 200, params={"payout_id": to_send}, headers=ops)
    call(client, "POST", PROCESSING, 409, params={"payout_id": to_send})
    call(client, "POST", SENT, 200, params={"payout_id": to_send.upper()},
         body=b'{"tx_hash": "0xabc", "extra": 1}', headers=ops)
    call(client, "POST", FAILED, 409, params={"payout_id": to_send}, body=b'{"reason": "late"}')
    call(client, "POST", FAILED, 200, params={"payout_id": to_fail},
         body=b'{"reason": "wallet rejected the transfer"}')
    call(client, "POST", SENT, 409, params={"payout_id": to_fail}, body=b'{"tx_hash": "0xdef"}')

    listed = call(client, "GET", LIST, 200).json
    assert [p["id"] for p in listed["payouts"]] == [to_fail, to_send]
    assert listed["next_cursor"] is None
    first = call(client, "GET", LIST, 200, query="limit=1").json
    assert first["payouts"][0]["id"] == to_fail and first["next_cursor"] is not None
    second = call(client, "GET", LIST, 200, query=f"limit=1&cursor={first['next_cursor']}").json
    assert [p["id"] for p in second["payouts"]] == [to_send] and second["next_cursor"] is None
    sent = call(client, "GET", LIST, 200, query="status=sent&user_id=alice").json["payouts"]
    assert [(p["id"], p["tx_hash"]) for p in sent] == [(to_send, "0xabc")]

    events = call(client, "GET", EVENTS, 200, params={"payout_id": to_send}).json["events"]
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in events] == [
        (None, "requested", None),
        ("requested", "processing", "ops@example.com"),
        ("processing", "sent", "ops@example.com"),
    ]
    view = call(client, "GET", USER, 200, params={"user_id": "alice"}).json
    assert view["counts"] == {"requested": 0, "processing": 0, "sent": 1, "failed": 1, "cancelled": 0}

    call(client, "GET", "/healthz", 200, headers={})
    call(client, "GET", "/readyz", 200, headers={})
    call(client, "GET", OPENAPI, 200, headers={})


def test_the_writes_match_the_document(client, repo):
    credit = call(client, "POST", CREDITS, 201, body=b'{"user_id": "dan", "amount": "5.00", "currency": "USDT"}')
    assert credit.json["note"] is None
    payout = call(client, "POST", LIST, 201, body=b'{"user_id": "dan", "amount": "5.00", "currency": "USDT",'
                                                  b' "destination": "0xdan"}').json
    assert call(client, "POST", CANCEL, 200, params={"payout_id": payout["id"]}).json == {"ok": True}
    payouts = [call(client, "POST", LIST, 201, body=b'{"user_id": "dan", "amount": "0.01", "currency": "USDT",'
                                                    b' "destination": "0xdan"}').json["id"] for _ in range(2)]
    items = [{"id": payouts[0], "tx_hash": "0x"}, {"id": payouts[0].upper()}, {"id": UNKNOWN_ID, "tx_hash": "0x"}]
    call(client, "POST", BULK, 400, body=json.dumps({"action": "sent", "items": items}).encode())
    items = [{"id": payouts[0], "tx_hash": "0x"}, {"id": UNKNOWN_ID, "tx_hash": "0x"}, {"id": payouts[1]}]
    results = call(client, "POST", BULK, 200, body=json.dumps({"action": "sent", "items": items}).encode()).json
    assert (results["succeeded"], results["failed"]) == (1, 2)
    reader = TokenStore(repo.db).create("reader", "read")["token"]
    res = call(client, "POST", CREDITS, 403, body=b"{}", headers={"X-Admin-Token": reader})
    assert res.json == {"error": "forbidden"}


def test_amounts_stay_plain_decimals(client, repo):
    # 12.50000001 - 12.50000001 is Decimal("0E-8"): str() of it is not a decimal string.
    repo.credit("bob", Decimal("12.50000001"), "USDT", "referrals")
    repo.create_payout("bob", Decimal("12.50000001"), "USDT", "0xbob")
    call(client, "GET", USER, 200, params={"user_id": "bob"})


@pytest.fixture
def payouts(repo):
    """A payout in each state an action can be refused from, by name."""
    repo.credit("carol", Decimal("100.00"), "USDT", "referrals")
    ids = {name: repo.create_payout("carol", Decimal("1.00"), "USDT", "0xcarol")["id"]
           for name in ("requested", "sent")}
    repo.transition(ids["sent"], "sent", tx_hash="0x1")
    return ids


BAD_ID = {"payout_id": "not-a-uuid"}
UNKNOWN = {"payout_id": UNKNOWN_ID}
REQUESTED = {"payout_id": "requested"}  # replaced by the fixture's id of that name
SETTLED = {"payout_id": "sent"}
NO_TOKEN = {}
WRONG_TOKEN = {"X-Admin-Token": "wrong"}


@pytest.mark.parametrize("method, template, params, kwargs, status, tag", [
    ("POST", FAILED, REQUESTED, {"headers": NO_TOKEN}, 401, "admin_token_invalid"),
    ("POST", SENT, REQUESTED, {"headers": WRONG_TOKEN}, 401, "admin_token_invalid"),
    ("GET", LIST, None, {"headers": NO_TOKEN}, 401, "admin_token_invalid"),
    ("GET", EVENTS, BAD_ID, {"headers": WRONG_TOKEN}, 401, "admin_token_invalid"),
    ("GET", USER, {"user_id": "nobody"}, {"headers": NO_TOKEN}, 401, "admin_token_invalid"),
    ("POST", FAILED, BAD_ID, {}, 400, "invalid_payout_id"),
    ("POST", SENT, BAD_ID, {"body": b'{"tx_hash": "0x1"}'}, 400, "invalid_payout_id"),
    ("POST", PROCESSING, BAD_ID, {}, 400, "invalid_payout_id"),
    ("GET", EVENTS, BAD_ID, {}, 400, "invalid_payout_id"),
    ("POST", PROCESSING, REQUESTED, {"headers": {**AUTH, "X-Admin-Actor": "a" * 129}},
     400, "invalid_actor"),
    ("POST", FAILED, REQUESTED, {"body": b"[1]"}, 400, "invalid_json"),
    ("POST", FAILED, REQUESTED, {"body": b'{"reason": 5}'}, 400, "invalid_json"),
    ("POST", PROCESSING, REQUESTED, {"body": b"{" + b" " * 4096 + b"}"}, 400, "invalid_json"),
    ("POST", SENT, REQUESTED, {}, 400, "invalid_tx_hash"),
    ("POST", SENT, REQUESTED, {"body": b'{"tx_hash": ""}'}, 400, "invalid_tx_hash"),
    ("POST", FAILED, UNKNOWN, {}, 404, "payout_not_found"),
    ("POST", SENT, UNKNOWN, {"body": b'{"tx_hash": "0x1"}'}, 404, "payout_not_found"),
    ("POST", PROCESSING, UNKNOWN, {}, 404, "payout_not_found"),
    ("GET", EVENTS, UNKNOWN, {}, 404, "payout_not_found"),
    ("POST", FAILED, SETTLED, {}, 409, "payout_not_actionable"),
    ("POST", PROCESSING, SETTLED, {}, 409, "payout_not_actionable"),
    ("GET", LIST, None, {"query": "status=paid"}, 400, "invalid_status"),
    ("GET", LIST, None, {"query": "limit=0"}, 400, "invalid_limit"),
    ("GET", LIST, None, {"query": "order=asc"}, 400, "invalid_order"),
    ("GET", LIST, None, {"query": "created_after=yesterday"}, 400, "invalid_time"),
    ("GET", LIST, None, {"query": "updated_before=2026-11-23T22:31:00"}, 400, "invalid_time"),
    ("GET", LIST, None, {"query": "limit=201"}, 400, "invalid_limit"),
    ("GET", LIST, None, {"query": "limit=ten"}, 400, "invalid_limit"),
    ("GET", LIST, None, {"query": "cursor=garbage"}, 400, "invalid_cursor"),
    ("GET", USER, {"user_id": "nobody"}, {}, 404, "user_not_found"),
    ("POST", CANCEL, SETTLED, {}, 409, "payout_not_actionable"),
    ("POST", CANCEL, UNKNOWN, {}, 404, "payout_not_found"),
    ("POST", LIST, None, {"body": b'{"user_id": "carol", "amount": "1000", "currency": "USDT",'
                                  b' "destination": "0x"}'}, 409, "insufficient_balance"),
    ("POST", LIST, None, {"body": b'{"user_id": "carol", "amount": 1, "currency": "USDT"}'}, 400, "invalid_amount"),
    ("POST", CREDITS, None, {"body": b'{"user_id": "", "amount": "1", "currency": "USDT"}'}, 400,
     "invalid_user_id"),
    ("POST", CREDITS, None, {"body": b'{"user_id": "c", "amount": "1", "currency": "usdt"}'}, 400,
     "invalid_currency"),
    ("POST", LIST, None, {"body": b'{"user_id": "c", "amount": "1", "currency": "USDT"}'}, 400,
     "invalid_destination"),
])
def test_errors_match_the_document(client, payouts, method, template, params, kwargs, status, tag):
    if params and "payout_id" in params:
        params = {"payout_id": payouts.get(params["payout_id"], params["payout_id"])}
    res = call(client, method, template, status, params=params, **kwargs)
    assert res.json == {"error": tag}


@pytest.mark.parametrize("method, template, params", [
    ("GET", FAILED, UNKNOWN), ("PUT", SENT, UNKNOWN), ("DELETE", PROCESSING, UNKNOWN),
    ("PUT", LIST, None), ("POST", EVENTS, UNKNOWN), ("GET", CANCEL, UNKNOWN), ("GET", CREDITS, None), ("DELETE", USER, {"user_id": "alice"}),
    ("POST", OPENAPI, None), ("POST", "/healthz", None), ("POST", "/readyz", None),
])
def test_wrong_method_matches_the_document(client, method, template, params):
    path = template.format(**(params or {}))
    res = client.request(path, method=method, headers=AUTH, status=405)
    documented = next(m for m in document()["paths"][template] if m != "parameters")
    assert_matches_openapi(documented, template, 405, res.json, res.headers)
    assert res.json == {"error": "method_not_allowed"}


def test_unset_token_matches_the_document(database_url, repo):
    client = webtest.TestApp(create_app(database=database_url, admin_token=""), lint=True)
    res = call(client, "GET", LIST, 401)
    assert res.json == {"error": "admin_token_unset"}


def test_unknown_paths_are_the_error_envelope(client):
    for path in (PAYOUT.format(payout_id=UNKNOWN_ID), LIST + "/", "/v1/admin/nothing"):
        assert_is_error(client.get(path, headers=AUTH, status=404).json, "not_found")


def test_internal_error_matches_the_document(client, app, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(app.repository, "events_json", broken)
    res = call(client, "GET", EVENTS, 500, params={"payout_id": UNKNOWN_ID})
    assert res.json == {"error": "internal"}


def test_database_unavailable_matches_the_document(tmp_path):
    missing = str(tmp_path / "no-such-dir" / "triport.sqlite3")
    client = webtest.TestApp(create_app(database=missing, admin_token=TOKEN), lint=True)
    assert call(client, "GET", "/readyz", 503, headers={}).json == {"error": "database_unavailable"}
    assert call(client, "GET", LIST, 503).json == {"error": "database_unavailable"}


# -- a real server, fuzzed -------------------------------------------------

@pytest.fixture
def live_server(tmp_path):
    """gunicorn serving the app on a SQLite database seeded by the command line;
    yields its base URL."""
    database = str(tmp_path / "live.sqlite3")
    env = {**os.environ, "TRIPORT_DATABASE": database}
    for command in (["init-db"], ["seed-demo", "--payouts", "20", "--users", "3"]):
        subprocess.run([sys.executable, "-m", "triport_payouts", *command], env=env, check=True,
                       capture_output=True, timeout=30)
    with Gunicorn(database, TOKEN, workers=2, log_path=tmp_path / "gunicorn.log") as server:
        yield f"http://127.0.0.1:{server.port}"


@pytest.mark.live
def test_a_request_line_past_the_limit_is_the_documented_414(live_server):
    # gunicorn answers it before the app (limit_request_line): a client that
    # sizes a path parameter or a query (schemathesis does) must find that
    # answer in the document, on every operation that takes either.
    parameters = document()["components"]["parameters"]

    def where(parameter: dict) -> str:
        return parameters[parameter["$ref"].rsplit("/", 1)[1]]["in"] if "$ref" in parameter else parameter["in"]

    sized = {}
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                taken = {where(p) for p in [*item.get("parameters", ()), *operation.get("parameters", ())]}
                if taken & {"path", "query"}:
                    sized[method, path] = operation["responses"].get("414")
    assert ("get", LIST) in sized and ("post", FAILED) in sized and ("get", USER) in sized
    assert all(sized.values()), [operation for operation, documented in sized.items() if not documented]
    documented = document()["components"]["responses"][sized["get", LIST]["$ref"].rsplit("/", 1)[1]]
    for path in (f"{LIST}?limit={'1' * 4100}", f"/v1/admin/referrals/users/{'u' * 4100}"):
        request = urllib.request.Request(live_server + path, headers=AUTH)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=10)
        assert answer.value.code == 414
        assert answer.value.headers["Content-Type"] in documented["content"]


@pytest.mark.live
def test_schemathesis_finds_nothing_against_a_live_server(live_server, tmp_path):
    # The served document drives the run: no 5xx, and every status, content
    # type and body is one the document gives the operation. Bounded: ~10 s.
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", live_server + OPENAPI,
        "--header", f"X-Admin-Token: {TOKEN}",
        "--checks", ",".join([
            "not_a_server_error", "status_code_conformance",
            "content_type_conformance", "response_schema_conformance",
        ]),
        "--max-examples", "30",
        "--request-timeout", "5",
        "--generation-database", "none",
        "--no-color",
    ]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=50)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
