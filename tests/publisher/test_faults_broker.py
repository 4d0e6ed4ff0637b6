"""The daemon under broker faults: a half-open link (a proxy that goes dark) and a hung broker (SIGSTOP).

Each test prints the time from the fault's end (or its start, for a silent link)
to the first correct publish; docs/reliability.md quotes them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger import Ledger, TargetRef, Window
from ledger.values import floor_second
from publisher.config import BrokerConfig
from publisher.daemon import Daemon, RunSettings
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, Subscriber, retained, wait_for
from tests.publisher.faults import DarkProxy
from tests.publisher.helpers import fast, make_log, running

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("daemon_sessions")]

STATUS = "infoscreen/server/status"


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def status(port: int) -> str | None:
    message = retained(port, STATUS)
    return None if message is None else str(json.loads(message.payload)["status"])


def intent(port: int, client: str) -> dict[str, Any] | None:
    message = retained(port, f"infoscreen/{client}/power/intent")
    return None if message is None else message.json()


@pytest.fixture
def proxy(mosquitto: Mosquitto) -> Iterator[DarkProxy]:
    front = DarkProxy(mosquitto.port)
    yield front
    front.close()


def test_a_half_open_link_is_dropped_and_everything_republished(
    sqlite_ledger: Ledger, mosquitto: Mosquitto, proxy: DarkProxy
) -> None:
    """The link goes dark; the broker publishes our Will; we notice, reconnect, republish, and are `online`.

    A window that starts while the link is dark is switched on once we are back.
    """
    now = floor_second(datetime.now(UTC))
    sqlite_ledger.add_client("c1", None, ME)
    sqlite_ledger.add_client("c2", None, ME)
    sqlite_ledger.add_event(
        "e1", TargetRef("client", "c1"), Window(now - timedelta(hours=1), now + timedelta(hours=1)), ME
    )
    soon = now + timedelta(seconds=4)
    sqlite_ledger.add_event("e2", TargetRef("client", "c2"), Window(soon, soon + timedelta(hours=1)), ME)
    log, capture = make_log()
    config = BrokerConfig.from_url(f"mqtt://127.0.0.1:{proxy.port}")  # the default keepalive
    statuses = Subscriber(mosquitto.port, STATUS)
    with running(Daemon(sqlite_ledger, config, RunSettings(ttl=60), log=log, **fast())):
        wait_for(lambda: status(mosquitto.port) == "online", what="online")
        before = wait_for(lambda: intent(mosquitto.port, "c1"), what="c1's intent")
        proxy.forget()  # a NAT forgets the connection: both ends keep their sockets, nothing passes
        dark_at = time.monotonic()
        wait_for(lambda: len(capture.records("broker")) >= 2, 15, "the daemon to notice")
        noticed = time.monotonic() - dark_at
        after = wait_for(
            lambda: (i := intent(mosquitto.port, "c1")) and i["issued_at"] != before["issued_at"] and i,
            15,
            "c1 republished",
        )
        back = time.monotonic() - dark_at
        # The broker gives up on the dark session (after 1.5 keepalives) and publishes its Will,
        # possibly after our new session said `online`: we put `online` back over it.
        wait_for(lambda: _seen(statuses)[-2:] == ["offline", "online"], 20, "the Will, then online")
        wait_for(
            lambda: (i := intent(mosquitto.port, "c2")) and i["power"]["desired_state"] == "on",
            15,
            "c2 switched on",
        )
    statuses.close()
    assert after["intent_id"] == before["intent_id"]
    assert ts(after["issued_at"]) > ts(before["issued_at"])
    states = [r["state"] for r in capture.records("broker")]
    assert states[:3] == ["connected", "disconnected", "connected"]
    print(f"\nhalf-open link: noticed after {noticed:.1f} s, republished {back:.1f} s after going dark")


def _seen(sub: Subscriber) -> list[str]:
    return [json.loads(m.payload)["status"] for m in sub.on(STATUS) if m.payload]


def test_a_hung_broker_leaves_no_stale_intent_and_recovery_is_prompt(
    sqlite_ledger: Ledger, mosquitto: Mosquitto
) -> None:
    """SIGSTOP longer than the ack timeout, a window boundary meanwhile, SIGCONT: the broker ends up
    holding the current intent (never the one published into the hung socket) and `online`."""
    now = floor_second(datetime.now(UTC))
    sqlite_ledger.add_client("c1", None, ME)
    end = now + timedelta(seconds=4)
    sqlite_ledger.add_event("e1", TargetRef("client", "c1"), Window(now - timedelta(hours=1), end), ME)
    log, _capture = make_log()
    settings = RunSettings(ttl=60, ack_timeout=2.0)
    with running(Daemon(sqlite_ledger, mosquitto.config(), settings, log=log, **fast())):
        wait_for(
            lambda: (i := intent(mosquitto.port, "c1")) and i["power"]["desired_state"] == "on", what="on"
        )
        mosquitto.pause()
        try:
            # The boundary passes while the broker is hung: its `off` goes into a dead socket.
            wait_for(
                lambda: datetime.now(UTC) > end + timedelta(seconds=3), 15, "the boundary and the ack timeout"
            )
        finally:
            mosquitto.resume()
        resumed = time.monotonic()
        sub = Subscriber(mosquitto.port, "infoscreen/c1/power/intent")
        try:
            wait_for(
                lambda: any(
                    m.json()["power"]["desired_state"] == "off" for m in sub.on(sub.topic) if m.payload
                ),
                15,
                "the off after the broker answers",
            )
            recovered = time.monotonic() - resumed
            wait_for(lambda: status(mosquitto.port) == "online", 15, "online")
        finally:
            sub.close()
        held = wait_for(lambda: intent(mosquitto.port, "c1"), what="the retained intent")
        assert held["power"]["desired_state"] == "off"
    print(f"\nhung broker: the current intent retained {recovered:.1f} s after SIGCONT")


def test_overdue_pubacks_with_nothing_heard_drop_the_session_before_the_keepalive(
    sqlite_ledger: Ledger, mosquitto: Mosquitto, proxy: DarkProxy
) -> None:
    """Keepalive a minute, refreshes every second: the first PUBACK overdue with nothing else heard
    from the broker ends the session (no waiting for the keepalive), and the next one gets through."""
    sqlite_ledger.add_client("c1", None, ME)
    log, capture = make_log()
    config = BrokerConfig.from_url(f"mqtt://127.0.0.1:{proxy.port}?keepalive=60")
    settings = RunSettings(ttl=20, refresh=1, ack_timeout=1.0)
    with running(Daemon(sqlite_ledger, config, settings, log=log, **fast())):
        first = wait_for(lambda: intent(mosquitto.port, "c1"), what="c1's intent")
        proxy.forget()
        dark_at = time.monotonic()
        lost = wait_for(
            lambda: [r for r in capture.records("broker") if r["state"] == "disconnected"], 20, "the drop"
        )
        noticed = time.monotonic() - dark_at
        wait_for(
            lambda: (i := intent(mosquitto.port, "c1")) and i["issued_at"] != first["issued_at"],
            20,
            "a publish through the new session",
        )
    assert "nothing else from the broker" in lost[0]["reason"]
    print(f"\nstalled PUBACKs (keepalive 60 s): session dropped {noticed:.1f} s after going dark")
