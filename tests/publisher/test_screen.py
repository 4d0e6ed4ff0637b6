"""`intent-ledger screen` as a real process against the real daemon and a real Mosquitto.

The TV is a pair of small shell scripts that append to a file; the test waits
on that file and on the retained report (deadlines, never sleeps).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger, TargetRef, Window
from publisher.config import BrokerConfig
from publisher.daemon import Daemon
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, Subscriber, retained, wait_for
from tests.publisher.helpers import fast, make_log, running

STATE = "infoscreen/c1/power/state"


class Tv:
    """Shell scripts that drive a pretend TV: every command appends a line to `log`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder / "tv.log"
        self.power = folder / "power"  # what the status script prints

    def script(self, name: str, body: str) -> str:
        path = self.folder / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
        return str(path)

    def switch(self, state: str) -> str:
        return self.script(f"{state}.sh", f"echo {state} >> {self.log}\necho {state} > {self.power}")

    def lines(self) -> list[str]:
        return self.log.read_text().split() if self.log.exists() else []


@pytest.fixture
def tv(tmp_path: Path) -> Tv:
    folder = tmp_path / "tv"
    folder.mkdir()
    return Tv(folder)


@pytest.fixture
def screen_process(mosquitto: Mosquitto) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(
        *args: str, url: str | None = None, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        env = {**os.environ, "INTENT_LEDGER_MQTT_URL": url or mosquitto.url, **(extra_env or {})}
        process = subprocess.Popen(
            [sys.executable, "-c", "from cli.main import main; main()", "screen", "c1", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait(10)


@pytest.fixture
def daemon(sqlite_ledger: Ledger, mosquitto: Mosquitto) -> Iterator[Daemon]:
    """The real daemon (real clock) for client c1, whose event runs now."""
    now = datetime.now(UTC).replace(microsecond=0)
    sqlite_ledger.set_policy({"grace_seconds": 0}, ME)
    sqlite_ledger.add_client("c1", None, ME)
    sqlite_ledger.add_event(
        "now", TargetRef("client", "c1"), Window(now - timedelta(hours=1), now + timedelta(hours=1)), ME
    )
    with running(
        Daemon(sqlite_ledger, BrokerConfig.from_url(mosquitto.url), log=make_log()[0], **fast())
    ) as d:
        yield d


def report(port: int) -> dict[str, Any] | None:
    message = retained(port, STATE)
    return None if message is None or not message.payload else json.loads(message.payload)


def wait_report(port: int, what: str, **expected: Any) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        body = report(port)
        return body if body and all(body.get(k) == v for k, v in expected.items()) else None

    found: dict[str, Any] = wait_for(matches, timeout=20, what=what)
    return found


def intent_id(port: int) -> str:
    message = wait_for(lambda: retained(port, "infoscreen/c1/power/intent"), what="c1's intent")
    return str(json.loads(message.payload)["intent_id"])


@pytest.mark.usefixtures("daemon")
def test_follows_the_intent_drives_the_tv_reports_and_exits_0_on_sigterm(
    sqlite_ledger: Ledger,
    mosquitto: Mosquitto,
    tv: Tv,
    screen_process: Callable[..., subprocess.Popen[str]],
) -> None:
    """on: the on-command runs once and the report names the intent; an override off: the
    off-command, a report `off` with the new intent_id; SIGTERM: exit 0."""
    process = screen_process("--on-cmd", tv.switch("on"), "--off-cmd", tv.switch("off"))
    first = intent_id(mosquitto.port)
    on = wait_report(mosquitto.port, "the report on", tv_state="on", intent_id=first)
    assert tv.lines() == ["on"]
    assert on["client_id"] == "c1"
    assert on["since"] <= on["reported_at"]
    now = datetime.now(UTC).replace(microsecond=0)
    sqlite_ledger.add_override(
        "dark", TargetRef("client", "c1"), "off", Window(now, now + timedelta(hours=1)), ME
    )
    off = wait_report(mosquitto.port, "the report off", tv_state="off")
    assert off["intent_id"] not in (None, first)
    assert tv.lines() == ["on", "off"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    out = [json.loads(line) for line in process.stdout.read().splitlines()]  # type: ignore[union-attr]
    assert {r["event"] for r in out} >= {"broker", "message", "switch", "report"}
    assert all(r["event"] != "switch" or r["tv_state"] == r["power"] for r in out)


@pytest.mark.usefixtures("daemon")
def test_commands_never_see_the_payload_or_the_broker_secrets(
    mosquitto: Mosquitto, tv: Tv, screen_process: Callable[..., subprocess.Popen[str]]
) -> None:
    """The on-command gets no arguments and an environment without INTENT_LEDGER_* (the broker
    URL and password), and nothing of the intent (its id) anywhere."""
    dump = tv.script("dump.sh", f'echo "args:$#" > {tv.folder}/seen\nenv >> {tv.folder}/seen')
    secret = {"INTENT_LEDGER_MQTT_PASSWORD": "s3cret-pw"}
    screen_process("--on-cmd", dump, "--off-cmd", tv.switch("off"), extra_env=secret)
    first = intent_id(mosquitto.port)
    wait_report(mosquitto.port, "the report on", tv_state="on", intent_id=first)
    seen = (tv.folder / "seen").read_text()
    assert seen.startswith("args:0\n")
    assert "INTENT_LEDGER" not in seen
    assert "s3cret-pw" not in seen
    assert first not in seen


@pytest.mark.usefixtures("daemon")
def test_a_failing_command_reports_unknown_with_why(
    mosquitto: Mosquitto, tv: Tv, screen_process: Callable[..., subprocess.Popen[str]]
) -> None:
    """The on-command exits 3: tv_state unknown, the detail says which command and its output."""
    failing = tv.script("broken.sh", "echo 'cec: no TV on the bus' >&2\nexit 3")
    screen_process("--on-cmd", failing, "--off-cmd", tv.switch("off"))
    first = intent_id(mosquitto.port)
    body = wait_report(mosquitto.port, "the report unknown", tv_state="unknown", intent_id=first)
    assert "exited 3" in body["detail"]
    assert "no TV on the bus" in body["detail"]


@pytest.mark.usefixtures("daemon")
def test_a_hanging_command_is_killed_and_reports_unknown(
    mosquitto: Mosquitto, tv: Tv, screen_process: Callable[..., subprocess.Popen[str]]
) -> None:
    """The on-command hangs: killed after --cmd-timeout (its children too), tv_state unknown."""
    hanging = tv.script("hang.sh", f"echo started >> {tv.log}\nsleep 300")
    process = screen_process("--on-cmd", hanging, "--off-cmd", tv.switch("off"), "--cmd-timeout", "0.5")
    first = intent_id(mosquitto.port)
    body = wait_report(mosquitto.port, "the report unknown", tv_state="unknown", intent_id=first)
    assert "timed out after 0.5 s" in body["detail"]
    assert tv.lines() == ["started"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0


@pytest.mark.usefixtures("daemon")
def test_the_status_command_gives_the_tv_state(
    mosquitto: Mosquitto, tv: Tv, screen_process: Callable[..., subprocess.Popen[str]]
) -> None:
    """The status script prints the pretend TV's power: `on` after the on-command. Something
    else (`standby`, after the remote) is reported unknown, with the detail, and the periodic
    check switches the TV on again."""
    status = tv.script("status.sh", f"cat {tv.power}")
    sub = Subscriber(mosquitto.port, STATE)
    try:
        args = ["--on-cmd", tv.switch("on"), "--off-cmd", tv.switch("off"), "--status-cmd", status]
        screen_process(*args, "--report-every", "1")
        wait_report(mosquitto.port, "the report on", tv_state="on")
        tv.power.write_text("standby\n")  # someone pressed the remote
        wait_for(lambda: tv.lines() == ["on", "on"], timeout=20, what="the TV switched on again")
        wait_report(mosquitto.port, "the report on again", tv_state="on")
        bodies = [m.json() for m in sub.on(STATE)]
    finally:
        sub.close()
    standby = [b for b in bodies if b["tv_state"] == "unknown" and b["intent_id"]]
    assert standby
    assert "standby" in standby[0]["detail"]
    assert [b["tv_state"] for b in bodies if b["intent_id"]][-1] == "on"


def test_bad_options_are_one_line_exit_2(screen_process: Callable[..., subprocess.Popen[str]]) -> None:
    """No command at all, or a malformed broker URL: exit 2, one line, nothing started."""
    for process in (screen_process(), screen_process("--on-cmd", "true", url="http://broker")):
        assert process.wait(15) == 2
        err = process.stderr.read()  # type: ignore[union-attr]
        assert err.startswith("Error: ")
        assert len(err.splitlines()) == 1


@pytest.mark.usefixtures("daemon")
def test_reconnects_after_a_broker_restart(
    mosquitto: Mosquitto, tv: Tv, screen_process: Callable[..., subprocess.Popen[str]]
) -> None:
    """The broker dies and comes back (its retained messages lost): the screen connects again
    and says its state afresh, without switching the TV again."""
    screen_process("--on-cmd", tv.switch("on"), "--off-cmd", tv.switch("off"))
    wait_report(mosquitto.port, "the report on", tv_state="on")
    mosquitto.kill()
    mosquitto.start()
    wait_report(mosquitto.port, "the report after the restart", tv_state="on")
    assert tv.lines() == ["on"]


@pytest.mark.usefixtures("daemon")
def test_a_report_subscriber_sees_every_change(
    mosquitto: Mosquitto, tv: Tv, screen_process: Callable[..., subprocess.Popen[str]]
) -> None:
    """Reports arrive in order: the first says what is known at once (nothing switched yet or
    already on), and no report ever names a tv_state outside on/off/unknown."""
    sub = Subscriber(mosquitto.port, STATE)
    try:
        screen_process("--on-cmd", tv.switch("on"), "--off-cmd", tv.switch("off"))
        sub.wait(lambda s: any(m.json()["tv_state"] == "on" for m in s.on(STATE)), 20, "a report on")
        bodies = [m.json() for m in sub.on(STATE)]
    finally:
        sub.close()
    assert {b["tv_state"] for b in bodies} <= {"on", "off", "unknown"}
    assert [b["reported_at"] for b in bodies] == sorted(b["reported_at"] for b in bodies)
