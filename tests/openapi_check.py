"""Checking responses against the OpenAPI document shipped in the package.

``assert_matches_openapi(method, path_template, status, body)`` validates a
response body with ``jsonschema`` against the schema the document gives that
operation at that status; ``$ref``s resolve inside the document through a
``referencing`` registry, so the document is used exactly as shipped.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_URI = "urn:triport-payouts:openapi.json"
JSON = "application/json"


@cache
def document() -> dict:
    """The packaged OpenAPI document, as the app serves it."""
    text = resources.files("triport_payouts").joinpath("openapi.json").read_text("utf-8")
    return json.loads(text)


@cache
def _registry() -> Registry:
    resource = Resource.from_contents(document(), default_specification=DRAFT202012)
    return Registry().with_resource(DOCUMENT_URI, resource)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _follow(pointer: str) -> tuple[str, dict]:
    """The object at a JSON pointer of the document, following a ``$ref`` it
    holds; returns the pointer it ended at and the object."""
    node = document()
    for token in pointer.lstrip("/").split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    if "$ref" in node:
        target = node["$ref"]
        assert target.startswith("#/"), f"external $ref {target!r} in the document"
        return _follow(target[1:])
    return pointer, node


def response_spec(method: str, path_template: str, status: int) -> tuple[str, dict]:
    """The pointer and Response Object the document gives for an operation and status."""
    operation = document()["paths"].get(path_template, {}).get(method.lower())
    assert operation is not None, f"{method.upper()} {path_template} is not in the document"
    documented = sorted(operation["responses"])
    assert str(status) in documented, (
        f"{method.upper()} {path_template}: status {status} is not documented (only {documented})"
    )
    pointer = "/".join(
        ["", "paths", _escape(path_template), method.lower(), "responses", str(status)]
    )
    return _follow(pointer)


def validate_at(pointer: str, value) -> None:
    """Validates a value against the schema at a JSON pointer of the document."""
    validator = Draft202012Validator({"$ref": f"{DOCUMENT_URI}#{pointer}"}, registry=_registry())
    error = best_match(validator.iter_errors(value))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(the body)"
        raise AssertionError(f"{where}: {error.message}\nbody: {json.dumps(value)[:2000]}")


def assert_matches_openapi(method: str, path_template: str, status: int, body, headers=None) -> None:
    """Raises AssertionError unless ``body`` (the parsed JSON) is what the
    document promises for ``method path_template`` at ``status``. With
    ``headers`` (a mapping, such as WebTest's ``res.headers``), also checks the
    content type and the response's required headers against their schemas.
    """
    pointer, response = response_spec(method, path_template, status)
    assert JSON in response.get("content", {}), f"{pointer}: no {JSON} content"
    validate_at(f"{pointer}/content/{_escape(JSON)}/schema", body)
    if headers is None:
        return
    content_type = headers.get("Content-Type", "")
    assert content_type.split(";")[0].strip() == JSON, f"Content-Type is {content_type!r}"
    for name in response.get("headers", {}):
        header_pointer, header = _follow(f"{pointer}/headers/{_escape(name)}")
        if name not in headers:
            assert not header.get("required"), f"required header {name} is missing"
            continue
        validate_at(f"{header_pointer}/schema", headers[name])


def assert_is_error(body, tag: str) -> None:
    """For answers no operation documents (``404 not_found``): the error envelope."""
    validate_at("/components/schemas/Error", body)
    assert body == {"error": tag}
