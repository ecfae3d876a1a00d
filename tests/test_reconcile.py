"""triport-payouts import-results FILE: a CSV of transfer results applied as
the operator actions, one line per row (applied, unchanged, refused: tag),
exit 0/1, idempotent, --dry-run writing nothing, --actor on the events, and
a malformed file (exit 2) refused before any row."""

from __future__ import annotations

import getpass

import pytest

from helpers import UNKNOWN_ID, move_to, snapshot, transitions
from triport_payouts import cli

HEADER = "id,status,tx_hash,reason\n"


@pytest.fixture
def run(database_url, capsys):
    """run(*argv) -> (exit status, stdout lines, stderr) of cli.main on the test database."""

    def run(*argv):
        code = cli.main(list(argv), {"TRIPORT_DATABASE": database_url})
        out, err = capsys.readouterr()
        return code, out.splitlines(), err

    return run


@pytest.fixture
def results(tmp_path):
    """results(text or bytes) -> the path of a file holding it."""
    made = []

    def write(content):
        path = tmp_path / f"results-{len(made)}.csv"
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        made.append(path)
        return str(path)

    return write


def state(repo, ids):
    """Every payout given and its events: what must not change."""
    return [snapshot(repo, payout_id) for payout_id in ids]


@pytest.fixture
def payouts(repo, make_payout):
    """Five payouts: two requested, one processing, one sent with 0xold, one failed."""
    ids = [make_payout("alice", "5.00") for _ in range(5)]
    move_to(repo, ids[2], "processing")
    repo.transition(ids[3], "sent", tx_hash="0xold")
    repo.transition(ids[4], "failed", reason="gone")
    return ids


def test_each_row_is_applied_unchanged_or_refused_with_the_api_tag(run, results, repo, payouts):
    requested, other, processing, sent, failed = payouts
    path = results(HEADER + "\n".join([
        f"{processing},sent,0xbatch,",
        f"{requested},failed,,wallet rejected the transfer",
        f"{sent},sent,0xold,",
        f"{sent},sent,0xother,",
        f"{failed},sent,0xlate,",
        f"{other},sent,,",
        f"{UNKNOWN_ID},failed,,",
        "not-a-uuid,failed,,",
    ]) + "\n")
    code, lines, err = run("import-results", path, "--actor", "maria")
    assert (code, err) == (1, "")
    assert lines == [
        f"line 2: {processing} sent: applied",
        f"line 3: {requested} failed: applied",
        f"line 4: {sent} sent: unchanged",
        f"line 5: {sent} sent: refused: payout_not_actionable",
        f"line 6: {failed} sent: refused: payout_not_actionable",
        f"line 7: {other} sent: refused: invalid_tx_hash",
        f"line 8: {UNKNOWN_ID} failed: refused: payout_not_found",
        "line 9: not-a-uuid failed: refused: invalid_payout_id",
        "8 rows: 2 applied, 1 unchanged, 5 refused",
    ]
    assert repo.get_payout(processing)["tx_hash"] == "0xbatch"
    [event] = transitions(repo, requested)
    assert (event["to_status"], event["reason"], event["actor"]) == ("failed", "wallet rejected the transfer", "maria")
    assert repo.get_payout(other)["status"] == "requested"


def test_a_file_applied_twice_changes_nothing_the_second_time(run, results, repo, payouts):
    requested, other, processing, _sent, _failed = payouts
    # A batch transfer: one tx_hash for several payouts. A requested payout may be marked
    # sent at once, as POST .../sent allows.
    path = results(HEADER + f"{requested},sent,0xbatch,\n{processing},sent,0xbatch,\n{other},failed,,\n")
    code, lines, _ = run("import-results", path, "--actor", "maria")
    assert code == 0
    assert lines[-1] == "3 rows: 3 applied, 0 unchanged, 0 refused"
    after = state(repo, payouts)
    code, lines, err = run("import-results", path, "--actor", "someone-else")
    assert (code, err) == (0, "")
    assert lines == [f"line 2: {requested} sent: unchanged", f"line 3: {processing} sent: unchanged",
                     f"line 4: {other} failed: unchanged", "3 rows: 0 applied, 3 unchanged, 0 refused"]
    assert state(repo, payouts) == after
    assert {e["actor"] for i in (requested, processing, other) for e in transitions(repo, i)[-1:]} == {"maria"}
    assert run("audit")[0] == 0


