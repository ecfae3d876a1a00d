"""The change feed on PostgreSQL, where ids are not commit order: two
transactions can take event ids 100 and 101 and commit 101 first. A
consumer must never skip 100: a transaction held open by hand shows it, and
a consumer tailing the feed through two gunicorn hosts while writers move
payouts through both sees every event of the table exactly once.
"""

from __future__ import annotations

import datetime
import itertools
import threading
import time
import urllib.parse
from collections import Counter
from decimal import Decimal

import pytest
from changefeed import FEED, after_each_change, by_payout, caught_up, check_page, drain, read_to_end, webtest_get
from helpers import AUTH, PAYOUTS, TOKEN, events_of
from live import Gunicorn

pytestmark = pytest.mark.parametrize("backend", ["postgres"])


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _event_ids(database_url) -> list[int]:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return [event_id for (event_id,) in conn.execute("SELECT id FROM payout_events ORDER BY id")]


def _moves(events: list[dict]) -> Counter:
    return Counter((e["payout"]["id"], e["to_status"]) for e in events)


class HeldMove:
    """A payout moved requested -> processing by hand, as the app does it,
    in a transaction left open: its event has taken its id, uncommitted."""

    def __init__(self, database_url: str, payout_id: str):
        import psycopg

        self.conn = psycopg.connect(database_url)  # not autocommit: the first statement opens the transaction
        self.at = _now()
        updated = self.conn.execute(
            "UPDATE payouts SET status = 'processing', updated_at = %s WHERE id = %s AND status = 'requested'",
            (self.at, payout_id),
        ).rowcount
        assert updated == 1
        self.id = self.conn.execute(
            "INSERT INTO payout_events (payout_id, from_status, to_status, reason, tx_hash, actor, at)"
            " VALUES (%s, 'requested', 'processing', NULL, NULL, 'held', %s) RETURNING id",
            (payout_id, self.at),
        ).fetchone()[0]

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def two_payouts(make_payout):
    """Two requested payouts: one to move in the held transaction, one through the app."""
    return make_payout("alice", "1.00"), make_payout("bob", "2.00")


def _past_creations(get, held, other) -> str:
    """A consumer's cursor past both payouts' creation events."""
    seen, cursor = caught_up(get, 2)
    assert _moves(seen) == {(held, "requested"): 1, (other, "requested"): 1}
    return cursor


def _act(client, payout_id, action, body=b"{}"):
    res = client.post(f"{PAYOUTS}/{payout_id}/{action}", body, headers=AUTH, content_type="application/json")
    assert res.json == {"ok": True}


def test_an_event_committed_after_a_later_one_is_not_skipped_on_postgres(client, two_payouts, database_url):
    held_payout, other = two_payouts
    get = webtest_get(client)
    cursor = _past_creations(get, held_payout, other)
    held = HeldMove(database_url, held_payout)
    try:
        _act(client, other, "processing")  # a later id, committed first
        before_commit, cursor = read_to_end(get, cursor)
        held.conn.commit()
    finally:
        held.close()
    after_commit, cursor = drain(get, cursor, 2 - len(before_commit))
    seen = before_commit + after_commit
    assert _moves(seen) == {(held_payout, "processing"): 1, (other, "processing"): 1}, seen
    ids = _event_ids(database_url)
    other_id = next(int(e["id"]) for e in seen if e["payout"]["id"] == other)
    assert held.id < other_id  # the scenario is real: the held event has the smaller id
    [held_event] = [e for e in seen if e["payout"]["id"] == held_payout]
    assert held_event["id"] == str(held.id)
    assert (held_event["actor"], held_event["created_at"], held_event["payout"]["status"],
            held_event["payout"]["updated_at"]) == ("held", held.at, "processing", held.at)
    # Nothing more, and the whole feed is the table, each event once.
    assert get({"after": cursor})["events"] == []
    everything, _ = caught_up(get, len(ids), limit="3")
    # Each once; in id order or in commit order (the held event after the other): either is oldest first.
    assert sorted(int(e["id"]) for e in everything) == ids


def test_an_event_rolled_back_never_appears_and_the_feed_moves_on_on_postgres(client, two_payouts,
                                                                              database_url, make_payout):
    held_payout, other = two_payouts
    get = webtest_get(client)
    cursor = _past_creations(get, held_payout, other)
    held = HeldMove(database_url, held_payout)
    try:
        _act(client, other, "processing")
        before_rollback, cursor = read_to_end(get, cursor)
        held.conn.rollback()
    finally:
        held.close()
    after_rollback, cursor = drain(get, cursor, 1 - len(before_rollback))
    assert _moves(before_rollback + after_rollback) == {(other, "processing"): 1}
    # The feed goes on past the hole the rolled-back id left.
    _act(client, held_payout, "failed", b'{"reason": "after the rollback"}')
    later, cursor = drain(get, cursor, 1)
    assert [(e["payout"]["id"], e["to_status"], e["reason"]) for e in later] == [
        (held_payout, "failed", "after the rollback")]
    assert held.id not in _event_ids(database_url)
    ids = _event_ids(database_url)
    everything, _ = caught_up(get, len(ids), limit="2")
    # Each once; in id order or in commit order (the held event after the other): either is oldest first.
    assert sorted(int(e["id"]) for e in everything) == ids


