"""Read models of series for the command line: the list, one series, its occurrences by local date."""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from ledger.app import Ledger
from ledger.domain import Client, Group, Target, TargetRef
from ledger.errors import SeriesNotFound
from ledger.occurrences import occurrence_dates
from ledger.recurrence import Series, format_local
from ledger.series import SeriesClaim
from ledger.values import check_id, format_instant

__all__ = ["find_series", "occurrence_rows", "series_row", "series_rows"]


def find_series(ledger: Ledger, series_id: str) -> tuple[TargetRef, Series]:
    """The target and the current state of a series (cancelled ones too)."""
    try:
        claim: Any = ledger.repository.get(SeriesClaim.id_for(check_id("series_id", series_id)))
    except AggregateNotFoundError:
        raise SeriesNotFound(series_id) from None
    assert isinstance(claim, SeriesClaim)
    target: Target | None = ledger.client(claim.target.id) if claim.target.kind == "client" else None
    if claim.target.kind == "group":
        target = ledger.group(claim.target.id)
    assert target is not None
    return claim.target, target.series[series_id]


def _row(ref: TargetRef, s: Series) -> dict[str, Any]:
    return {
        "series_id": s.series_id,
        "target": str(ref),
        **s.recurrence.fields(),
        "skip": sorted(d.isoformat() for d in s.skip),
        "status": "cancelled" if s.cancelled else "scheduled",
    }


def series_rows(ledger: Ledger) -> list[dict[str, Any]]:
    """Every series in the ledger, by id."""
    targets = [a for a in ledger.aggregates().values() if isinstance(a, Client | Group)]
    rows = [_row(t.ref, s) for t in targets for s in t.series.values()]
    return sorted(rows, key=lambda r: r["series_id"])


def series_row(ledger: Ledger, series_id: str) -> dict[str, Any]:
    return _row(*find_series(ledger, series_id))


def occurrence_rows(series: Series, first: date, last: date) -> list[dict[str, str]]:
    """The occurrences whose local start date is in `[first, last]`, as `series show --json` prints them."""
    return [
        {
            "occurrence": o.name,
            "local_start": format_local(o.local_start),
            "local_end": format_local(o.local_end),
            "start": format_instant(o.start),
            "end": format_instant(o.end),
        }
        for o in occurrence_dates(series, first, last)
    ]
