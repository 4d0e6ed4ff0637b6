"""A subscriber in a process of its own, as the screens are: when each message arrived.

Not a benchmark itself. `Subscriber(port, filter)` starts
`python -m bench._subscriber PORT FILTER`, a paho client (MQTT 5, QoS 1) that
prints one line per message received: its `time.monotonic()` (the same clock
across processes on Linux), the topic and the payload's desired state. A thread
here reads the lines; `last_arrival` waits until every topic has received a
message in a state, and says when the last of them arrived.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import IO

__all__ = ["Subscriber"]


class Subscriber:
    """The arrivals of a subscriber process on `topic_filter`, read in a thread."""

    def __init__(self, port: int, topic_filter: str) -> None:
        self.arrivals: list[tuple[float, str, str]] = []
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench._subscriber", str(port), topic_filter],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()
        if not self._ready.wait(30):
            self.close()
            raise SystemExit("subscriber: not subscribed within 30 s")

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            if line.startswith("subscribed"):
                self._ready.set()
                continue
            t, topic, state = line.split()
            self.arrivals.append((float(t), topic, state))

    def mark(self) -> int:
        return len(self.arrivals)

    def settle(self, quiet: float = 0.5, timeout: float = 30) -> None:
        """Wait until no message arrived for `quiet` seconds (e.g. the retained ones a subscription
        brings), so that a burst measured next is not mixed with them."""
        deadline = time.monotonic() + timeout
        seen, since = len(self.arrivals), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if len(self.arrivals) != seen:
                seen, since = len(self.arrivals), time.monotonic()
            elif time.monotonic() - since >= quiet:
                return

    def last_arrival(self, since: int, topics: set[str], state: str, timeout: float = 60) -> float | None:
        """When the last of `topics` received `state` (after arrival `since`); None past the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = {topic: t for t, topic, s in self.arrivals[since:] if s == state and topic in topics}
            if len(seen) >= len(topics):
                return max(seen.values())
            time.sleep(0.05)
        return None

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def main() -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    port, topic_filter = int(sys.argv[1]), sys.argv[2]
    out = sys.stdout

    def on_connect(client: paho.Client, *_: object) -> None:
        client.subscribe(topic_filter, qos=1)

    def on_subscribe(*_: object) -> None:
        out.write("subscribed\n")
        out.flush()

    def on_message(_c: object, _u: object, message: paho.MQTTMessage) -> None:
        payload = message.payload
        state = (
            "on"
            if b'"desired_state":"on"' in payload
            else "off"
            if b'"desired_state":"off"' in payload
            else "-"
        )
        out.write(f"{time.monotonic()} {message.topic} {state}\n")
        out.flush()

    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_forever()


if __name__ == "__main__":
    main()
