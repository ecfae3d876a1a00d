"""``application``: the app built from the environment, for
``gunicorn 'triport_payouts.wsgi:application'``.
"""

import os

from gunicorn.errors import AppImportError

from .app import App
from .config import Config
from .db import DatabaseUrlError

try:
    application = App(Config.from_env(os.environ))
except DatabaseUrlError as exc:
    # gunicorn prints an AppImportError as its one line, without a traceback,
    # and stops: no worker would ever boot, so none is started again.
    raise AppImportError(str(exc)) from None
