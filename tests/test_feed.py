"""The change feed, GET /v1/admin/referrals/events, on both backends: every
change of every payout once, oldest first, each with the payout as it was
right after it; pages, a cursor that always goes on (a consumer tails the
feed with it), type filters, its errors in the README's order of checks,
and, on SQLite, a deep page planned as an index range.

The feed's ids are the ids of the rows of payout_events, as strings.
"""

from __future__ import annotations

import getpass
import json
import re
from decimal import Decimal

import pytest
from changefeed import (FEED, TYPES, after_each_change, by_payout, caught_up, check_page, read_to_end,
                        webtest_get)
from helpers import AUTH, PAYOUTS, TOKEN
from schema_v1 import Raw

from triport_payouts import cli


def page(client, **params) -> dict:
    """One 200 page of the feed."""
    return check_page(client.get(FEED, params=params, headers=AUTH).json)


def refused(client, params, status, tag, headers=AUTH):
    res = client.get(FEED, params=params, headers=headers, status=status)
    assert res.json == {"error": tag}
    return res


def table(database_url) -> list[tuple[str, str]]:
    """(id as text, payout_id) of every row of payout_events, by id."""
    raw = Raw(database_url)
    try:
        return [(str(event_id), payout_id)
                for event_id, payout_id in raw.rows("SELECT id, payout_id FROM payout_events ORDER BY id")]
    finally:
        raw.close()


def listed(client) -> dict[str, dict]:
    """Every payout as the list shows it, by id."""
    payouts = client.get(PAYOUTS, params={"limit": "200"}, headers=AUTH).json["payouts"]
    return {payout["id"]: payout for payout in payouts}


def history(client, payout_id) -> list[dict]:
    return client.get(f"{PAYOUTS}/{payout_id}/events", headers=AUTH).json["events"]


def expected_feed(client, database_url) -> list[dict]:
    """The whole feed: the table's rows in id order, each the next change of
    its payout, with the payout as it was right after it."""
    pending = {payout_id: after_each_change(payout, history(client, payout_id))
               for payout_id, payout in listed(client).items()}
    events = []
    for event_id, payout_id in table(database_url):
        events.append({"id": event_id, **pending[payout_id].pop(0)})
    assert all(not left for left in pending.values())
    return events


def settled(client, database_url) -> list[dict]:
    """expected_feed, once the feed shows every row of the table. Tests call
    it after writing and before reading the feed: on PostgreSQL the feed may
    hold committed events back while other transactions are open (never skip
    them); with nothing more written, what it shows then is final."""
    caught_up(webtest_get(client), len(table(database_url)), limit="200")
    return expected_feed(client, database_url)


def act(client, payout_id, action, body=None, actor=None, **headers):
    if actor is not None:
        # As a PEP 3333 server hands a header over: its UTF-8 bytes, read as latin-1.
        headers["X-Admin-Actor"] = actor.encode("utf-8").decode("latin-1")
    res = client.post(f"{PAYOUTS}/{payout_id}/{action}", json.dumps(body or {}).encode(),
                      headers={**AUTH, **headers}, content_type="application/json")
    assert res.json == {"ok": True}


@pytest.fixture
def changes(client, repo, make_payout) -> dict[str, str]:
    """Payouts through every kind of change, by name: 6 creations and 7 moves."""
    ids = {
        "failed_after_processing": make_payout("alice", "10.00"),
        "sent": make_payout("bob", "5.50", "EUR"),
        "cancelled": make_payout("carol", "1.25"),
        "sent_after_processing": make_payout("alice", "7.00"),
        "requested": make_payout("dave", "3.00"),
        "failed": make_payout("erin", "2.00"),
    }
    act(client, ids["failed_after_processing"], "processing", actor="maria")
    act(client, ids["sent"], "sent", {"tx_hash": "0xabc"})
    act(client, ids["failed_after_processing"], "failed", {"reason": "wallet rejected «x»"}, actor="maria")
    repo.cancel_payout(ids["cancelled"], actor="ops")
    act(client, ids["sent_after_processing"], "processing")
    act(client, ids["sent_after_processing"], "sent", {"tx_hash": "0xdef"}, actor="jo")
    act(client, ids["failed"], "failed", actor="mária")
    return ids


# -- what the feed says ------------------------------------------------------------


def test_the_feed_is_every_change_oldest_first_with_the_payout_as_after_it(client, changes, database_url):
    expected = settled(client, database_url)
    body = page(client, limit="200")
    assert body == {"events": expected, "next_cursor": body["next_cursor"]}
    assert len(body["events"]) == 13
    assert {event["type"] for event in body["events"]} == set(TYPES)


