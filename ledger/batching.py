"""Batches cut into pieces of a few fixed sizes, so a database caches few distinct statements."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["pieces"]


def pieces(n: int, largest: int = 512) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive runs covering n rows, each a power of two long, at most `largest`.

    Any n is covered by at most n // largest + log2(largest) + 1 runs of at most
    log2(largest) + 1 lengths: a multi-row statement per run is one of that many texts.
    """
    start = 0
    while start < n:
        size = min(largest, 1 << ((n - start).bit_length() - 1))
        yield start, start + size
        start += size
