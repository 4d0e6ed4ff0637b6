"""The self-check: now and then, read back every retained intent, compare, repair.

A sweep subscribes at QoS 0 (a QoS 1 wildcard subscriber gets only the broker's
first max_queued_messages retained messages, 1,000 by default), publishes a
probe that arrives after the retained messages, compares, and unsubscribes: a
permanent subscription would echo every publish back to us and halve the
publishing rate.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import msgspec

from publisher.acks import Acks
from publisher.errors import NotConnected
from publisher.outbox import Kind, Outbox
from publisher.payload import Timestamp
from publisher.session import BrokerSession

__all__ = ["SelfCheck"]

SWEEP_LIMIT = timedelta(seconds=60)  # a probe that never echoes ends its sweep, incomplete


class SelfCheck:
    """Sweeps the daemon's retained topics every check period and republishes what differs."""

    def __init__(self, outbox: Outbox, acks: Acks, wake: threading.Event, started_at: datetime) -> None:
        self.topics, self.projector, self.outbox, self.acks = outbox.topics, outbox.projector, outbox, acks
        self.metrics, self.log, self.wake = acks.metrics, acks.log, wake
        self.period = timedelta(seconds=outbox.settings.check_period)
        self._seen: dict[str, bytes] = {}  # topic -> what the broker holds
        self._probe: str | None = None  # the sweep in progress ends when this topic echoes
        self._probe_seen = False
        self._sweep_started = started_at
        # The first sweep one period after the start: the start has just published everything.
        self._next_check = started_at + self.period

    @property
    def sweeping(self) -> bool:
        return self._probe is not None

    def restart(self, at: datetime) -> None:
        """The first sweep one period after `at` (a standby that became active)."""
        self._next_check = at + self.period

    def reset(self) -> None:
        """A sweep does not survive its session."""
        self._probe = None

    def on_message(self, topic: str, payload: bytes) -> None:
        # Network thread: store or flag, nothing more.
        if topic == self._probe:
            self._probe_seen = True
            self.wake.set()
        else:
            self._seen[topic] = payload

    def tick(self, now: datetime, session: BrokerSession, *, busy: bool) -> None:
        """Go on with the sweep in progress; start one only when connected and not `busy`."""
        if session.connected and (self._probe is not None or not busy):
            self.sweep(now, session)

    def sweep(self, now: datetime, session: BrokerSession) -> None:
        """Start a sweep when due; end the one in progress once its probe echoed (or gave up)."""
        if self._probe is None:
            if now < self._next_check:
                return
            self._seen, self._probe_seen = {}, False
            self._probe = self.topics.probe()
            self._sweep_started = now
            for topic in [*self.topics.wildcards, self._probe]:
                session.subscribe(topic, qos=0)
            try:
                session.publish(self._probe, b"", retain=False)
            except NotConnected:
                self._probe = None
            return
        if not self._probe_seen and now - self._sweep_started < SWEEP_LIMIT:
            return
        for topic in [*self.topics.wildcards, self._probe]:
            session.unsubscribe(topic)
        complete, self._probe = self._probe_seen, None
        self._next_check = now + self.period
        if complete:
            self._check_retained(now)

    def _check_retained(self, now: datetime) -> None:
        """Compare what the broker held with what it should hold; republish what differs."""
        # Only what was acknowledged before the sweep began is surely in its answer.
        settled = self._sweep_started - timedelta(seconds=1)
        acked_at = self.acks.acked_at
        oldest: str | None = None  # YYYY-MM-DDTHH:MM:SSZ sorts as text: parsed once, at the end
        for name in self.projector.names():
            intent = self.projector.current(name)
            if intent is None or acked_at.get(name, now) > settled:
                continue
            topic = self.topics.intent(name)
            held = self._seen.get(topic)
            seen = _held_intent(held) if held else None
            if intent.removed:
                ok = not held
            else:
                ok = seen is not None and seen.intent_id == intent.intent_id
                if ok and seen is not None and (oldest is None or seen.issued_at < oldest):
                    oldest = seen.issued_at
            if not ok:
                self.metrics.mismatches.inc()
                held_id = None if seen is None else seen.intent_id
                self.log.emit("mismatch", topic=topic, expected=intent.intent_id, held=held_id)
                self.outbox.publish(name, now, Kind.REPAIR)
        age = 0.0
        if oldest is not None:
            age = (now - datetime.fromisoformat(oldest.replace("Z", "+00:00"))).total_seconds()
        self.metrics.retained_age.set(age)


class _Held(msgspec.Struct):
    # The two fields the self-check reads from a retained payload (anything else ignored);
    # without a well-formed issued_at it is not a payload of ours: a mismatch, repaired.
    intent_id: str
    issued_at: Timestamp


_held_decoder = msgspec.json.Decoder(_Held)


def _held_intent(payload: bytes) -> _Held | None:
    try:
        return _held_decoder.decode(payload)
    except msgspec.DecodeError:
        return None  # not ours, or damaged: a mismatch, repaired
