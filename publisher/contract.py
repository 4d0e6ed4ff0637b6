"""The client contract (DESIGN 10, docs/client-contract.md) as pure, clock-injected code.

One implementation, used by `intent-ledger screen`, `intent-ledger simulate`
and the tests. Nothing here sleeps, starts a thread or reads a clock: every
input carries the instant it happened (`receive(payload, received_at)`,
`receive_status(...)`, `advance(now)`), time never runs backwards, and every
switch of the TV is recorded at the instant it happens (a pending off fires
at its own deadline, however late `advance` is called). What the screen
reports (DESIGN 13) is in publisher/reporting.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from publisher.payload import IntentPayload, Timestamp, decode_payload

__all__ = ["Held", "Power", "ScreenContract", "Verdict", "parse_stamp"]

Power = Literal["on", "off"]
# accepted: followed from now on; duplicate/stale/expired/invalid: ignored; removed: empty payload.
Verdict = Literal["accepted", "duplicate", "stale", "expired", "invalid", "removed"]


class _ServerStatus(msgspec.Struct):
    status: Literal["online", "offline"]
    started_at: Timestamp


_status_decoder = msgspec.json.Decoder(_ServerStatus)


def parse_stamp(text: str) -> datetime:
    """A payload timestamp (`YYYY-MM-DDTHH:MM:SSZ`) as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Held:
    """The intent the client follows: the newest one it accepted."""

    payload: IntentPayload
    received_at: datetime

    @property
    def intent_id(self) -> str:
        return self.payload.intent_id

    @property
    def issued_at(self) -> datetime:
        return parse_stamp(self.payload.issued_at)

    @property
    def expires_at(self) -> datetime:
        return parse_stamp(self.payload.expires_at)

    @property
    def desired_state(self) -> Power:
        return self.payload.power.desired_state

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.payload.power.grace_seconds)

    @property
    def window_end(self) -> datetime | None:
        window = self.payload.event_window
        return None if window is None else parse_stamp(window.end)


