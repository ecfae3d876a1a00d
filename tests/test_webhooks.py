"""Signed webhooks, in process, on both backends: the outbox written in each
event's own transaction, deliveries to a real receiver on loopback verified
by the reference library ``standardwebhooks``, retries and their schedule,
Retry-After, 410 Gone, redirects, secret rotation, redelivery, pruning,
what copy-data moves, and the ``webhook`` commands. The delivery process as a process (SIGKILL, SIGTERM,
two at once) is in ``test_webhooks_live.py``."""

from __future__ import annotations

import base64
import datetime
import json
import threading
from decimal import Decimal

import pytest
import standardwebhooks
from live import free_port
from receiver import Answer, Receiver

from triport_payouts import cli, signing, webhooks
from triport_payouts.copydata import TargetNotEmpty, copy_database
from triport_payouts.db import open_database
from triport_payouts.delivery import Deliverer
from triport_payouts.repository import KeyAnswer, Repository
from triport_payouts.webhooks import EVENT_TYPES, Webhooks


def deliver(repo, schedule=(0.0, 0.0, 0.0), timeout=5.0) -> int:
    """`deliver --once` in process: the attempts made."""
    return Deliverer(repo, schedule=schedule, timeout=timeout).run(once=True)


def all_events(repo) -> list[dict]:
    """Every event as the feed shows it, by id: read by id, not through the
    feed, which on PostgreSQL holds events back while any writing transaction
    is open (other tests' too, when the suite runs on several workers)."""
    ids = repo.db.connection().execute("SELECT id FROM payout_events ORDER BY id").fetchall()
    return [repo.feed_event(event_id) for (event_id,) in ids]


def deliveries(repo, **kwargs) -> list[dict]:
    return Webhooks(repo.db).deliveries(**kwargs)


def verified(secret, received) -> dict:
    return standardwebhooks.Webhook(secret).verify(received.body, received.headers)


def some_changes(repo, make_payout) -> None:
    """Five payouts through every kind of change."""
    first, second, third, fourth, fifth = (make_payout() for _ in range(5))
    repo.transition(first, "processing")
    repo.transition(first, "sent", tx_hash="0xabc")
    repo.transition(second, "failed", reason="wallet \u00e9 rejected")
    repo.cancel_payout(third, actor="maria")
    repo.transition(fourth, "sent", tx_hash="0xdef", actor="ops")
    del fifth


# -- the outbox ----------------------------------------------------------------


def test_no_endpoint_no_delivery(repo, make_payout):
    some_changes(repo, make_payout)
    assert deliveries(repo) == []


def test_every_committed_event_has_one_delivery_per_subscribed_endpoint(repo, make_payout):
    hooks = Webhooks(repo.db)
    everything = hooks.add("http://127.0.0.1:9/all", EVENT_TYPES)
    failures = hooks.add("http://127.0.0.1:9/failed", ("payout.failed",))
    some_changes(repo, make_payout)
    events = all_events(repo)
    queued = {(row["endpoint_id"], row["event_id"]) for row in deliveries(repo)}
    assert queued == ({(everything["id"], event["id"]) for event in events}
                      | {(failures["id"], event["id"]) for event in events if event["type"] == "payout.failed"})
    assert len(deliveries(repo)) == len(queued)


def test_a_rolled_back_transition_queues_nothing_and_a_committed_one_always_does(repo, make_payout):
    Webhooks(repo.db).add("http://127.0.0.1:9/all", ("payout.failed", "payout.requested"))
    payout = make_payout()
    assert [row["event_id"] for row in deliveries(repo)] == [all_events(repo)[0]["id"]]
    # What runs after the event and the outbox fails: the whole transaction
    # goes. On SQLite, the statement storing the answer; where the transition
    # is one statement, that statement, once it has counted its event.
    if repo._transition_sql is None:
        statement = repo._sql["finish_key"]
        repo._sql["finish_key"] = "SELECT no_such_column FROM payouts"
    else:
        statements = repo._transition_sql
        failing = statements[1].replace("SELECT count(*) FROM event", "SELECT 1 / (count(*) - 1) FROM event")
        assert failing != statements[1]
        repo._transition_sql = (statements[0], failing)
    with pytest.raises(repo.db.errors):
        repo.transition(payout, "failed", reason="x", answer=KeyAnswer("k", 200, b"{}"))
    if repo._transition_sql is None:
        repo._sql["finish_key"] = statement
    else:
        repo._transition_sql = statements
    assert repo.get_payout(payout)["status"] == "requested"
    assert len(deliveries(repo)) == 1 and len(all_events(repo)) == 1
    repo.transition(payout, "failed", reason="x")
    assert [row["event_id"] for row in deliveries(repo)] == [event["id"] for event in reversed(all_events(repo))]


