"""The command line, ``triport-payouts`` (or ``python -m triport_payouts``).

Exit status: 0 done; 1 refused (by the domain, or the database cannot be
used now: down, locked, its disk full), with one line on stderr; 2 usage
error, or a PostgreSQL database without the ``postgres`` extra. No traceback
for any expected error.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import io
import os
import re
import sys

from . import audit, cli_tokens, cli_webhooks, demo, domain, export, gunicorn_conf, idempotency, reconcile, writes
from .cli_parts import print_json
from .config import Config
from .db import (
    DatabaseUnavailable,
    NoSchema,
    DatabaseUrlError,
    SchemaOutdated,
    SchemaTooNew,
    StorageFull,
    first_line,
    open_database,
    require_version,
)
from .repository import Repository
from .copydata import copy_database
from .webhooks import InvalidWebhookInput

PROG = "triport-payouts"


def main(argv=None, environ=None) -> int:
    environ = os.environ if environ is None else environ
    args = _parser().parse_args(argv)
    config = Config.from_env(environ)
    try:
        db = open_database(config.database)
    except DatabaseUrlError as exc:
        return _usage_error(exc)
    try:
        return args.command(args, Repository(db), config) or 0
    except domain.DomainError as exc:
        return _refuse(str(exc))
    except InvalidWebhookInput as exc:
        return _usage_error(exc)
    except StorageFull as exc:
        return _refuse(f"storage full: {exc}; nothing was changed: free some space and run it again")
    except db.unavailable_errors as exc:
        return _refuse(f"database unavailable: {first_line(exc)}")
    except db.errors as exc:
        return _refuse(f"database error: {first_line(exc)}")
    except DatabaseUrlError as exc:  # copy-data --from a database
        return _usage_error(exc)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _refuse(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 1


def _usage_error(exc: Exception) -> int:
    print(f"{PROG}: {exc}", file=sys.stderr)
    return 2


def _actor() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def cmd_migrate(args, repo, config):
    before, after = repo.db.migrate()
    was = f" (was {before})" if before != after else ", nothing to do"
    print(f"schema at version {after}{was}", file=sys.stderr)


def cmd_credit(args, repo, config):
    print_json(writes.credit(repo, {
        "user_id": args.user_id, "amount": args.amount, "currency": args.currency, "note": args.note,
    }))


def cmd_create_payout(args, repo, config):
    print_json(writes.create_payout(repo, {
        "user_id": args.user_id, "amount": args.amount, "currency": args.currency,
        "destination": args.destination,
    }, actor=_actor()))


def cmd_cancel_payout(args, repo, config):
    payout_id = domain.parse_payout_id(args.id)
    repo.cancel_payout(payout_id, actor=_actor())
    print_json(repo.get_payout(payout_id))


def cmd_seed_demo(args, repo, config):
    ids = demo.seed_demo(repo, args.payouts, args.users)
    if ids:
        sys.stdout.write("\n".join(ids) + "\n")


def cmd_audit(args, repo, config):
    stalled_after, text = args.stalled_after
    report = audit.audit(repo, stalled_before=domain.utc_in(-stalled_after))
    for line in report.violations:
        print(line)
    for payout_id, since in report.stalled:
        print(f"warning: payout {payout_id} in processing since {since}, longer than {text}")
    counts = f"{report.payouts} payouts, {report.events} events, {report.credits} credits"
    if report.stalled:
        counts += f"; warnings: {len(report.stalled)} payouts in processing for longer than {text}"
    if report.violations:
        print(f"audit failed: {len(report.violations)} violations in {counts}")
        return 1
    print(f"audit ok: {counts}")


def cmd_export(args, repo, config):
    since = export.parse_time(args.since) if args.since else None
    until = export.parse_time(args.until) if args.until else None
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="", write_through=False)
    try:
        export.export(repo, out, args.format, status=args.status, since=since, until=until)
    finally:
        out.flush()
        out.detach()


def cmd_import_results(args, repo, config):
    actor = _actor() if args.actor is None else args.actor
    if actor is not None and not domain.is_clean_text(actor, domain.MAX_NAME_LENGTH):
        return _usage_error(ValueError(f"--actor is 1 to {domain.MAX_NAME_LENGTH} printable characters"))
    try:
        with open(args.file, "rb") if args.file != "-" else _stdin() as stream:
            rows = reconcile.read(stream.read())
    except (OSError, reconcile.MalformedFile) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return _usage_error(ValueError(f"{args.file}: {reason}; nothing was applied"))
    counts = dict.fromkeys((reconcile.APPLIED, reconcile.UNCHANGED, reconcile.REFUSED), 0)
    applied = "would apply" if args.dry_run else "applied"
    for outcome in reconcile.apply(repo, rows, actor=actor, dry_run=args.dry_run):
        counts[outcome.result] += 1
        said = {reconcile.APPLIED: applied, reconcile.UNCHANGED: "unchanged"}.get(
            outcome.result, f"refused: {outcome.tag}")
        row = outcome.row
        shown = row.id if row.id.isprintable() and row.id else repr(row.id)
        print(f"line {row.line}: {shown} {row.status}: {said}", flush=True)
    total = (f"{len(rows)} row{'' if len(rows) == 1 else 's'}: {counts[reconcile.APPLIED]} {applied},"
             f" {counts[reconcile.UNCHANGED]} unchanged, {counts[reconcile.REFUSED]} refused")
    print(f"dry run, nothing written: {total}" if args.dry_run else total)
    return 1 if counts[reconcile.REFUSED] else 0


def _stdin():
    return os.fdopen(os.dup(sys.stdin.fileno()), "rb")


def cmd_prune_idempotency_keys(args, repo, config):
    removed = idempotency.prune(repo, datetime.timedelta(hours=args.older_than_hours))
    print(f"removed {removed} idempotency keys", file=sys.stderr)


def cmd_copy_data(args, repo, config):
    source = open_database(args.source)
    # The target's errors are main()'s; the source's, of another driver, are
    # caught here (its URL is never printed: it may hold a password).
    foreign: tuple[type[BaseException], ...] = source.errors if source.dialect != repo.db.dialect else ()
    unusable: tuple[type[BaseException], ...] = (DatabaseUnavailable, *source.unavailable_errors, *foreign)
    try:
        try:
            require_version(source.schema_version())
        except unusable as exc:
            return _refuse(f"the source database: {first_line(exc)}")
        try:
            print_json(copy_database(Repository(source), repo))
        except foreign as exc:
            return _refuse(f"the source database: {first_line(exc)}")
    finally:
        source.close()


def cmd_serve(args, repo, config):
    db = repo.db
    try:
        db.ping()
    except (NoSchema, SchemaOutdated, SchemaTooNew) as exc:
        return _refuse(str(exc))
    except db.unavailable_errors as exc:
        # Start anyway: /readyz says 503 until the database is back.
        print(f"{PROG}: warning: database unavailable, serving 503 until it is back: {exc}",
              file=sys.stderr)
    db.close()
    command = [
        sys.executable, "-m", "gunicorn",
        "--config", "python:triport_payouts.gunicorn_conf",
        "--bind", args.bind,
        "--workers", str(args.workers),
        "triport_payouts.wsgi:application",
    ]
    sys.stdout.flush()
    os.execv(sys.executable, command)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be at least 0")
    return value


_DURATION = re.compile(r"([1-9][0-9]{0,5})([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _duration(text: str) -> tuple[datetime.timedelta, str]:
    """A duration such as 90m, 24h or 2d (s, m, h, d), with its text."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError("a whole number and a unit (s, m, h or d), e.g. 90m, 24h, 2d")
    return datetime.timedelta(**{_UNITS[match[2]]: int(match[1])}), text


