"""The outbox: what is published, when, and what became of it.

A window of publishes awaiting their PUBACK; beyond it a backlog (one entry
per target, published later with whatever is current then) and the republish
of everyone after a (re)connect, walked as the window allows. Each publish is
stamped (issued_at never goes backwards, the MQTT expiry ends no later than
expires_at) and scheduled for its refresh; publisher.acks reaps what settled.

Refreshes are spread over the refresh interval: each target has a fixed slot
of the interval (a hash of its name; at most SLOTS slots of whole seconds) and
is refreshed at the first instant of its slot after its publish, so never later
than `refresh_every` after it, and a fleet published together (a start, a
reconnect, a boundary) is not refreshed together.
"""

from __future__ import annotations

import heapq
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ledger.intent import CurrentIntent
from ledger.values import floor_second
from projections.projector import Projector
from publisher.connection import Connection
from publisher.errors import NotConnected
from publisher.mqtt import Delivery
from publisher.payload import PayloadTemplate, build_payload, encode_payload, payload_template, stamped
from publisher.settings import RunSettings
from publisher.topics import Topics

__all__ = ["BURST_WAIT", "SLOTS", "Kind", "Outbox", "Outgoing"]

BURST_WAIT = 0.25  # seconds the loop waits for progress at most while a burst is in flight
SLOTS = 100  # refresh instants an interval at most (slots of whole seconds)


class Kind(StrEnum):
    """Why something is published (the `kind` of its log line and receipt)."""

    TRANSITION = "transition"  # a new intent was recorded
    REFRESH = "refresh"  # the current intent, freshly stamped before it expires
    REPUBLISH = "republish"  # everyone, after a (re)connect
    REPAIR = "repair"  # the self-check found the broker holding something else
    CLEAR = "clear"  # an empty retained message: a removed client's topic
    STATUS = "status"  # the server's online/offline


@dataclass(eq=False, slots=True)
class Outgoing:
    """One publish awaiting its PUBACK, and what it carried."""

    delivery: Delivery
    name: str
    kind: Kind
    intent: CurrentIntent | None = None
    issued_at: str | None = None
    expires_at: str | None = None
    status: str | None = None
    intent_id: str | None = None  # the intent's id, derived once for the payload