def test_one_payouts_changes_written_out_by_hand(client, changes, database_url):
    settled(client, database_url)
    payout_id = changes["failed_after_processing"]
    payout = listed(client)[payout_id]
    events = history(client, payout_id)
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        (None, "requested"), ("requested", "processing"), ("processing", "failed")]
    created, processing, failed = events
    fixed = {name: payout[name] for name in ("id", "user_id", "amount", "currency", "destination")}
    assert fixed == {"id": payout_id, "user_id": "alice", "amount": "10.00", "currency": "USDT",
                     "destination": "0xdest"}

    def snapshot(status, reason, updated_at):
        return {**fixed, "status": status, "reason": reason, "tx_hash": None,
                "created_at": payout["created_at"], "updated_at": updated_at}

    assert by_payout(page(client, limit="200")["events"])[payout_id] == [
        {"type": "payout.requested", "created_at": payout["created_at"], "from_status": None,
         "to_status": "requested", "reason": None, "tx_hash": None, "actor": None, "on_behalf_of": None,
         "payout": snapshot("requested", None, payout["created_at"])},
        {"type": "payout.processing", "created_at": processing["at"], "from_status": "requested",
         "to_status": "processing", "reason": None, "tx_hash": None, "actor": "maria", "on_behalf_of": None,
         "payout": snapshot("processing", None, processing["at"])},
        {"type": "payout.failed", "created_at": failed["at"], "from_status": "processing",
         "to_status": "failed", "reason": "wallet rejected «x»", "tx_hash": None, "actor": "maria", "on_behalf_of": None,
         "payout": snapshot("failed", "wallet rejected «x»", failed["at"])},
    ]
    assert created["at"] == payout["created_at"] < processing["at"] < failed["at"] == payout["updated_at"]


def test_each_payouts_last_event_shows_it_exactly_as_the_list_does(client, changes, database_url):
    settled(client, database_url)
    last = {}
    for event in page(client, limit="200")["events"]:
        last[event["payout"]["id"]] = event["payout"]
    assert last == listed(client)


def test_a_sent_payout_keeps_its_tx_hash_and_a_failed_one_its_reason_in_every_later_snapshot(client, changes,
                                                                                              database_url):
    settled(client, database_url)
    events = by_payout(page(client, limit="200")["events"])
    assert [(e["type"], e["payout"]["tx_hash"]) for e in events[changes["sent_after_processing"]]] == [
        ("payout.requested", None), ("payout.processing", None), ("payout.sent", "0xdef")]
    assert [(e["type"], e["actor"], e["payout"]["reason"]) for e in events[changes["failed"]]] == [
        ("payout.requested", None, None), ("payout.failed", "mária", None)]
    assert [(e["type"], e["actor"], e["payout"]["status"]) for e in events[changes["cancelled"]]] == [
        ("payout.requested", None, "requested"), ("payout.cancelled", "ops", "cancelled")]


def test_ids_are_the_events_rows_unique_and_stable(client, changes, database_url):
    settled(client, database_url)
    first = [event["id"] for event in page(client, limit="200")["events"]]
    again = [event["id"] for event in read_to_end(webtest_get(client), limit="4")[0]]
    assert first == again == [event_id for event_id, _ in table(database_url)]
    assert len(set(first)) == len(first)


# -- the creation event --------------------------------------------------------------


def test_a_new_payouts_history_starts_with_its_creation_event(client, repo):
    repo.credit("alice", Decimal("10.00"), "USDT")
    payout = repo.create_payout("alice", Decimal("4.00"), "USDT", "0xdest")
    creation = {"payout_id": payout["id"], "from_status": None, "to_status": "requested", "reason": None,
                "tx_hash": None, "actor": None, "at": payout["created_at"], "on_behalf_of": None}
    assert client.get(f"{PAYOUTS}/{payout['id']}/events", headers=AUTH).json == {"events": [creation]}
    act(client, payout["id"], "processing", actor="maria")
    events = history(client, payout["id"])
    assert events[0] == creation
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in events] == [
        (None, "requested", None), ("requested", "processing", "maria")]


