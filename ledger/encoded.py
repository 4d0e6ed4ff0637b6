"""A batch's stored rows, encoded as the recorder writes them rather than all at once.

The recorder takes a sequence of stored events; this one encodes each event when it is
iterated, so a recorder that writes a statement at a time (ledger.bulk on SQLite) holds
one statement's encoded rows, not the whole batch's, and the rows are freed as they go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from eventsourcing.persistence import StoredEvent

__all__ = ["EncodedRows"]


class EncodedRows(Sequence[StoredEvent]):
    """The stored rows of `events`, each encoded by `encode` as it is read (again on each read:
    a retried transaction encodes the same bytes again; nothing is kept)."""

    __slots__ = ("_encode", "_events")

    def __init__(self, events: Sequence[Any], encode: Callable[[Any], StoredEvent]) -> None:
        self._events, self._encode = events, encode

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[StoredEvent]:
        return map(self._encode, self._events)

    @overload
    def __getitem__(self, index: int) -> StoredEvent: ...

    @overload
    def __getitem__(self, index: slice) -> list[StoredEvent]: ...

    def __getitem__(self, index: int | slice) -> StoredEvent | list[StoredEvent]:
        if isinstance(index, slice):
            return [self._encode(e) for e in self._events[index]]
        return self._encode(self._events[index])
