"""Shards: which intent logs one daemon of several owns (a stable hash of the log's name)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ledger.errors import InvalidInput

__all__ = ["Shard"]


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: the intent logs whose stable hash falls in it."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise InvalidInput(f"invalid shard {self.index}/{self.count}: use i/N with 0 <= i < N")

    def owns(self, name: str) -> bool:
        # crc32: the same on every machine and Python (hash() is salted per process).
        return self.count == 1 or zlib.crc32(name.encode()) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