def test_create_payout_on_the_command_line_writes_its_creation_event_and_a_refusal_writes_none(
        client, repo, database_url, capsys):
    environ = {"TRIPORT_DATABASE": database_url}
    assert cli.main(["credit", "--user-id", "zoe", "--amount", "5.00", "--currency", "USDT"], environ) == 0
    assert cli.main(["create-payout", "--user-id", "zoe", "--amount", "5.00", "--currency", "USDT",
                     "--destination", "0xzoe"], environ) == 0
    payout = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert history(client, payout["id"]) == [
        {"payout_id": payout["id"], "from_status": None, "to_status": "requested", "reason": None,
         "tx_hash": None, "actor": getpass.getuser(), "at": payout["created_at"], "on_behalf_of": None}]
    before = table(database_url)
    assert cli.main(["create-payout", "--user-id", "zoe", "--amount", "0.01", "--currency", "USDT",
                     "--destination", "0xzoe"], environ) == 1
    assert table(database_url) == before
    settled(client, database_url)
    body = page(client)
    assert [(e["type"], e["payout"]["id"]) for e in body["events"]] == [("payout.requested", payout["id"])]


# -- pages and the cursor ------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 5, 13])
def test_pages_cover_the_feed_once_each_full_but_the_last(client, changes, database_url, limit):
    everything = settled(client, database_url)
    cursor, seen = None, []
    while True:
        body = page(client, limit=str(limit), **({"after": cursor} if cursor else {}))
        assert body["events"] == everything[len(seen):len(seen) + limit]
        seen.extend(body["events"])
        cursor = body["next_cursor"]
        if not body["events"]:
            break
    assert seen == everything


def test_an_empty_feed_gives_a_cursor_that_sees_the_first_event(client, make_payout, database_url):
    empty = page(client)
    assert empty["events"] == []
    payout_id = make_payout()
    expected = settled(client, database_url)
    body = page(client, after=empty["next_cursor"])
    assert body == {"events": expected, "next_cursor": body["next_cursor"]}
    assert [(e["type"], e["payout"]["id"]) for e in body["events"]] == [("payout.requested", payout_id)]


def test_a_consumer_tails_the_feed_and_sees_each_later_event_exactly_once(client, changes, make_payout,
                                                                          database_url):
    settled(client, database_url)
    seen, cursor = read_to_end(webtest_get(client), limit="5")
    assert len(seen) == 13
    # Later changes: exactly them, from the cursor of the empty page.
    later = make_payout("frank", "1.00")
    act(client, changes["requested"], "processing", actor="maria")
    expected = settled(client, database_url)
    body = page(client, after=cursor)
    assert body["events"] == expected[13:]
    assert [(e["type"], e["payout"]["id"]) for e in body["events"]] == [
        ("payout.requested", later), ("payout.processing", changes["requested"])]
    # At the end again: an empty page's cursor keeps working, as does the one before it.
    end = page(client, after=body["next_cursor"])
    assert end["events"] == []
    again = page(client, after=end["next_cursor"])
    assert again["events"] == []
    act(client, changes["requested"], "sent", {"tx_hash": "0x999"})
    newest = settled(client, database_url)[-1:]
    for cursor in (body["next_cursor"], end["next_cursor"], again["next_cursor"]):
        tail = page(client, after=cursor)
        assert tail == {"events": newest, "next_cursor": tail["next_cursor"]}
        assert page(client, after=tail["next_cursor"])["events"] == []
    assert newest[0]["type"] == "payout.sent"
    assert [e["id"] for e in seen + body["events"] + newest] == [event_id for event_id, _ in table(database_url)]


def test_the_default_limit_is_100_and_200_is_allowed(client, repo, database_url):
    repo.credit("bulk", Decimal("1000"), "USDT")
    for _ in range(35):
        payout_id = repo.create_payout("bulk", Decimal("1"), "USDT", "0xbulk")["id"]
        repo.transition(payout_id, "processing")
        repo.transition(payout_id, "sent", tx_hash="0xbulk")
    everything = settled(client, database_url)
    assert len(everything) == 105
    first = page(client)
    assert first["events"] == everything[:100]
    rest = page(client, after=first["next_cursor"])
    assert rest["events"] == everything[100:]
    whole = page(client, limit="200")
    assert whole["events"] == everything
    assert page(client, after=whole["next_cursor"])["events"] == []


# -- type filters --------------------------------------------------------------------


