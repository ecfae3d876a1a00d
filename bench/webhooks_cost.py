"""What webhooks cost the 200 path (mark-failed), in process: call by call
alternating (``inprocess.measure``) between apps on databases seeded alike,
each against one without the outbox trigger (the code before webhooks):

- ``control``: also without the trigger (the noise floor, about 1.00);
- ``none``: the trigger, no endpoint registered;
- ``one``: the trigger and one endpoint subscribed to every type.

    .venv/bin/python -m bench.webhooks_cost [--rounds 2] [--calls 150]

Each figure: the median per-call time over the one without the trigger.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile

from bench import inprocess
from triport_payouts import create_app
from triport_payouts.db import open_database
from triport_payouts.webhooks import EVENT_TYPES, Webhooks

PATH = "/v1/admin/referrals/payouts/{}/failed"
VARIANTS = ("control", "none", "one")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=150)
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args(argv)
    token = secrets.token_urlsafe(16)
    per_run = 50 + args.calls * args.blocks
    with tempfile.TemporaryDirectory(prefix="triport-webhooks-cost-") as tmp:
        apps, ids = {}, {}
        for name in ("before", *VARIANTS):
            path = os.path.join(tmp, f"{name}.sqlite3")
            uses = per_run * args.rounds * (len(VARIANTS) if name == "before" else 1)
            ids[name] = iter(inprocess._seed(path, uses + 10, 50))
            db = open_database(path)
            if name in ("before", "control"):
                with db.transaction() as conn:
                    conn.execute("DROP TRIGGER payout_events_webhooks")
            if name == "one":
                Webhooks(db).add("http://127.0.0.1:9/bench", EVENT_TYPES)
            db.close()
            apps[name] = create_app(database=path, admin_token=token)

        def loop(name):
            return inprocess._app_loop(
                apps[name], lambda: inprocess.environ("POST", PATH.format(next(ids[name])), token, body=inprocess.BODY),
                "200")

        for round_ in range(args.rounds):
            for name in VARIANTS:
                route = inprocess.Route(name, name, loop(name), loop("before"), "200", writes=True)
                result = inprocess.measure(route, args.calls, args.blocks)
                print(f"round {round_} {name:8} {result['app_us']:7.1f} us vs {result['raw_us']:7.1f} us"
                      f" without the trigger: {result['ratio']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
