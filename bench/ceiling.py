"""The ceiling: a bare WSGI callable answering ``{"ok": true}`` as the app
does (same body bytes, same three headers), served by the same gunicorn
settings. Every load figure in docs/benchmarks.md is a ratio to this,
measured in the same round.

    gunicorn --config python:triport_payouts.gunicorn_conf bench.ceiling:application
"""

BODY = b'{"ok":true}\n'
HEADERS = [
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-store"),
    ("Content-Length", str(len(BODY))),
]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
