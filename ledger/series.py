"""Series commands: add, change, skip, unskip, cancel, and the snapshot sync's variant.

Written against a `Workspace` like every other command (ledger.commands). A
series id is unique in the whole ledger (a `SeriesClaim` says whose it is); a
cancelled id stays taken; an identical repeat appends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from uuid import UUID, uuid5

from ledger import commands as cmd
from ledger import events as ev
from ledger.domain import NAMESPACE, Client, Group, Meta, Target, TargetRef, _Claim
from ledger.errors import IdConflict, SeriesNotFound
from ledger.occurrences import ended
from ledger.recurrence import Recurrence
from ledger.values import check_id

__all__ = [
    "SeriesClaim",
    "add_series",
    "cancel_series",
    "change_series",
    "prune_series",
    "set_series_again",
    "skip_series",
    "unskip_series",
]


class SeriesClaim(_Claim):
    """Keeps a series id unique in the whole ledger and says whose it is."""

    @staticmethod
    def id_for(series_id: str) -> UUID:
        return uuid5(NAMESPACE, f"series/{series_id}")

    @classmethod
    def open(cls, series_id: str, target: TargetRef) -> SeriesClaim:
        return cls._create(
            ev.SeriesIdClaimed, id=cls.id_for(series_id), series_id=series_id, **target.claim_fields()
        )


def add_series(ws: cmd.Workspace, series_id: str, ref: TargetRef, recurrence: Recurrence, meta: Meta) -> None:
    cmd.check_target(ref)
    claim = ws.get(SeriesClaim, SeriesClaim.id_for(check_id("series_id", series_id)))
    if claim is None:
        target = ws.target(ref)
        ws.add(SeriesClaim.open(series_id, ref))
        target.schedule_series(series_id, recurrence, meta)
        return
    existing = ws.owner(claim.target).series[series_id]
    described = f"series {series_id!r} ({claim.target}, {existing.recurrence})"
    if existing.cancelled:
        raise IdConflict(
            f"{described} was cancelled; its id stays taken: use 'series change' to reinstate it"
        )
    if claim.target != ref or existing.recurrence != recurrence:
        raise IdConflict(f"{described} already exists; use 'series change' to change its rule")


def _owner(ws: cmd.Workspace, series_id: str) -> Target:
    claim = ws.get(SeriesClaim, SeriesClaim.id_for(check_id("series_id", series_id)))
    if claim is None:
        raise SeriesNotFound(series_id)
    return ws.owner(claim.target)


def change_series(ws: cmd.Workspace, series_id: str, recurrence: Recurrence, meta: Meta) -> None:
    _owner(ws, series_id).change_series(series_id, recurrence, meta)


def skip_series(ws: cmd.Workspace, series_id: str, dates: Iterable[date], meta: Meta) -> None:
    _owner(ws, series_id).skip_series(series_id, dates, meta)


def unskip_series(ws: cmd.Workspace, series_id: str, dates: Iterable[date], meta: Meta) -> None:
    _owner(ws, series_id).unskip_series(series_id, dates, meta)


def cancel_series(ws: cmd.Workspace, series_id: str, meta: Meta) -> None:
    _owner(ws, series_id).cancel_series(series_id, meta)


def set_series_again(
    ws: cmd.Workspace,
    series_id: str,
    ref: TargetRef,
    recurrence: Recurrence,
    skip: frozenset[date],
    meta: Meta,
) -> None:
    """Sync's variant of `add_series`: adds, changes or reinstates, then makes the skips exactly `skip`."""
    claim = ws.get(SeriesClaim, SeriesClaim.id_for(check_id("series_id", series_id)))
    if claim is None:
        add_series(ws, series_id, ref, recurrence, meta)
    elif claim.target != ref:
        raise IdConflict(f"series {series_id!r} already exists for {claim.target}")
    else:
        ws.owner(ref).change_series(series_id, recurrence, meta)
    target = ws.owner(ref)
    current = target.series[series_id].skip
    target.skip_series(series_id, skip - current, meta)
    target.unskip_series(series_id, current - skip, meta)


def prune_series(ws: cmd.Workspace, keep: set[str], now: datetime, meta: Meta) -> None:
    """Cancel every live series not in `keep` that has not ended (the past is never rewritten)."""
    for target in [*ws.all(Client), *ws.all(Group)]:
        for series in target.live_series():
            if series.series_id not in keep and not ended(series, now):
                target.cancel_series(series.series_id, meta)