def test_a_refused_payout_creation_queues_nothing(repo):
    from triport_payouts import domain

    Webhooks(repo.db).add("http://127.0.0.1:9/all", ("payout.requested",))
    repo.credit("bob", Decimal("5"), "USDT")
    with pytest.raises(domain.WouldOverdraw):
        repo.create_payout("bob", Decimal("6"), "USDT", "0xdest")
    assert deliveries(repo) == []


def test_a_bulk_load_queues_its_creation_events(repo, make_payout):
    from triport_payouts import demo

    make_payout()  # an event from before the endpoint: not queued by the load
    endpoint = Webhooks(repo.db).add("http://127.0.0.1:9/all", ("payout.requested",))
    ids = demo.seed_demo(repo, 7, 2)
    events = {event["id"] for event in all_events(repo) if event["payout"]["id"] in ids}
    assert {row["event_id"] for row in deliveries(repo, endpoint_id=endpoint["id"])} == events
    assert len(deliveries(repo)) == 7


# -- delivering ----------------------------------------------------------------


def test_every_event_is_delivered_signed_and_exactly_as_the_feed_shows_it(repo, make_payout):
    with Receiver() as receiver:
        endpoint = Webhooks(repo.db).add(receiver.url, EVENT_TYPES)
        some_changes(repo, make_payout)
        assert deliver(repo) == len(all_events(repo))
    events = all_events(repo)
    assert receiver.ids() == [event["id"] for event in events]
    for received, event in zip(receiver.requests, events):
        assert verified(endpoint["secret"], received) == event
        assert received.headers["content-type"] == "application/json"
        assert received.headers["webhook-signature"].startswith("v1,")
        assert abs(int(received.headers["webhook-timestamp"]) - datetime.datetime.now().timestamp()) < 60
    assert {row["status"] for row in deliveries(repo)} == {"delivered"}
    assert deliver(repo) == 0  # nothing is sent twice


def test_a_failing_receiver_is_retried_with_the_same_webhook_id(repo, make_payout):
    statuses = [500, 503, 200]
    with Receiver(lambda n, received: Answer(statuses[n] if n < len(statuses) else 200)) as receiver:
        endpoint = Webhooks(repo.db).add(receiver.url, ("payout.requested",))
        make_payout()
        assert deliver(repo, schedule=(0, 0, 0)) == 3
    assert len(set(receiver.ids())) == 1 and len(receiver.ids()) == 3
    for received in receiver.requests:
        verified(endpoint["secret"], received)
    [row] = deliveries(repo)
    assert (row["status"], row["attempts"], row["last_status"], row["last_error"]) == ("delivered", 3, 200, None)


def test_a_delivery_fails_for_good_after_the_schedule_and_can_be_redelivered(repo, make_payout, capsys):
    with Receiver(lambda n, received: Answer(302, {"Location": "http://127.0.0.1:9/"})) as receiver:
        Webhooks(repo.db).add(receiver.url, ("payout.requested",))
        make_payout()
        assert deliver(repo, schedule=(0, 0)) == 2  # a redirect is not followed: a failed attempt
        [row] = deliveries(repo, failed=True)
        assert (row["status"], row["attempts"], row["last_status"]) == ("failed", 2, 302)
        assert "302" in row["last_error"]
        assert Webhooks(repo.db).endpoints()[0]["failed"] == 1
        assert Webhooks(repo.db).redeliver(int(row["event_id"])) == 1
        receiver.answer = lambda n, received: Answer(204)
        assert deliver(repo) == 1
    assert len(set(receiver.ids())) == 1 and len(receiver.requests) == 3
    assert [row["status"] for row in deliveries(repo)] == ["delivered", "failed"]


def test_retry_after_is_honoured(repo, make_payout):
    with Receiver(lambda n, received: Answer(429, {"Retry-After": "120"})) as receiver:
        Webhooks(repo.db).add(receiver.url, ("payout.requested",))
        make_payout()
        assert deliver(repo, schedule=(0, 0, 0)) == 1
    [row] = deliveries(repo)
    assert row["status"] == "pending" and row["last_status"] == 429
    wait = (datetime.datetime.fromisoformat(row["next_attempt_at"])
            - datetime.datetime.fromisoformat(row["last_attempt_at"])).total_seconds()
    assert 119 <= wait <= 121


