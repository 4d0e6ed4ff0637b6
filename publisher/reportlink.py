"""A broker session of its own for the screens' reports (`{prefix}/+/power/state`, QoS 1).

On the daemon's own session, a burst of reports (10,000 screens reconnecting
after a broker restart) would queue in front of the PUBACKs the daemon waits
for; on a connection of their own they never do. A small supervisor thread
opens the session, subscribes, and opens a new one after a backoff when it is
lost (a session is never reused, as for the intents). Reports go to
`on_report` on paho's network thread, which only queues them. With a `rate`,
that thread takes at most `rate` reports a second (it pauses between them,
so the broker holds the rest: QoS 1 keeps at most its in-flight window
unacknowledged): a burst of every screen at once then costs the broker and the
ingestion a bounded share of the machine over a few seconds, instead of all
of it at once beside the daemon's transitions.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from publisher.config import BrokerConfig
from publisher.errors import BrokerUnavailable
from publisher.logs import EventLog
from publisher.mqtt import MqttSession
from publisher.settings import Backoff

__all__ = ["ReportLink"]

_serial = itertools.count(1)


class ReportLink:
    """Keeps one subscribed session to `topic` open until `close()`."""

    def __init__(
        self,
        broker: BrokerConfig,
        topic: str,
        on_report: Callable[[Any, Any, Any], None],
        log: EventLog,
        backoff: Backoff | None = None,
        rate: float | None = None,
    ) -> None:
        self.broker, self.topic = broker, topic
        self._on_report = on_report
        self._interval = 0.0 if rate is None else 1.0 / rate
        self._next_at = 0.0  # monotonic: when the next report may be taken
        self._log = log
        self._backoff = backoff or Backoff(0.5, 15.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.subscribed = threading.Event()  # set at the SUBACK, cleared when the session is lost
        self.opened = 0  # sessions opened so far
        self.session: MqttSession | None = None  # the current one

    def start(self) -> None:
        """Start the supervisor (once; later calls do nothing)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="reports", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        unavailable = False
        while not self._stop.is_set():
            session = MqttSession(
                self.broker, client_id=f"intent-ledger-reports-{os.getpid()}-{next(_serial)}"
            )
            try:
                session.connect()
            except BrokerUnavailable as e:
                if not unavailable:  # said once per outage, not at every attempt
                    self._log.emit("reports_broker", state="unavailable", error=str(e))
                unavailable = True
                self._stop.wait(self._backoff.next())
                continue
            unavailable = False
            self._backoff.reset()
            self.opened += 1
            handler = self._paced if self._interval else self._on_report
            session.client.message_callback_add(self.topic, handler)
            session.client.on_subscribe = lambda *_: self.subscribed.set()
            session.subscribe(self.topic, qos=1)
            self.session = session
            self._log.emit("reports_broker", state="subscribed", topic=self.topic)
            while not self._stop.wait(0.2) and not session.lost.is_set():
                pass
            self.subscribed.clear()
            self.session = None
            session.close()
            if not self._stop.is_set():
                self._log.emit("reports_broker", state="disconnected")
                self._stop.wait(self._backoff.next())

    def _paced(self, client: Any, userdata: Any, message: Any) -> None:
        # Paho's network thread: behind schedule by more than a few reports, it sleeps (the
        # broker waits for our PUBACKs meanwhile); the steady load never gets near the rate.
        self._on_report(client, userdata, message)
        now = time.monotonic()
        self._next_at = max(self._next_at, now - 0.05) + self._interval  # a 50 ms allowance at most
        if self._next_at - now > 0.005:
            time.sleep(self._next_at - now)
