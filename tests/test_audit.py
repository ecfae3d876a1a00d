"""`triport-payouts audit`: clean after a lifecycle walk, and each invariant
broken on purpose is named."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from triport_payouts import demo, domain
from triport_payouts import cli


def _audit(database_url, capsys):
    code = cli.main(["audit"], {"TRIPORT_DATABASE": database_url})
    return code, capsys.readouterr().out.splitlines()


@pytest.fixture
def walked(repo, make_payout):
    """A lifecycle walk: one payout of each status; returns their ids by status."""
    ids = {status: make_payout(amount="10.00") for status in ("requested", "processing", "sent", "failed",
                                                              "cancelled")}
    repo.transition(ids["processing"], "processing", actor="maria")
    repo.transition(ids["sent"], "processing")
    repo.transition(ids["sent"], "sent", tx_hash="0xabc", actor="maria")
    repo.transition(ids["failed"], "failed", reason="rejected")
    repo.cancel_payout(ids["cancelled"], actor="cli")
    return ids


def _execute(repo, sql, params=()):
    repo.db.connection().execute(repo.db.sql(sql), params)


def _without_checks(repo, backend, constraint):
    """Lets a test write what the schema forbids, as a broken database would hold."""
    if backend == "sqlite":
        _execute(repo, "PRAGMA ignore_check_constraints = ON")
        _execute(repo, "PRAGMA foreign_keys = OFF")
    else:
        _execute(repo, f"ALTER TABLE {constraint[0]} DROP CONSTRAINT {constraint[1]}")


def test_a_clean_database_passes(walked, database_url, capsys):
    code, lines = _audit(database_url, capsys)
    assert code == 0
    assert lines == ["audit ok: 5 payouts, 10 events, 5 credits"]


def test_an_empty_database_passes(repo, database_url, capsys):
    assert _audit(database_url, capsys) == (0, ["audit ok: 0 payouts, 0 events, 0 credits"])


def test_a_status_changed_without_an_event(walked, repo, database_url, capsys):
    _execute(repo, "UPDATE payouts SET status = 'processing' WHERE id = ?", (walked["requested"],))
    code, lines = _audit(database_url, capsys)
    assert code == 1
    assert lines == [
        f"payout {walked['requested']}: events replay to requested, status is processing",
        "audit failed: 1 violations in 5 payouts, 10 events, 5 credits",
    ]


def test_an_event_that_does_not_follow(walked, repo, database_url, capsys):
    _execute(repo, "INSERT INTO payout_events (payout_id, from_status, to_status, at)"
                   " VALUES (?, 'failed', 'sent', '2026-01-01T00:00:00.000000Z')", (walked["failed"],))
    code, lines = _audit(database_url, capsys)
    assert code == 1
    assert f"payout {walked['failed']}: event failed -> sent cannot follow failed" in lines
    assert f"payout {walked['failed']}: failed with 2 terminal events" in lines


def test_a_settled_payout_without_its_terminal_event(walked, repo, database_url, capsys):
    _execute(repo, "UPDATE payouts SET status = 'failed' WHERE id = ?", (walked["processing"],))
    code, lines = _audit(database_url, capsys)
    assert code == 1
    assert f"payout {walked['processing']}: failed with 0 terminal events" in lines


def test_a_sent_payout_without_a_tx_hash(walked, repo, database_url, capsys, backend):
    _without_checks(repo, backend, ("payouts", "payouts_check"))
    _execute(repo, "UPDATE payouts SET tx_hash = NULL WHERE id = ?", (walked["processing"],))
    _execute(repo, "UPDATE payouts SET status = 'sent' WHERE id = ?", (walked["processing"],))
    _execute(repo, "INSERT INTO payout_events (payout_id, from_status, to_status, at)"
                   " VALUES (?, 'processing', 'sent', '2026-01-01T00:00:00.000000Z')", (walked["processing"],))
    code, lines = _audit(database_url, capsys)
    assert code == 1
    assert lines[:-1] == [f"payout {walked['processing']}: sent without a tx_hash"]


def test_a_negative_balance(walked, repo, database_url, capsys):
    _execute(repo, "INSERT INTO payouts (id, user_id, amount, currency, destination, status, created_at,"
                   " updated_at) VALUES ('ffffffff-0000-4000-8000-000000000000', 'alice', '1000.00', 'USDT',"
                   " '0x', 'requested', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')")
    _execute(repo, "INSERT INTO payout_events (payout_id, from_status, to_status, at) VALUES"
                   " ('ffffffff-0000-4000-8000-000000000000', NULL, 'requested', '2026-01-01T00:00:00.000000Z')")
    code, lines = _audit(database_url, capsys)
    assert code == 1
    assert lines[:-1] == [
        "user alice USDT: available is -980.00 (earned 50.00, reserved 1020.00, sent 10.00)"
    ]


def test_an_event_of_a_missing_payout(walked, repo, database_url, capsys, backend):
    _without_checks(repo, backend, ("payout_events", "payout_events_payout_id_fkey"))
    _execute(repo, "INSERT INTO payout_events (payout_id, from_status, to_status, at) VALUES"
                   " ('00000000-0000-4000-8000-000000000000', 'requested', 'failed',"
                   " '2026-01-01T00:00:00.000000Z')")
    code, lines = _audit(database_url, capsys)
    assert code == 1
    assert lines == [
        "payout 00000000-0000-4000-8000-000000000000: 1 events, but no such payout",
        "audit failed: 1 violations in 5 payouts, 11 events, 5 credits",
    ]


def test_a_credit_that_is_not_positive(walked, repo, database_url, capsys, backend):
    _without_checks(repo, backend, ("credits", "credits_amount_check"))
    _execute(repo, "INSERT INTO credits (id, user_id, currency, amount, created_at) VALUES"
                   " ('c0', 'zed', 'USDT', '-5', '2026-01-01T00:00:00.000000Z')")
    code, lines = _audit(database_url, capsys)
    assert code == 1
    assert lines[:-1] == ["credit of zed: amount -5 is not a positive decimal"]


def test_the_audit_reads_through_many_rows(repo, database_url, capsys):
    demo.seed_demo(repo, 20_000, 50)
    code, lines = _audit(database_url, capsys)
    assert (code, lines) == (0, ["audit ok: 20000 payouts, 20000 events, 50 credits"])


def test_a_refused_payout_changes_nothing_the_audit_sees(walked, repo, database_url, capsys):
    with pytest.raises(Exception):
        repo.create_payout("alice", Decimal("1000.00"), "USDT", "0x")
    assert _audit(database_url, capsys)[0] == 0


def test_a_payout_without_its_creation_event(repo, database_url, capsys):
    _execute(repo, "INSERT INTO payouts (id, user_id, amount, currency, destination, status, created_at,"
                   " updated_at) VALUES ('ffffffff-0000-4000-8000-000000000000', 'alice', '1.00', 'USDT',"
                   " '0x', 'requested', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')")
    repo.credit("alice", Decimal("1.00"), "USDT")
    code, lines = _audit(database_url, capsys)
    assert (code, lines) == (1, [
        "payout ffffffff-0000-4000-8000-000000000000: events replay to nothing, status is requested",
        "audit failed: 1 violations in 1 payouts, 0 events, 1 credits",
    ])


# -- stalled payouts: warnings, never violations ------------------------------------

def _processing_since(repo, payout_id, hours_ago: float) -> str:
    """Puts the payout's entry into processing `hours_ago` back; returns that time."""
    since = domain.utc_in(datetime.timedelta(hours=-hours_ago))
    _execute(repo, "UPDATE payouts SET updated_at = ? WHERE id = ?", (since, payout_id))
    return since


