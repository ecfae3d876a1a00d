"""The command line: what each command prints, its exit status (0 done,
1 refused with one stderr line, 2 usage), and the balance rules it enforces.

Most tests call ``cli.main(argv, environ)`` in-process on every backend; the
ones about the process itself (stdout purity, exit codes, tracebacks, the
acting user) run ``python -m triport_payouts``.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from decimal import Decimal

import pytest
from helpers import UNKNOWN_ID, move_to, transitions, user_view

from triport_payouts import cli, domain

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
PAYOUT_KEYS = {"id", "user_id", "amount", "currency", "destination", "status", "reason", "tx_hash",
               "created_at", "updated_at"}


@pytest.fixture
def run(repo, run):
    """conftest's run, on a database with the schema."""
    return run


def run_process(database, *args, env=None, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "triport_payouts", *args],
        env={**os.environ, "TRIPORT_DATABASE": database, **(env or {})},
        capture_output=True, text=True, timeout=timeout,
    )


def assert_refused(code, out, err):
    """Exit 1, nothing on stdout, exactly one line on stderr, no traceback."""
    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.endswith("\n")
    assert "Traceback" not in err


def credit(run, user="alice", amount="100.00", currency="USDT"):
    code, out, err = run("credit", "--user-id", user, "--amount", amount, "--currency", currency)
    assert (code, err) == (0, "")
    return json.loads(out)


def create(run, user="alice", amount="10.00", currency="USDT", destination="0xdest"):
    return run("create-payout", "--user-id", user, "--amount", amount, "--currency", currency,
               "--destination", destination)


def created_id(result):
    code, out, err = result
    assert (code, err) == (0, ""), err
    return json.loads(out)["id"]


def available(repo, user="alice", currency="USDT"):
    [balance] = [b for b in user_view(repo, user)["balances"] if b["currency"] == currency]
    return Decimal(balance["available"])


# -- init-db ----------------------------------------------------------------------


def test_init_db_on_a_new_database_creates_the_schema(database_url, capsys):
    # database_url names a database no fixture has initialised.
    assert cli.main(["init-db"], {"TRIPORT_DATABASE": database_url}) == 0
    capsys.readouterr()
    code = cli.main(["credit", "--user-id", "u", "--amount", "1.00", "--currency", "USDT"],
                    {"TRIPORT_DATABASE": database_url})
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert json.loads(out)["amount"] == "1.00"


def test_init_db_twice_keeps_every_row(run, repo):
    credit(run)
    payout_id = created_id(create(run))
    repo.transition(payout_id, "failed", reason="r")
    before = (repo.get_payout(payout_id), transitions(repo, payout_id), user_view(repo, "alice"))
    for _ in range(2):
        code, out, _ = run("init-db")
        assert (code, out) == (0, "")
    assert (repo.get_payout(payout_id), transitions(repo, payout_id), user_view(repo, "alice")) == before


def test_init_db_twice_leaves_the_sqlite_file_identical(tmp_path):
    path = str(tmp_path / "cli.sqlite3")
    assert run_process(path, "init-db").returncode == 0
    assert run_process(path, "credit", "--user-id", "u", "--amount", "5", "--currency", "USDT").returncode == 0

    def dump():
        with sqlite3.connect(path) as conn:
            return list(conn.iterdump())

    before = dump()
    second = run_process(path, "init-db")
    assert (second.returncode, second.stdout) == (0, "")
    assert "Traceback" not in second.stderr
    assert dump() == before


# -- credit -----------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["12.50", "0.01", "7", "100.000000000000000001",
                                    "123456789012345678.123456789012345678", "10.10"])
def test_credit_prints_the_credit_with_the_exact_amount(run, amount):
    code, out, err = run("credit", "--user-id", "alice", "--amount", amount, "--currency", "USDT",
                         "--note", "June referrals")
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    printed = json.loads(out)
    assert printed["amount"] == amount
    assert (printed["user_id"], printed["currency"], printed["note"]) == ("alice", "USDT", "June referrals")
    assert UUID.fullmatch(printed["id"])
    assert TIME.fullmatch(printed["created_at"])
    assert '"amount": "' + amount + '"' in out


def test_credit_amount_counts_exactly_toward_available(run, repo):
    credit(run, amount="0.1")
    credit(run, amount="0.2")
    assert available(repo) == Decimal("0.3")
    assert user_view(repo, "alice")["balances"][0]["earned"] in {"0.3", "0.30"}


# -- create-payout ----------------------------------------------------------------


def test_create_payout_prints_the_requested_payout(run, repo):
    credit(run)
    code, out, err = create(run, amount="12.50", destination="TXYZ-wallet")
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    printed = json.loads(out)
    assert set(printed) == PAYOUT_KEYS
    assert UUID.fullmatch(printed["id"])
    assert {k: printed[k] for k in ("user_id", "amount", "currency", "destination", "status", "reason",
                                    "tx_hash")} == {
        "user_id": "alice", "amount": "12.50", "currency": "USDT", "destination": "TXYZ-wallet",
        "status": "requested", "reason": None, "tx_hash": None,
    }
    assert TIME.fullmatch(printed["created_at"])
    assert repo.get_payout(printed["id"]) == printed


