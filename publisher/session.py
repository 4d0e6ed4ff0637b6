"""What the daemon needs of a broker session, and which one it opens.

Two kinds keep this contract: `MqttSession` (publisher.mqtt: paho in the
daemon's own process) and `ProcSession` (publisher.netproc: paho in a child
process, what `intent-ledger run` uses). Both are one connection, never
reconnected; see publisher.mqtt.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, Protocol

from publisher.config import BrokerConfig
from publisher.mqtt import Delivery, MqttSession
from publisher.netproc import ProcSession
from publisher.netstart import NetworkProcess

__all__ = ["BrokerSession", "ProcSessions", "SessionFactory", "default_sessions"]


class BrokerSession(Protocol):
    """One broker connection with acknowledged QoS 1 publishes (publisher.mqtt says how)."""

    config: BrokerConfig
    lost: threading.Event
    lost_reason: str | None
    last_ack: float
    last_heard: float

    def connect(self, timeout: float = 10.0) -> None: ...

    @property
    def connected(self) -> bool: ...

    def publish(
        self, topic: str, payload: bytes, *, expiry: int | None = None, retain: bool = True
    ) -> Delivery: ...

    def flush(self) -> None:
        """Send what was published so far: the owner is about to wait."""

    def subscribe(self, topic: str, qos: int = 0) -> None: ...

    def unsubscribe(self, topic: str) -> None: ...

    def silent_since(self, instant: float) -> bool: ...

    def abandon(self, reason: str) -> None: ...

    def close(self) -> None: ...


SessionFactory = Callable[..., BrokerSession]


def default_sessions(net_process: bool) -> SessionFactory:
    """The daemon's sessions: paho in a process of its own, or in ours."""
    return ProcSession if net_process else MqttSession


class ProcSessions:
    """Makes ProcSessions (a session factory for the daemon). With `ahead`, the first session's
    network process is started now, so its start-up runs beside the caller's own (imports,
    opening the ledger) instead of on the connect."""

    def __init__(self, *, ahead: bool = False) -> None:
        self.ahead: NetworkProcess | None = None  # the next session's process, started already
        if ahead:
            with contextlib.suppress(OSError):  # no process now: the connect tries again
                self.ahead = NetworkProcess()

    def __call__(self, config: BrokerConfig, **options: Any) -> ProcSession:
        child, self.ahead = self.ahead, None
        return ProcSession(config, child=child, **options)
