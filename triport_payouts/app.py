"""``create_app(...)`` and the WSGI callable.

The callable dispatches in the contract's order of checks (route, method,
token, then the handler's own) and is the one place that calls
``start_response``: every outcome, an unexpected exception included, is
answered once, as JSON.
"""

from __future__ import annotations

import json
import logging
from importlib import resources

from . import handlers, http
from .config import DEFAULT_DATABASE, Config
from .db import first_line, open_database
from .domain import DomainError
from .errors import ApiError, from_domain
from .pagination import Cursors
from .repository import Repository
from .routing import ROUTES, Router

log = logging.getLogger("triport_payouts")


class App:
    """The WSGI application over one repository."""

    def __init__(self, config: Config, repository: Repository | None = None, routes=ROUTES):
        self.config = config
        self.repository = repository or Repository(open_database(config.database))
        self.router = Router(routes)
        self.cursors = Cursors(config.admin_token)
        self._unavailable = self.repository.db.unavailable_errors
        self._handlers = {route.handler: getattr(handlers, route.handler) for route in routes}
        self._openapi = None

    def openapi_document(self) -> dict:
        """The OpenAPI document shipped in the package, read once."""
        if self._openapi is None:
            text = resources.files(__package__).joinpath("openapi.json").read_text("utf-8")
            self._openapi = json.loads(text)
        return self._openapi

    def __call__(self, environ, start_response):
        try:
            status, payload, headers = 200, self._dispatch(environ), ()
        except ApiError as exc:
            status, payload, headers = exc.status, {"error": exc.tag}, exc.headers
        except DomainError as exc:
            error = from_domain(exc)
            status, payload, headers = error.status, {"error": error.tag}, ()
        except self._unavailable as exc:
            log.warning("database unavailable: %s", first_line(exc))
            status, payload, headers = 503, {"error": "database_unavailable"}, ()
        except Exception:
            log.exception("internal error on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            status, payload, headers = 500, {"error": "internal"}, ()
        status_line, response_headers, body = http.json_response(status, payload, headers)
        start_response(status_line, response_headers)
        return [body]

    def _dispatch(self, environ):
        route, params = self.router.match(environ.get("PATH_INFO") or "/", environ.get("REQUEST_METHOD", "GET"))
        if route.auth:
            http.check_token(environ, self.config.admin_token)
        return self._handlers[route.handler](environ, self, **params)


def create_app(database: str = DEFAULT_DATABASE, admin_token: str | None = None) -> App:
    """The WSGI application for a database (a SQLite path, ``sqlite:///PATH`` or
    ``postgresql://...``) and the operator token (None or "" refuses every
    admin request). Opens no connection until the first request.
    """
    return App(Config(database=database, admin_token=admin_token))