def test_create_payout_that_would_overdraw_is_refused(run, repo):
    credit(run, amount="10.00")
    assert_refused(*create(run, amount="10.01"))
    assert available(repo) == Decimal("10.00")
    assert user_view(repo, "alice")["counts"]["requested"] == 0


def test_create_payout_for_a_user_without_credits_is_refused(run):
    assert_refused(*create(run, user="nobody", amount="0.01"))


def test_create_payout_of_exactly_available_is_allowed_and_leaves_zero(run, repo):
    credit(run, amount="0.3")
    created_id(create(run, amount="0.1"))
    # With floats, 0.3 - 0.1 < 0.2 and this would be refused.
    created_id(create(run, amount="0.2"))
    assert available(repo) == 0
    assert_refused(*create(run, amount="0.000000000000000001"))


def test_overdraw_in_a_process_exits_1_with_one_line_and_no_traceback(tmp_path):
    path = str(tmp_path / "cli.sqlite3")
    assert run_process(path, "init-db").returncode == 0
    assert run_process(path, "credit", "--user-id", "u", "--amount", "5", "--currency", "USDT").returncode == 0
    result = run_process(path, "create-payout", "--user-id", "u", "--amount", "5.01", "--currency", "USDT",
                         "--destination", "d")
    assert_refused(result.returncode, result.stdout, result.stderr)


BAD_AMOUNTS = ["1e3", "-1", "0", "0.00", "1.", ".5", "abc", "12.5000000000000000001", "", " 1", "1 ",
               "1,00", "0x10", "NaN", "Infinity", "1_000", "1000000000000000000", "١"]


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_credit_with_a_bad_amount_is_refused(run, repo, amount):
    assert_refused(*run("credit", "--user-id", "alice", "--amount", amount, "--currency", "USDT"))
    with pytest.raises(domain.UserNotFound):
        user_view(repo, "alice")


@pytest.mark.parametrize("backend", ["sqlite"])  # refused before any database: one backend says it
@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_create_payout_with_a_bad_amount_is_refused(run, repo, amount):
    credit(run, amount="100000")
    assert_refused(*create(run, amount=amount))
    assert user_view(repo, "alice")["counts"]["requested"] == 0


@pytest.mark.parametrize("args", [
    ["--user-id", "", "--currency", "USDT", "--destination", "d"],
    ["--user-id", "a/b", "--currency", "USDT", "--destination", "d"],
    ["--user-id", "alice", "--currency", "usdt", "--destination", "d"],
    ["--user-id", "alice", "--currency", "U", "--destination", "d"],
    ["--user-id", "alice", "--currency", "USDT", "--destination", ""],
    ["--user-id", "alice", "--currency", "USDT", "--destination", "a\nb"],
], ids=["empty-user", "slash-user", "lower-currency", "short-currency", "empty-destination", "newline-destination"])
def test_create_payout_with_a_bad_field_is_refused(run, repo, args):
    credit(run)
    assert_refused(*run("create-payout", "--amount", "1", *args))
    assert user_view(repo, "alice")["counts"]["requested"] == 0


