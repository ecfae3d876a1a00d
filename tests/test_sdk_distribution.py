"""Two distributions: triport-sdk (sdk/python) installs alone into a fresh
venv and gives a working client with nothing of the server, and the server's
wheel no longer ships the client.

Wheels are built offline by this interpreter's setuptools and wheel (the test
extras) from a copy of the sources, so no build/ is left in the tree and no
stale one is packaged; the fresh venv installs with --no-index.
"""

from __future__ import annotations

import email.parser
import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

import triport

ROOT = pathlib.Path(__file__).resolve().parent.parent
SDK = ROOT / "sdk" / "python"
# Left out of the copies: what a build or a run leaves behind, never sources.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__",
                                     ".pytest_cache", ".hypothesis", "*.sqlite3*")

pytestmark = pytest.mark.live  # runs pip and a venv's python


def _run(args, cwd) -> str:
    """Without the caller's pip settings or PYTHONPATH: nothing reaches an
    index, and only what is installed is importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _build_wheel(source: pathlib.Path, work: pathlib.Path) -> pathlib.Path:
    copy = work / "src"
    shutil.copytree(source, copy, ignore=NOT_SOURCES)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
          "--wheel-dir", work / "wheels", copy], cwd=work)
    [wheel] = (work / "wheels").glob("*.whl")
    return wheel


def _dist_info(wheel: pathlib.Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        [path] = [p for p in archive.namelist() if p.endswith(f".dist-info/{name}")]
        return archive.read(path).decode("utf-8")


def _files(wheel: pathlib.Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


@pytest.fixture(scope="module")
def sdk_wheel(tmp_path_factory):
    return _build_wheel(SDK, tmp_path_factory.mktemp("sdk"))


# Run by the fresh venv's python: the client against a stub server answering
# 409 payout_not_actionable, and what else the venv can import.
IN_THE_VENV = '''\
import http.server, importlib.metadata, importlib.util, json, sys, threading
from triport import TriportAdmin, PayoutNotActionable
import triport

class Stub(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"error": "payout_not_actionable"}).encode()
        self.send_response(409)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.user_agent = self.headers["User-Agent"]

    def log_message(self, *args):
        pass

stub = http.server.HTTPServer(("127.0.0.1", 0), Stub)
threading.Thread(target=stub.serve_forever, daemon=True).start()
admin = TriportAdmin(admin_token="t", base_url=f"http://127.0.0.1:{stub.server_port}", max_attempts=1)
try:
    admin.referrals.payouts.mark_failed("0190d7a8-8f3c-7cde-8a3b-5c1e2f3a4b5c", reason="wallet rejected it")
    raised = None
except PayoutNotActionable as exc:
    raised = [type(exc).__name__, exc.status, exc.tag]
stub.shutdown()
print(json.dumps({
    "raised": raised,
    "user_agent": stub.user_agent,
    "module": triport.__file__,
    "version": triport.__version__,
    "distribution_version": importlib.metadata.version("triport-sdk"),
    "distributions": sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions()),
    "importable": {name: importlib.util.find_spec(name) is not None
                   for name in ("gunicorn", "triport_payouts")},
}))
'''


def test_the_sdk_installs_alone_into_a_fresh_venv_and_works(sdk_wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    # --no-index: a runtime dependency, were one declared, would fail the install.
    _run([python, "-m", "pip", "install", "--quiet", "--no-index", sdk_wheel], cwd=tmp_path)
    script = tmp_path / "use_the_client.py"
    script.write_text(IN_THE_VENV, "utf-8")

    seen = json.loads(_run([python, script], cwd=tmp_path))

    assert seen["raised"] == ["PayoutNotActionable", 409, "payout_not_actionable"]
    assert pathlib.Path(seen["module"]).is_relative_to(venv)
    assert seen["version"] == seen["distribution_version"] == triport.__version__
    assert seen["user_agent"] == f"triport-sdk-python/{triport.__version__}"
    assert seen["importable"] == {"gunicorn": False, "triport_payouts": False}
    assert "triport-sdk" in seen["distributions"]
    assert not {"gunicorn", "triport-payouts", "triport_payouts"} & set(seen["distributions"])


def test_the_sdk_wheel_holds_only_triport_and_declares_no_dependency(sdk_wheel):
    metadata = email.parser.Parser().parsestr(_dist_info(sdk_wheel, "METADATA"))
    assert metadata["Name"] == "triport-sdk"
    assert metadata["Version"] == triport.__version__
    assert metadata.get_all("Requires-Dist") is None
    assert _dist_info(sdk_wheel, "top_level.txt").split() == ["triport"]
    assert {path.split("/")[0] for path in _files(sdk_wheel) if ".dist-info/" not in path} == {"triport"}


def test_the_server_wheel_no_longer_ships_the_client(tmp_path):
    wheel = _build_wheel(ROOT, tmp_path)
    assert _dist_info(wheel, "top_level.txt").split() == ["triport_payouts"]
    assert {path.split("/")[0] for path in _files(wheel) if ".dist-info/" not in path} == {"triport_payouts"}
