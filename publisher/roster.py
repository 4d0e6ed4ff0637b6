"""Who is registered, as the report process reads it from the ledger itself (DESIGN 13: `unknown_client`).

The report process classifies without the daemon's projector, so it folds the
three membership events (`ClientIdClaimed`, `ClientRegistered`,
`ClientDeregistered`) of the notification log on its own connection: once in
full at start, then from where it stopped. A report from a client it does not
know makes it look again first (one cheap query when nothing was appended), so
a screen registered a moment ago is not rejected because the roster lagged;
at most once every `REREAD` seconds, though, whatever the reports: a client
still unknown within that time is undecided (None), and is answered by the
first read that begins after it was asked about, as `unknown_client` only if
that read does not know it either.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger import events as ev
from ledger.app import Ledger
from publisher.settings import DB_ERRORS

__all__ = ["ASKED_AT_MOST", "MEMBERSHIP_TOPICS", "REREAD", "Roster"]

# Seconds between two reads prompted by reports from unknown clients: a flood of reports from
# unregistered screens costs the database one cheap query a second, not one a report.
REREAD = 1.0
ASKED_AT_MOST = 100_000  # undecided clients remembered

_MEMBERSHIP = (ev.ClientIdClaimed, ev.ClientRegistered, ev.ClientDeregistered)
MEMBERSHIP_TOPICS = tuple(get_topic(c) for c in _MEMBERSHIP)


class Roster:
    """The registered client ids of a ledger, kept current by `refresh()` (any thread)."""

    def __init__(self, ledger: Ledger, clock: Callable[[], float] = time.monotonic) -> None:
        """`clock`: monotonic seconds, for `REREAD`."""
        self._ledger = ledger
        self._clock = clock
        self._position = 0
        self._begun = 0  # reads begun so far, successful or not
        self._next_reread = -math.inf  # no read prompted by `registered()` before (clock)
        # Clients undecided -> the reads begun before they were first asked about: a read
        # numbered above that began after their report arrived.
        self._asked: dict[str, int] = {}
        self._names: dict[UUID, str] = {}  # a client aggregate's id -> its client_id
        self._registered: set[str] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._registered)

    def refresh(self) -> bool:
        """Fold the membership events appended since the last read; False: the database is away."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> bool:
        self._begun += 1
        try:
            head = self._ledger.max_notification_id()
            if head != self._position:
                for _, event in self._ledger.read(self._position, topics=MEMBERSHIP_TOPICS, stop=head):
                    self._fold(event)
                self._position = head  # past the other events too: the next read starts here
        except DB_ERRORS:
            return False
        return True

    def _fold(self, event: Any) -> None:
        if isinstance(event, ev.ClientIdClaimed | ev.ClientRegistered):
            self._names[event.originator_id] = event.client_id
        if isinstance(event, ev.ClientRegistered):
            self._registered.add(event.client_id)
        elif isinstance(event, ev.ClientDeregistered):
            name = self._names.get(event.originator_id)
            if name is not None:
                self._registered.discard(name)

    def registered(self, name: str) -> bool | None:
        """Whether `name` is registered. One not known is looked up again first, at most once
        every `REREAD` seconds; within that time it is undecided (None): ask again for the same
        report, in the order first asked, until the first read begun after the first ask
        answers. A database away answers from what was read before (False)."""
        if name in self._registered:
            if self._asked:
                self._asked.pop(name, None)  # registered since it was asked about
            return True
        with self._lock:
            asked = self._asked.pop(name, None)
            if asked is not None and self._begun > asked:  # a read begun since the first ask
                return name in self._registered
            if self._clock() >= self._next_reread:
                self._next_reread = self._clock() + REREAD
                self._refresh()
                return name in self._registered
            if len(self._asked) >= ASKED_AT_MOST:
                self._asked.clear()  # reports nobody asks about again: they are only delayed
            self._asked[name] = self._begun if asked is None else asked
            return None
