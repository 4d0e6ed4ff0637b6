"""A first start (`run_once` on a fresh ledger) in chunks, on each store and a real Mosquitto: it
records exactly what a start in one piece records, publishes the first chunk before the last is
recorded, saves a checkpoint past its own intents, and fails (never skips) when a chunk's write
fails."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from ledger import Ledger
from ledger.app import INTENT_TOPICS
from projections.checkpoint import CheckpointStore
from publisher.config import BrokerConfig
from publisher.daemon import Daemon, RunSettings
from publisher.errors import BrokerUnavailable
from publisher.mqtt import Delivery, MqttSession
from publisher.payload import decode_payload
from publisher.settings import DB_ERRORS
from tests.projections.test_projector import T0, at
from tests.projections.test_projector_chunks import CLIENTS, failing_ledger, fleet  # noqa: F401 (fixture)
from tests.publisher.broker import Mosquitto
from tests.publisher.helpers import LogCapture, VirtualClock, fast, make_log

FIELDS = ("client_id", "group_id", "seq", "intent_id", "desired_state", "effective_at", "cause")


def recorded(ledger: Ledger) -> list[tuple[Any, ...]]:
    """Every intent-log event in the ledger's order, without positions or timestamps."""
    rows = []
    for _, e in ledger.read(0, topics=INTENT_TOPICS):
        row = (type(e).__name__, e.originator_id, e.originator_version)
        rows.append(row + tuple(getattr(e, f, None) for f in FIELDS))
    return rows


def daemon_for(
    ledger: Ledger, mosquitto: Mosquitto, chunk: int | None, factory: type[MqttSession] = MqttSession
) -> tuple[Daemon, LogCapture]:
    clock = VirtualClock(at(1.5))  # the lobby's window on, c7's own on
    log, capture = make_log(clock)
    settings = RunSettings(self_check=False)
    daemon = Daemon(
        ledger, mosquitto.config(), settings, clock=clock, log=log, session_factory=factory, **fast()
    )
    daemon.follower.chunk = chunk
    return daemon, capture


def with_fleet(ledger: Ledger) -> Ledger:
    with freeze_time(T0):
        fleet(ledger)
    return ledger


