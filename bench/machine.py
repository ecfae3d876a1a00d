"""The machine a run is on: CPU, memory, versions, load average, commit."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from pathlib import Path

from common import ROOT


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        int(row.split()[1]) for row in Path("/proc/meminfo").read_text().splitlines() if row.startswith("MemTotal:")
    )
    import gunicorn

    wrk_version = subprocess.run(
        ["wrk", "--version"], check=False, capture_output=True, text=True
    ).stdout.splitlines()[0]
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "gunicorn": gunicorn.__version__,
        "wrk": wrk_version.split(" [")[0],
        "loadavg_start": loadavg(),
        "commit": _git("rev-parse", "--short", "HEAD"),
        # the app's code as run may differ from the commit: other work in progress
        "app_changes": _git("status", "--porcelain", "--", "triport_payouts", "schema.sql"),
    }


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], check=False, cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]
