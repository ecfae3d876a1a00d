"""GET /metrics: parsed with prometheus_client's own parser, every value
checked against the data the test made, on both backends; the token in
either header; and no scrape statement reads a whole table."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
from helpers import AUTH, PAYOUTS, TOKEN, events_of, move_to
from prometheus_client.parser import text_string_to_metric_families
from schema_v1 import V1Data

from triport_payouts import domain, metrics
from triport_payouts.db import open_database
from triport_payouts.repository import Repository
from triport_payouts.webhooks import EVENT_TYPES, Webhooks

METRICS = "/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FAMILIES = {
    "triport_payouts": "gauge",
    "triport_payouts_amount": "gauge",
    "triport_payout_oldest_created_timestamp_seconds": "gauge",
    "triport_payout_events": "counter",
    "triport_webhook_deliveries_pending": "gauge",
    "triport_webhook_deliveries_failed": "counter",
    "triport_webhook_oldest_pending_timestamp_seconds": "gauge",
}


def scrape(client, headers=None) -> tuple[dict, str]:
    """({(sample name, frozenset of labels): value}, the text) of one scrape."""
    res = client.get(METRICS, headers=headers or AUTH, status=200)
    assert res.headers["Content-Type"] == CONTENT_TYPE
    families = list(text_string_to_metric_families(res.text))
    assert {family.name: family.type for family in families} == FAMILIES
    assert all(family.documentation for family in families)
    samples = {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples}
    return samples, res.text


def counts(samples) -> dict[str, float]:
    return {dict(labels)["status"]: value for (name, labels), value in samples.items() if name == "triport_payouts"}


def of(samples, name: str) -> dict[frozenset, float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


def seconds(text: str) -> float:
    return metrics.timestamp(text)


def test_an_empty_database(client):
    samples, _ = scrape(client)
    assert counts(samples) == dict.fromkeys(domain.STATUSES, 0)
    assert of(samples, "triport_payouts_amount") == {}
    assert of(samples, "triport_payout_oldest_created_timestamp_seconds") == {}
    assert of(samples, "triport_payout_events_total") == {
        frozenset({("type", name)}): 0 for name in EVENT_TYPES}
    assert samples[("triport_webhook_deliveries_pending", frozenset())] == 0
    assert samples[("triport_webhook_deliveries_failed_total", frozenset())] == 0
    assert of(samples, "triport_webhook_oldest_pending_timestamp_seconds") == {}


def test_counts_exact_sums_oldest_and_events_follow_the_data(client, repo, make_payout):
    amounts = {"requested": ["10.00", "0.000000000000000001"], "processing": ["999999999999999999.999999999999999999",
               "0.5"], "sent": ["7"], "failed": ["2.25"], "cancelled": ["3.10"]}
    ids = {status: [make_payout(user_id=f"user-{status}-{i}", amount=amount) for i, amount in enumerate(values)]
           for status, values in amounts.items()}
    eur = make_payout(user_id="eve", amount="4.20", currency="EUR")
    for status, payout_ids in ids.items():
        for payout_id in payout_ids:
            if status != "requested":
                move_to(repo, payout_id, status)  # sent goes straight from requested
    samples, text = scrape(client)

    assert counts(samples) == {"requested": 3, "processing": 2, "sent": 1, "failed": 1, "cancelled": 1}
    usdt = {status: sum(map(Decimal, values)) for status, values in amounts.items()}
    assert of(samples, "triport_payouts_amount") == {
        **{frozenset({("status", s), ("currency", "USDT")}): float(usdt[s]) for s in domain.STATUSES},
        **{frozenset({("status", s), ("currency", "EUR")}): (4.2 if s == "requested" else 0)
           for s in domain.STATUSES},
    }
    # Exact in the text, whatever a float makes of it.
    assert ('triport_payouts_amount{status="processing",currency="USDT"}'
            ' 1000000000000000000.499999999999999999\n') in text
    assert 'triport_payouts_amount{status="requested",currency="USDT"} 10.000000000000000001\n' in text

    created = {pid: repo.get_payout(pid)["created_at"] for pid in (*ids["requested"], eur, *ids["processing"])}
    assert of(samples, "triport_payout_oldest_created_timestamp_seconds") == {
        frozenset({("status", "requested")}): seconds(min(created[p] for p in (*ids["requested"], eur))),
        frozenset({("status", "processing")}): seconds(min(created[p] for p in ids["processing"])),
    }
    # Every payout was created; two went through processing (the processing ones).
    assert of(samples, "triport_payout_events_total") == {
        frozenset({("type", "payout.requested")}): 8, frozenset({("type", "payout.processing")}): 2,
        frozenset({("type", "payout.sent")}): 1, frozenset({("type", "payout.failed")}): 1,
        frozenset({("type", "payout.cancelled")}): 1,
    }


def test_the_totals_always_equal_a_recount(client, repo, make_payout):
    """Creations, every kind of move, and refused moves: the scrape equals the
    payouts table counted and summed from scratch."""
    ids = [make_payout(user_id=f"u{i % 3}", amount=f"{i}.{i:02d}", currency=("USDT", "BTC")[i % 2])
           for i in range(1, 13)]
    for payout_id, status in zip(ids, ["processing", "sent", "failed", "cancelled"] * 3):
        move_to(repo, payout_id, status)
    client.post(f"{PAYOUTS}/{ids[1]}/failed", headers=AUTH, status=409)  # sent already: nothing moves
    client.post_json(f"{PAYOUTS}/{ids[0]}/sent", {"tx_hash": "0x1"}, headers=AUTH, status=200)
    samples, _ = scrape(client)
    assert of(samples, "triport_payouts_amount") == recount(repo)


def recount(repo) -> dict[frozenset, float]:
    sums: dict[tuple[str, str], Decimal] = {}
    for row in repo.db.connection().execute("SELECT status, currency, amount FROM payouts").fetchall():
        sums[row[0], row[1]] = sums.get((row[0], row[1]), Decimal(0)) + Decimal(row[2])
    currencies = {currency for _, currency in sums}
    return {frozenset({("status", s), ("currency", c)}): float(sums.get((s, c), 0))
            for s in domain.STATUSES for c in currencies}


def test_a_migrated_database_starts_with_its_totals(database_url, make_client):
    """The schema step fills the totals from the rows a previous release left."""
    data = V1Data()
    data.create(database_url)
    db = open_database(database_url)
    db.migrate()
    repo = Repository(db)
    try:
        samples, _ = scrape(make_client(database_url))
        assert of(samples, "triport_payouts_amount") == recount(repo)
        statuses = [row[0] for row in db.connection().execute("SELECT status FROM payouts").fetchall()]
        assert counts(samples) == {s: statuses.count(s) for s in domain.STATUSES}
        events = [row[0] for row in db.connection().execute("SELECT to_status FROM payout_events").fetchall()]
        assert of(samples, "triport_payout_events_total") == {
            frozenset({("type", f"payout.{s}")}): events.count(s) for s in domain.STATUSES}
    finally:
        db.close()


def test_a_bulk_load_is_counted(client, repo):
    from triport_payouts import demo

    demo.seed_demo(repo, 250, 7)
    samples, _ = scrape(client)
    assert counts(samples)["requested"] == 250
    assert of(samples, "triport_payouts_amount") == recount(repo)
    assert samples[("triport_payout_events_total", frozenset({("type", "payout.requested")}))] == 250


def test_webhook_backlog_and_failures(client, repo, make_payout):
    webhooks = Webhooks(repo.db)
    endpoint = webhooks.add("http://127.0.0.1:9/hook", EVENT_TYPES)
    first = make_payout()
    make_payout(user_id="bob")
    samples, _ = scrape(client)
    # Two creation events wait in the outbox: pending, since the oldest's time.
    assert samples[("triport_webhook_deliveries_pending", frozenset())] == 2
    oldest = events_of(repo, first)[0]["at"]
    assert samples[("triport_webhook_oldest_pending_timestamp_seconds", frozenset())] == seconds(oldest)

    due = webhooks.due(10)  # moves the outbox into the deliveries
    assert len(due) == 2
    assert scrape(client)[0][("triport_webhook_deliveries_pending", frozenset())] == 2
    job = webhooks.lease(due[0], 30)
    assert job is not None and job.endpoint_id == endpoint["id"]
    webhooks.record(job, delivered=False, retry_in=None, status=500, error="HTTP 500")
    samples, _ = scrape(client)
    assert samples[("triport_webhook_deliveries_pending", frozenset())] == 1
    assert samples[("triport_webhook_deliveries_failed_total", frozenset())] == 1


# -- the token (checked before the database is read: one backend is enough) ------

@pytest.fixture
def sqlite_client(tmp_path, make_client):
    db = open_database(str(tmp_path / "metrics.sqlite3"))
    db.init_schema()
    db.close()
    return make_client(str(tmp_path / "metrics.sqlite3"))


@pytest.mark.parametrize("headers", [
    {"X-Admin-Token": TOKEN},
    {"Authorization": f"Bearer {TOKEN}"},
    {"Authorization": f"bearer {TOKEN}"},
])
def test_the_token_in_either_header(sqlite_client, headers):
    scrape(sqlite_client, headers)


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer"},
    {"Authorization": TOKEN},
    {"X-Admin-Token": "wrong", "Authorization": f"Bearer {TOKEN}"},
])
def test_no_valid_token_is_401(bare_client, headers):
    assert bare_client.get(METRICS, headers=headers, status=401).json == {"error": "admin_token_invalid"}


def test_a_server_without_a_token_refuses(repo, database_url, make_client):
    anyone = make_client(database_url, admin_token="")
    res = anyone.get(METRICS, headers={"Authorization": f"Bearer {TOKEN}"}, status=401)
    assert res.json == {"error": "admin_token_unset"}


def test_other_routes_take_only_x_admin_token(bare_client):
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert bare_client.get(PAYOUTS, headers=bearer, status=401).json == {"error": "admin_token_invalid"}


def test_only_get(bare_client):
    res = bare_client.post(METRICS, headers=AUTH, status=405)
    assert res.json == {"error": "method_not_allowed"}
    assert res.headers["Allow"] == "GET"


# -- the cost ------------------------------------------------------------------

def test_no_scrape_statement_scans_payouts_or_events(repo, make_payout):
    """Each statement reads a few rows of the totals or one end of an index
    range, whatever the number of payouts (bench/notes.md has the timings)."""
    for i in range(3):
        make_payout(user_id=f"u{i}")
    scraper = metrics.Metrics(repo.db)
    statements = [(scraper._amounts, ()), *((sql, ("requested",) if name == "oldest" else ())
                                             for name, sql in scraper._sql.items())]
    conn = repo.db.connection()
    if repo.db.dialect == "postgres":
        conn.execute("SET enable_seqscan = off")  # tiny tables: else the planner scans them anyway
        plans = ["\n".join(row[0] for row in conn.execute("EXPLAIN " + sql, params).fetchall())
                 for sql, params in statements]
        conn.execute("RESET enable_seqscan")
        whole = re.compile(r"Seq Scan on (payouts|payout_events)\b")
    else:
        plans = ["\n".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
                 for sql, params in statements]
        whole = re.compile(r"\bSCAN (payouts|payout_events)\b(?! USING COVERING INDEX payout)")
    for (sql, _), plan in zip(statements, plans):
        assert not whole.search(plan), (sql, plan)
        assert "payout_events" not in plan, (sql, plan)


def test_timestamps_are_seconds_since_the_epoch():
    assert metrics.timestamp("1970-01-01T00:00:01.500000Z") == 1.5
    stamp = domain.utcnow()
    assert abs(metrics.timestamp(stamp) - datetime.datetime.now(datetime.UTC).timestamp()) < 5


@pytest.mark.parametrize("text", ["0.000000000000000001", "999999999999999999.999999999999999999", "12.5", "7"])
def test_amount_parts_carry_exactly(text):
    value = Decimal(text)
    units, fraction = int(value), int(domain.MONEY.multiply(value - int(value), 10**18))
    parts = (units // 10**9, units % 10**9, fraction // 10**9, fraction % 10**9)
    assert metrics.amount_from_parts(*(part * 3 for part in parts)) == domain.MONEY.multiply(value, 3)
