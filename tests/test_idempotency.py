"""Safe retries with Idempotency-Key: the first answer, byte for byte, and
never a second side effect."""

from __future__ import annotations

import datetime
import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import AUTH, PAYOUTS, TOKEN, transitions
from live import Gunicorn

from triport_payouts import cli, domain, idempotency


def _post(client, payout_id, action="failed", body=b"", key="key-1", status="*", headers=None):
    headers = {**AUTH, **({"Idempotency-Key": key} if key is not None else {}), **(headers or {})}
    return client.post(f"{PAYOUTS}/{payout_id}/{action}", body, headers=headers, status=status)


def test_a_retry_gets_the_first_answer_byte_for_byte_and_changes_nothing(client, make_payout, repo):
    payout_id = make_payout()
    first = _post(client, payout_id, body=b'{"reason": "rejected"}')
    payout, events = repo.get_payout(payout_id), transitions(repo, payout_id)
    retry = _post(client, payout_id, body=b'{"reason": "rejected"}')
    assert (first.status_int, first.body) == (200, b'{"ok":true}\n')
    assert (retry.status_int, retry.body) == (first.status_int, first.body)
    assert repo.get_payout(payout_id) == payout
    assert transitions(repo, payout_id) == events and len(events) == 1


def test_without_a_key_a_retry_is_409(client, make_payout):
    payout_id = make_payout()
    assert _post(client, payout_id, key=None).status_int == 200
    assert _post(client, payout_id, key=None).json == {"error": "payout_not_actionable"}


def test_a_refusal_is_replayed_too(client, make_payout, repo):
    payout_id = make_payout()
    repo.transition(payout_id, "failed")
    first = _post(client, payout_id, action="sent", body=b'{"tx_hash": "0x1"}', key="k-409")
    retry = _post(client, payout_id, action="sent", body=b'{"tx_hash": "0x1"}', key="k-409")
    assert first.status_int == retry.status_int == 409
    assert first.body == retry.body == b'{"error":"payout_not_actionable"}\n'


@pytest.mark.parametrize("change", ["route", "payout", "body"])
def test_the_same_key_for_another_request_is_422(client, make_payout, change):
    payout_id, other_id = make_payout(), make_payout(user_id="bob")
    assert _post(client, payout_id, body=b'{"reason": "a"}').status_int == 200
    action, target, body = "failed", payout_id, b'{"reason": "a"}'
    if change == "route":
        action, body = "sent", b'{"tx_hash": "0x1"}'
    elif change == "payout":
        target = other_id
    else:
        body = b'{"reason": "b"}'
    res = _post(client, target, action=action, body=body)
    assert (res.status_int, res.json) == (422, {"error": "idempotency_key_reused"})


def test_a_key_whose_first_request_is_running_is_409_in_use(client, make_payout, repo):
    payout_id = make_payout()
    body = b"{}"
    fingerprint = idempotency.fingerprint("processing", payout_id, body)
    assert repo.claim_key("running", fingerprint, "2000-01-01T00:00:00.000000Z") is None
    res = _post(client, payout_id, action="processing", body=body, key="running")
    assert (res.status_int, res.json) == (409, {"error": "idempotency_key_in_use"})
    assert repo.get_payout(payout_id)["status"] == "requested"


def test_a_claim_left_by_a_dead_worker_is_taken_over(client, make_payout, repo):
    payout_id = make_payout()
    fingerprint = idempotency.fingerprint("processing", payout_id, b"")
    assert repo.claim_key("orphan", fingerprint, "2000-01-01T00:00:00.000000Z") is None
    # As if claimed long ago: every claim is older than a cut-off in the future.
    future = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime(
        domain.TIME_FORMAT)
    assert repo.claim_key("orphan", fingerprint, future) is None
    repo.release_key("orphan")
    assert _post(client, payout_id, action="processing", key="orphan").status_int == 200


@pytest.mark.parametrize("headers, body, status, tag", [
    ({"X-Admin-Token": "wrong"}, b"", 401, "admin_token_invalid"),
    ({}, b"[1]", 400, "invalid_json"),
    ({"X-Admin-Actor": ""}, b"", 400, "invalid_actor"),
])
def test_a_request_refused_before_the_repository_stores_nothing(client, make_payout, headers, body, status, tag):
    payout_id = make_payout()
    res = _post(client, payout_id, body=body, key="early", headers=headers)
    assert (res.status_int, res.json) == (status, {"error": tag})
    later = _post(client, payout_id, body=b'{"reason": "now valid"}', key="early")
    assert (later.status_int, later.json) == (200, {"ok": True})


def test_a_bad_payout_id_with_a_key_stores_nothing(client, make_payout):
    assert _post(client, "nope", key="bad-id").json == {"error": "invalid_payout_id"}
    payout_id = make_payout()
    assert _post(client, payout_id, key="bad-id").status_int == 200


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\xc3\xa9", "tab\there", "nl\x7f"])
def test_malformed_keys_are_400(client, make_payout, key):
    res = _post(client, make_payout(), key=key)
    assert (res.status_int, res.json) == (400, {"error": "invalid_idempotency_key"})


def test_the_longest_key_is_accepted(client, make_payout):
    assert _post(client, make_payout(), key="k" * 255).status_int == 200


def test_an_unexpected_error_releases_the_key(client, make_payout, app, monkeypatch):
    payout_id = make_payout()
    real = app.repository.transition

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(app.repository, "transition", broken)
    assert _post(client, payout_id, key="retry-me").json == {"error": "internal"}
    monkeypatch.setattr(app.repository, "transition", real)
    assert _post(client, payout_id, key="retry-me").json == {"ok": True}


def test_prune_keeps_keys_for_24_hours(client, make_payout, repo, database_url):
    payout_id = make_payout()
    _post(client, payout_id, key="fresh")
    assert idempotency.prune(repo, datetime.timedelta(hours=1)) == 0
    assert repo.prune_keys("9999-01-01T00:00:00.000000Z") == 1
    code = cli.main(["prune-idempotency-keys"], {"TRIPORT_DATABASE": database_url})
    assert code == 0


@pytest.mark.live
def test_concurrent_retries_on_a_real_server_move_the_payout_once(repo, database_url, make_payout, tmp_path):
    payout_id = make_payout()
    barrier = threading.Barrier(16)
    with Gunicorn(database_url, TOKEN, workers=4, log_path=tmp_path / "g.log") as server:
        def one(_):
            barrier.wait()
            status, body, _ = server.request("POST", f"{PAYOUTS}/{payout_id}/failed", b'{"reason": "r"}',
                                             {**AUTH, "Idempotency-Key": "same"})
            return status, json.dumps(body)

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(one, range(16)))
        final = server.request("POST", f"{PAYOUTS}/{payout_id}/failed", b'{"reason": "r"}',
                               {**AUTH, "Idempotency-Key": "same"})[:2]
    ok, in_use = (200, '{"ok": true}'), (409, '{"error": "idempotency_key_in_use"}')
    assert set(answers) <= {ok, in_use}
    assert Counter(answers)[ok] >= 1
    assert final == (200, {"ok": True})
    assert len(transitions(repo, payout_id)) == 1
