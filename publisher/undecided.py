"""Reports held until it is known whether their client is registered (publisher.roster's None).

The report process's roster looks a client up again at most once a second; a
report from a client it does not know yet waits here, in the order reports
came, and is classified once a read begun after its arrival answers. A later
report of a client with reports held waits behind them, so a screen's reports
are never classified out of order (the older one would count as a duplicate).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["Undecided"]

T = TypeVar("T")


class Undecided(Generic[T]):
    """Held items by client name, oldest first."""

    def __init__(self) -> None:
        self._held: collections.deque[tuple[str, T]] = collections.deque()
        self._names: collections.Counter[str] = collections.Counter()

    def __len__(self) -> int:
        return len(self._held)

    def holds(self, name: str) -> bool:
        """Whether reports of `name` are held (a new one must wait behind them)."""
        return name in self._names

    def hold(self, name: str, item: T) -> None:
        self._held.append((name, item))
        self._names[name] += 1

    def release(self, decide: Callable[[str], bool | None]) -> Iterator[tuple[T, bool]]:
        """(item, whether its client is registered), oldest first, while `decide` answers; the
        rest stay held from the first it cannot answer yet (asked about later, they cannot be
        answered either)."""
        held, names = self._held, self._names
        # One answer a client a pass: its later reports are held without being asked about,
        # and asking again would spend the roster's next read on each of them.
        answers: dict[str, bool] = {}
        while held:
            name, item = held[0]
            known = answers.get(name)
            if known is None:
                known = decide(name)
                if known is not None:
                    answers[name] = known
            if known is None:
                return
            held.popleft()
            names[name] -= 1
            if not names[name]:
                del names[name]
            yield item, known
