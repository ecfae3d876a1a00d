"""What the command-line modules share: JSON lines on stdout, and a command
with subcommands (``webhook add``, ``token create``...)."""

from __future__ import annotations

import json


def print_json(value) -> None:
    print(json.dumps(value, ensure_ascii=False))


def group(command, name: str, help: str):
    """Adds the command `name` (through cli's command(name, func, help));
    returns sub(name, func, help), which adds one of its subcommands."""
    parser = command(name, None, help)
    subs = parser.add_subparsers(metavar="SUBCOMMAND", required=True)

    def sub(child_name, func, child_help):
        child = subs.add_parser(child_name, help=child_help, description=child_help)
        child.set_defaults(command=func)
        return child

    return sub
