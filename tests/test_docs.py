"""The README names every command and every route, and so does the OpenAPI document."""

from __future__ import annotations

import json
import pathlib

import pytest

from triport_payouts import cli
from triport_payouts.routing import ROUTES

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text("utf-8")


def _commands():
    parser = cli._parser()
    choices = next(a for a in parser._actions if a.dest == "==SUPPRESS==" or hasattr(a, "choices") and a.choices)
    return sorted(choices.choices)


@pytest.mark.parametrize("command", _commands())
def test_every_command_is_in_the_readme(command):
    assert f"`{command}" in README


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
def test_every_route_is_in_the_readme(route):
    path = route.template.replace("{payout_id}", "{id}")
    assert f"| {route.method} | `{path}" in README


def test_every_error_tag_of_the_openapi_document_is_in_the_readme():
    document = json.loads((ROOT / "triport_payouts" / "openapi.json").read_text("utf-8"))
    tags = document["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
    missing = [tag for tag in tags if tag not in README]
    assert missing == []