def test_the_actor_is_the_user_running_it_by_default(run, results, repo, payouts, monkeypatch):
    monkeypatch.setattr(getpass, "getuser", lambda: "ops-on-call")
    assert run("import-results", results(HEADER + f"{payouts[0]},failed,,\n"))[0] == 0
    assert transitions(repo, payouts[0])[-1]["actor"] == "ops-on-call"


def test_a_dry_run_says_what_would_happen_and_writes_nothing(run, results, repo, payouts):
    requested, _other, processing, sent, _failed = payouts
    path = results(HEADER + f"{requested},sent,0xb,\n{processing},failed,,late\n{sent},sent,0xold,\n"
                            f"{requested},sent,0xb,\n{requested},failed,,\n")
    before = state(repo, payouts)
    code, lines, _ = run("import-results", path, "--dry-run")
    assert code == 1
    assert lines == [
        f"line 2: {requested} sent: would apply",
        f"line 3: {processing} failed: would apply",
        f"line 4: {sent} sent: unchanged",
        f"line 5: {requested} sent: unchanged",  # after the row before it
        f"line 6: {requested} failed: refused: payout_not_actionable",
        "dry run, nothing written: 5 rows: 2 would apply, 2 unchanged, 1 refused",
    ]
    assert state(repo, payouts) == before
    # The real run does what the dry run said.
    assert run("import-results", path)[1][:-1] == [line.replace("would apply", "applied") for line in lines[:-1]]


def test_the_export_is_a_file_it_reads(run, results, repo, payouts):
    code, lines, _ = run("export", "--status", "sent")
    assert code == 0
    exported = "\n".join(lines) + "\n"
    assert exported.startswith("id,user_id,amount,")
    code, lines, _ = run("import-results", results(exported))
    assert (code, lines) == (0, [f"line 2: {payouts[3]} sent: unchanged", "1 row: 0 applied, 1 unchanged, 0 refused"])
    # A row of the export's shape for a payout still processing: applied.
    row = exported.splitlines()[1].replace(payouts[3], payouts[2]).replace("0xold", "0xnew")
    code, lines, _ = run("import-results", results(exported.splitlines()[0] + "\r\n" + row + "\r\n"))
    assert (code, lines[0]) == (0, f"line 2: {payouts[2]} sent: applied")
    assert repo.get_payout(payouts[2])["tx_hash"] == "0xnew"


MALFORMED = [
    ("missing column", "id,status,tx_hash\n{ok},sent,0x1\n"),
    ("no header", ""),
    ("bad encoding", b"id,status,tx_hash,reason\n{ok},failed,,\n\xff\xfe,failed,,\n"),
    ("not csv", '{{"id": "{ok}", "status": "sent"}}\n'),
    ("unterminated quote", 'id,status,tx_hash,reason\n{ok},sent,0x1,\n{ok},failed,,"never closed\n'),
    ("a nul byte", "id,status,tx_hash,reason\n{ok},sent,0x1,\n{ok},failed,,\x00\n"),
    ("other status", "id,status,tx_hash,reason\n{ok},sent,0x1,\n{ok},cancelled,,\n"),
    ("ragged row", "id,status,tx_hash,reason\n{ok},sent,0x1,\n{ok},failed\n"),
    ("a column twice", "id,status,tx_hash,reason,status\n{ok},sent,0x1,,sent\n"),
]


def test_a_malformed_file_is_refused_before_any_row(run, results, repo, payouts):
    """Every file has a good row before the fault: nothing is applied."""
    before = state(repo, payouts)
    for name, content in MALFORMED:
        if isinstance(content, bytes):
            content = content.replace(b"{ok}", payouts[0].encode())
        else:
            content = content.format(ok=payouts[0])
        code, lines, err = run("import-results", results(content))
        assert (code, lines) == (2, []), name
        assert len(err.splitlines()) == 1 and "nothing was applied" in err and "Traceback" not in err, (name, err)
        assert state(repo, payouts) == before, name
    code, lines, err = run("import-results", results(b"") + ".missing")
    assert (code, lines) == (2, []) and "No such file" in err


def test_a_bad_actor_is_a_usage_error(run, results, payouts):
    code, lines, err = run("import-results", results(HEADER), "--actor", "")
    assert (code, lines) == (2, []) and "--actor" in err