def test_no_connection_is_retried_and_recorded(repo, make_payout):
    Webhooks(repo.db).add(f"http://127.0.0.1:{free_port()}/gone-away", ("payout.requested",))
    make_payout()
    assert deliver(repo, schedule=(0, 3600)) == 1
    [row] = deliveries(repo, failed=True)
    assert row["status"] == "pending" and row["last_status"] is None
    assert "Connection" in row["last_error"] or "refused" in row["last_error"]


def test_410_gone_disables_the_endpoint_at_once_and_enable_resumes(repo, make_payout, caplog):
    with Receiver(lambda n, received: Answer(410)) as receiver:
        endpoint = Webhooks(repo.db).add(receiver.url, ("payout.requested", "payout.failed"))
        payout = make_payout()
        assert deliver(repo, schedule=(0, 0, 0)) == 1
        assert "disabled" in caplog.text and endpoint["id"] in caplog.text
        [listed] = Webhooks(repo.db).endpoints()
        assert listed["enabled"] is False and "410" in listed["disabled_reason"]
        repo.transition(payout, "failed")  # a disabled endpoint is not queued for
        assert len(deliveries(repo)) == 1 and deliveries(repo)[0]["status"] == "failed"
        receiver.answer = lambda n, received: Answer(200)
        Webhooks(repo.db).enable(endpoint["id"])
        assert Webhooks(repo.db).endpoints()[0]["enabled"] is True
        repo.transition(make_payout(), "failed")
        assert deliver(repo) == 2
    assert len(receiver.requests) == 3


def test_an_endpoint_failing_for_five_days_is_disabled(repo, make_payout):
    with Receiver(lambda n, received: Answer(500)) as receiver:
        endpoint = Webhooks(repo.db).add(receiver.url, ("payout.requested",))
        make_payout()
        old = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=5, minutes=1)).isoformat()
        with repo.db.transaction() as conn:
            conn.execute(repo.db.sql("UPDATE webhook_endpoints SET failing_since = ?"), (old,))
        assert deliver(repo, schedule=(0, 0, 0)) == 1
    [listed] = Webhooks(repo.db).endpoints()
    assert listed["enabled"] is False and listed["id"] == endpoint["id"]
    assert listed["pending"] == 1  # kept: enabling the endpoint resumes it


def test_rotate_secret_signs_with_both_secrets(repo, make_payout):
    with Receiver() as receiver:
        hooks = Webhooks(repo.db)
        endpoint = hooks.add(receiver.url, ("payout.requested",))
        rotated = hooks.rotate_secret(endpoint["id"])
        assert rotated["secret"] != endpoint["secret"]
        make_payout()
        assert deliver(repo) == 1
    [received] = receiver.requests
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    assert verified(endpoint["secret"], received) == verified(rotated["secret"], received)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        verified(signing.new_secret(), received)


