"""triport_payouts: the operator API of a referral program's payouts."""

from .app import App, create_app

__all__ = ["App", "create_app"]
__version__ = "0.1.0"
