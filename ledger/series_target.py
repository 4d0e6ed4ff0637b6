"""The series side of a client or group aggregate: schedule, change, skip, unskip, cancel.

A mixin of `ledger.domain.Target`. Command methods return False when the change
would be a no-op, so an identical repeat appends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from ledger import events as ev
from ledger.recurrence import Recurrence, Series, check_recurrence_years, check_years

__all__ = ["SeriesTarget"]


class SeriesTarget:
    """Series by id; `trigger_event` comes from the aggregate this is mixed into."""

    series: dict[str, Series]
    trigger_event: Any

    def schedule_series(self, series_id: str, recurrence: Recurrence, meta: Any) -> None:
        check_recurrence_years(recurrence)
        self.trigger_event(ev.SeriesScheduled, series_id=series_id, **recurrence.fields(), **meta.fields())

    def change_series(self, series_id: str, recurrence: Recurrence, meta: Any) -> bool:
        """A new rule (the skips stay); reinstates a cancelled series. False if already so."""
        old = self.series[series_id]
        if old.recurrence == recurrence and not old.cancelled:
            return False
        check_recurrence_years(recurrence)
        self.trigger_event(ev.SeriesChanged, series_id=series_id, **recurrence.fields(), **meta.fields())
        return True

    def skip_series(self, series_id: str, dates: Iterable[date], meta: Any) -> bool:
        new = sorted(set(dates) - self.series[series_id].skip)
        if not new:
            return False
        check_years("date", new)
        self.trigger_event(ev.SeriesSkipped, series_id=series_id, dates=_texts(new), **meta.fields())
        return True

    def unskip_series(self, series_id: str, dates: Iterable[date], meta: Any) -> bool:
        gone = sorted(set(dates) & self.series[series_id].skip)
        if not gone:
            return False
        self.trigger_event(ev.SeriesUnskipped, series_id=series_id, dates=_texts(gone), **meta.fields())
        return True

    def cancel_series(self, series_id: str, meta: Any) -> bool:
        if self.series[series_id].cancelled:
            return False
        self.trigger_event(ev.SeriesCancelled, series_id=series_id, **meta.fields())
        return True

    def live_series(self) -> list[Series]:
        return [s for s in self.series.values() if not s.cancelled]


def _texts(dates: Iterable[date]) -> list[str]:
    return [d.isoformat() for d in dates]
