"""Expansions shared by series with the same rule: each series still gets its own occurrences."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from ledger import occurrences as occurrences_module
from ledger.errors import InvalidSeries
from ledger.occurrences import clear_caches, occurrences
from ledger.recurrence import Recurrence, Series, parse_dates

RULE = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
WEEK = (datetime(2026, 3, 23, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC))


def _series(series_id: str, tz: str, skip: frozenset[date] = frozenset()) -> Series:
    return Series(series_id, Recurrence.parse(tz, "2016-01-04T07:30", "2016-01-04T16:00", RULE), skip)


def test_the_same_rule_in_two_zones_gives_each_zone_its_own_instants() -> None:
    clear_caches()
    berlin = occurrences(_series("a", "Europe/Berlin"), *WEEK)
    sydney = occurrences(_series("b", "Australia/Sydney"), *WEEK)
    assert {o.local_start.time() for o in berlin + sydney} == {time(7, 30)}
    assert berlin[0].start == datetime(2026, 3, 23, 6, 30, tzinfo=UTC)  # CET
    assert sydney[0].start == datetime(2026, 3, 23, 20, 30, tzinfo=UTC)  # AEDT, Tuesday's
    assert sydney[0].local_start == datetime(2026, 3, 24, 7, 30)
    assert not {o.start for o in berlin} & {o.start for o in sydney}
    assert {o.series_id for o in berlin} == {"a"}
    assert {o.series_id for o in sydney} == {"b"}


def test_series_sharing_a_rule_keep_their_own_names_and_skips() -> None:
    clear_caches()
    skipped = frozenset({date(2026, 3, 25)})
    plain = occurrences(_series("plain", "Europe/Berlin"), *WEEK)
    other = occurrences(_series("other", "Europe/Berlin"), *WEEK)
    holiday = occurrences(_series("holiday", "Europe/Berlin", skipped), *WEEK)
    assert [(o.start, o.end) for o in plain] == [(o.start, o.end) for o in other]
    assert [o.name for o in other][:1] == ["other@2026-03-23"]
    assert len(plain) == 5
    assert len(holiday) == 4
    assert date(2026, 3, 25) not in {o.local_start.date() for o in holiday}
    # The skipped one expanded first, into a cold cache of series' weeks: the rule's week,
    # cached by rule and skips, is not the unskipped series'.
    clear_caches()
    assert len(occurrences(_series("holiday", "Europe/Berlin", skipped), *WEEK)) == 4
    occurrences_module._week.cache_clear()
    assert occurrences(_series("plain", "Europe/Berlin"), *WEEK) == plain


def test_a_week_across_a_zone_change_is_expanded_by_the_zone() -> None:
    clear_caches()
    dst = (datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
    london = occurrences(_series("l", "Europe/London"), *dst)
    assert [o.start.hour for o in london] == [7, 6]  # GMT on Friday, BST from Monday
    assert [o.end - o.start for o in london] == [timedelta(hours=8, minutes=30)] * 2


def test_parsed_dates_are_cached_and_bad_ones_still_refused_by_name() -> None:
    clear_caches()
    texts = ["2026-01-01", "2026-12-25"]
    assert parse_dates(texts) is parse_dates(tuple(texts))
    assert parse_dates(texts) == {date(2026, 1, 1), date(2026, 12, 25)}
    with pytest.raises(InvalidSeries, match="invalid skip date '2026-13-01'"):
        parse_dates(["2026-13-01"], "skip date")
    with pytest.raises(InvalidSeries, match=r"invalid date \[1\]"):
        parse_dates([[1]])  # type: ignore[list-item]


def test_a_parsed_rule_is_shared_and_a_bad_one_still_refused() -> None:
    clear_caches()
    first = Recurrence.parse("Europe/Berlin", "2016-01-04T07:30", "2016-01-04T16:00", RULE)
    assert Recurrence.parse("Europe/Berlin", "2016-01-04T07:30", "2016-01-04T16:00", RULE) is first
    with pytest.raises(InvalidSeries, match="must be after first_start"):
        Recurrence.parse("Europe/Berlin", "2016-01-04T07:30", "2016-01-04T07:00", RULE)
