"""What every bench module shares: the paths, the API's constants, the
failure that stops a run, and the log."""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VAR = ROOT / "var" / "bench"
CACHE = VAR / "cache"
WRK_DIR = BENCH / "wrk"
API = "/v1/admin/referrals"
BODY = '{"reason":"bench"}'
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
DEMO_USER = "demo-user-0001"
DEEP_ROWS = 5000  # how deep the "deep page" is: the page after this many rows


class BenchmarkFailed(Exception):
    """A check failed: the figures cannot be trusted."""


def log(message: str = "") -> None:
    print(message, flush=True)
