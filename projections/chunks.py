"""A step's chunk between its evaluation and its record, and the record written on a thread.

A step recorded in chunks (the first start: the whole fleet) evaluates a chunk,
records it, and hands its transitions to the publisher. The record's database
work waits mostly outside the interpreter (SQLite's statements and its commit's
fsync, PostgreSQL's round trips and commit), so the projector writes a chunk on a
thread of its own while it evaluates the next one on the caller's. A chunk
evaluated ahead is not recorded yet: until it is, the projector answers for its
targets with what was recorded before (`recorded`), so nothing publishes,
republishes or checkpoints an intent that the ledger does not hold.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.app import Ledger, Receipt
from ledger.domain import IntentLog
from ledger.intent import CurrentIntent
from projections.causes import CauseOf
from projections.prepared import Built, rows_of

__all__ = ["Chunk", "Write"]


@dataclass
class Chunk:
    """Targets evaluated and issued in memory, to be recorded in one transaction."""

    stamp: datetime  # the record instant of every event of the chunk
    # name -> (its log, what the log was before the issue (None: opened now), the cause)
    issued: dict[str, tuple[IntentLog, tuple[Any, ...] | None, CauseOf]] = field(default_factory=dict)
    built: Built = field(default_factory=list)  # issued as built ahead

    def holds(self, name: str) -> bool:
        return name in self.issued

    def recorded(self, name: str) -> CurrentIntent | None:
        """The intent recorded for `name` before this chunk (None: none)."""
        before = self.issued[name][1]
        if before is None:
            return None
        last: CurrentIntent | None = before[3]  # (version, modified_on, seq, last): Projector._evaluate
        return last

    def record(self, ledger: Ledger) -> Receipt:
        """Record the chunk (on the caller's thread)."""
        logs = [log for log, _, _ in self.issued.values()]
        return ledger.record_intents(logs, rows_of(ledger.mapper, self.built, self.stamp))


class Write:
    """A chunk's record on a thread of its own; `result()` waits for it and returns its
    receipt, or raises what the record raised (on the caller's thread)."""

    def __init__(self, chunk: Chunk, ledger: Ledger) -> None:
        self.chunk = chunk
        self._receipt: Receipt | None = None
        self._error: BaseException | None = None
        self._record: Callable[[], Receipt] = lambda: chunk.record(ledger)
        # A thread a chunk: a few a step of thousands, and none left behind between steps.
        self._thread = threading.Thread(target=self._run, name="record-chunk", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._receipt = self._record()
        except BaseException as e:  # raised again by result(), where the step can roll back
            self._error = e

    def result(self) -> Receipt:
        self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        assert self._receipt is not None
        return self._receipt