def test_a_secret_is_whsec_and_at_least_24_random_bytes():
    secrets = {signing.new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24


# -- pruning -------------------------------------------------------------------


def age(repo, where: str, days: int = 31) -> None:
    """Moves the deliveries `where` matches back in time by `days`, every timestamp alike."""
    old = webhooks.at(-days * 86400)
    with repo.db.transaction() as conn:
        conn.execute(repo.db.sql(
            "UPDATE webhook_deliveries SET created_at = ?, next_attempt_at = ?,"
            f" last_attempt_at = CASE WHEN last_attempt_at IS NULL THEN NULL ELSE ? END WHERE {where}"),
            (old, old, old))


def test_prune_deletes_only_deliveries_delivered_before_the_cutoff(repo, make_payout):
    hooks = Webhooks(repo.db)
    with Receiver() as ok, Receiver(lambda n, received: Answer(500)) as failing:
        hooks.add(ok.url, ("payout.requested",))
        hooks.add(failing.url, ("payout.requested",))
        make_payout()
        assert deliver(repo, schedule=(0,)) == 2  # one delivered, one failed for good
        age(repo, "1 = 1")
        make_payout()
        assert deliver(repo, schedule=(0,)) == 2  # the same, today
        make_payout()
        age(repo, "status = 'pending'")  # never sent: pending, and as old as the first
    before = deliveries(repo)
    assert sorted(row["status"] for row in before) == ["delivered"] * 2 + ["failed"] * 2 + ["pending"] * 2
    oldest = min(row["id"] for row in before if row["status"] == "delivered")
    assert hooks.prune(datetime.timedelta(days=30)) == 1
    assert deliveries(repo) == [row for row in before if row["id"] != oldest]
    assert hooks.prune(datetime.timedelta(days=0)) == 1
    assert sorted(row["status"] for row in deliveries(repo)) == ["failed"] * 2 + ["pending"] * 2
    assert hooks.prune(datetime.timedelta(days=0)) == 0


def test_prune_deletes_in_batches_and_counts_them_all(repo, make_payout, monkeypatch):
    monkeypatch.setattr(webhooks, "PRUNE_BATCH", 2)
    with Receiver() as receiver:
        Webhooks(repo.db).add(receiver.url, ("payout.requested",))
        for _ in range(5):
            make_payout()
        assert deliver(repo) == 5
    assert Webhooks(repo.db).prune(datetime.timedelta(0)) == 5
    assert deliveries(repo) == []


def test_prune_beside_deliver_leaves_the_delivery_in_flight_alone(repo, database_url, make_payout):
    stall = threading.Event()
    with Receiver(lambda n, received: Answer(stall=stall)) as receiver:
        Webhooks(repo.db).add(receiver.url, ("payout.requested",))
        make_payout()
        other = Repository(open_database(database_url))
        sender = threading.Thread(target=deliver, args=(other,))
        sender.start()
        try:
            with receiver.arrived:
                assert receiver.arrived.wait_for(lambda: receiver.requests, timeout=10)
            assert Webhooks(repo.db).prune(datetime.timedelta(0)) == 0  # leased and being sent
        finally:
            stall.set()
            sender.join(10)
            other.db.close()
    assert [row["status"] for row in deliveries(repo)] == ["delivered"]
    assert Webhooks(repo.db).prune(datetime.timedelta(0)) == 1


# -- copy-data -----------------------------------------------------------------


def table_rows(repo, table: str, columns: tuple[str, ...]) -> list[tuple]:
    query = f"SELECT {', '.join(columns)} FROM {table} ORDER BY {', '.join(columns)}"
    return [tuple(row) for row in repo.db.connection().execute(query).fetchall()]


def test_copy_data_moves_endpoints_with_their_secrets_but_no_delivery(repo, tmp_path):
    """Into each backend from SQLite: the endpoints as they were (a rotated
    secret still signing beside the new one, a disabled one still disabled),
    no delivery of the source and none queued again for the copied history;
    the next change is delivered, signed with the copied secrets."""
    source = Repository(open_database(str(tmp_path / "source.sqlite3")))
    source.db.init_schema()
    subscriptions = ("type", "endpoint_id")
    with Receiver() as receiver:
        hooks = Webhooks(source.db)
        endpoint = hooks.add(receiver.url, EVENT_TYPES)
        rotated = hooks.rotate_secret(endpoint["id"])
        gone = hooks.add("http://127.0.0.1:9/gone", ("payout.failed",))
        with source.db.transaction() as conn:
            conn.execute(source.db.sql("UPDATE webhook_endpoints SET enabled = 0, disabled_reason = 'gone'"
                                       " WHERE id = ?"), (gone["id"],))
        source.credit("ann", Decimal("5.00"), "USDT")
        source.transition(source.create_payout("ann", Decimal("5.00"), "USDT", "0xann")["id"], "failed")
        assert len(deliveries(source)) == 2
        try:
            counts = copy_database(source, repo)
            endpoints = table_rows(source, "webhook_endpoints", webhooks.ENDPOINT_COLUMNS)
            subscribed = table_rows(source, "webhook_subscriptions", subscriptions)
        finally:
            source.db.close()
        assert counts == {"credits": 1, "payouts": 1, "payout_events": 2, "webhook_endpoints": 2,
                          "webhook_subscriptions": len(EVENT_TYPES) + 1, "operator_tokens": 0}
        assert table_rows(repo, "webhook_endpoints", webhooks.ENDPOINT_COLUMNS) == endpoints
        assert table_rows(repo, "webhook_subscriptions", subscriptions) == subscribed
        assert deliveries(repo) == []
        repo.credit("bob", Decimal("1.00"), "USDT")
        repo.transition(repo.create_payout("bob", Decimal("1.00"), "USDT", "0xbob")["id"], "failed")
        assert deliver(repo) == 2  # to the enabled endpoint only
    assert receiver.ids() == [event["id"] for event in all_events(repo)[-2:]]
    for received in receiver.requests:
        assert verified(endpoint["secret"], received) == verified(rotated["secret"], received)


def test_copy_data_refuses_a_target_with_an_endpoint(repo, tmp_path):
    source = Repository(open_database(str(tmp_path / "source.sqlite3")))
    source.db.init_schema()
    Webhooks(repo.db).add("http://127.0.0.1:9/early", EVENT_TYPES)
    try:
        with pytest.raises(TargetNotEmpty):
            copy_database(source, repo)
    finally:
        source.db.close()


# -- the commands --------------------------------------------------------------


@pytest.fixture
def run(repo, run):
    """conftest's run, on a database with the schema."""
    return run


def test_webhook_commands(run, repo, make_payout):
    status, out, err = run("webhook", "add", "https://hooks.example.com/triport", "--events",
                           "payout.failed,payout.sent")
    assert status == 0, err
    added = json.loads(out)
    assert added["secret"].startswith("whsec_") and added["events"] == ["payout.failed", "payout.sent"]
    status, out, _ = run("webhook", "list")
    [listed] = [json.loads(line) for line in out.splitlines()]
    assert "secret" not in out and "whsec_" not in out
    assert {key: listed[key] for key in ("id", "url", "enabled", "pending", "failed")} == {
        "id": added["id"], "url": "https://hooks.example.com/triport", "enabled": True, "pending": 0, "failed": 0}
    assert sorted(listed["events"]) == ["payout.failed", "payout.sent"]
    repo.transition(make_payout(), "failed")
    assert json.loads(run("webhook", "list")[1])["pending"] == 1
    status, out, _ = run("webhook", "rotate-secret", added["id"])
    assert status == 0 and json.loads(out)["secret"].startswith("whsec_")
    [row] = [json.loads(line) for line in run("webhook", "deliveries", "--endpoint", added["id"])[1].splitlines()]
    assert row["status"] == "pending"
    assert run("webhook", "deliveries", "--failed")[1] == ""
    status, _, err = run("webhook", "redeliver", row["event_id"])
    assert status == 0 and "queued 1" in err
    assert run("webhook", "enable", added["id"])[0] == 0
    assert run("webhook", "remove", added["id"])[0] == 0
    assert run("webhook", "list")[1] == ""


def test_webhook_prune_command(run, repo, make_payout):
    with Receiver() as receiver:
        Webhooks(repo.db).add(receiver.url, ("payout.requested",))
        make_payout()
        assert deliver(repo) == 1
    assert run("webhook", "prune") == (0, "", "removed 0 delivered webhook deliveries\n")
    assert run("webhook", "prune", "--older-than-days", "0") == (0, "", "removed 1 delivered webhook deliveries\n")
    assert deliveries(repo) == []


@pytest.mark.parametrize("argv", [
    ("webhook", "add", "ftp://example.com/x"),
    ("webhook", "add", "example.com/x"),
    ("webhook", "add", "http:///no-host"),
    ("webhook", "add", "http://example.com:99999/"),
    ("webhook", "add", "http://example.com/a b"),
    ("webhook", "add", "http://example.com/", "--events", "payout.exploded"),
    ("webhook", "redeliver", "not-a-number"),
])
def test_bad_arguments_are_usage_errors_in_one_line(run, argv):
    status, out, err = run(*argv)
    assert (status, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and err.startswith("triport-payouts: ")


@pytest.mark.parametrize("argv", [
    ("webhook", "remove", "nope"), ("webhook", "enable", "nope"), ("webhook", "rotate-secret", "nope"),
    ("webhook", "redeliver", "999999"),
])
def test_unknown_ids_are_refused(run, argv):
    status, out, err = run(*argv)
    assert (status, out) == (1, "")
    assert len(err.strip().splitlines()) == 1 and "no " in err


@pytest.mark.parametrize("argv", [
    ("webhook", "deliveries", "--limit", "0"),
    ("deliver", "--retry-schedule", "0,soon"),
    ("deliver", "--timeout", "0"),
    ("webhook", "prune", "--older-than-days", "-1"),
    ("webhook", "prune", "--older-than-days", "30d"),
    ("webhook",),
])
def test_bad_options_are_usage_errors(run, argv):
    with pytest.raises(SystemExit) as exit_info:
        run(*argv)
    assert exit_info.value.code == 2


def test_an_endpoint_added_while_serving_gets_the_next_change_and_a_replay_queues_nothing(client, repo, make_payout):
    from helpers import AUTH, PAYOUTS

    first, second = make_payout(), make_payout()
    client.post(f"{PAYOUTS}/{first}/processing", headers=AUTH)  # the app's connection is open, its statements cached
    endpoint = Webhooks(repo.db).add("http://127.0.0.1:9/late", EVENT_TYPES)
    headers = {**AUTH, "Idempotency-Key": "late-1"}
    for _ in range(2):  # the retry replays the stored answer: no change, no event, no delivery
        client.post(f"{PAYOUTS}/{second}/failed", '{"reason": "x"}', headers=headers, content_type="application/json")
    [row] = deliveries(repo, endpoint_id=endpoint["id"])
    assert row["event_id"] == all_events(repo)[-1]["id"]
    assert all_events(repo)[-1]["type"] == "payout.failed"
