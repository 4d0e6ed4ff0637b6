"""Pausing the garbage collector around bulk allocations."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc", "promote_all", "set_collector"]


@contextmanager
def paused_gc(*, promote: bool = False) -> Iterator[None]:
    """Keep the cyclic collector off while a block allocates many long-lived objects; with
    `promote`, what they kept is moved to the oldest generation when the block ends (`promote_all`):
    for a caller that goes on with the collector on."""
    # Folding a fleet or decoding a long history allocates tens of thousands of objects
    # that all survive; the collector would scan them again and again and free none of
    # them (what that costs: docs/performance.md).
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        if promote:
            promote_all()
    finally:
        if enabled:
            gc.enable()


def promote_all() -> None:
    """Move every tracked object to the oldest generation (after a long pause of the collector).

    Without it the first collection after `paused_gc` scans everything allocated during the
    pause as young objects. Freezing and unfreezing leaves them in the oldest generation,
    collected (and freed, if garbage) only by the rare full collections.
    """
    gc.freeze()
    gc.unfreeze()


def set_collector(*, enabled: bool) -> None:
    """Turn the cyclic collector on or off (a no-op when it already is)."""
    if enabled != gc.isenabled():
        if enabled:
            gc.enable()
        else:
            gc.disable()
