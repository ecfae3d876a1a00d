"""wrk as a child process: one run of a script from bench/wrk/, stopped when
its threads say so, and the figures it reports."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from common import ROOT, WRK_DIR, BenchmarkFailed


@dataclass
class Load:
    """The figures of one wrk run."""

    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    answered: int
    statuses: dict
    socket_errors: int
    raw: dict

    @classmethod
    def from_report(cls, report: dict) -> Load:
        threads = report["threads"]
        for thread in threads:
            if not thread["stopped"] or thread["elapsed"] <= 0:
                raise BenchmarkFailed(
                    "a wrk thread did not stop by itself (requests still in flight when wrk's -d ran out):"
                    f" {thread}"
                )
        statuses: dict[str, int] = {}
        for thread in threads:
            for status, count in (thread["statuses"] or {}).items():
                statuses[status] = statuses.get(status, 0) + count
        errors = report["summary"]["errors"]
        latency = report["latency_us"]
        return cls(
            rps=sum(t["answered"] / t["elapsed"] for t in threads),
            p50_ms=latency["p50"] / 1000,
            p90_ms=latency["p90"] / 1000,
            p99_ms=latency["p99"] / 1000,
            max_ms=latency["max"] / 1000,
            answered=sum(t["answered"] for t in threads),
            statuses=statuses,
            socket_errors=sum(errors[k] for k in ("connect", "read", "write", "timeout")),
            raw=report,
        )


class Wrk:
    def __init__(self, token: str, connections: int, threads: int):
        self.token, self.connections, self.threads = token, connections, threads
        self.commands: dict[str, str] = {}

    def run(
        self,
        key: str,
        url: str,
        script: str,
        duration: float | None,
        args: dict,
        limit: int | None = None,
        threads: int | None = None,
        token: str | None = None,
    ) -> Load:
        """token: another X-Admin-Token than the run's (a named one)."""
        threads = threads or self.threads
        token = token or self.token
        script_args = {"nthreads": threads, **args}
        if limit is not None:
            script_args["limit"] = limit
            safety = 900
        else:
            script_args["duration"] = duration
            # wrk's own -d is only a safety net: the script stops each thread once its
            # duration is over and its writes are answered, and says so on stdout;
            # then wrk is interrupted, which ends its run at once.
            safety = int(duration) + 30
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{self.connections}",
            f"-d{safety}s",
            "--timeout",
            "10s",
            "-H",
            f"X-Admin-Token: {token}",
            "-s",
            str(WRK_DIR / script),
            url,
            "--",
            *(f"{k}={v}" for k, v in script_args.items()),
        ]
        self.commands[key] = shell(command, token)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stopped, lines, interrupter = set(), [], None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("BENCH-STOPPED "):
                stopped.add(line.split()[1])
                if len(stopped) == threads and interrupter is None:
                    interrupter = threading.Thread(target=_interrupt, args=(process,), daemon=True)
                    interrupter.start()
        stderr = process.stderr.read()
        returncode = process.wait()
        line = next((text for text in lines if text.startswith("BENCH-RESULT ")), None)
        if returncode != 0 or line is None:
            raise BenchmarkFailed(f"wrk failed ({returncode}): {stderr.strip() or ''.join(lines)[-2000:]}")
        return Load.from_report(json.loads(line[len("BENCH-RESULT ") :]))


def _interrupt(process: subprocess.Popen) -> None:
    """SIGINT until wrk exits: its handler ends the run, but a signal can land
    on a thread that is just exiting, so it is sent again."""
    while process.poll() is None:
        try:
            process.send_signal(signal.SIGINT)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def shell(command: list[str], token: str) -> str:
    import shlex

    text = " ".join(shlex.quote(part) for part in command)
    return text.replace(token, "$TOKEN").replace(str(ROOT) + "/", "")
