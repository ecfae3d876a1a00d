"""``create_app(...)`` and the WSGI callable.

The callable dispatches in the contract's order of checks (route, method,
token, then the handler's own) and is the one place that calls
``start_response``: every outcome, an unexpected exception included, is
answered once, as JSON.
"""

from __future__ import annotations

import logging

from . import http, inputs
from .auth import Authenticator
from .config import DEFAULT_DATABASE, Config
from .db import first_line, open_database
from .domain import DomainError
from .errors import ApiError, Internal, from_database
from .handlers import Services
from .http import Response
from .metrics import Metrics
from .pagination import Cursors
from .repository import Repository
from .routing import ROUTES, Router
from .tokens import TokenStore

log = logging.getLogger("triport_payouts")


class App:
    """The WSGI application over one repository."""

    def __init__(self, config: Config):
        self.repository = Repository(open_database(config.database))
        self.router = Router(ROUTES)
        self.services = Services(self.repository, Cursors(config.admin_token), Metrics(self.repository.db))
        self.auth = Authenticator(config.admin_token, TokenStore(self.repository.db))
        self._unavailable = self.repository.db.unavailable_errors

    def __call__(self, environ, start_response):
        try:
            response = self._dispatch(environ)
        except ApiError as exc:
            response = Response.error(exc)
        except DomainError as exc:
            response = Response.refusal(exc)
            if response.status == 500:
                log.error("unmapped refusal on %r: %r", environ.get("PATH_INFO"), exc)
        except self._unavailable as exc:
            # One line, no traceback: the cause is outside the app, and the
            # line says it (a full disk's names the database).
            error = from_database(exc)
            log.warning("%s: %s", error.tag, first_line(exc))
            response = Response.error(error)
        except Exception:
            # %r: a path may carry newlines that would forge log lines.
            log.exception("internal error on %r %r", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            response = Response.error(Internal())
        return response.start(start_response)

    def _dispatch(self, environ) -> Response:
        route, params = self.router.match(environ.get("PATH_INFO") or "/", environ.get("REQUEST_METHOD", "GET"))
        if route.right is not None:
            # Readers take the actor from here (inputs.OPERATOR).
            environ[inputs.OPERATOR] = self.auth.check(http.sent_token(environ, route.bearer), route.right)
        result = route.handler(self.services, **route.reads(environ, params))
        return result if isinstance(result, Response) else Response.json(200, result)


def create_app(database: str = DEFAULT_DATABASE, admin_token: str | None = None) -> App:
    """The WSGI application for a database (a SQLite path, ``sqlite:///PATH`` or
    ``postgresql://...``) and the operator token (None or "" refuses every
    admin request). Opens no connection until the first request.
    """
    return App(Config(database=database, admin_token=admin_token))