def test_a_chunked_first_start_records_what_one_piece_records_and_publishes_early(
    ledger: Ledger, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Chunks of 2 against a start in one piece (SQLite): the same events in the same order;
    the first publish goes out while later chunks are still to be recorded; every client is
    acknowledged; the checkpoint's position is past the intents (a restart reads none back)."""
    reference = with_fleet(Ledger(f"sqlite:///{tmp_path / 'reference.db'}"))
    whole, _ = daemon_for(reference, mosquitto, None)
    assert whole.run_once(10) == []

    with_fleet(ledger)
    recorded_at_publish: list[int] = []

    class Counting(MqttSession):
        def publish(self, topic: str, payload: bytes, **kwargs: Any) -> Delivery:
            if topic.startswith("infoscreen/c") and payload:
                sent = decode_payload(payload)
                assert any(e.intent_id == sent.intent_id for e in ledger.issued(str(sent.target.client_id)))
                recorded_at_publish.append(sum(1 for c in CLIENTS if ledger.issued(c)))
            return super().publish(topic, payload, **kwargs)

    daemon, capture = daemon_for(ledger, mosquitto, 2, Counting)
    assert daemon.run_once(10) == []

    assert recorded(ledger) == recorded(reference)
    assert len(recorded(ledger)) == 2 * len(CLIENTS)  # each log opened, and its first intent
    assert recorded_at_publish[0] == 2 < len(CLIENTS)  # published before the rest was recorded
    acked = {r["client_id"] for r in capture.records("publish") if r["result"] == "acked"}
    assert acked == set(CLIENTS)
    saved = CheckpointStore(ledger).load(daemon.projector.key)
    assert saved is not None
    assert saved.position == ledger.max_notification_id()
    assert len(saved.logs) == len(CLIENTS)
    reference.close()


def test_a_failed_chunk_fails_run_once_and_keeps_what_was_recorded(
    failing_ledger: tuple[Ledger, Callable[[], AbstractContextManager[None]]],  # noqa: F811 - the imported fixture
    mosquitto: Mosquitto,
) -> None:
    """The second chunk's write fails (a locked file; a dropped session): run_once raises the
    database error instead of exiting with intents unpublished; what the first chunk recorded
    stays, and the next run records the rest, each log's seq once."""
    ledger, failing = failing_ledger
    with_fleet(ledger)
    failed: list[AbstractContextManager[None]] = []

    class Failing(MqttSession):
        def publish(self, topic: str, payload: bytes, **kwargs: Any) -> Delivery:
            if topic.startswith("infoscreen/c") and not failed:
                failed.append(failing())
                failed[0].__enter__()  # the next chunk's write fails
            return super().publish(topic, payload, **kwargs)

    daemon, _ = daemon_for(ledger, mosquitto, 2, Failing)
    try:
        with pytest.raises(DB_ERRORS):
            daemon.run_once(10)
    finally:
        failed[0].__exit__(None, None, None)
    assert daemon.connection.session is None or not daemon.connection.session.connected
    assert sum(1 for c in CLIENTS if ledger.issued(c)) == 2

    again, capture = daemon_for(ledger, mosquitto, 2)
    assert again.run_once(10) == []
    assert all([e.seq for e in ledger.issued(c)] == [1] for c in CLIENTS)
    acked = {r["client_id"] for r in capture.records("publish") if r["result"] == "acked"}
    assert acked == set(CLIENTS)


def test_the_ledger_is_folded_while_the_broker_answers_and_nothing_is_recorded_before(
    ledger: Ledger, mosquitto: Mosquitto
) -> None:
    """run_once's connect runs beside the fold: a session whose connect waits for the fold to
    end (at most 10 s) connects; nothing is recorded before it has connected."""
    with_fleet(ledger)
    folded = threading.Event()
    recorded_at_connect: list[int] = []

    class Waiting(MqttSession):
        def connect(self, timeout: float = 10.0) -> None:
            if not folded.wait(10.0):
                raise BrokerUnavailable("the fold did not run while connecting")
            super().connect(timeout)
            recorded_at_connect.append(sum(1 for c in CLIENTS if ledger.issued(c)))

    daemon, capture = daemon_for(ledger, mosquitto, 2, Waiting)
    pull = daemon.projector.pull

    def pulled(*args: Any) -> None:
        pull(*args)
        folded.set()

    daemon.projector.pull = pulled  # type: ignore[method-assign,assignment]
    assert daemon.run_once(10) == []
    assert recorded_at_connect == [0]
    acked = {r["client_id"] for r in capture.records("publish") if r["result"] == "acked"}
    assert acked == set(CLIENTS)


def test_an_unreachable_broker_fails_run_once_before_anything_is_recorded(ledger: Ledger) -> None:
    """The connect fails while the ledger is folded: run_once raises BrokerUnavailable and the
    ledger holds no intent."""
    with_fleet(ledger)
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    clock = VirtualClock(at(1.5))
    log, _ = make_log(clock)
    daemon = Daemon(
        ledger,
        BrokerConfig(host="127.0.0.1", port=port),
        RunSettings(self_check=False),
        clock=clock,
        log=log,
        session_factory=MqttSession,
        **fast(),
    )
    with pytest.raises(BrokerUnavailable):
        daemon.run_once(10)
    assert not any(ledger.issued(c) for c in CLIENTS)
    assert daemon.projector.view.clients  # folded meanwhile


def test_a_connect_that_fails_otherwise_is_closed_by_run_once(ledger: Ledger, mosquitto: Mosquitto) -> None:
    """A connect begun ahead that raises something other than BrokerUnavailable (once it has
    connected) is still the connection's: run_once raises it and closes the session."""
    with_fleet(ledger)
    sessions: list[MqttSession] = []

    class Failing(MqttSession):
        def connect(self, timeout: float = 10.0) -> None:
            super().connect(timeout)
            sessions.append(self)
            raise RuntimeError("after the CONNACK")

    daemon, _ = daemon_for(ledger, mosquitto, 2, Failing)
    with pytest.raises(RuntimeError, match="after the CONNACK"):
        daemon.run_once(10)
    (session,) = sessions
    assert not session.connected
    assert not any(ledger.issued(c) for c in CLIENTS)
