"""The README's shell blocks run as written, top to bottom, in a fresh directory.

Every ```sh block of README.md is one script, run by bash with `set -e` in a
temporary directory where `.venv` and `examples/` are the repository's (the
README says "from the repository root"), against a Mosquitto of the test's own
(`INTENT_LEDGER_MQTT_URL`). A line that starts the daemon without `--once`
(`intent-ledger ... run`) or a screen (`intent-ledger ... screen`) would run
for ever: it is started in the background, stopped with Ctrl-C (SIGINT) once it
is up (the daemon has logged an acknowledged publish, the screen a first line),
and must exit 0.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.publisher.broker import Mosquitto
from tests.publisher.conftest import broker, mosquitto  # noqa: F401 - the fixtures: a broker of our own

ROOT = Path(__file__).parents[1]
# Lines that run until stopped (not sent to the background with `&`), and what each logs
# once it is up: the daemon an acknowledged publish, a screen anything.
_LONG_RUNNING = (
    (re.compile(r"^\s*intent-ledger\b(?!.*--once)(?!.*&)[^#]*\srun(\s|$)"), "acked"),
    (re.compile(r"^\s*intent-ledger\b(?!.*&)[^#]*\sscreen\s"), "."),
)

# Started in the background; polled (with a deadline) for its first acknowledged publish.
_PRELUDE = r"""
set -euo pipefail
_daemon() {
  local ready=$1; shift
  # Emptied here, before the fork: else the poll below may read the previous daemon's log
  # and interrupt this one while it starts (SIGINT is ignored until its handler is set).
  : > .daemon.log
  "$@" >> .daemon.log 2>&1 &
  local pid=$! deadline=$((SECONDS + 60))
  until grep -q "$ready" .daemon.log; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      cat .daemon.log >&2; kill "$pid" 2>/dev/null || true; return 1
    fi
    sleep 0.1
  done
  kill -INT "$pid"
  wait "$pid"
}
"""


def shell_blocks(text: str) -> list[str]:
    """The ```sh blocks of a Markdown text, in order."""
    return re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def script_of(blocks: list[str]) -> str:
    """One bash script: each line announced on stderr (to name a failing one), daemons wrapped."""
    lines = [_PRELUDE]
    for number, block in enumerate(blocks, 1):
        for line in block.replace("\\\n", " ").splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            lines.append(f"echo {_quote(f'README block {number}: {line.strip()}')} >&2")
            ready = next((r for pattern, r in _LONG_RUNNING if pattern.match(line)), None)
            lines.append(line if ready is None else f"_daemon {_quote(ready)} {line.strip()}")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def test_script_of_wraps_only_the_long_running_daemon() -> None:
    """`run --once` and `run ... &` run as written; a foreground `run` or `screen` goes through _daemon."""
    script = script_of(
        ["intent-ledger run --once\nintent-ledger run   # daemon\n# a comment\nintent-ledger run > d.log &\n"]
    )
    assert "\nintent-ledger run --once\n" in script
    assert "\n_daemon 'acked' intent-ledger run   # daemon\n" in script
    assert "\nintent-ledger run > d.log &\n" in script
    assert "a comment" not in script
    screen = script_of(["intent-ledger screen c1 --on-cmd x\n"])
    assert "\n_daemon '.' intent-ledger screen c1 --on-cmd x\n" in screen


@pytest.mark.slow
def test_every_readme_shell_block_runs_top_to_bottom(
    tmp_path: Path,
    mosquitto: Mosquitto,  # noqa: F811 - the imported fixture
) -> None:
    """All of README.md's ```sh lines exit 0 in order, and the --as-of example shows both views."""
    blocks = shell_blocks((ROOT / "README.md").read_text())
    assert blocks, "README.md has no ```sh block"
    work = tmp_path / "readme"
    work.mkdir()
    for name in (".venv", "examples"):
        (work / name).symlink_to(ROOT / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTENT_LEDGER_")}
    env["INTENT_LEDGER_MQTT_URL"] = mosquitto.url
    done = subprocess.run(
        ["bash", "-c", script_of(blocks)], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    last = [line for line in done.stderr.splitlines() if line.startswith("README block")][-1:]
    assert done.returncode == 0, f"failed at {last}:\n{done.stderr[-3000:]}"
    assert "hall-1 at 2030-06-03T08:30:00Z: off (no_active_event)" in done.stdout
    assert "as known at" in done.stdout
    assert ": on (event_window_active" in done.stdout
    assert (work / "open-day.html").is_file()
    assert (work / "intent-v1.schema.json").is_file()
