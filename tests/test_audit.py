"""`triport-payouts audit`: clean after a lifecycle walk, and each invariant
broken on purpose is named."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from triport_payouts import demo
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


# -- stalled payouts: warnings, not violations ----------------------------------


def _claimed_ago(repo, payout_id, hours):
    """Moves a processing payout's last change `hours` back, as if claimed then."""
    at = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=hours)).isoformat(
        timespec="microseconds")[:-6] + "Z"
    _execute(repo, "UPDATE payouts SET updated_at = ? WHERE id = ?", (at, payout_id))
    return at


def test_payouts_in_processing_too_long_are_warnings_with_their_count(walked, repo, make_payout, database_url,
                                                                      capsys):
    older = make_payout(amount="1.00")
    repo.transition(older, "processing")
    since = {older: _claimed_ago(repo, older, 50), walked["processing"]: _claimed_ago(repo, walked["processing"], 25)}
    code, lines = _audit(database_url, capsys)
    assert code == 0
    assert lines == [
        *(f"warning: payout {payout_id} in processing since {since[payout_id]} (over 24h):"
          " check its transfer before settling it" for payout_id in (older, walked["processing"])),
        "audit ok: 6 payouts, 12 events, 6 credits; 2 stalled in processing over 24h (warnings)",
    ]
    assert repo.get_payout(older)["status"] == "processing"  # never settled by the audit
    code = cli.main(["audit", "--stalled-after", "2d"], {"TRIPORT_DATABASE": database_url})
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 2 and lines[0].startswith(f"warning: payout {older} ")
    assert lines[1].endswith("; 1 stalled in processing over 2d (warnings)")
    assert cli.main(["audit", "--stalled-after", "60h"], {"TRIPORT_DATABASE": database_url}) == 0
    assert capsys.readouterr().out == "audit ok: 6 payouts, 12 events, 6 credits\n"


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("value", ["0h", "24", "h", "1.5h", "-1h", "1w", "٣h", "99999999999d"])
def test_a_bad_stalled_after_is_a_usage_error(repo, database_url, value, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["audit", "--stalled-after", value], {"TRIPORT_DATABASE": database_url})
    assert exited.value.code == 2
