"""The command line's webhook commands: ``webhook add|list|remove|rotate-secret|
enable|deliveries|redeliver|prune`` and ``deliver``, added to the parser of
``cli.py``, which maps their refusals to exit codes (InvalidWebhookInput is
a usage error, exit 2; EndpointNotFound and EventNotFound refusals, exit 1).
"""

from __future__ import annotations

import argparse
import datetime
import logging
import sys

from . import delivery, webhooks
from .cli_parts import group, print_json
from .webhooks import Webhooks


def cmd_add(args, repo, config):
    url = webhooks.parse_url(args.url)
    events = webhooks.parse_events(args.events)
    print_json(Webhooks(repo.db).add(url, events))


def cmd_list(args, repo, config):
    for endpoint in Webhooks(repo.db).endpoints():
        print_json(endpoint)


def cmd_remove(args, repo, config):
    Webhooks(repo.db).remove(args.id)
    print(f"removed webhook endpoint {args.id}", file=sys.stderr)


def cmd_rotate_secret(args, repo, config):
    print_json(Webhooks(repo.db).rotate_secret(args.id))


def cmd_enable(args, repo, config):
    Webhooks(repo.db).enable(args.id)
    print(f"enabled webhook endpoint {args.id}", file=sys.stderr)


def cmd_deliveries(args, repo, config):
    for row in Webhooks(repo.db).deliveries(endpoint_id=args.endpoint, failed=args.failed, limit=args.limit):
        print_json(row)


def cmd_redeliver(args, repo, config):
    queued = Webhooks(repo.db).redeliver(webhooks.parse_event_id(args.event_id))
    print(f"queued {queued} deliveries of event {args.event_id}", file=sys.stderr)


def cmd_prune(args, repo, config):
    removed = Webhooks(repo.db).prune(datetime.timedelta(days=args.older_than_days))
    print(f"removed {removed} delivered webhook deliveries", file=sys.stderr)


def cmd_deliver(args, repo, config):
    repo.db.ping()  # a schema of another version is refused before anything is sent
    if not logging.getLogger("triport_payouts").handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logging.getLogger("triport_payouts").addHandler(handler)
        logging.getLogger("triport_payouts").setLevel(logging.INFO)
    deliverer = delivery.Deliverer(repo, schedule=args.retry_schedule, timeout=args.timeout)
    deliverer.install_signals()
    deliverer.run(once=args.once)


def _schedule(text: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated seconds, e.g. 0,5,300") from None
    if not delays or any(not 0 <= delay <= 10 * 86400 for delay in delays):
        raise argparse.ArgumentTypeError("each delay from 0 to 864000 seconds")
    return delays


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a whole number") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError("from 1 to 10000")
    return value


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a whole number of days") from None
    if not 0 <= value <= 36_500:
        raise argparse.ArgumentTypeError("from 0 to 36500 days")
    return value


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("seconds, e.g. 10") from None
    if not 0 < value <= 300:
        raise argparse.ArgumentTypeError("from 0 to 300 seconds")
    return value


def add_commands(command) -> None:
    """Adds ``webhook ...`` and ``deliver`` through cli's command(name, func, help)."""
    sub = group(command, "webhook", "manage webhook endpoints and their deliveries (webhook SUBCOMMAND)")

    add = sub("add", cmd_add, "register an endpoint; prints it as JSON with its secret, shown this once")
    add.add_argument("url", help="an http:// or https:// URL")
    add.add_argument("--events", metavar="T,T...", help=f"event types (default all): {','.join(webhooks.EVENT_TYPES)}")
    sub("list", cmd_list, "print each endpoint as a JSON line (no secrets), with pending and failed deliveries")
    sub("remove", cmd_remove, "delete an endpoint and its deliveries").add_argument("id")
    sub("rotate-secret", cmd_rotate_secret,
        "give an endpoint a new secret (printed); the old one also signs for 24 hours").add_argument("id")
    sub("enable", cmd_enable, "enable an endpoint the service disabled; its pending deliveries resume"
        ).add_argument("id")
    listing = sub("deliveries", cmd_deliveries, "print the newest deliveries as JSON lines, with status and last error")
    listing.add_argument("--endpoint", metavar="ID")
    listing.add_argument("--failed", action="store_true", help="only those whose last attempt failed")
    listing.add_argument("--limit", type=_limit, default=100, metavar="N")
    sub("redeliver", cmd_redeliver, "queue an event again for every endpoint subscribed to it"
        ).add_argument("event_id", metavar="EVENT_ID")
    prune = sub("prune", cmd_prune, "delete the deliveries delivered more than D days ago (never a pending or"
                " failed one); safe beside serve and deliver")
    prune.add_argument("--older-than-days", type=_days, default=30, metavar="D", help="default 30")

    deliver = command("deliver", cmd_deliver, "send the webhook outbox (run beside serve); SIGTERM stops after"
                      " the request in flight")
    deliver.add_argument("--once", action="store_true", help="send what is due, then exit (cron, tests)")
    deliver.add_argument("--retry-schedule", type=_schedule, default=delivery.SCHEDULE, metavar="S,S...",
                         help="one entry per attempt, the seconds before it (the first attempt is always"
                         " immediate); default 0,5,300,1800,7200,18000,36000,36000")
    deliver.add_argument("--timeout", type=_timeout, default=delivery.TIMEOUT, metavar="SECONDS",
                         help="per request (default 10); a claim lasts twice this plus one second")
