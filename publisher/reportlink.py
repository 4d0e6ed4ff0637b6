"""A broker session of its own for the screens' reports (`{prefix}/+/power/state`, QoS 1).

On the daemon's own session, a burst of reports (10,000 screens reconnecting
after a broker restart) would queue in front of the PUBACKs the daemon waits
for; on a connection of their own they never do. A small supervisor thread
opens the session, subscribes, and opens a new one after a backoff when it is
lost (a session is never reused, as for the intents). Reports go to
`on_report` on paho's network thread, which only queues them.
"""

from __future__ import annotations

import itertools
import os
import threading
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
    ) -> None:
        self.broker, self.topic = broker, topic
        self._on_report = on_report
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
            session.client.message_callback_add(self.topic, self._on_report)
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
