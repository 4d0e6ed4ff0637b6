"""The ledger changes of bench_daemon's latency part, made from a process of their own.

A change comes from another process in production (the CLI, another
application): made from the benchmark's own process, the changer's Python
work and its SQLite calls share the measured daemon's GIL, and the daemon's
poll then tends to run while the changer's commit is in progress (the only
moment the changer gives the GIL away), sees nothing yet, and looks again a
whole poll interval later. Here the changes are made by a child interpreter;
each line on stdin is one change, each line on stdout the `time.monotonic()`
reading right after its commit returned (one clock for every process on
Linux), so the caller's latencies start at the commit, as before.

    python -m bench._changer DB_URL ENV_JSON    (stdin: "on ID CLIENT" | "off ID")
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ledger import Ledger, Meta, TargetRef, Window
from ledger.values import floor_second

__all__ = ["ChangerProcess"]

META = Meta("bench")


def _window() -> Window:
    now = floor_second(datetime.now(UTC))
    return Window(now - timedelta(minutes=1), now + timedelta(hours=1))


class ChangerProcess:
    """A child process making client overrides on the ledger at `url`, one a call."""

    def __init__(self, url: str, env: dict[str, str] | None = None) -> None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench._changer", url, json.dumps(env or {})],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self._read() != "ready":
            raise SystemExit("the changer process did not start")

    def _read(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def _ask(self, line: str) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self._read()
        try:
            return float(answer)
        except ValueError:
            raise SystemExit(f"the changer process failed: {answer or 'no answer'}") from None

    def add_override(self, override_id: str, client_id: str) -> float:
        """Set an override on the client, active now; the monotonic time its commit returned."""
        return self._ask(f"on {override_id} {client_id}")

    def clear_override(self, override_id: str) -> float:
        return self._ask(f"off {override_id}")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


def _serve(ledger: Ledger, lines: Any) -> None:
    print("ready", flush=True)
    for line in lines:
        words = line.split()
        try:
            if words[0] == "on":
                ledger.add_override(words[1], TargetRef("client", words[2]), "on", _window(), META)
            else:
                ledger.clear_override(words[1], META)
        except Exception as e:  # said in one line to the caller, which stops
            print(" ".join(str(e).split()) or type(e).__name__, flush=True)
            return
        print(f"{time.monotonic():.6f}", flush=True)


def main() -> None:
    ledger = Ledger(sys.argv[1], json.loads(sys.argv[2]), create=False)
    try:
        _serve(ledger, sys.stdin)
    finally:
        ledger.close()


if __name__ == "__main__":
    main()