# -- many writers, two hosts, one consumer -------------------------------------------

WRITERS = 4
RUN_SECONDS = 3.0
DRAIN_SECONDS = 15.0


def _get_page(host, params) -> dict:
    status, body, _ = host.request("GET", f"{FEED}?{urllib.parse.urlencode(params)}", headers=AUTH)
    assert status == 200, body
    return check_page(body)


@pytest.mark.live
def test_a_consumer_tailing_two_hosts_sees_every_event_once_in_each_payouts_order_on_postgres(
        repo, database_url, tmp_path):
    with Gunicorn(database_url, TOKEN, workers=2, log_path=tmp_path / "a.log") as a, \
         Gunicorn(database_url, TOKEN, workers=2, log_path=tmp_path / "b.log") as b:
        hosts = (a, b)
        for w in range(WRITERS):
            repo.credit(f"writer{w}", Decimal("100000"), "USDT")
        stop = threading.Event()
        failures: list[BaseException] = []
        answers: Counter = Counter()
        seen: list[dict] = []
        state = {"cursor": None}

        def writer(w):
            try:
                for i in itertools.count():
                    if stop.is_set():
                        return
                    payout_id = repo.create_payout(f"writer{w}", Decimal("1.00"), "USDT", f"0xw{w}")["id"]
                    first, second = hosts[i % 2], hosts[(i + 1) % 2]
                    if i % 3 != 0:
                        status, _, _ = first.request("POST", f"{PAYOUTS}/{payout_id}/processing", {}, AUTH)
                        answers[status] += 1
                    action, body = (("sent", {"tx_hash": f"0x{w}{i}"}) if i % 2 == 0
                                    else ("failed", {"reason": f"writer {w} #{i}"}))
                    status, _, _ = second.request("POST", f"{PAYOUTS}/{payout_id}/{action}", body, AUTH)
                    answers[status] += 1
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                failures.append(exc)

        def consume_once(host) -> int:
            params = {"limit": "50", **({"after": state["cursor"]} if state["cursor"] else {})}
            body = _get_page(host, params)
            seen.extend(body["events"])
            state["cursor"] = body["next_cursor"]
            return len(body["events"])

        def consumer():
            try:
                for i in itertools.count():
                    if stop.is_set():
                        return
                    if consume_once(hosts[i % 2]) == 0:
                        time.sleep(0.02)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                failures.append(exc)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        threads.append(threading.Thread(target=consumer))
        for thread in threads:
            thread.start()
        time.sleep(RUN_SECONDS)
        stop.set()
        for thread in threads:
            thread.join(60)
        assert not failures, failures
        assert set(answers) == {200}, answers

        # Every write is committed now: the consumer drains the feed.
        table = _event_ids(database_url)
        deadline = time.monotonic() + DRAIN_SECONDS
        for i in itertools.count():
            got = consume_once(hosts[i % 2])
            if got == 0 and len(seen) >= len(table) or time.monotonic() > deadline:
                break
        assert consume_once(a) == 0 and consume_once(b) == 0

    ids = [int(e["id"]) for e in seen]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    assert sorted(ids) == table
    assert len(table) > 50  # the run did race
    # Each payout's events in the order of its history, each with the payout as after it.
    expected = {}
    for payout_id in {e["payout"]["id"] for e in seen}:
        expected[payout_id] = after_each_change(repo.get_payout(payout_id), events_of(repo, payout_id))
    assert by_payout(seen) == expected


def test_a_cursor_of_one_backend_is_refused_by_the_other(backend, postgres_url, tmp_path):
    # copy-data renumbers events and positions differ in kind: a consumer
    # moved with its database must start again, and is told so.
    import webtest

    from triport_payouts import create_app
    from triport_payouts.db import open_database

    apps = {}
    for name, database in (("sqlite", str(tmp_path / "feed.sqlite3")), ("postgres", postgres_url)):
        db = open_database(database)
        db.init_schema()
        db.close()
        apps[name] = create_app(database=database, admin_token=TOKEN)
    try:
        clients = {name: webtest.TestApp(app, lint=True) for name, app in apps.items()}
        for issued_by, refused_by in (("sqlite", "postgres"), ("postgres", "sqlite")):
            cursor = check_page(clients[issued_by].get(FEED, headers=AUTH).json)["next_cursor"]
            res = clients[refused_by].get(FEED, params={"after": cursor}, headers=AUTH, status=400)
            assert res.json == {"error": "invalid_cursor"}
            assert clients[issued_by].get(FEED, params={"after": cursor}, headers=AUTH).json["events"] == []
    finally:
        for app in apps.values():
            app.repository.db.close()
