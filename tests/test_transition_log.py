"""One log line per transition: payout id, from, to, actor; never the token."""

from __future__ import annotations

import logging

from helpers import AUTH, PAYOUTS, TOKEN


def test_each_transition_logs_one_line(client, make_payout, repo, caplog):
    payout_id = make_payout()
    with caplog.at_level(logging.INFO, logger="triport_payouts"):
        client.post(f"{PAYOUTS}/{payout_id}/processing", headers={**AUTH, "X-Admin-Actor": "maria"})
        client.post_json(f"{PAYOUTS}/{payout_id}/sent", {"tx_hash": "0xabc"}, headers=AUTH)
        client.post(f"{PAYOUTS}/{payout_id}/failed", headers=AUTH, status=409)
    lines = [r.getMessage() for r in caplog.records if r.name == "triport_payouts"]
    assert lines == [
        f'payout {payout_id} requested -> processing actor="maria"',
        f"payout {payout_id} processing -> sent actor=null",
    ]
    assert not any(TOKEN in r.getMessage() for r in caplog.records)


def test_a_cancel_from_the_command_line_logs_its_actor(make_payout, repo, caplog):
    payout_id = make_payout()
    with caplog.at_level(logging.INFO, logger="triport_payouts"):
        repo.cancel_payout(payout_id, actor="ops")
    assert [r.getMessage() for r in caplog.records] == [f'payout {payout_id} requested -> cancelled actor="ops"']