@pytest.mark.parametrize("types", [[t] for t in TYPES] + [
    ["payout.sent", "payout.failed"],
    ["payout.failed", "payout.sent"],
    ["payout.requested", "payout.cancelled", "payout.processing"],
    list(TYPES),
], ids=lambda types: ",".join(t.split(".")[1] for t in types))
def test_a_type_filter_gives_exactly_those_events_in_order_page_by_page(client, changes, database_url, types):
    wanted = [e for e in settled(client, database_url) if e["type"] in types]
    assert wanted
    got, cursor = read_to_end(webtest_get(client), type=",".join(types), limit="1")
    assert got == wanted
    # The last page's cursor is good for its filter, at the end of it.
    assert page(client, after=cursor, type=",".join(types))["events"] == []


def test_a_filtered_consumer_tails_only_its_types(client, changes, make_payout, database_url):
    settled(client, database_url)
    seen, cursor = read_to_end(webtest_get(client), type="payout.sent")
    assert [e["payout"]["id"] for e in seen] == [changes["sent"], changes["sent_after_processing"]]
    make_payout("gina", "1.00")
    act(client, changes["requested"], "sent", {"tx_hash": "0x777"})
    expected = settled(client, database_url)
    body = page(client, after=cursor, type="payout.sent")
    assert body["events"] == expected[-1:]
    assert body["events"][0]["payout"]["tx_hash"] == "0x777"


def test_a_cursor_is_only_good_for_the_type_filter_it_was_issued_with(client, changes, database_url):
    settled(client, database_url)
    sent = page(client, type="payout.sent", limit="1")["next_cursor"]
    unfiltered = page(client, limit="1")["next_cursor"]
    both = page(client, type="payout.sent,payout.failed", limit="1")["next_cursor"]
    assert page(client, after=sent, type="payout.sent")["events"]  # its own filter: fine
    refused(client, {"after": sent, "type": "payout.failed"}, 400, "invalid_cursor")
    refused(client, {"after": sent}, 400, "invalid_cursor")
    refused(client, {"after": unfiltered, "type": "payout.sent"}, 400, "invalid_cursor")
    refused(client, {"after": both, "type": "payout.sent"}, 400, "invalid_cursor")
    refused(client, {"after": sent, "type": "payout.sent,payout.failed"}, 400, "invalid_cursor")


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])  # refused before any database: one backend says it
@pytest.mark.parametrize("query", [
    [("type", "")],
    [("type", "sent")],
    [("type", "payout.SENT")],
    [("type", "payout.created")],
    [("type", "payout.sent,")],
    [("type", ",payout.sent")],
    [("type", "payout.sent,,payout.failed")],
    [("type", "payout.sent, payout.failed")],
    [("type", "payout.sent"), ("type", "payout.failed")],
    [("type", "payout.sent"), ("type", "payout.sent")],
], ids=repr)
def test_an_unknown_empty_or_repeated_type_is_400_invalid_type(client, changes, query):
    refused(client, query, 400, "invalid_type")


@pytest.mark.parametrize("backend", ["sqlite"])  # refused before any database: one backend says it
@pytest.mark.parametrize("query", [
    [("limit", "0")], [("limit", "201")], [("limit", "-1")], [("limit", "1.5")], [("limit", "abc")],
    [("limit", "")], [("limit", "1e2")], [("limit", " 5")], [("limit", "5"), ("limit", "5")],
], ids=repr)
def test_a_bad_limit_is_400_invalid_limit(client, changes, query):
    refused(client, query, 400, "invalid_limit")


def _flip(text: str) -> str:
    """The cursor with its first character changed."""
    return ("B" if text[0] == "A" else "A") + text[1:]


@pytest.mark.parametrize("forge", [
    pytest.param(lambda real, listing: "garbage", id="garbage"),
    pytest.param(lambda real, listing: "!!!!", id="not-base64"),
    pytest.param(lambda real, listing: _flip(real), id="one-character-changed"),
    pytest.param(lambda real, listing: real[:-2], id="truncated"),
    pytest.param(lambda real, listing: real + "AAAA", id="extended"),
    pytest.param(lambda real, listing: listing, id="a-payout-list-cursor"),
])
def test_a_forged_or_garbled_cursor_is_400_invalid_cursor(client, changes, forge):
    real = page(client, limit="3")["next_cursor"]
    listing = client.get(PAYOUTS, params={"limit": "1"}, headers=AUTH).json["next_cursor"]
    assert isinstance(listing, str)
    refused(client, {"after": forge(real, listing)}, 400, "invalid_cursor")


