"""``application``: the app built from the environment, for
``gunicorn 'triport_payouts.wsgi:application'``.
"""

import os

from .app import App
from .config import Config

application = App(Config.from_env(os.environ))
