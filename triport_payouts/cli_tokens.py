"""The command line's token commands: ``token create|list|revoke``, added to
the parser of ``cli.py`` (which maps NameTaken and NoSuchToken refusals to
exit 1; a bad name or scope is a usage error, exit 2)."""

from __future__ import annotations

import argparse
import sys

from . import tokens
from .cli_parts import group, print_json
from .tokens import TokenStore


def cmd_create(args, repo, config):
    print_json(TokenStore(repo.db).create(args.name, args.scope))


def cmd_list(args, repo, config):
    for token in TokenStore(repo.db).list():
        print_json(token)


def cmd_revoke(args, repo, config):
    TokenStore(repo.db).revoke(args.name)
    print(f"revoked token {args.name}; every worker refuses it within 5 seconds", file=sys.stderr)


def _checked(check):
    def parse(text: str) -> str:
        try:
            return check(text)
        except tokens.InvalidTokenInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def add_commands(command) -> None:
    """Adds ``token ...`` through cli's command(name, func, help)."""
    sub = group(command, "token", "manage named operator tokens (token SUBCOMMAND)")

    create = sub("create", cmd_create,
                 "create a token; prints it as JSON with the token, shown this once (only its hash is kept)")
    create.add_argument("--name", required=True, type=_checked(tokens.check_name),
                        help="who or what uses it; recorded as the actor of its changes")
    create.add_argument("--scope", required=True, type=_checked(tokens.check_scope), metavar="SCOPE",
                        help=f"one of {', '.join(tokens.SCOPES)}")
    sub("list", cmd_list, "print each live token as a JSON line: name, scope, created and last used (no secrets)")
    sub("revoke", cmd_revoke, "revoke a token by name; the name may then be used again").add_argument("name")
