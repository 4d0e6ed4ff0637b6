"""A step in chunks writes each chunk on a thread while it evaluates the next (projections.chunks),
on each store: the write and the evaluation do overlap; what a call returns is recorded; the chunk
evaluated ahead answers for nothing until it is recorded (no current intent, no checkpoint)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ledger import Ledger
from projections.projector import Projector
from tests.projections.test_projector import T0, at, clock  # noqa: F401 (the fixture)
from tests.projections.test_projector_chunks import CLIENTS, chunked, first_chunk, fleet


@pytest.mark.usefixtures("clock")
def test_a_chunk_is_written_while_the_next_is_evaluated(ledger: Ledger) -> None:
    """The first chunk's write waits until the next chunk's evaluation has begun: a projector
    that evaluated only after writing would never let it finish (the wait gives up, the test fails)."""
    fleet(ledger)
    projector = Projector(ledger)
    projector.start(T0)
    writing, evaluated_meanwhile = threading.Event(), threading.Event()
    writers: list[str] = []
    record, evaluate = ledger.record_intents, projector._evaluate

    def slow_record(*args: Any, **kwargs: Any) -> Any:
        writers.append(threading.current_thread().name)
        if len(writers) == 1:
            writing.set()
            assert evaluated_meanwhile.wait(10), "the next chunk was not evaluated during the write"
        return record(*args, **kwargs)

    def watched(*args: Any, **kwargs: Any) -> Any:
        if writing.is_set():
            evaluated_meanwhile.set()
        return evaluate(*args, **kwargs)

    ledger.record_intents = slow_record  # type: ignore[method-assign]
    projector._evaluate = watched  # type: ignore[method-assign]
    chunks = chunked(projector, at(1), 2)
    assert [[e.client_id for e in c] for c in chunks] == [["c1", "c2"], ["c3", "c4"], ["c5", "c6"], ["c7"]]
    assert writers[0] != threading.current_thread().name
    assert writers[-1] == threading.current_thread().name  # the last chunk: nothing to overlap
    for client in CLIENTS:
        assert [(e.seq, e.desired_state) for e in ledger.issued(client)] == [(1, "off"), (2, "on")]


@pytest.mark.usefixtures("clock")
def test_the_chunk_evaluated_ahead_is_not_current_until_recorded(ledger: Ledger) -> None:
    """After a call, its transitions are in the ledger; the targets of the chunk evaluated ahead
    still answer with what the ledger holds for them, and no checkpoint is taken meanwhile."""
    projector, first = first_chunk(ledger)
    for e in first:
        assert ledger.issued(str(e.client_id))[-1].intent_id == e.intent_id  # recorded on return
        current = projector.current(str(e.client_id))
        assert current is not None
        assert current.intent_id == e.intent_id
    for ahead in ("c3", "c4"):  # evaluated ahead ("on"), not recorded yet
        assert [e.seq for e in ledger.issued(ahead)] == [1]
        held = projector.current(ahead)
        assert held is not None
        assert (held.seq, held.fields.desired_state) == (1, "off")
    assert projector.checkpoint(at(1)) is None
    assert not projector.prepare(at(1), at(2) - at(1), 10)  # nothing evaluated ahead of a boundary
    second = projector.step(at(1), 2)
    assert [e.client_id for e in second] == ["c3", "c4"]
    held = projector.current("c3")
    assert held is not None
    assert (held.seq, held.fields.desired_state) == (2, "on")


@pytest.mark.usefixtures("clock")
def test_a_first_start_hides_the_logs_it_opens_ahead(ledger: Ledger) -> None:
    """A start in chunks: a log opened by the chunk evaluated ahead has no current intent yet."""
    fleet(ledger)
    projector = Projector(ledger)
    assert [e.client_id for e in projector.start(at(1.5), 2)] == ["c1", "c2"]
    assert projector.current("c3") is None
    assert ledger.issued("c3") == []
    while projector.pending:
        projector.step(at(1.5), 2)
    assert all(projector.current(c) is not None for c in CLIENTS)
