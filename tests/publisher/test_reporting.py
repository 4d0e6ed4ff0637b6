"""The report rules of DESIGN 13, pure: on every change of intent_id or tv_state, every period otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from publisher.report import MAX_DETAIL
from publisher.reporting import Reporter, ScreenReport

T0 = datetime(2027, 3, 29, 5, tzinfo=UTC)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_first_observation_is_reported_at_once() -> None:
    """Nothing reported yet: the first thing known is a report, `since` its instant."""
    reporter = Reporter("lobby-1")
    assert reporter.due(t(0)) is None
    assert reporter.next_due() is None
    assert reporter.observe(t(1), None, "unknown") == ScreenReport("lobby-1", t(1), None, "unknown", t(1))


def test_a_change_of_intent_id_or_tv_state_is_reported_at_once() -> None:
    """Each change reports; `since` moves only with tv_state."""
    reporter = Reporter("lobby-1")
    reporter.observe(t(0), None, "off")
    on = reporter.observe(t(10), "a", "off")
    assert on is not None
    assert (on.intent_id, on.tv_state, on.since) == ("a", "off", t(0))
    switched = reporter.observe(t(11), "a", "on", "cec: power on")
    assert switched == ScreenReport("lobby-1", t(11), "a", "on", t(11), "cec: power on")
    expired = reporter.observe(t(700), None, "on")
    assert expired is not None
    assert (expired.intent_id, expired.since) == (None, t(11))


def test_nothing_changed_means_no_report_until_the_period() -> None:
    """The same state again is quiet; the period brings it out freshly stamped, `since` kept."""
    reporter = Reporter("lobby-1", every=300)
    reporter.observe(t(0), "a", "on")
    assert reporter.observe(t(100), "a", "on", "a new detail") is None
    assert reporter.next_due() == t(300)
    assert reporter.due(t(299)) is None
    periodic = reporter.due(t(300))
    assert periodic == ScreenReport("lobby-1", t(300), "a", "on", t(0), "a new detail")
    assert reporter.next_due() == t(600)
    assert reporter.due(t(301)) is None


def test_a_change_restarts_the_period() -> None:
    """The period counts from the latest report, whatever made it."""
    reporter = Reporter("lobby-1", every=300)
    reporter.observe(t(0), "a", "on")
    reporter.observe(t(200), "b", "on")
    assert reporter.due(t(300)) is None
    assert reporter.next_due() == t(500)


def test_again_restamps_the_current_state() -> None:
    """After a reconnect the current state goes out at once; before anything is known, nothing."""
    reporter = Reporter("lobby-1")
    assert reporter.again(t(0)) is None
    reporter.observe(t(0), "a", "off")
    again = reporter.again(t(5))
    assert again is not None
    assert (again.reported_at, again.since) == (t(5), t(0))


def test_detail_is_cut_to_the_schema_limit() -> None:
    """A long command output never makes an invalid report."""
    reporter = Reporter("lobby-1")
    report = reporter.observe(t(0), None, "unknown", "x" * 1000)
    assert report is not None
    assert report.detail == "x" * MAX_DETAIL


def test_the_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Reporter("lobby-1", every=0)
