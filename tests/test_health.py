"""/healthz (the process answers) and /readyz (the database answers), and
admin routes over a database that cannot be used."""

from __future__ import annotations

import pytest
import webtest

from helpers import AUTH, PAYOUTS, UNKNOWN_ID
from triport_payouts import create_app
from triport_payouts.errors import RETRY_AFTER


def _unopenable(tmp_path):
    return str(tmp_path / "nodir" / "x.sqlite3")


def _no_schema(tmp_path):
    return str(tmp_path / "empty.sqlite3")


def _not_a_database(tmp_path):
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"this is not a database file at all, just text. " * 100)
    return str(path)


def _a_directory(tmp_path):
    return str(tmp_path)


BROKEN = [
    pytest.param(_unopenable, id="unopenable"),
    pytest.param(_no_schema, id="no-schema"),
    pytest.param(_not_a_database, id="not-a-database"),
    pytest.param(_a_directory, id="directory"),
]


@pytest.mark.parametrize("headers", [pytest.param({}, id="no-token"), pytest.param(AUTH, id="token")])
def test_healthz(bare_client, headers):
    res = bare_client.get("/healthz", headers=headers)
    assert res.json == {"ok": True}
    assert res.headers["Content-Type"] == "application/json"
    assert res.headers["Cache-Control"] == "no-store"


def test_readyz(client):
    res = client.get("/readyz")
    assert res.json == {"ok": True}
    assert res.headers["Cache-Control"] == "no-store"


def test_health_needs_no_token_even_when_token_unset(database_url, repo):
    app = create_app(database=database_url, admin_token=None)
    try:
        unset = webtest.TestApp(app, lint=True)
        assert unset.get("/healthz").json == {"ok": True}
        assert unset.get("/readyz").json == {"ok": True}
    finally:
        app.repository.db.close()


@pytest.mark.parametrize("broken", BROKEN)
def test_readyz_503_when_database_unusable(make_client, tmp_path, broken):
    res = make_client(broken(tmp_path)).get("/readyz", status=503)
    assert res.json == {"error": "database_unavailable"}
    assert res.headers["Content-Type"] == "application/json"
    assert res.headers["Retry-After"] == str(RETRY_AFTER)


@pytest.mark.parametrize("broken", BROKEN)
def test_healthz_200_when_database_unusable(make_client, tmp_path, broken):
    assert make_client(broken(tmp_path)).get("/healthz").json == {"ok": True}


def test_readyz_recovers_once_schema_exists(make_client, tmp_path):
    from triport_payouts.db import open_database

    path = _no_schema(tmp_path)
    client = make_client(path)
    assert client.get("/readyz", status=503).json == {"error": "database_unavailable"}
    db = open_database(path)
    db.init_schema()
    db.close()
    assert client.get("/readyz").json == {"ok": True}


ADMIN_REQUESTS = [
    pytest.param("GET", PAYOUTS, None, id="list"),
    pytest.param("GET", f"{PAYOUTS}/{UNKNOWN_ID}/events", None, id="events"),
    pytest.param("GET", "/v1/admin/referrals/users/alice", None, id="user"),
    pytest.param("POST", f"{PAYOUTS}/{UNKNOWN_ID}/processing", {}, id="processing"),
    pytest.param("POST", f"{PAYOUTS}/{UNKNOWN_ID}/sent", {"tx_hash": "0xabc"}, id="sent"),
    pytest.param("POST", f"{PAYOUTS}/{UNKNOWN_ID}/failed", {}, id="failed"),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_REQUESTS)
def test_admin_route_on_unopenable_database_is_503(make_client, tmp_path, method, path, body):
    client = make_client(_unopenable(tmp_path))
    if method == "GET":
        res = client.get(path, headers=AUTH, status=503)
    else:
        res = client.post_json(path, body, headers=AUTH, status=503)
    assert res.json == {"error": "database_unavailable"}
    assert res.headers["Retry-After"] == str(RETRY_AFTER)