# -- usage errors -----------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    [],
    ["nope"],
    ["credit", "--user-id", "u", "--currency", "USDT"],
    ["credit", "--user-id", "u", "--amount", "1"],
    ["create-payout", "--user-id", "u", "--amount", "1", "--currency", "USDT"],
    ["cancel-payout"],
    ["cancel-payout", UNKNOWN_ID, "extra"],
    ["seed-demo", "--payouts", "-1"],
    ["seed-demo", "--payouts", "abc"],
    ["seed-demo", "--payouts", str((1 << 26) + 1)],  # more than the ids' counter can number
    ["seed-demo", "--users", "0"],
    ["init-db", "--bogus"],
], ids=lambda argv: " ".join(argv) or "no-command")
def test_usage_error_exits_2(run, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(*argv)
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "usage:" in err
    assert "Traceback" not in err


def test_usage_error_in_a_process_exits_2_without_traceback(tmp_path):
    result = run_process(str(tmp_path / "cli.sqlite3"), "credit", "--user-id", "u")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


# -- cancel-payout ----------------------------------------------------------------


def test_cancel_payout_cancels_a_requested_payout_as_the_cli_user(repo, database_url, make_payout):
    payout_id = make_payout()
    user = "ops-carol"
    result = run_process(database_url, "cancel-payout", payout_id,
                         env={"LOGNAME": user, "USER": user, "LNAME": user, "USERNAME": user})
    assert (result.returncode, result.stderr) == (0, "")
    printed = json.loads(result.stdout)
    assert (printed["id"], printed["status"]) == (payout_id, "cancelled")
    assert repo.get_payout(payout_id)["status"] == "cancelled"
    [event] = transitions(repo, payout_id)
    assert {k: event[k] for k in ("payout_id", "from_status", "to_status", "reason", "tx_hash", "actor")} == {
        "payout_id": payout_id, "from_status": "requested", "to_status": "cancelled",
        "reason": None, "tx_hash": None, "actor": user,
    }


def test_cancel_payout_accepts_an_upper_case_id(run, repo, make_payout):
    payout_id = make_payout()
    code, out, err = run("cancel-payout", payout_id.upper())
    assert (code, err) == (0, "")
    assert json.loads(out)["id"] == payout_id
    assert repo.get_payout(payout_id)["status"] == "cancelled"


@pytest.mark.parametrize("status", ["processing", "sent", "failed", "cancelled"])
def test_cancel_payout_from_any_other_status_is_refused_and_changes_nothing(run, repo, make_payout, status):
    payout_id = make_payout()
    move_to(repo, payout_id, status)
    before = (repo.get_payout(payout_id), transitions(repo, payout_id))
    assert_refused(*run("cancel-payout", payout_id))
    assert (repo.get_payout(payout_id), transitions(repo, payout_id)) == before


@pytest.mark.parametrize("payout_id", [UNKNOWN_ID, "not-a-uuid", ""], ids=["unknown", "malformed", "empty"])
def test_cancel_payout_of_an_unknown_or_malformed_id_is_refused(run, payout_id):
    assert_refused(*run("cancel-payout", payout_id))


# -- seed-demo --------------------------------------------------------------------


def test_seed_demo_prints_exactly_n_payout_ids_and_nothing_else(repo, database_url):
    result = run_process(database_url, "seed-demo", "--payouts", "7", "--users", "3")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.split("\n")
    assert lines[-1] == ""
    ids = lines[:-1]
    assert len(ids) == 7
    assert all(UUID.fullmatch(line) for line in ids), ids
    assert len(set(ids)) == 7
    assert {repo.get_payout(payout_id)["status"] for payout_id in ids} == {"requested"}
    assert len({repo.get_payout(payout_id)["user_id"] for payout_id in ids}) == 3


def test_seed_demo_of_zero_payouts_prints_nothing(run):
    code, out, _ = run("seed-demo", "--payouts", "0", "--users", "2")
    assert (code, out) == (0, "")


def test_seed_demo_users_can_afford_their_payouts(run, repo):
    code, out, _ = run("seed-demo", "--payouts", "10", "--users", "2")
    assert code == 0
    users = {repo.get_payout(payout_id)["user_id"] for payout_id in out.split()}
    for user in users:
        assert available(repo, user) >= 0


# -- balances ---------------------------------------------------------------------


def test_failed_payout_gives_its_amount_back(run, repo):
    credit(run, amount="50.00")
    first = created_id(create(run, amount="50.00"))
    assert_refused(*create(run, amount="0.01"))
    repo.transition(first, "failed", reason="bounced")
    assert available(repo) == Decimal("50.00")
    created_id(create(run, amount="50.00"))


def test_cancelled_payout_gives_its_amount_back(run, repo):
    credit(run, amount="50.00")
    first = created_id(create(run, amount="50.00"))
    assert_refused(*create(run, amount="50.00"))
    code, _, err = run("cancel-payout", first)
    assert (code, err) == (0, "")
    assert available(repo) == Decimal("50.00")
    created_id(create(run, amount="50.00"))


@pytest.mark.parametrize("moves", [["processing"], ["sent"], ["processing", "sent"]],
                         ids=["processing", "sent", "processing-then-sent"])
def test_processing_and_sent_payouts_keep_their_amount(run, repo, moves):
    credit(run, amount="50.00")
    payout_id = created_id(create(run, amount="30.00"))
    for action in moves:
        repo.transition(payout_id, action, tx_hash="0xabc" if action == "sent" else None)
    assert available(repo) == Decimal("20.00")
    assert_refused(*create(run, amount="20.01"))
    created_id(create(run, amount="20.00"))


def test_balances_are_per_currency(run, repo):
    credit(run, amount="10.00", currency="USDT")
    credit(run, amount="5.00", currency="BTC")
    assert_refused(*create(run, amount="5.01", currency="BTC"))
    created_id(create(run, amount="10.00", currency="USDT"))
    created_id(create(run, amount="5.00", currency="BTC"))


def test_a_postgresql_url_that_cannot_be_parsed_is_a_usage_error_that_hides_it(capsys):
    code = cli.main(["audit"], {"TRIPORT_DATABASE": "postgresql://payouts:s3cret@[::1/x"})
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == ("triport-payouts: the postgresql:// URL cannot be parsed"
                   " (it is not repeated here: it may hold a password)\n")
