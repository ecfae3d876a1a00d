"""The route table as data, and matching on ``PATH_INFO``.

A ``{name}`` segment matches any non-empty segment; handlers validate it after
the token check, so a malformed id is a 400, never a 404. Matching collects
the methods of every route whose path matched, so 404 and 405 fall out of one
pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MethodNotAllowed, NotFound


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: str
    auth: bool = True

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.template.split("/"))


ROUTES = (
    Route("POST", "/v1/admin/referrals/payouts/{payout_id}/failed", "mark_failed"),
    Route("POST", "/v1/admin/referrals/payouts/{payout_id}/sent", "mark_sent"),
    Route("POST", "/v1/admin/referrals/payouts/{payout_id}/processing", "mark_processing"),
    Route("GET", "/v1/admin/referrals/payouts", "list_payouts"),
    Route("GET", "/v1/admin/referrals/payouts/{payout_id}/events", "payout_events"),
    Route("GET", "/v1/admin/referrals/users/{user_id}", "user_view"),
    Route("GET", "/v1/admin/openapi.json", "openapi", auth=False),
    Route("GET", "/healthz", "healthz", auth=False),
    Route("GET", "/readyz", "readyz", auth=False),
)


class Router:
    def __init__(self, routes=ROUTES):
        self._by_length: dict[int, list[tuple[tuple[str, ...], Route]]] = {}
        for route in routes:
            segments = route.segments
            self._by_length.setdefault(len(segments), []).append((segments, route))

    def match(self, path: str, method: str) -> tuple[Route, dict[str, str]]:
        """The route and its path parameters; raises NotFound or MethodNotAllowed."""
        parts = path.split("/")
        allowed = []
        for segments, route in self._by_length.get(len(parts), ()):
            params = _bind(segments, parts)
            if params is None:
                continue
            if route.method == method:
                return route, params
            allowed.append(route.method)
        if allowed:
            raise MethodNotAllowed(tuple(sorted(set(allowed))))
        raise NotFound("not_found")


def _bind(segments: tuple[str, ...], parts: list[str]) -> dict[str, str] | None:
    params = {}
    for segment, part in zip(segments, parts):
        if segment.startswith("{"):
            if not part:
                return None
            params[segment[1:-1]] = part
        elif segment != part:
            return None
    return params