class Outbox:
    """Publishes intents within the window; the rest waits in the backlog."""

    def __init__(
        self,
        settings: RunSettings,
        topics: Topics,
        projector: Projector,
        connection: Connection,
        started_at: datetime,
    ) -> None:
        self.settings, self.topics, self.projector, self.connection = settings, topics, projector, connection
        # A prepared boundary's payloads are encoded ahead, without their stamps (spliced in here).
        projector.extra_of = payload_template
        self.outgoing: deque[Outgoing] = deque()
        self.once = False  # --once: one burst, no refreshes
        self._backlog: deque[str] = deque()
        self._queued: dict[str, Kind] = {}  # what the backlog holds, and as what it goes out
        self._republishing: Iterator[str] | None = None
        # Published freshly (transition, refresh, repair) this round or since the republish of
        # everyone in progress began: that republish must not send them again.
        self._fresh: set[str] = set()
        self._refresh: list[tuple[datetime, str]] = []
        self._refresh_at: dict[str, datetime] = {}
        self._period = settings.refresh_every  # a property: read once, not once a publish
        self._refresh_delta = timedelta(seconds=self._period)
        self._high_stamp = started_at
        self._stamped: tuple[datetime, tuple[datetime, int, datetime]] | None = None
        self._slots_of: datetime | None = None  # the refresh instants of each slot, for this one
        self._slots: dict[int, datetime] = {}

    # The window and what waits for it.

    @property
    def waiting(self) -> bool:
        """Publishes wait for room in the window (the backlog, or a republish of everyone)."""
        return bool(self._backlog) or self._republishing is not None

    def unsent(self) -> int:
        """How many publishes still wait (consumes the republish in progress)."""
        return len(self._backlog) + sum(1 for _ in self._republishing or ())

    def new_round(self) -> None:
        if self._republishing is None:
            self._fresh = set()

    def restart_stamps(self, at: datetime) -> None:
        """A standby that became active stamps from `at` on."""
        self._high_stamp, self._stamped = at, None

    def republish_all(self) -> None:
        """Everyone, as the window allows: an iterator, not one queued entry per target."""
        self._republishing = iter(self.projector.names())

    def forget_waiting(self) -> None:
        """The session was lost: the reconnect republishes everything anyway."""
        self._backlog.clear()
        self._queued.clear()
        self._republishing = None

    def drain(self, now: datetime) -> None:
        """Fill the window from the backlog, then from the republish in progress."""
        if not self.connection.connected:
            return  # kept: a reconnect republishes everyone, --once reports them unpublished
        while len(self.outgoing) < self.settings.window:
            if self._backlog:
                name = self._backlog.popleft()
                self.publish(name, now, self._queued.pop(name))
                continue
            if self._republishing is None:
                return
            following = next(self._republishing, None)
            if following is None:
                self._republishing = None
            elif following not in self._queued:  # queued: it goes out anyway, as it is then
                self.publish(following, now, Kind.REPUBLISH)

    def progress_mark(self) -> Delivery:
        """The publish whose PUBACK is worth waking for: the newest, or the middle one with a
        backlog waiting (refill while paho still has half a window to send)."""
        index = len(self.outgoing) // 2 if self.waiting else -1
        return self.outgoing[index].delivery

    def await_progress(self, seconds: float) -> None:
        # Acks come in order: one wake-up at the progress mark. Being woken once per PUBACK
        # (or polling) takes the GIL from paho's thread.
        if seconds > 0 and self.outgoing:
            self.progress_mark().wait(seconds)

    # Publishing.

    def publish(self, name: str, now: datetime, kind: Kind, known: tuple[int, str] | None = None) -> None:
        """Publish the current intent of `name` (or queue it while the window is full).

        `known`: the seq and intent id of an intent of `name` the caller holds (a transition
        just recorded): the id of the current intent if it is that seq, not derived again.
        """
        if kind is Kind.REPUBLISH and name in self._fresh:
            return  # a transition since the republish began already published it, freshly stamped
        if len(self.outgoing) >= self.settings.window and kind is not Kind.CLEAR:
            self._queue(name, kind)
            return
        intent = self.projector.current(name)
        if intent is None:
            return
        if intent.removed and kind is not Kind.TRANSITION:
            # A removed client's current intent is "no intent": keep its topic cleared.
            self._refresh_at.pop(name, None)
            self.clear(name)
            return
        session = self.connection.session
        if session is None or not session.connected:
            return  # the reconnect republishes everything, freshly stamped
        stamp, expiry, refresh_at = self._stamping(now)
        template: PayloadTemplate | None = self.projector.built(name, intent)
        if template is None:
            intent_id = known[1] if known is not None and known[0] == intent.seq else intent.intent_id
            payload = build_payload(
                intent_id=intent_id, fields=intent.fields, issued_at=stamp, ttl=self.settings.ttl
            )
            data, issued, expires = encode_payload(payload), payload.issued_at, payload.expires_at
        else:
            intent_id = template.intent_id
            data, issued, expires = stamped(template, stamp, self.settings.ttl)
        try:
            delivery = session.publish(self.topics.intent(name), data, expiry=expiry)
        except NotConnected:
            return
        self.outgoing.append(Outgoing(delivery, name, kind, intent, issued, expires, intent_id=intent_id))
        self._sent(name, kind, intent, refresh_at)

    def _queue(self, name: str, kind: Kind) -> None:
        queued = self._queued.get(name)
        if queued is None:  # published later, with whatever is current then
            self._queued[name] = kind
            self._backlog.append(name)
        elif kind is Kind.TRANSITION:  # it goes out as what it is: a removed client's `off`
            self._queued[name] = kind

    def _sent(self, name: str, kind: Kind, intent: CurrentIntent, refresh_at: datetime) -> None:
        if kind is not Kind.REPUBLISH:
            self._fresh.add(name)
        if intent.removed:
            self._refresh_at.pop(name, None)  # removed: cleared after this, never refreshed
        elif not self.once:  # --once exits after this burst: no refreshes, no timers to hold
            refresh_at = self.refresh_slot(name, refresh_at)
            self._refresh_at[name] = refresh_at
            heapq.heappush(self._refresh, (refresh_at, name))

    def refresh_slot(self, name: str, latest: datetime) -> datetime:
        """When to refresh `name` published with the current stamp (`latest`: the stamp plus the
        refresh interval): at its own slot of the interval, 1 to `refresh_every` seconds on."""
        period = self._period
        # At most SLOTS instants an interval: each wakes the loop once, however large the fleet.
        width = -(-period // SLOTS)
        phase = zlib.crc32(name.encode()) % (period // width) * width
        if self._slots_of is not latest:  # a burst shares its stamp: each slot's instant once
            self._slots_of, self._slots = latest, {}
        slot = self._slots.get(phase)
        if slot is None:
            stamp = int(latest.timestamp()) - period  # whole seconds since 1970
            wait = (phase - stamp - 1) % period + 1
            slot = self._slots[phase] = latest - timedelta(seconds=period - wait)
        return slot

    def _stamping(self, now: datetime) -> tuple[datetime, int, datetime]:
        """issued_at, the MQTT expiry (s) and the next refresh for a publish at `now` (once per `now`)."""
        if self._stamped is None or self._stamped[0] != now:
            # issued_at never goes backwards (a clock stepped back would make clients drop us as stale).
            stamp = self._high_stamp = max(floor_second(now), self._high_stamp)
            # The broker's expiry ends no later than expires_at: the seconds left, rounded down.
            left = stamp + timedelta(seconds=self.settings.ttl) - now
            self._stamped = (now, (stamp, max(1, int(left.total_seconds())), stamp + self._refresh_delta))
        return self._stamped[1]

    def clear(self, name: str) -> None:
        """An empty retained message on the topic of `name`."""
        session = self.connection.session
        if session is None or not session.connected:
            return
        try:
            delivery = session.publish(self.topics.intent(name), b"")
        except NotConnected:
            return
        self.outgoing.append(Outgoing(delivery, name, Kind.CLEAR))

    def send_status(self, status: str) -> None:
        """Publish the server's `status` (retained), tracked like any publish."""
        delivery = self.connection.send_status(status)
        if delivery is not None:
            self.outgoing.append(Outgoing(delivery, "server", Kind.STATUS, status=status))

    # Refreshes.

    def refresh_at(self, name: str) -> datetime | None:
        """When `name` is refreshed next (None: not scheduled)."""
        return self._refresh_at.get(name)

    def next_refresh(self) -> datetime | None:
        return self._refresh[0][0] if self._refresh else None

    def refresh_due(self, now: datetime) -> None:
        """Republish, freshly stamped, every intent whose refresh is due."""
        while self._refresh and self._refresh[0][0] <= now:
            due, name = heapq.heappop(self._refresh)
            if self._refresh_at.get(name) == due:
                del self._refresh_at[name]
                self.publish(name, now, Kind.REFRESH)