def test_payouts_in_processing_too_long_are_warnings_with_their_count(walked, repo, make_payout, database_url,
                                                                       capsys):
    second = make_payout(user_id="bob")
    repo.transition(second, "processing")
    old = _processing_since(repo, walked["processing"], 30)
    older = _processing_since(repo, second, 50)
    code, lines = _audit(database_url, capsys)
    assert code == 0
    assert lines == [
        f"warning: payout {second} in processing since {older}, longer than 24h",
        f"warning: payout {walked['processing']} in processing since {old}, longer than 24h",
        "audit ok: 6 payouts, 12 events, 6 credits; warnings: 2 payouts in processing for longer than 24h",
    ]
    # Reported, never touched.
    assert repo.get_payout(second)["status"] == "processing"


@pytest.mark.parametrize("after, stalled", [("90m", True), ("26h", False), ("1d", True), ("2d", False)])
def test_stalled_after_takes_a_duration(walked, repo, database_url, capsys, after, stalled):
    _processing_since(repo, walked["processing"], 25)
    code = cli.main(["audit", "--stalled-after", after], {"TRIPORT_DATABASE": database_url})
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert any(line.startswith("warning: ") for line in lines) == stalled
    assert lines[-1].startswith("audit ok: 5 payouts")


@pytest.mark.parametrize("after", ["24", "0h", "-1h", "1w", "1.5h", "h"])
def test_a_bad_duration_is_a_usage_error(tmp_path, capsys, after):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["audit", "--stalled-after", after], {"TRIPORT_DATABASE": str(tmp_path / "x.sqlite3")})
    assert exit_.value.code == 2
    assert "--stalled-after" in capsys.readouterr().err


def test_stalled_payouts_beside_violations_keep_the_exit_status_of_the_violations(walked, repo, database_url,
                                                                                   capsys):
    _processing_since(repo, walked["processing"], 48)
    _execute(repo, "UPDATE payouts SET status = 'processing' WHERE id = ?", (walked["requested"],))
    code, lines = _audit(database_url, capsys)
    assert code == 1
    assert lines[-1] == ("audit failed: 1 violations in 5 payouts, 10 events, 5 credits;"
                         " warnings: 1 payouts in processing for longer than 24h")
