"""The broker session in a process of its own (publisher.netproc): what MqttSession does, and its faults.

Real Mosquitto throughout; the child is a real process, killed with real signals.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import Ledger
from publisher import netstart
from publisher.config import BrokerConfig
from publisher.daemon import Daemon, RunSettings
from publisher.errors import BrokerUnavailable, NotConnected
from publisher.mqtt import MqttSession
from publisher.netproc import FLUSH_EVERY, ProcSession
from publisher.session import ProcSessions
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, Subscriber, free_port, retained, wait_for
from tests.publisher.conftest import BROKERS
from tests.publisher.helpers import fast, make_log, running

ROOT = Path(__file__).resolve().parents[2]


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def gone(pid: int) -> bool:
    """No such process any more (a zombie nobody has reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture
def session(broker: Mosquitto) -> Iterator[ProcSession]:
    s = ProcSession(broker.config(), will=("t/status", b"offline"))
    s.connect()
    yield s
    s.close()


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_a_publish_resolves_on_its_puback_and_the_broker_holds_it(
    broker: Mosquitto, session: ProcSession
) -> None:
    delivery = session.publish("t/a", b"one", expiry=60)
    assert delivery.wait(10)
    assert delivery.ok
    assert delivery.latency is not None
    assert session.last_ack >= delivery.started
    held = retained(broker.port, "t/a", v5=broker.v5)
    assert held is not None
    assert held.payload == b"one"


def test_batches_keep_the_order_of_the_publishes(mosquitto: Mosquitto, session: ProcSession) -> None:
    """More than a batch, every topic twice: each ends with its second payload, all acknowledged."""
    count = 3 * FLUSH_EVERY + 5
    sent = [session.publish(f"t/{i % count}", f"{i}".encode(), expiry=60) for i in range(2 * count)]
    assert sent[-1].wait(20)
    assert all(d.wait(10) and d.ok for d in sent)
    assert [d.mid for d in sent] == list(range(1, 2 * count + 1))
    for i in (0, FLUSH_EVERY, count - 1):
        held = retained(mosquitto.port, f"t/{i}")
        assert held is not None
        assert held.payload == f"{count + i}".encode()


def test_messages_of_a_subscription_reach_on_message(mosquitto: Mosquitto) -> None:
    received: list[tuple[str, bytes]] = []
    session = ProcSession(mosquitto.config(), on_message=lambda t, p: received.append((t, p)))
    session.connect()
    try:
        session.subscribe("t/#", qos=0)
        # Our own publish comes back once the SUBSCRIBE (sent before it, in order) is in place.
        wait_for(lambda: session.publish("t/echo", b"e", retain=False).wait(5) and received, 10, "the echo")
        assert received[0] == ("t/echo", b"e")
        session.unsubscribe("t/#")
    finally:
        session.close()


def _silent_server() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    return server, server.getsockname()[1]


def _closing_server() -> tuple[socket.socket, int]:
    server, port = _silent_server()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(1024)  # the CONNECT
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server, port


@pytest.fixture
def refusing(tmp_path: Path) -> Iterator[Mosquitto]:
    folder = tmp_path / "refusing"
    folder.mkdir()
    broker = Mosquitto(folder, "allow_anonymous false\n")
    broker.start()
    yield broker
    broker.stop()


def _refusal(session: MqttSession | ProcSession, timeout: float) -> str:
    with pytest.raises(BrokerUnavailable) as raised:
        session.connect(timeout)
    assert not session.connected
    return str(raised.value)


@pytest.mark.parametrize("case", ["unreachable", "silent", "closing", "refused"])
def test_a_failed_connect_says_what_the_in_process_session_says(case: str, refusing: Mosquitto) -> None:
    server = None
    if case == "unreachable":
        port = free_port()
    elif case == "silent":
        server, port = _silent_server()
    elif case == "closing":
        server, port = _closing_server()
    else:
        port = refusing.port
    try:
        config = BrokerConfig.from_url(f"mqtt://127.0.0.1:{port}")
        ours = _refusal(ProcSession(config), 0.5)
        theirs = _refusal(MqttSession(config), 0.5)
    finally:
        if server is not None:
            server.close()
    assert ours == theirs
    expected = {
        "unreachable": "cannot reach broker",
        "silent": "no CONNACK",
        "closing": "closed the connection before CONNACK",
        "refused": "refused the connection: Not authorized",
    }[case]
    assert expected in ours


def test_a_killed_network_process_is_a_lost_session_and_leaves_the_will(mosquitto: Mosquitto) -> None:
    session = ProcSession(mosquitto.config(), will=("t/status", b"offline"))
    session.connect()
    assert session.publish("t/status", b"online", expiry=60).wait(10)
    assert session.process is not None
    session.process.send_signal(signal.SIGSTOP)  # so this publish cannot be acknowledged first
    pending = session.publish("t/x", b"never", expiry=60)
    session.flush()
    session.process.kill()
    wait_for(session.lost.is_set, 10, "the session to count as lost")
    assert not session.connected
    assert pending.wait(5)
    assert not pending.ok
    assert "network process exited with code -9" in str(session.lost_reason)
    with pytest.raises(NotConnected):
        session.publish("t/y", b"no")
    session.close()
    wait_for(lambda: (m := retained(mosquitto.port, "t/status")) and m.payload == b"offline", 10, "the Will")


def test_a_network_process_that_does_not_read_its_pipe_is_ended(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipe holds a chunk's publishes (PIPE_BUFFER), so a send does not wait for the child to
    read; past that, a child that reads nothing (stopped here) is ended after SEND_WAIT, and the
    session is lost with its deliveries failed, instead of the daemon's loop waiting on it."""
    monkeypatch.setattr(netstart, "SEND_WAIT", 0.5)
    session = ProcSession(mosquitto.config())
    session.connect()
    assert session.process is not None
    session.process.send_signal(signal.SIGSTOP)
    pid = session.process.pid
    wait_for(lambda: _state(pid) == "T", 10, "the network process to stop")
    size, sent = 100_000, []
    try:
        # More than the pipe holds (the kernel doubles a socket buffer); payloads of their own
        # (marshal writes a repeated object once).
        for i in range(3 * netstart.PIPE_BUFFER // size):
            sent.append(session.publish(f"t/big/{i}", os.urandom(size), expiry=60))
        session.flush()
    except NotConnected:
        pass  # lost while publishing: the child was ended
    assert session.process.wait(10) == -signal.SIGKILL
    wait_for(session.lost.is_set, 10, "the session to count as lost")
    assert sent
    assert all(d.wait(5) for d in sent)
    assert not sent[-1].ok
    session.close()


def test_abandon_and_close_end_the_network_process(mosquitto: Mosquitto) -> None:
    abandoned = ProcSession(mosquitto.config(), will=("t/a-status", b"offline"))
    abandoned.connect()
    assert abandoned.publish("t/a-status", b"online", expiry=60).wait(10)
    abandoned.abandon("no PUBACK within 10 s and nothing else from the broker")
    assert abandoned.lost.is_set()
    assert abandoned.process is not None
    assert abandoned.process.wait(10) == 0
    abandoned.close()
    wait_for(
        lambda: (m := retained(mosquitto.port, "t/a-status")) and m.payload == b"offline", 10, "the Will"
    )
    closed = ProcSession(mosquitto.config(), will=("t/c-status", b"offline"))
    closed.connect()
    assert closed.publish("t/c-status", b"online", expiry=60).wait(10)
    closed.close()
    assert closed.process is not None
    assert closed.process.returncode == 0
    # A clean DISCONNECT: the broker discarded the Will (the probe of `retained` comes after it).
    held = retained(mosquitto.port, "t/c-status")
    assert held is not None
    assert held.payload == b"online"


PARENT = """
import sys
sys.path.insert(0, {root!r})
from publisher.config import BrokerConfig
from publisher.netproc import ProcSession
session = ProcSession(BrokerConfig(port={port}), will=("t/status", b"offline"))
session.connect()
assert session.publish("t/status", b"online", expiry=60).wait(10)
print(session.process.pid, flush=True)
sys.stdin.read()  # until killed
"""


def test_a_parent_killed_outright_leaves_no_network_process_and_its_will_stands(
    mosquitto: Mosquitto,
) -> None:
    status = Subscriber(mosquitto.port, "t/status")
    code = PARENT.format(root=str(ROOT), port=mosquitto.port)
    parent = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        status.wait(lambda s: [m for m in s.on("t/status") if m.payload == b"online"], 10, "online")
        parent.kill()
        parent.wait(10)
        wait_for(lambda: gone(child), 10, "the network process to end with its parent")
        status.wait(lambda s: [m for m in s.on("t/status") if m.payload == b"offline"], 10, "the Will")
    finally:
        parent.kill()
        status.close()


def test_the_daemon_reconnects_and_republishes_after_its_network_process_dies(
    ledger: Ledger, mosquitto: Mosquitto
) -> None:
    ledger.add_client("c1", None, ME)
    log, capture = make_log()
    daemon = Daemon(ledger, mosquitto.config(), RunSettings(net_process=True), log=log, **fast())
    with running(daemon):

        def acked(kind: str) -> list[object]:
            return [
                r
                for r in capture.records("publish")
                if r["client_id"] == "c1" and r["kind"] == kind and r["result"] == "acked"
            ]

        wait_for(lambda: acked("transition"), 15, "c1's first publish")
        first = daemon.connection.session
        assert isinstance(first, ProcSession)
        assert first.process is not None
        republished = len(acked("republish"))
        first.process.kill()
        wait_for(lambda: len(acked("republish")) > republished, 15, "c1 republished on a new session")
        second = daemon.connection.session
        assert second is not first
        assert isinstance(second, ProcSession)
        assert second.process is not None
        assert second.process.pid != first.process.pid
        assert first.process.returncode == -signal.SIGKILL
        assert daemon.metrics.reconnects._value.get() >= 1
    states = [r.get("state") for r in capture.records("broker")]
    assert states.count("connected") >= 2
    assert "disconnected" in states
    assert second.process.returncode == 0  # closed at the daemon's stop


@pytest.mark.parametrize("whole_group", [False, True], ids=["the-daemon", "its-process-group"])
def test_sigterm_says_goodbye_and_leaves_no_network_process(
    whole_group: bool, sqlite_ledger: Ledger, sqlite_url: str, mosquitto: Mosquitto
) -> None:
    """`intent-ledger run` (its session in a process of its own) stopped by SIGTERM, to the
    daemon alone or to every process of it at once (as systemd stops a unit): it still says
    `offline` through its session before it closes, exits 0, and leaves no child behind."""
    sqlite_ledger.add_client("c1", None, ME)
    env = {**os.environ, "INTENT_LEDGER_DB": sqlite_url, "INTENT_LEDGER_MQTT_URL": mosquitto.url}
    process = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "run", "--log-format", "json"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: retained(mosquitto.port, "infoscreen/c1/power/intent"), 20, "c1's intent")
        # Its network process, and its report process (started once the session is up).
        children = wait_for(lambda: len(c := _children(process.pid)) >= 2 and c, 20, "the daemon's children")
        if whole_group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 0
        assert '"status":"offline"' in out  # goodbye() found its session connected
        wait_for(lambda: all(gone(child) for child in children), 20, "no child process left")
    finally:
        process.kill()


def test_a_network_process_that_cannot_import_says_so_in_one_line(tmp_path: Path) -> None:
    """The child's program run where `publisher` is not importable: one line on stderr, exit 1."""
    from publisher.netstart import _START

    done = subprocess.run(
        [sys.executable, "-S", "-c", _START.format(path=[str(tmp_path)])],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("intent-ledger: the network process did not start: ")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(p) for p in f.read().split()]
    return found


def test_a_process_started_ahead_serves_the_first_session(mosquitto: Mosquitto) -> None:
    """`run` starts its first session's process before its own imports; a dead one is replaced."""
    sessions = ProcSessions(ahead=True)
    assert sessions.ahead is not None
    ahead = sessions.ahead.process.pid
    first = sessions(mosquitto.config())
    first.connect()
    assert first.process is not None
    assert first.process.pid == ahead
    assert first.publish("t/a", b"1", expiry=60).wait(10)
    first.close()
    second = sessions(mosquitto.config())
    second.connect()
    assert second.process is not None
    assert second.process.pid != ahead
    second.close()
    again = ProcSessions(ahead=True)
    assert again.ahead is not None
    again.ahead.process.kill()
    again.ahead.process.wait()
    replaced = again(mosquitto.config())
    replaced.connect()  # the dead one is not used
    assert replaced.publish("t/b", b"2", expiry=60).wait(10)
    replaced.close()


def test_a_failing_message_callback_loses_the_session_not_the_reader(mosquitto: Mosquitto) -> None:
    def refuse(_topic: str, _payload: bytes) -> None:
        raise ValueError("cannot take\nthis")

    session = ProcSession(mosquitto.config(), on_message=refuse)
    session.connect()
    session.subscribe("t/#", qos=0)
    session.publish("t/echo", b"e", retain=False)
    session.flush()
    wait_for(session.lost.is_set, 10, "the session to count as lost")
    assert session.lost_reason == "its reader failed: cannot take this"
    assert session.process is not None
    assert session.process.wait(10) == -signal.SIGKILL
    session.close()


def test_sessions_of_both_kinds_in_one_process_keep_their_own_client_ids(mosquitto: Mosquitto) -> None:
    """The broker drops a session when another connects with its client id: ids never repeat."""
    inline, ours = MqttSession(mosquitto.config()), ProcSession(mosquitto.config())
    inline.connect()
    ours.connect()
    try:
        first, second = inline.publish("t/a", b"1", expiry=60), ours.publish("t/b", b"2", expiry=60)
        assert first.wait(10)
        assert second.wait(10)
        assert first.ok
        assert second.ok
        assert inline.connected
        assert ours.connected
    finally:
        inline.close()
        ours.close()