def _payout_count(text: str) -> int:
    value = _count(text)
    if value > demo.MAX_BULK_IDS:
        raise argparse.ArgumentTypeError(f"must be at most {demo.MAX_BULK_IDS}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Operate a referral program's payouts.")
    commands = parser.add_subparsers(metavar="COMMAND", required=True)

    def command(name, func, help):
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(command=func)
        return sub

    command("init-db", cmd_migrate, "create the schema in TRIPORT_DATABASE, or bring it up to date (as migrate)")
    command("migrate", cmd_migrate,
            "bring the schema of TRIPORT_DATABASE up to this release's version, step by step (idempotent)")

    sub = command("credit", cmd_credit, "record referral earnings for a user; prints the credit as JSON")
    sub.add_argument("--user-id", required=True)
    sub.add_argument("--amount", required=True, help="a positive decimal, e.g. 12.50")
    sub.add_argument("--currency", required=True, help="e.g. USDT")
    sub.add_argument("--note")

    sub = command("create-payout", cmd_create_payout,
                  "request a payout (status requested); prints the payout as JSON")
    sub.add_argument("--user-id", required=True)
    sub.add_argument("--amount", required=True, help="a positive decimal, at most the available balance")
    sub.add_argument("--currency", required=True)
    sub.add_argument("--destination", required=True, help="where the payout goes, e.g. a wallet address")

    sub = command("cancel-payout", cmd_cancel_payout, "cancel a requested payout (requested -> cancelled)")
    sub.add_argument("id", help="the payout id")

    sub = command("seed-demo", cmd_seed_demo,
                  "create demo users with earnings and N requested payouts; prints each payout id")
    sub.add_argument("--payouts", type=_payout_count, default=20, metavar="N")
    sub.add_argument("--users", type=_positive, default=5, metavar="M")

    sub = command("audit", cmd_audit,
                  "check the database's invariants; exit 1 with one line per violation. Payouts in"
                  " processing for longer than --stalled-after are warnings (exit 0), never changed")
    sub.add_argument("--stalled-after", type=_duration, default="24h", metavar="D",
                     help="how long in processing makes a payout stalled: 90m, 24h (the default), 2d")

    sub = command("export", cmd_export,
                  "stream payouts with their settlement for reconciliation (filters on the time of"
                  " the last change: since inclusive, until exclusive)")
    sub.add_argument("--status", choices=domain.STATUSES)
    sub.add_argument("--since", metavar="T", help="RFC 3339 time or date, e.g. 2026-11-01")
    sub.add_argument("--until", metavar="T", help="RFC 3339 time or date")
    sub.add_argument("--format", choices=export.FORMATS, default="csv")

    sub = command("import-results", cmd_import_results,
                  "apply a CSV of transfer results (columns id,status,tx_hash,reason; status sent or"
                  " failed; the export's columns do too) as the operator actions, one line per row:"
                  " applied, unchanged or refused; exit 1 if any row was refused, 2 for a malformed"
                  " file (then nothing is applied)")
    sub.add_argument("file", metavar="FILE", help="the CSV file (UTF-8, with a header row), or - for stdin")
    sub.add_argument("--dry-run", action="store_true", help="say what would happen, write nothing")
    sub.add_argument("--actor", metavar="NAME", help="who the events name (default: the user running this)")

    sub = command("prune-idempotency-keys", cmd_prune_idempotency_keys,
                  "delete idempotency keys older than H hours (never fewer than 24)")
    sub.add_argument("--older-than-hours", type=_positive, default=24, metavar="H")

    sub = command("copy-data", cmd_copy_data,
                  "copy every credit, payout and event from another database into TRIPORT_DATABASE"
                  " (which must be empty), e.g. from SQLite to PostgreSQL")
    sub.add_argument("--from", dest="source", required=True, metavar="DATABASE",
                     help="the source: a SQLite path, sqlite:///PATH or postgresql://...")

    cli_webhooks.add_commands(command)
    cli_tokens.add_commands(command)

    sub = command("serve", cmd_serve, "serve the API under gunicorn")
    sub.add_argument("--bind", default="127.0.0.1:8000", metavar="HOST:PORT")
    sub.add_argument("--workers", type=_positive, default=gunicorn_conf.workers, metavar="N")
    return parser
