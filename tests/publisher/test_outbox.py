"""The outbox against a real Mosquitto: what waits for the window goes out as what it is."""

from __future__ import annotations

from datetime import UTC, datetime

from ledger import Ledger
from ledger.values import floor_second
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, retained
from tests.publisher.helpers import TOPIC, VirtualClock, virtual_daemon


def test_a_removal_queued_behind_its_refresh_still_publishes_the_final_off(
    sqlite_ledger: Ledger, mosquitto: Mosquitto
) -> None:
    """Window of one: c's refresh waits in the backlog when c is removed. Its final `off` goes out
    as a transition (not as a refresh, which would skip it), and only then is the topic cleared."""
    for client_id in ("a", "b", "c"):
        sqlite_ledger.add_client(client_id, None, ME)
    clock = VirtualClock(floor_second(datetime.now(UTC)))
    daemon, capture = virtual_daemon(sqlite_ledger, mosquitto, clock, window=1)
    daemon.tick()
    assert daemon.settle(10)
    refresh = daemon.next_timer()
    assert refresh is not None
    clock.t = refresh
    daemon.tick()  # a's refresh in flight, b's and c's in the backlog
    sqlite_ledger.remove_client("c", ME)
    daemon.tick()  # c's removal is recorded while its refresh still waits
    assert daemon.settle(10)
    published = [(r["kind"], r["reason"]) for r in capture.records("publish") if r["client_id"] == "c"]
    assert published[-1] == ("transition", "client_deregistered")
    cleared = capture.records("clear")
    assert [r["client_id"] for r in cleared] == ["c"]
    assert cleared[0]["result"] == "acked"
    assert retained(mosquitto.port, TOPIC.format("c")) is None
    daemon.shutdown()
