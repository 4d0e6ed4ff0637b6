"""Who is registered, as the report process reads it from the ledger itself (DESIGN 13: `unknown_client`).

The report process classifies without the daemon's projector, so it folds the
three membership events (`ClientIdClaimed`, `ClientRegistered`,
`ClientDeregistered`) of the notification log on its own connection: once in
full at start, then from where it stopped. A report from a client it does not
know makes it look again first (one cheap query when nothing was appended), so
a screen registered a moment ago is not rejected because the roster lagged.
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from ledger import events as ev
from ledger.app import Ledger
from publisher.settings import DB_ERRORS

__all__ = ["MEMBERSHIP_TOPICS", "Roster"]

_MEMBERSHIP = (ev.ClientIdClaimed, ev.ClientRegistered, ev.ClientDeregistered)
MEMBERSHIP_TOPICS = tuple(get_topic(c) for c in _MEMBERSHIP)


class Roster:
    """The registered client ids of a ledger, kept current by `refresh()` (any thread)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._position = 0
        self._names: dict[UUID, str] = {}  # a client aggregate's id -> its client_id
        self._registered: set[str] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._registered)

    def refresh(self) -> bool:
        """Fold the membership events appended since the last read; False: the database is away."""
        with self._lock:
            try:
                head = self._ledger.max_notification_id()
                if head == self._position:
                    return True
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

    def registered(self, name: str) -> bool:
        """Whether `name` is registered; one not known yet is looked up again first."""
        if name in self._registered:
            return True
        self.refresh()
        return name in self._registered
