"""Which route a request reaches. The path decides first: no route has it,
404 not_found. Then the method: a path some route has, with another method,
405 method_not_allowed with Allow naming the path's methods. Routes match
PATH_INFO exactly: no trailing slash, no missing, unknown or differently
cased action, no prefix (a mounted app's prefix is SCRIPT_NAME's).

Requests here fail nothing but routing (they carry the token). Which check
answers when a request fails several, routing among them, is in
test_order_of_checks.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import AUTH, CREDITS, PAYOUTS, UNKNOWN_ID, assert_untouched, call, Input, make_environ
from triport_payouts.errors import MethodNotAllowed, NotFound
from triport_payouts import handlers, routing

USERS = "/v1/admin/referrals/users"
OPENAPI = "/v1/admin/openapi.json"
ACTIONS = ("failed", "sent", "processing")
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")




def send(client, method, path_info, status, **kwargs):
    """`method` with PATH_INFO set as a server would: a URL starting with "//" would be read as a host."""
    extra_environ = {"PATH_INFO": path_info, **kwargs.pop("extra_environ", {})}
    if method == "POST":
        return client.post("/", b"{}", headers=AUTH, content_type="application/json", status=status,
                           extra_environ=extra_environ, **kwargs)
    return client.request("/", method=method, headers=AUTH, status=status, environ=extra_environ, **kwargs)


# -- 404 not_found: no route has the path ------------------------------------------


NOT_FOUND_PATHS = [
    f"{PAYOUTS}/{UNKNOWN_ID}",
    f"{PAYOUTS}/{UNKNOWN_ID}/",
    f"{PAYOUTS}/{UNKNOWN_ID}/failed/",
    f"{PAYOUTS}/{UNKNOWN_ID}/failed/extra",
    f"{PAYOUTS}/{UNKNOWN_ID}/unknown",
    f"{PAYOUTS}/{UNKNOWN_ID}/FAILED",
    f"{PAYOUTS}/{UNKNOWN_ID}/fail",
    f"{PAYOUTS}//failed",
    f"{PAYOUTS}/failed",
    PAYOUTS + "/",
    f"/v2/admin/referrals/payouts/{UNKNOWN_ID}/failed",
    f"/api{PAYOUTS}/{UNKNOWN_ID}/failed",
    f"/{PAYOUTS}/{UNKNOWN_ID}/failed",
    "/",
    "/v1",
    "/nope",
    "/v1/admin",
    "/favicon.ico",
    "/healthz/",
    "/readyz/",
    "/healthz/x",
    "/health",
    "/HEALTHZ",
    "//healthz",
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", NOT_FOUND_PATHS)
def test_unrouted_path_is_not_found(bare_client, path, method):
    res = send(bare_client, method, path, 404)
    assert res.json == {"error": "not_found"}


@pytest.mark.parametrize("path_of", [
    pytest.param(lambda payout_id: f"{PAYOUTS}/{payout_id}", id="no-action-segment"),
    pytest.param(lambda payout_id: f"{PAYOUTS}/{payout_id}/failed/", id="trailing-slash"),
])
def test_unrouted_path_of_a_real_payout_is_not_found_and_changes_nothing(client, repo, make_payout, path_of):
    payout_id = make_payout()
    res = client.post(path_of(payout_id), b"{}", headers=AUTH, content_type="application/json", status=404)
    assert res.json == {"error": "not_found"}
    assert_untouched(repo, payout_id)


# -- 405 method_not_allowed, with Allow ------------------------------------------------


# Every route: a path it matches and the one method it answers.
ROUTES = [
    ("POST", f"{PAYOUTS}/{UNKNOWN_ID}/failed"),
    ("POST", f"{PAYOUTS}/{UNKNOWN_ID}/sent"),
    ("POST", f"{PAYOUTS}/{UNKNOWN_ID}/processing"),
    ("POST", f"{PAYOUTS}/{UNKNOWN_ID}/cancel"),
    ("GET, POST", PAYOUTS),
    ("POST", CREDITS),
    ("POST", f"{PAYOUTS}/bulk"),
    ("GET", f"{PAYOUTS}/{UNKNOWN_ID}/events"),
    ("GET", f"{USERS}/x"),
    ("GET", OPENAPI),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
]


@pytest.mark.parametrize(("allowed", "path", "method"), [
    pytest.param(allowed, path, method, id=f"{method}-{path}")
    for allowed, path in ROUTES for method in METHODS if method not in allowed.split(", ")
])
def test_other_method_is_method_not_allowed_with_allow_header(bare_client, allowed, path, method):
    res = send(bare_client, method, path, 405)
    assert res.json == {"error": "method_not_allowed"}
    assert res.headers["Allow"] == allowed


@pytest.mark.parametrize("backend", ["sqlite"])  # refused before any database: one backend says it
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("action", ACTIONS)
def test_other_method_on_a_real_payouts_action_is_405_and_changes_nothing(client, repo, make_payout, action,
                                                                         method):
    payout_id = make_payout()
    res = client.request(f"{PAYOUTS}/{payout_id}/{action}", method=method, headers=AUTH, status=405)
    assert res.json == {"error": "method_not_allowed"}
    assert res.headers["Allow"] == "POST"
    assert_untouched(repo, payout_id)


# -- mounted under a prefix ----------------------------------------------------------


def test_app_mounted_under_a_prefix_routes_on_path_info(client, repo, make_payout):
    payout_id = make_payout()
    res = client.post_json(f"{PAYOUTS}/{payout_id}/failed", {"reason": "mounted"}, headers=AUTH, status=200,
                           extra_environ={"SCRIPT_NAME": "/api"})
    assert res.json == {"ok": True}
    assert repo.get_payout(payout_id)["status"] == "failed"


def test_a_mounted_apps_prefix_is_not_matched_again_in_path_info(bare_client):
    # Built by hand: WebTest moves a PATH_INFO that starts with SCRIPT_NAME's prefix.
    environ = make_environ(Input(b"{}"), path=f"/api{PAYOUTS}/{UNKNOWN_ID}/failed", content_length="2",
                           SCRIPT_NAME="/api")
    status, _, answer = call(bare_client.app, environ)
    assert (status, answer) == (404, {"error": "not_found"})


# -- the router against trying every route in order ----------------------------------

SEGMENTS = ("", "v1", "admin", "referrals", "payouts", "users", "events", "credits", "bulk", "failed", "sent",
            "processing", "cancel", "metrics", "healthz", "readyz", "openapi.json", UNKNOWN_ID, "x", "{payout_id}")


def every_route_in_order(path: str, method: str, routes=routing.ROUTES):
    """What Router.match promises, the slow way: each route of the table in turn."""
    allowed = []
    for route in routes:
        found = route.pattern().fullmatch(path)
        if found is not None:
            if route.method == method:
                return route, found.groupdict()
            allowed.append(route.method)
    return ("405", tuple(sorted(set(allowed)))) if allowed else ("404",)


ROUTER = routing.Router()


def near_a_route(draw) -> str:
    """A route's template with each {name} filled and, sometimes, a segment changed, added or dropped."""
    segments = draw(st.sampled_from(routing.ROUTES)).template.split("/")
    segments = [draw(st.sampled_from(SEGMENTS)) if part.startswith("{") else part for part in segments]
    change = draw(st.sampled_from(("none", "replace", "add", "drop")))
    at = draw(st.integers(0, len(segments) - 1))
    if change == "replace":
        segments[at] = draw(st.sampled_from(SEGMENTS))
    elif change == "add":
        segments.insert(at, draw(st.sampled_from(SEGMENTS)))
    elif change == "drop" and len(segments) > 1:
        del segments[at]
    return "/".join(segments)


