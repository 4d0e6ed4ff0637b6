"""The network process: one broker session's paho client, in a process of its own.

Started by publisher.netproc (`ProcSession`) with one end of a socket pair;
the parent's first message is the session's spec. One thread does all the
work in one `select` loop over the broker's socket and the pipe (paho's
external-loop API: no paho thread, no locks): it publishes what the parent
sends, reads the broker, and after each pass sends the parent what came of it
in one message (PUBACKs as the parent's publish numbers, refusals, received
messages, CONNACK or loss), stamped with when it was read.

The process ends with its session: after a loss (a session is never
reconnected), at `close` (DISCONNECT first), at `abandon`, or as soon as the
parent is gone (its pipe end closes, even at SIGKILL; the parent id changes):
then it shuts the socket down without a DISCONNECT, so the broker publishes
the Will. What it had already read of the parent's publishes may still go
out first (each was recorded before the parent sent it); nothing later does.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import select
import signal
import socket
import struct
import sys
import time
from typing import Any, NoReturn

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from publisher.config import BrokerConfig
from publisher.errors import BrokerUnavailable
from publisher.lightinfo import light_infos
from publisher.pahoclient import ExpiryCache, new_client, open_connection

__all__ = [
    "ABANDON",
    "CLOSE",
    "PUBLISH",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "Pipe",
    "main",
]

# Parent -> child: every message a list of operations, each a list starting with its code.
PUBLISH = 0  # [PUBLISH, topic, payload, retain, expiry seconds (0: none)]
SUBSCRIBE = 1  # [SUBSCRIBE, topic, qos]
UNSUBSCRIBE = 2  # [UNSUBSCRIBE, topic]
ABANDON = 3  # [ABANDON]: drop the connection without a DISCONNECT
CLOSE = 4  # [CLOSE]: DISCONNECT, then exit
# Child -> parent: [heard, acked, refused, messages, events] (publisher.netproc reads it).

_HEADER = struct.Struct("!I")

READS = 64  # loop_read calls a pass at most while the socket has more (a burst of messages)
IDLE = 1.0  # seconds a select waits at most: paho's keepalive runs in loop_misc
TAKES = 16  # messages from the parent a pass at most: the broker's PUBACKs are read in between
CLOSE_WAIT = 5.0  # seconds the DISCONNECT has to be written at close


class Pipe:
    """Messages (marshal: lists of str, bytes, numbers) over one end of a socket pair, each
    after its length. Both ends use it: the child imports nothing it need not (no msgspec,
    no multiprocessing), and its start-up is on the path of every connect."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: Any) -> None:
        data = marshal.dumps(message)
        self.sock.sendall(_HEADER.pack(len(data)) + data)

    def recv(self) -> Any:
        """The next message (blocking); EOFError once the other end is closed."""
        (size,) = _HEADER.unpack(self._exactly(_HEADER.size))
        return marshal.loads(self._exactly(size))

    def poll(self) -> bool:
        """A message (or the end) is there to be read."""
        return bool(select.select([self.sock], [], [], 0)[0])

    def close(self) -> None:
        self.sock.close()

    def _exactly(self, size: int) -> bytearray:
        buffer = bytearray(size)
        view, got = memoryview(buffer), 0
        while got < size:
            try:
                n = self.sock.recv_into(view[got:])
            except TimeoutError:  # a socket with a timeout (for its sends): nothing yet, read on
                continue
            if n == 0:
                raise EOFError("the other end closed the pipe")
            got += n
        return buffer


