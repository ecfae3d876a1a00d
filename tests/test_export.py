"""`triport-payouts export`: what accounting reads equals what the API lists."""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import subprocess
import sys

import pytest
from helpers import AUTH, PAYOUTS, transitions

from triport_payouts import demo
from triport_payouts import cli
from triport_payouts.repository import PAYOUT_COLUMNS


def _export(database_url, *args) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "triport_payouts", "export", *args],
        env={**os.environ, "TRIPORT_DATABASE": database_url}, capture_output=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    return result.stdout.decode("utf-8")


def _api_list(client, query=""):
    pages = [client.get(f"{PAYOUTS}?limit=200{query}", headers=AUTH).json]
    while pages[-1]["next_cursor"]:
        pages.append(client.get(f"{PAYOUTS}?limit=200{query}&cursor={pages[-1]['next_cursor']}",
                                headers=AUTH).json)
    return [payout for page in pages for payout in page["payouts"]]


@pytest.fixture
def books(repo, make_payout):
    """Settled and open payouts, with text that CSV must quote."""
    demo.seed_demo(repo, 250, 4)
    sent, failed, cancelled = make_payout(amount="0.00000001"), make_payout(), make_payout()
    repo.transition(sent, "sent", tx_hash="0xabc", actor="maria")
    repo.transition(failed, "failed", reason='wallet said "no", twice,\r\nthen ü', actor="jo, ops")
    repo.cancel_payout(cancelled, actor="cli")
    return {"sent": sent, "failed": failed, "cancelled": cancelled}


def test_csv_parsed_back_equals_the_api_list(books, client, repo, database_url):
    text = _export(database_url, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    listed = _api_list(client)
    assert len(rows) == len(listed) == 253
    assert [{k: row[k] for k in PAYOUT_COLUMNS} for row in rows] == [
        {k: "" if v is None else v for k, v in payout.items()} for payout in listed
    ]
    by_id = {row["id"]: row for row in rows}
    for payout_id in books.values():
        event = transitions(repo, payout_id)[-1]
        assert (by_id[payout_id]["settled_by"], by_id[payout_id]["settled_at"]) == (event["actor"], event["at"])
    assert by_id[books["sent"]]["amount"] == "0.00000001"
    assert by_id[books["failed"]]["reason"] == 'wallet said "no", twice,\r\nthen ü'


def test_csv_is_rfc_4180(books, database_url):
    text = _export(database_url, "--format", "csv", "--status", "failed")
    assert text.startswith("id,user_id,amount,currency,destination,status,reason,tx_hash,created_at,"
                           "updated_at,settled_by,settled_at,settled_on_behalf_of\r\n")
    assert '"wallet said ""no"", twice,\r\nthen ü"' in text
    assert '"jo, ops"' in text
    assert text.endswith("\r\n")


def test_jsonl_equals_the_api_list_for_a_status(books, client, database_url):
    lines = _export(database_url, "--format", "jsonl", "--status", "requested").splitlines()
    records = [json.loads(line) for line in lines]
    assert [{k: r[k] for k in PAYOUT_COLUMNS} for r in records] == _api_list(client, "&status=requested")
    assert all(r["settled_by"] is None and r["settled_at"] is None and r["settled_on_behalf_of"] is None
               for r in records)


def test_since_and_until_bound_the_last_change(books, repo, database_url):
    failed_at = repo.get_payout(books["failed"])["updated_at"]
    just_after = (datetime.datetime.fromisoformat(failed_at) + datetime.timedelta(microseconds=1)).isoformat()
    lines = _export(database_url, "--format", "jsonl", "--since", failed_at, "--until", just_after)
    assert [json.loads(line)["id"] for line in lines.splitlines()] == [books["failed"]]
    assert _export(database_url, "--format", "jsonl", "--until", "2000-01-01") == ""


@pytest.mark.parametrize("args", [
    ["--since", "yesterday"], ["--format", "xml"], ["--status", "paid"],
])
def test_bad_arguments_are_refused_without_a_traceback(repo, database_url, args, capsys):
    try:
        code = cli.main(["export", *args], {"TRIPORT_DATABASE": database_url})
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    assert code in (1, 2)
    assert "Traceback" not in err and err.strip()