@settings(max_examples=3000, deadline=None)
@given(
    path=st.composite(near_a_route)() | st.lists(st.sampled_from(SEGMENTS) | st.text(max_size=3), max_size=7).map(
        lambda segments: "/" + "/".join(segments)),
    method=st.sampled_from(METHODS),
)
def test_the_router_answers_as_trying_every_route_in_order_would(path, method):
    try:
        answer = ROUTER.match(path, method)
    except MethodNotAllowed as exc:
        answer = ("405", tuple(exc.headers[0][1].split(", ")))
    except NotFound:
        answer = ("404",)
    assert answer == every_route_in_order(path, method)


def test_a_last_segment_partly_a_name_is_tried_for_any_last_segment():
    # No route of the table has one; a router of other routes must still match as trying each would.
    routes = (routing.Route("GET", "/files/report-{day}", handlers.healthz),
              routing.Route("POST", "/files/{name}", handlers.healthz),
              routing.Route("GET", "/files/latest", handlers.healthz))
    router = routing.Router(routes)
    for path in ("/files/report-monday", "/files/latest", "/files/other", "/files/report-"):
        for method in ("GET", "POST"):
            try:
                route, params = router.match(path, method)
                answer = (route, params)
            except MethodNotAllowed as exc:
                answer = ("405", tuple(exc.headers[0][1].split(", ")))
            except NotFound:
                answer = ("404",)
            assert answer == every_route_in_order(path, method, routes), (path, method)
