"""A ``postgresql://`` database without the ``postgres`` extra, for real: a
virtual environment with this checkout and gunicorn and nothing else (no
psycopg), as ``pip install triport-payouts`` without the extra leaves one.
Every command, ``serve`` too, says the fix in one line and exits 2; gunicorn
serving ``triport_payouts.wsgi:application`` prints that line and stops.

The environment is built in about 0.05 s (``venv --without-pip``; the
checkout and gunicorn are put on its path as an editable install would);
each command then takes about 0.13 s, gunicorn 0.2 s: 1.7 s for the file.
An import blocker in the test's own interpreter would be as fast, and less
true: here psycopg is simply not there.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import UNKNOWN_ID
from live import free_port

from triport_payouts import cli

ROOT = Path(__file__).resolve().parent.parent
URL = "postgresql://payouts@db.invalid/payouts"  # never reached: the driver is missing first
FIX = ("a postgresql:// database needs psycopg, which cannot be imported (No module named 'psycopg'):"
       " pip install 'triport-payouts[postgres]'")

# Every command, with arguments it accepts.
COMMANDS = {
    "init-db": [],
    "migrate": [],
    "credit": ["--user-id", "alice", "--amount", "1", "--currency", "USDT"],
    "create-payout": ["--user-id", "alice", "--amount", "1", "--currency", "USDT", "--destination", "0xd"],
    "cancel-payout": [UNKNOWN_ID],
    "seed-demo": [],
    "audit": [],
    "export": [],
    "prune-idempotency-keys": [],
    "copy-data": ["--from", "source.sqlite3"],
    "serve": ["--bind", "127.0.0.1:1", "--workers", "1"],
    "webhook": ["list"],
    "token": ["list"],
    "import-results": ["results.csv"],
    "deliver": ["--once"],
}


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> str:
    """The python of a new virtual environment holding this checkout and gunicorn, not psycopg."""
    venv = tmp_path_factory.mktemp("no-postgres-extra") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = str(venv / "bin" / "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    site = Path(purelib)
    (site / "triport-checkout.pth").write_text(f"{ROOT}\n")
    gunicorn = importlib.util.find_spec("gunicorn").submodule_search_locations[0]
    (site / "gunicorn").symlink_to(gunicorn)  # it needs no other package at run time
    missing = subprocess.run([python, "-c", "import psycopg"], env=_env(), capture_output=True, text=True)
    assert "No module named 'psycopg'" in missing.stderr, "psycopg is importable in the bare venv"
    return python


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


def test_every_command_is_tried():
    parser = cli._parser()
    [commands] = [a.choices for a in parser._actions if getattr(a, "choices", None)]
    assert set(COMMANDS) == set(commands)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_names_the_fix_in_one_line(bare_python, tmp_path, command):
    done = subprocess.run([bare_python, "-m", "triport_payouts", command, *COMMANDS[command]],
                          env=_env(TRIPORT_DATABASE=URL), cwd=tmp_path,
                          capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"triport-payouts: {FIX}\n")


def test_copying_from_postgres_names_the_fix_in_one_line(bare_python, tmp_path):
    target = str(tmp_path / "target.sqlite3")
    done = subprocess.run([bare_python, "-m", "triport_payouts", "copy-data", "--from", URL],
                          env=_env(TRIPORT_DATABASE=target), capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"triport-payouts: {FIX}\n")


@pytest.mark.live
def test_gunicorn_prints_the_fix_and_stops_instead_of_booting_workers(bare_python, tmp_path):
    done = subprocess.run(
        [bare_python, "-m", "gunicorn", "--config", "python:triport_payouts.gunicorn_conf",
         "--bind", f"127.0.0.1:{free_port()}", "--workers", "1", "triport_payouts.wsgi:application"],
        env=_env(TRIPORT_DATABASE=URL, TRIPORT_ADMIN_TOKEN="test-admin-token"), cwd=tmp_path,
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 4, done.stderr  # gunicorn's "App failed to load": it halts
    assert done.stderr.splitlines().count(FIX) == 1, done.stderr
    assert "App failed to load" in done.stderr
    assert "Traceback" not in done.stderr