def test_the_order_of_checks_route_method_token_then_the_query(client, changes, make_client, database_url):
    assert client.get(FEED + "/", headers=AUTH, status=404).json == {"error": "not_found"}
    for headers in (AUTH, {}):
        res = client.post(FEED, b"{}", headers=headers, content_type="application/json", status=405)
        assert res.json == {"error": "method_not_allowed"}
        assert res.headers["Allow"] == "GET"
    # A missing or wrong token answers before any bad query.
    for query in ({"type": "payout.bogus"}, {"limit": "0"}, {"after": "garbage"}, {}):
        refused(client, query, 401, "admin_token_invalid", headers={})
        refused(client, query, 401, "admin_token_invalid", headers={"X-Admin-Token": TOKEN + "x"})
    unset = make_client(database_url, admin_token=None)
    res = unset.get(FEED, params={"type": "payout.bogus"}, headers=AUTH, status=401)
    assert res.json == {"error": "admin_token_unset"}


def test_refused_and_replayed_actions_add_nothing_to_the_feed(client, changes, database_url):
    settled(client, database_url)
    _, cursor = read_to_end(webtest_get(client))
    headers = {"Idempotency-Key": "feed-retry-1"}
    act(client, changes["requested"], "processing", **headers)
    act(client, changes["requested"], "processing", **headers)  # the stored answer, replayed
    res = client.post(f"{PAYOUTS}/{changes['failed']}/sent", b'{"tx_hash": "0x1"}', headers=AUTH,
                      content_type="application/json", status=409)
    assert res.json == {"error": "payout_not_actionable"}
    settled(client, database_url)
    body = page(client, after=cursor)
    assert [(e["type"], e["payout"]["id"]) for e in body["events"]] == [
        ("payout.processing", changes["requested"])]


# -- a deep page costs what the first does (SQLite's plan) ------------------------------

_BIG_TABLES = ("payout_events", "payouts", "credits", "idempotency_keys")
_NOT_ALIASES = {"WHERE", "JOIN", "LEFT", "INNER", "CROSS", "ON", "USING", "ORDER", "GROUP", "LIMIT", "NATURAL",
                "UNION", "AND", "OR", "AS", "INDEXED", "NOT", "WINDOW", "HAVING", "EXCEPT", "INTERSECT"}


def _names(sql: str) -> dict[str, str]:
    """Each name a big table goes by in `sql` (itself and its aliases) -> the table."""
    names = {}
    for table, alias in re.findall(r"\b(?:FROM|JOIN)\s+(\w+)(?:\s+(?:AS\s+)?(\w+))?", sql, re.IGNORECASE):
        if table.lower() in _BIG_TABLES:
            names[table.lower()] = table.lower()
            if alias and alias.upper() not in _NOT_ALIASES:
                names[alias.lower()] = table.lower()
    return names


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_deep_page_of_the_feed_is_an_index_range_on_sqlite(client, app, repo, database_url):
    """Every SELECT the feed runs for a page deep in the feed (found by
    tracing the app's own connection, so no statement name is assumed) is
    planned as a SEARCH of payout_events, never a SCAN of a growing table."""
    repo.credit("deep", Decimal("1000"), "USDT")
    for i in range(300):
        payout_id = repo.create_payout("deep", Decimal("1"), "USDT", "0xdeep")["id"]
        if i % 3 == 0:
            repo.transition(payout_id, "processing")
    deep = page(client, limit="200")["next_cursor"]
    deep_typed = page(client, limit="200", type="payout.requested")["next_cursor"]
    conn = app.repository.db.connection()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        assert len(page(client, after=deep, limit="50")["events"]) == 50
        assert len(page(client, after=deep_typed, limit="50", type="payout.requested")["events"]) == 50
    finally:
        conn.set_trace_callback(None)
    selects = [sql for sql in statements if re.match(r"\s*(SELECT|WITH)\b", sql, re.IGNORECASE)]
    raw = Raw(database_url)
    try:
        plans = {sql: [row[3] for row in raw.rows("EXPLAIN QUERY PLAN " + sql)] for sql in selects}
    finally:
        raw.close()
    reads_events = 0
    for sql, plan in plans.items():
        names = _names(sql)
        for line in plan:
            scanned = re.match(r"SCAN (\w+)", line)
            assert not (scanned and scanned.group(1).lower() in names), (line, sql, plan)
        if "payout_events" in names.values():
            reads_events += 1
            assert any(re.match(rf"SEARCH {name}\b", line, re.IGNORECASE) for line in plan
                       for name, table in names.items() if table == "payout_events"), (sql, plan)
    assert reads_events >= 2, statements