class _Child:
    def __init__(self, conn: Pipe, spec: list[Any]) -> None:
        config_fields, will, inflight, client_id = spec
        self.conn = conn
        self.parent = os.getppid()
        self.config = BrokerConfig(**config_fields)
        self.v5 = self.config.mqtt_version == "5"
        will = None if will is None else (will[0], will[1])
        self.client = new_client(self.config, client_id=client_id, will=will, inflight=inflight)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.expiries = ExpiryCache()
        self.published = 0  # the parent's number of the last publish taken
        self.mids: dict[int, int] = {}  # paho's message id -> the parent's number
        self.acked: list[int] = []
        self.refused: list[tuple[int, str]] = []
        self.messages: list[tuple[str, bytes]] = []
        self.events: list[tuple[str, str | None]] = []
        self.heard = 0.0
        self.lost = False
        self.closing = False

    # paho's callbacks (this thread, inside loop_read/loop_write).

    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason_code: Any, _p: Any) -> None:
        self.heard = time.monotonic()
        self.events.append(("connack", str(reason_code) if reason_code.is_failure else None))

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason_code: Any, _p: Any) -> None:
        self.lost = True
        self.events.append(("lost", str(reason_code)))

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason_code: Any, _p: Any) -> None:
        self.heard = time.monotonic()
        number = self.mids.pop(mid)
        if reason_code.is_failure:
            self.refused.append((number, f"broker refused: {reason_code}"))
        else:
            self.acked.append(number)

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        self.heard = time.monotonic()
        self.messages.append((message.topic, message.payload))

    # The loop.

    def run(self) -> None:
        try:
            open_connection(self.client, self.config)
        except BrokerUnavailable as e:
            self.events.append(("unavailable", str(e)))
            self.send()
            return
        self.events.append(("opened", None))  # the CONNACK's timeout starts now, as in process
        self.send()
        client, pipe = self.client, self.conn.fileno()
        while not self.lost:
            sock = client.socket()
            if sock is None:
                break
            pending = getattr(sock, "pending", None)
            buffered = pending is not None and pending() > 0  # TLS: read but not yet decrypted
            fd = sock.fileno()
            writes = [fd] if client.want_write() else []
            readable, _, _ = select.select([fd, pipe], writes, [], 0.0 if buffered else IDLE)
            if pipe in readable and not self.take():
                return
            if fd in readable or buffered:
                self.read()
            if client.socket() is not None and client.want_write():
                client.loop_write()
            if client.socket() is not None:
                client.loop_misc()
            self.send()
        self.send()

    def read(self) -> None:
        # One pass reads what is there (up to READS calls): a flood of messages goes to the
        # parent in a few large messages, not one a packet.
        for _ in range(READS):
            before = len(self.acked) + len(self.refused) + len(self.messages) + len(self.events)
            if self.client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS or self.lost:
                return
            if len(self.acked) + len(self.refused) + len(self.messages) + len(self.events) == before:
                return

    def take(self) -> bool:
        """Carry out what the parent sent; False once this process is to end."""
        conn = self.conn
        for _ in range(TAKES):
            if not conn.poll():
                break
            if os.getppid() != self.parent:
                self.drop()  # the parent died: what it had sent is not published
            try:
                operations = conn.recv()
            except (EOFError, OSError):
                self.drop()
            for operation in operations:
                if not self.carry_out(operation):
                    return False
        return True

    def carry_out(self, operation: list[Any]) -> bool:
        code = operation[0]
        if code == PUBLISH:
            _, topic, payload, retain, expiry = operation
            self.published += 1
            properties = self.expiries.get(expiry) if self.v5 and expiry else None
            info = self.client.publish(topic, payload, qos=1, retain=retain, properties=properties)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                self.mids[info.mid] = self.published
            else:
                self.refused.append((self.published, f"not sent: {paho.error_string(info.rc)}"))
        elif code == SUBSCRIBE:
            self.client.subscribe(operation[1], operation[2])
        elif code == UNSUBSCRIBE:
            self.client.unsubscribe(operation[1])
        elif code == ABANDON:
            self.drop()
        elif code == CLOSE:
            self.close()
            return False
        return True

    def send(self) -> None:
        if not (self.acked or self.refused or self.messages or self.events):
            return
        message = [self.heard, self.acked, self.refused, self.messages, self.events]
        self.acked, self.refused, self.messages, self.events = [], [], [], []
        try:
            self.conn.send(message)
        except OSError:
            self.drop()

    def close(self) -> None:
        """DISCONNECT (the broker discards the Will), written before the process ends."""
        client = self.client
        client.disconnect()
        deadline = time.monotonic() + CLOSE_WAIT
        while (sock := client.socket()) is not None and client.want_write() and time.monotonic() < deadline:
            select.select([], [sock], [], IDLE)
            client.loop_write()
        self.send()

    def drop(self) -> NoReturn:
        """End at once, the connection shut without a DISCONNECT: the broker publishes the Will."""
        sock = self.client.socket()
        if isinstance(sock, socket.socket):  # TLS sockets too
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        os._exit(0)


def main() -> None:
    """The process's entry point (publisher.netproc starts it; argv[1]: its end of the socket pair)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the daemon, which closes us
    # A service manager stops a unit by signalling every process of it (systemd's default
    # KillMode): the daemon settles, says goodbye through us and then closes us.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    light_infos()
    conn = Pipe(socket.socket(fileno=int(sys.argv[1])))
    try:
        spec = conn.recv()
    except (EOFError, OSError, ValueError):  # the parent gone, or not a spec: nothing to serve
        os._exit(0)
    try:
        _Child(conn, spec).run()
    except Exception as e:  # said to the parent in one line (no traceback on the daemon's stderr)
        with contextlib.suppress(OSError):
            text = " ".join(str(e).split()) or type(e).__name__
            conn.send([0.0, [], [], [], [("failed", text[:300])]])
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    main()
