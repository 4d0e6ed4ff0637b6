"""Appends are written in pieces of a few fixed sizes, so SQLite caches few distinct statements."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event

from ledger import Ledger, Meta
from ledger.batching import pieces
from ledger.persistence import engine_of
from ledger.sync import parse_snapshot

NOW = datetime(2026, 3, 31, 12, tzinfo=UTC)


@given(st.integers(min_value=0, max_value=5_000), st.sampled_from([1, 8, 512]))
def test_pieces_cover_the_rows_in_order_with_powers_of_two(n: int, largest: int) -> None:
    runs = list(pieces(n, largest))
    assert [a for a, _ in runs] == [0, *[b for _, b in runs]][: len(runs)]  # each from the last's stop
    assert (runs[-1][1] if runs else 0) == n
    for a, b in runs:
        size = b - a
        assert 0 < size <= largest
        assert size & (size - 1) == 0  # a power of two
    assert len(runs) <= n // largest + largest.bit_length()


def test_batches_of_forty_sizes_use_few_insert_statements(sqlite_ledger: Ledger) -> None:
    """Forty appends of forty sizes: at most seven statement texts (64 rows and below), every
    event stored once, in order."""
    texts: set[str] = set()

    @event.listens_for(engine_of(sqlite_ledger), "before_cursor_execute")
    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if statement.startswith("INSERT INTO ledger_events"):
            texts.add(statement)

    clients: list[dict[str, str]] = []
    appended = 0
    for k in range(1, 41):
        clients += [{"client_id": f"c{k}-{i}"} for i in range(k)]
        data = json.dumps({"clients": clients, "events": []}).encode()
        appended += sqlite_ledger.sync(parse_snapshot(data), prune=False, now=NOW, meta=Meta("t")).appended
    assert appended >= 820  # at least an event for each of the 820 clients
    assert len(texts) <= 7
    positions = [position for position, _ in sqlite_ledger.read(0)]
    assert positions == sorted(positions)
    assert len(positions) == len(set(positions)) == appended
