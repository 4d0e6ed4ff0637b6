"""Driving a TV: operator-given shell commands (`intent-ledger screen`) or a simulated TV.

A driver switches the TV to a level and says what state it is in afterwards.
Commands run through the shell exactly as the operator wrote them, with a
timeout; nothing from a payload is ever put on a command line or in their
environment, and the `INTENT_LEDGER_*` variables (the broker URL, its
password) are removed from it. A command that fails or hangs makes the state `unknown`, with a
`detail` saying why.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from typing import Protocol

from publisher.contract import Power
from publisher.report import MAX_DETAIL, TvState

__all__ = ["CommandTv", "Reading", "SimulatedTv", "Tv"]


@dataclass(frozen=True)
class Reading:
    """What the screen knows about its TV after an action: the state and why."""

    tv_state: TvState
    detail: str | None = None


class Tv(Protocol):
    """A TV the screen drives."""

    def switch(self, power: Power) -> Reading:
        """Switch to `power`; the state afterwards."""

    def read(self) -> Reading | None:
        """The state now, if this TV can be asked (None: it cannot, keep the last reading)."""


class SimulatedTv:
    """A TV that obeys at once and always can tell (for `simulate`)."""

    def __init__(self) -> None:
        self.state: Power = "off"

    def switch(self, power: Power) -> Reading:
        self.state = power
        return Reading(power)

    def read(self) -> Reading | None:
        return Reading(self.state)


class CommandTv:
    """A TV driven by shell commands; `status_cmd` (optional) prints `on` or `off`."""

    def __init__(
        self,
        on_cmd: str | None,
        off_cmd: str | None,
        status_cmd: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.commands: dict[Power, str | None] = {"on": on_cmd, "off": off_cmd}
        self.status_cmd = status_cmd
        self.timeout = timeout

    def switch(self, power: Power) -> Reading:
        command = self.commands[power]
        if command is None:
            done = Reading(power, f"no --{power}-cmd: assumed {power}")
        else:
            ok, output = self._run(command)
            done = Reading(power, _first_line(output) or None) if ok else Reading("unknown", output)
        if self.status_cmd is None or done.tv_state == "unknown":
            return done
        return self.read() or done

    def read(self) -> Reading | None:
        if self.status_cmd is None:
            return None
        ok, output = self._run(self.status_cmd)
        if not ok:
            return Reading("unknown", f"status: {output}")
        answer = _first_line(output).lower()
        if answer in ("on", "off"):
            return Reading(answer)  # type: ignore[arg-type]  # narrowed by the test above
        return Reading("unknown", f"status printed {_first_line(output)[:80]!r}")

    def _run(self, command: str) -> tuple[bool, str]:
        """Run `command` in its own process group, killed whole on timeout; (ok, output or why)."""
        try:
            process = subprocess.Popen(
                command,
                shell=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a hanging grandchild (sleep, cec-ctl) dies with it
                env=_environment(),
            )
        except OSError as e:
            return False, f"cannot run {command!r}: {e.strerror}"
        try:
            out, _ = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return False, f"{command!r} timed out after {self.timeout:g} s"
        text = out.decode(errors="replace").strip()
        if process.returncode != 0:
            why = f"{command!r} exited {process.returncode}"
            return False, (f"{why}: {_first_line(text)}" if text else why)[:MAX_DETAIL]
        return True, text[:MAX_DETAIL]


def _environment() -> dict[str, str]:
    """The screen's environment without our own settings: the broker URL and password stay here."""
    return {k: v for k, v in os.environ.items() if not k.startswith("INTENT_LEDGER_")}


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""
