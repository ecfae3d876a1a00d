"""The project's gunicorn settings, used by ``triport-payouts serve`` and the
benchmarks: ``gunicorn -c python:triport_payouts.gunicorn_conf
triport_payouts.wsgi:application``. Command-line flags override them.
"""

import logging
import os

bind = "127.0.0.1:8000"
workers = 2 * (os.cpu_count() or 1) + 1
worker_class = "sync"
# Several instances share a machine (hosts of a test, a benchmark's ceiling):
# gunicorn's per-user control socket would be contended.
control_socket_disable = True
timeout = 30
graceful_timeout = 30
# Requests gunicorn itself refuses before the app: the API needs none larger.
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190

accesslog = "-"
# The path only, never the query string: a client may put anything there.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"},
        "message": {"format": "%(message)s"},
    },
    # Every line passes the redaction filter: gunicorn writes the raw request
    # line of a request it refuses, and a client may have put the token in it.
    "filters": {"redact": {"()": "triport_payouts.logs.RedactSecrets"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr",
                   "filters": ["redact"]},
        "access": {"class": "logging.StreamHandler", "formatter": "message", "stream": "ext://sys.stdout",
                   "filters": ["redact"]},
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "triport_payouts": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


def on_starting(server):
    """gunicorn's hook in the master, before the workers fork (they inherit
    this): no served record needs its caller, thread or process name, as the
    formats above use none of them (the logging HOWTO's "Optimization"), and
    finding the caller walks the stack on every line, the access log's too.
    A hook, so that importing this module (the CLI does) changes nothing."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
