"""When a screen reports what its TV does (DESIGN 13), as pure, clock-injected rules.

A screen reports on every change of the intent it follows (`intent_id`,
null when none holds or it expired) or of `tv_state`, and every
`every` seconds otherwise. `since` is when `tv_state` last changed. The
owner tells the rules what it knows (`observe`) and asks what is due
(`due`); it encodes and publishes what comes back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from publisher import report as report_wire
from publisher.report import MAX_DETAIL, TvState

__all__ = ["REPORT_EVERY", "Reporter", "ScreenReport", "TvState", "encode_report"]

REPORT_EVERY = 300


@dataclass(frozen=True)
class ScreenReport:
    """One report, as the screen means it (the wire payload is built from it)."""

    client_id: str
    reported_at: datetime
    intent_id: str | None
    tv_state: TvState
    since: datetime
    detail: str | None = None


class Reporter:
    """The report rules of one screen."""

    def __init__(self, client_id: str, every: int = REPORT_EVERY) -> None:
        if every <= 0:
            raise ValueError("the report period must be positive")
        self.client_id = client_id
        self.every = timedelta(seconds=every)
        self.last: ScreenReport | None = None  # the latest report handed out
        self._current: ScreenReport | None = None  # what holds now, reported or not

    def observe(
        self, at: datetime, intent_id: str | None, tv_state: TvState, detail: str | None = None
    ) -> ScreenReport | None:
        """What the screen knows at `at`; a report when intent_id or tv_state changed."""
        detail = None if detail is None else detail[:MAX_DETAIL]
        current = self._current
        since = at if current is None or current.tv_state != tv_state else current.since
        self._current = ScreenReport(self.client_id, at, intent_id, tv_state, since, detail)
        last = self.last
        if last is None or (last.intent_id, last.tv_state) != (intent_id, tv_state):
            return self._hand_out(at)
        return None

    def due(self, now: datetime) -> ScreenReport | None:
        """The periodic report, when `every` has passed since the last one."""
        if self._current is None:
            return None
        if self.last is not None and now < self.last.reported_at + self.every:
            return None
        return self._hand_out(now)

    def again(self, now: datetime) -> ScreenReport | None:
        """The current state freshly stamped, whatever the period (after a reconnect)."""
        return None if self._current is None else self._hand_out(now)

    def next_due(self) -> datetime | None:
        """When the periodic report falls due."""
        if self.last is None:
            return None
        return self.last.reported_at + self.every

    def _hand_out(self, now: datetime) -> ScreenReport:
        assert self._current is not None
        report = replace(self._current, reported_at=now)
        self.last = report
        return report


def encode_report(report: ScreenReport) -> bytes:
    """The wire payload of a report (publisher/report.py, v1)."""
    return report_wire.encode_report(report_wire.build_report(**asdict(report)))