class ScreenContract:
    """One screen: follows one intent topic and the server status topic, decides one TV's power.

    `tv` is the power the contract wants the TV in now; `actions` every switch as
    `(instant, "on"|"off")`; `verdicts` what became of every message, as
    `(received_at, verdict)`. A long-running owner clears both lists once it has acted.
    """

    def __init__(self, tv: Power = "off") -> None:
        self.tv: Power = tv
        self.actions: list[tuple[datetime, Power]] = []
        self.verdicts: list[tuple[datetime, Verdict]] = []
        self.held: Held | None = None  # None before the first intent and after a removal
        self.expired = False  # the held intent's expires_at has passed
        self.off_at: datetime | None = None  # a pending off (only while the TV is on)
        self.now: datetime | None = None  # the last instant processed
        # The newest (intent_id, issued_at) ever accepted; it survives a removal, so a
        # late duplicate of an intent from before the removal cannot revive it.
        self.newest: tuple[str, datetime] | None = None
        self.server_online: bool | None = None  # None: no status seen yet
        self.server_started_at: datetime | None = None
        self.last_online_started_at: datetime | None = None

    # Inputs.

    def receive(self, payload: bytes, received_at: datetime) -> Verdict:
        """A message on the intent topic, at `received_at`."""
        self._run(received_at, inclusive=False)  # what fell due before it happens first
        verdict = self._receive(payload, received_at)
        self.verdicts.append((received_at, verdict))
        self._run(received_at, inclusive=True)  # e.g. an off with grace_seconds 0
        return verdict

    def receive_status(self, payload: bytes, received_at: datetime) -> Verdict:
        """A message on `{prefix}/server/status`: it informs, it never switches the TV."""
        self._run(received_at, inclusive=False)
        verdict = self._status(payload)
        self.verdicts.append((received_at, verdict))
        return verdict

    def advance(self, now: datetime) -> Power:
        """Let time pass until `now` (inclusive); returns the TV's power."""
        self._run(now, inclusive=True)
        return self.tv

    # What the owner needs to know.

    @property
    def following(self) -> str | None:
        """The intent_id the screen follows now: None before the first, after a removal or expiry."""
        return None if self.held is None or self.expired else self.held.intent_id

    @property
    def decided(self) -> bool:
        """Whether any intent ever held: until then the TV is left alone."""
        return self.newest is not None

    def next_wakeup(self) -> datetime | None:
        """The next instant at which time alone changes something (a pending off, an expiry)."""
        due = [self.off_at] if self.off_at is not None else []
        if self.held is not None and not self.expired:
            due.append(self.held.expires_at)
        return min(due, default=None)

    # The rules.

    def _receive(self, payload: bytes, t: datetime) -> Verdict:
        if payload == b"":
            # Removed: no intent holds any more. Off at once: this is not a gap between
            # windows that a grace would bridge.
            self.held, self.expired, self.off_at = None, False, None
            self._switch("off", t)
            return "removed"
        try:
            intent = decode_payload(payload)  # other majors and malformed payloads fail here
            issued_at, expires_at = parse_stamp(intent.issued_at), parse_stamp(intent.expires_at)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError):
            return "invalid"
        if expires_at <= t:
            return "expired"
        if self.newest is not None:
            newest_id, newest_issued_at = self.newest
            if intent.intent_id == newest_id and issued_at <= newest_issued_at:
                return "duplicate"
            if issued_at < newest_issued_at:
                return "stale"
            # Newer, or the same second with another intent_id: the later arrival wins.
        self.newest = (intent.intent_id, issued_at)
        self.held, self.expired = Held(intent, t), False
        if intent.power.desired_state == "on":
            self.off_at = None  # cancels a pending off, whatever started it
            self._switch("on", t)
        elif self.tv == "on":
            # The first off starts the grace; a later off never postpones the switch
            # (a refresh of the same off), it can only bring it forward.
            deadline = t + timedelta(seconds=intent.power.grace_seconds)
            self.off_at = deadline if self.off_at is None else min(self.off_at, deadline)
        return "accepted"

    def _expire(self, at: datetime) -> None:
        """The held intent's expires_at passed with no newer intent: it no longer holds."""
        held = self.held
        assert held is not None
        self.expired = True
        if self.tv == "on" and self.off_at is None:
            # An `on` may finish its event_window; then off after grace. (An expired `off`
            # already has its pending off, which expiry does not postpone.)
            end = held.window_end if held.desired_state == "on" else None
            self.off_at = (at if end is None else max(at, end)) + held.grace

    def _run(self, until: datetime, *, inclusive: bool) -> None:
        if self.now is not None and until < self.now:
            raise ValueError(f"time ran backwards: {until} after {self.now}")
        while True:
            due: list[tuple[datetime, int]] = []
            if self.off_at is not None:
                due.append((self.off_at, 0))  # a tie with the expiry: the off first
            if self.held is not None and not self.expired:
                due.append((self.held.expires_at, 1))
            if not due:
                break
            at, kind = min(due)
            if at > until or (at == until and not inclusive):
                break
            self.now = at
            if kind == 0:
                self.off_at = None
                self._switch("off", at)
            else:
                self._expire(at)
        self.now = until

    def _switch(self, power: Power, at: datetime) -> None:
        if self.tv != power:  # act on the level, never toggle
            self.tv = power
            self.actions.append((at, power))

    def _status(self, payload: bytes) -> Verdict:
        try:
            body = _status_decoder.decode(payload)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return "invalid"  # an empty (cleared) or unreadable status tells nothing
        started_at = parse_stamp(body.started_at)
        if body.status == "online":
            self.server_online, self.server_started_at = True, started_at
            self.last_online_started_at = started_at
            return "accepted"
        if self.last_online_started_at is not None and started_at < self.last_online_started_at:
            return "stale"  # an older instance's Will, delivered late
        self.server_online, self.server_started_at = False, started_at
        return "accepted"
