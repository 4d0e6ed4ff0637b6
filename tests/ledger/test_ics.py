"""The iCalendar reader (ledger.ics): fixtures shaped like real exports, and the edge cases."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ledger.ics import IcsEvent, IcsFeed, IcsSeries, InvalidFeed, parse_ics
from ledger.occurrences import occurrences, occurrences_from
from ledger.recurrence import Recurrence, Series, format_local

FEEDS = Path(__file__).parent / "feeds"


def feed(name: str, **options: str) -> IcsFeed:
    return parse_ics((FEEDS / name).read_bytes(), **options)


def base(uid: str, prefix: str = "ics-") -> str:
    return prefix + hashlib.sha256(uid.encode()).hexdigest()[:16]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def by_uid(f: IcsFeed) -> dict[str, list[IcsEvent | IcsSeries]]:
    found: dict[str, list[IcsEvent | IcsSeries]] = {}
    items: list[IcsEvent | IcsSeries] = [*f.series, *f.events]
    for item in items:
        found.setdefault(item.uid, []).append(item)
    return found


def one_event(f: IcsFeed, uid: str) -> IcsEvent:
    (event,) = [e for e in f.events if e.uid == uid]
    return event


def reasons(f: IcsFeed) -> dict[str, str]:
    return {s.uid: s.reason for s in f.skipped}


# Google Calendar: X-WR-TIMEZONE, TZID and UTC times, RRULE with EXDATE, a moved instance.


def test_google_weekday_series_with_exdates_and_a_moved_instance() -> None:
    f = feed("google.ics")
    uid = "0a1b2c3d4e5f6g7h8i9j@google.com"
    (series,) = f.series
    assert series == IcsSeries(
        base(uid),
        uid,
        "Europe/Berlin",
        datetime(2027, 1, 4, 7, 30),
        datetime(2027, 1, 4, 16, 0),
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        (date(2027, 2, 8), date(2027, 5, 6), date(2027, 5, 17), date(2027, 5, 27)),
        "Lobby open",
    )
    moved = [e for e in f.events if e.uid == uid]
    assert moved == [
        IcsEvent(
            f"{base(uid)}-20270208", uid, utc(2027, 2, 8, 9), utc(2027, 2, 8, 17), "Lobby open (late start)"
        )
    ]


def test_google_utc_event_all_day_event_and_cancelled_event() -> None:
    f = feed("google.ics")
    reception = one_event(f, "5k6l7m8n9o0p@google.com")
    assert (reception.start, reception.end) == (utc(2027, 3, 12, 17), utc(2027, 3, 12, 20))
    # All-day: local midnight to midnight in the calendar's X-WR-TIMEZONE (CEST, +02:00).
    open_house = one_event(f, "allday-open-house@google.com")
    assert (open_house.start, open_house.end) == (utc(2027, 4, 14, 22), utc(2027, 4, 16, 22))
    assert f.cancelled == (base("called-off@google.com"),)
    assert "called-off@google.com" not in by_uid(f)
    assert f.skipped == ()


def test_ids_are_stable_and_take_the_prefix() -> None:
    first, again = feed("google.ics"), feed("google.ics")
    assert first == again
    other = feed("google.ics", prefix="lobby-cal.")
    assert [s.series_id for s in other.series] == [base("0a1b2c3d4e5f6g7h8i9j@google.com", "lobby-cal.")]
    assert all(e.event_id.startswith("lobby-cal.") for e in other.events)


# Outlook / Exchange: Windows zone names with VTIMEZONE blocks, a custom zone, no X-WR-TIMEZONE.


def test_outlook_windows_zone_names_resolve_to_iana() -> None:
    f = feed("outlook.ics", tz="Europe/Berlin")
    series = next(s for s in f.series if s.summary == "Weekly planning")
    assert (series.tz, series.first_start, series.first_end) == (
        "Europe/Berlin",
        datetime(2027, 3, 1, 9),
        datetime(2027, 3, 1, 10, 30),
    )
    assert series.rrule == "FREQ=WEEKLY;BYDAY=MO,WE;INTERVAL=1;UNTIL=20270625T070000Z;WKST=MO"
    assert series.skip == (date(2027, 3, 29),)
    # Pacific Standard Time -> America/Los_Angeles: 08:00 PST on 10 March (DST begins on the 14th).
    seattle = next(e for e in f.events if e.summary == "Call with Seattle")
    assert (seattle.start, seattle.end) == (utc(2027, 3, 10, 16), utc(2027, 3, 10, 17))


def test_outlook_custom_zone_one_off_uses_the_vtimezone_rules() -> None:
    f = feed("outlook.ics", tz="Europe/Berlin")
    review = next(e for e in f.events if e.summary == "Review (custom zone)")
    assert (review.start, review.end) == (utc(2027, 3, 11, 9), utc(2027, 3, 11, 10))  # +05:30
    assert f.skipped == ()


def test_a_series_in_a_custom_zone_takes_the_iana_zone_its_rules_agree_with() -> None:
    f = feed("outlook-custom-zones.ics")
    zones = {s.summary: s.tz for s in f.series}
    assert zones == {"Reception staffed": "Europe/Berlin", "New York office hours": "America/New_York"}
    assert len(f.notes) == 2
    assert "read as Europe/Berlin, whose offsets agree with its VTIMEZONE from 2027 to 2030" in f.notes[0]
    (skipped,) = f.skipped
    assert skipped.summary == "Rules no zone has"
    assert skipped.reason == (
        "its zone 'Customized Time Zone 1' has no IANA name and no IANA zone agrees with its VTIMEZONE"
    )


def test_a_vtimezone_is_read_from_its_own_feed_not_from_an_earlier_one() -> None:
    # icalendar caches a VTIMEZONE by TZID for the whole process; another feed's
    # "Customized Time Zone" (+05:30 in outlook.ics) must not place this one's times.
    feed("outlook.ics", tz="Europe/Berlin")
    data = (
        (FEEDS / "outlook-custom-zones.ics")
        .read_bytes()
        .replace(b"Customized Time Zone 2", b"Customized Time Zone")
    )
    office = next(s for s in parse_ics(data).series if s.summary == "New York office hours")
    assert office.tz == "America/New_York"
    one_off = data.replace(b"RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=40\n", b"")
    event = next(e for e in parse_ics(one_off).events if e.summary == "New York office hours")
    assert event.start == utc(2027, 3, 1, 14)  # 09:00 EST


def test_a_fixed_offset_custom_zone_takes_cldrs_zone() -> None:
    fixed = next(
        s for s in feed("outlook.ics", tz="Europe/Berlin").series if (s.summary or "").startswith("Daily")
    )
    assert fixed.tz == "Asia/Calcutta"  # +05:30 all year: CLDR's zone of "India Standard Time"


def test_outlook_all_day_without_a_zone_is_refused() -> None:
    with pytest.raises(InvalidFeed, match=r"floating or all-day times .* give --tz ZONE"):
        feed("outlook.ics")


def test_tz_option_places_all_day_events_and_windows_names_are_accepted() -> None:
    holiday = next(
        e for e in feed("outlook.ics", tz="Europe/Berlin").events if e.summary == "Company holiday"
    )
    assert (holiday.start, holiday.end) == (utc(2027, 5, 2, 22), utc(2027, 5, 3, 22))
    windows = next(
        e for e in feed("outlook.ics", tz="GMT Standard Time").events if e.summary == "Company holiday"
    )
    assert (windows.start, windows.end) == (utc(2027, 5, 2, 23), utc(2027, 5, 3, 23))  # Europe/London, BST


# A timetable export: weekly lessons, a moved lesson, a cancelled lesson, a cancelled exam, holidays.


def test_timetable_moved_and_cancelled_lessons() -> None:
    f = feed("timetable.ics")
    uid = "lesson-101-mo-1@timetable.example.org"
    maths = next(s for s in f.series if s.uid == uid)
    assert maths.rrule == "FREQ=WEEKLY;BYDAY=MO;UNTIL=20270702T215959Z"
    # EXDATE 15 Feb, moved 1 Mar, cancelled 8 Mar: all three dates are skipped.
    assert maths.skip == (date(2027, 2, 15), date(2027, 3, 1), date(2027, 3, 8))
    moved = one_event(f, uid)
    assert moved.event_id == f"{base(uid)}-20270301"  # named by the original date
    assert (moved.start, moved.end) == (utc(2027, 3, 2, 9), utc(2027, 3, 2, 9, 50))
    assert f"{base(uid)}-20270308" in f.cancelled
    assert base("exam-101-2027-03-18@timetable.example.org") in f.cancelled


def test_timetable_date_until_means_through_that_local_day() -> None:
    physics = next(s for s in feed("timetable.ics").series if s.uid.startswith("lesson-101-we-3"))
    assert physics.rrule == "FREQ=WEEKLY;BYDAY=WE;INTERVAL=2;UNTIL=20270630T235959"
    assert (physics.first_start, physics.first_end) == (
        datetime(2027, 1, 13, 10),
        datetime(2027, 1, 13, 11, 40),
    )


def test_timetable_multi_day_event() -> None:
    days = one_event(feed("timetable.ics"), "project-days-2027@timetable.example.org")
    # 22 March (CET, +01:00) to 3 April (CEST, +02:00), local midnights.
    assert (days.start, days.end) == (utc(2027, 3, 21, 23), utc(2027, 4, 2, 22))


# Hand-written edge cases: floating times, DURATION, RDATE, and what the model cannot express.


def test_floating_time_takes_the_tz_option() -> None:
    f = feed("edge.ics", tz="Europe/Berlin")
    e = one_event(f, "floating-one-off")
    assert (e.start, e.end) == (utc(2027, 6, 1, 7), utc(2027, 6, 1, 8))


def test_duration_is_nominal_across_a_clock_change() -> None:
    # 23:00 EDT on 6 Nov 2027 + PT3H on the wall clock is 02:00 EST (the clocks fell back at 02:00).
    e = one_event(feed("edge.ics", tz="Europe/Berlin"), "duration-one-off")
    assert (e.start, e.end) == (utc(2027, 11, 7, 3), utc(2027, 11, 7, 7))


def test_overnight_series_with_duration_keeps_local_times() -> None:
    (night,) = [s for s in feed("edge.ics", tz="Europe/Berlin").series if s.uid == "night-series"]
    assert (night.tz, night.first_start, night.first_end, night.rrule) == (
        "Europe/Berlin",
        datetime(2027, 10, 30, 22),
        datetime(2027, 10, 31, 6),
        "FREQ=DAILY;COUNT=3",
    )


def test_rdates_become_extra_events_and_exdate_removes_one() -> None:
    f = feed("edge.ics", tz="Europe/Berlin")
    rdates = sorted((e for e in f.events if e.uid == "rdates"), key=lambda e: e.start)
    b = base("rdates")
    assert [(e.event_id, e.start, e.end) for e in rdates] == [
        (b, utc(2027, 4, 4, 23), utc(2027, 4, 5, 7)),  # DTSTART (AEST, +10:00)
        (f"{b}-20270410", utc(2027, 4, 9, 23), utc(2027, 4, 10, 7)),  # same length as DTSTART-DTEND
        (f"{b}-20270420", utc(2027, 4, 20, 0), utc(2027, 4, 20, 4)),  # a PERIOD keeps its own length
        (f"{b}-20270501", utc(2027, 4, 30, 14), utc(2027, 4, 30, 22)),  # a date: local midnight
    ]


def test_orphan_instance_is_an_event_named_by_its_date() -> None:
    e = one_event(feed("edge.ics", tz="Europe/Berlin"), "orphan-instance")
    assert e.event_id == f"{base('orphan-instance')}-20270607"
    assert (e.start, e.end) == (utc(2027, 6, 7, 13), utc(2027, 6, 7, 14))


def test_what_the_model_cannot_express_is_skipped_with_a_reason() -> None:
    f = feed("edge.ics", tz="Europe/Berlin")
    assert reasons(f) == {
        "hourly": "FREQ=HOURLY is not supported (DAILY, WEEKLY, MONTHLY or YEARLY)",
        "exrule": "EXRULE is not supported (use EXDATE)",
        "byhour": "BYHOUR is not supported (the time of day comes from DTSTART)",
        "no-start": "it has no DTSTART",
        "too-long": "it is longer than 31 days",
        "unknown-zone": "its DTSTART names the unknown zone 'Mars/Olympus_Mons' and no VTIMEZONE defines it",
        "zero-length": "it has neither DTEND nor DURATION, so it lasts no time",
        "this-and-future": "RECURRENCE-ID with RANGE=THISANDFUTURE is not supported",
        "nonexistent-local": "the occurrence at 2027-03-28T02:30 is empty in UTC",
    }
    imported = by_uid(f)
    assert not set(reasons(f)) & set(imported)  # a skipped UID contributes nothing, not even in part


def ics(*lines: str, head: tuple[str, ...] = ()) -> bytes:
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", *head, *lines, "END:VCALENDAR", ""]).encode()


def vevent(*lines: str) -> tuple[str, ...]:
    return ("BEGIN:VEVENT", *lines, "END:VEVENT")


@pytest.mark.parametrize(
    "data",
    [b"", b"<html><body>Not found</body></html>", b'{"events": []}', b"BEGIN:VEVENT\r\nEND:VEVENT\r\n"],
)
def test_a_file_that_is_not_icalendar_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidFeed, match="not an iCalendar file"):
        parse_ics(data)


def test_an_unreadable_icalendar_file_is_refused() -> None:
    with pytest.raises(InvalidFeed, match="not a readable iCalendar file"):
        parse_ics(b"BEGIN:VCALENDAR\r\nthis is no content line\r\nEND:VCALENDAR\r\n")


def test_bad_options_are_refused() -> None:
    with pytest.raises(InvalidFeed, match="invalid --tz 'Mars/Base'"):
        parse_ics(ics(), tz="Mars/Base")
    for prefix in ("a/b", "-x", "p" * 40):
        with pytest.raises(InvalidFeed, match=f"invalid --id-prefix '{prefix}': up to 39 characters"):
            parse_ics(ics(), prefix=prefix)
    assert parse_ics(ics(), prefix="p" * 39) == IcsFeed()


def test_a_bad_x_wr_timezone_is_refused_only_when_a_floating_time_needs_it() -> None:
    head = ("X-WR-TIMEZONE:Nowhere/Land",)
    utc_only = ics(*vevent("UID:a", "DTSTART:20270601T090000Z", "DTEND:20270601T100000Z"), head=head)
    assert len(parse_ics(utc_only).events) == 1
    floating = ics(*vevent("UID:a", "DTSTART:20270601T090000", "DTEND:20270601T100000"), head=head)
    with pytest.raises(InvalidFeed, match="X-WR-TIMEZONE 'Nowhere/Land' is not a zone name"):
        parse_ics(floating)


def test_utc_series_and_a_utc_until() -> None:
    data = ics(
        *vevent(
            "UID:u",
            "DTSTART:20270601T090000Z",
            "DTEND:20270601T100000Z",
            "RRULE:FREQ=DAILY;UNTIL=20270610T090000Z",
        )
    )
    (series,) = parse_ics(data).series
    assert (series.tz, series.first_start, series.rrule) == (
        "UTC",
        datetime(2027, 6, 1, 9),
        "FREQ=DAILY;UNTIL=20270610T090000Z",
    )


def test_cancelled_series_cancels_its_rdates_and_instances_too() -> None:
    data = ics(
        *vevent(
            "UID:gone",
            "STATUS:CANCELLED",
            "DTSTART:20270601T090000Z",
            "DTEND:20270601T100000Z",
            "RRULE:FREQ=DAILY",
            "RDATE:20270701T090000Z",
        ),
        *vevent("UID:gone", "RECURRENCE-ID:20270603T090000Z", "DTSTART:20270603T120000Z", "DURATION:PT1H"),
    )
    f = parse_ics(data)
    assert (f.events, f.series) == ((), ())
    b = base("gone")
    assert sorted(f.cancelled) == sorted([b, f"{b}-20270701", f"{b}-20270603"])


def test_a_cancelled_component_the_model_cannot_express_is_cancelled_without_a_warning() -> None:
    data = ics(
        *vevent(
            "UID:h", "STATUS:CANCELLED", "DTSTART:20270601T090000Z", "DURATION:PT5M", "RRULE:FREQ=HOURLY"
        ),
        *vevent("UID:nostart", "STATUS:CANCELLED", "SUMMARY:gone"),
    )
    f = parse_ics(data)
    assert (f.cancelled, f.skipped) == ((base("h"), base("nostart")), ())


def test_an_instance_of_a_one_off_event_replaces_it() -> None:
    data = ics(
        *vevent("UID:once", "DTSTART:20270601T090000Z", "DTEND:20270601T100000Z"),
        *vevent(
            "UID:once", "RECURRENCE-ID:20270601T090000Z", "DTSTART:20270601T110000Z", "DTEND:20270601T120000Z"
        ),
    )
    f = parse_ics(data)
    assert [(e.event_id, e.start) for e in f.events] == [(f"{base('once')}-20270601", utc(2027, 6, 1, 11))]
    assert f.cancelled == (base("once"),)


def test_a_date_recurrence_id_is_a_date_of_the_series_zone() -> None:
    data = ics(
        *vevent(
            "UID:ny",
            "DTSTART;TZID=America/New_York:20270104T210000",
            "DTEND;TZID=America/New_York:20270104T220000",
            "RRULE:FREQ=DAILY;COUNT=5",
        ),
        *vevent("UID:ny", "RECURRENCE-ID;VALUE=DATE:20270105", "STATUS:CANCELLED"),
        head=("X-WR-TIMEZONE:Asia/Tokyo",),
    )
    (series,) = parse_ics(data).series
    assert series.skip == (date(2027, 1, 5),)  # not 4 January, as Tokyo's midnight would be


def test_a_duplicate_uid_keeps_the_first_and_says_so() -> None:
    data = ics(
        *vevent("UID:dup", "DTSTART:20270601T090000Z", "DTEND:20270601T100000Z"),
        *vevent("UID:dup", "DTSTART:20270602T090000Z", "DTEND:20270602T100000Z"),
    )
    f = parse_ics(data)
    assert [e.start for e in f.events] == [utc(2027, 6, 1, 9)]
    assert reasons(f) == {"dup": "1 more VEVENT(s) with this UID and no RECURRENCE-ID"}


def test_what_a_series_refuses_is_a_warning_too() -> None:
    data = ics(
        *vevent(
            "UID:both",
            "DTSTART:20270601T090000Z",
            "DTEND:20270601T100000Z",
            "RRULE:FREQ=DAILY;COUNT=3;UNTIL=20270610T000000Z",
        ),
        *vevent(
            "UID:never",
            "DTSTART:20270601T090000Z",
            "DTEND:20270601T100000Z",
            "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        ),
        *vevent("UID:ok", "DTSTART:20270601T090000Z", "DTEND:20270601T100000Z", "RRULE:freq=daily;count=3"),
    )
    f = parse_ics(data)
    assert [s.uid for s in f.series] == ["ok"]
    assert f.series[0].rrule == "FREQ=DAILY;COUNT=3"
    assert set(reasons(f)) == {"both", "never"}
    assert "COUNT and UNTIL together" in reasons(f)["both"]


def test_lf_line_endings_and_a_byte_order_mark_are_read() -> None:
    data = b"\xef\xbb\xbf" + ics(
        *vevent("UID:lf", "DTSTART:20270601T090000Z", "DTEND:20270601T100000Z")
    ).replace(b"\r\n", b"\n")
    assert [e.uid for e in parse_ics(data).events] == ["lf"]


def test_x_lic_location_names_a_vendor_zone() -> None:
    data = ics(
        "BEGIN:VTIMEZONE",
        "TZID:/mozilla.org/20050126_1/Europe/Vienna",
        "X-LIC-LOCATION:Europe/Vienna",
        "BEGIN:STANDARD",
        "DTSTART:19701025T030000",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "END:STANDARD",
        "END:VTIMEZONE",
        *vevent(
            "UID:moz",
            "DTSTART;TZID=/mozilla.org/20050126_1/Europe/Vienna:20270104T080000",
            "DTEND;TZID=/mozilla.org/20050126_1/Europe/Vienna:20270104T090000",
            "RRULE:FREQ=WEEKLY",
        ),
    )
    (series,) = parse_ics(data).series
    assert series.tz == "Europe/Vienna"


def test_a_feeds_forever_and_dates_near_datetimes_end_skip_only_their_uid() -> None:
    """UNTIL=99991231 (a common "forever") is a series without end; a date outside the ledger's
    years skips its UID with a reason, and the feed's other items are imported all the same."""
    data = ics(
        *vevent(
            "UID:forever",
            "DTSTART:20300101T080000Z",
            "DTEND:20300101T090000Z",
            "RRULE:FREQ=DAILY;UNTIL=99991231T235959Z",
        ),
        *vevent("UID:rdate", "DTSTART:20300101T080000Z", "DTEND:20300101T090000Z", "RDATE:99991231T233000Z"),
        *vevent("UID:ancient", "DTSTART;TZID=Pacific/Kiritimati:00010101T010000", "DURATION:PT1H"),
        *vevent("UID:fine", "DTSTART:20300102T080000Z", "DTEND:20300102T090000Z"),
    )
    f = parse_ics(data)
    assert reasons(f) == {
        "rdate": "a date of it is outside the years 1970 to 8999",
        "ancient": "its DTSTART is outside the years 1000 to 8999",
    }
    assert one_event(f, "fine").start == utc(2030, 1, 2, 8)
    (forever,) = f.series
    recurrence = Recurrence.parse(
        forever.tz, format_local(forever.first_start), format_local(forever.first_end), forever.rrule
    )
    found = occurrences(Series("s", recurrence), utc(8999, 12, 30), utc(9000, 1, 1))
    assert [o.start for o in found] == [utc(8999, 12, 30, 8), utc(8999, 12, 31, 8)]
    assert list(occurrences_from(Series("s", recurrence), utc(8999, 12, 31, 9))) == []  # the last year's end


def test_a_holiday_since_1965_an_exdate_in_9999_and_control_characters_import_as_before() -> None:
    """A series may begin before the ledger's first year; an EXDATE no occurrence can fall on is
    dropped; a SUMMARY's control characters leave the note (one UID never fails the feed)."""
    data = ics(
        *vevent(
            "UID:xmas", "DTSTART;VALUE=DATE:19651224", "RRULE:FREQ=YEARLY", "SUMMARY:Christmas\x08\x1b[0m Eve"
        ),
        *vevent(
            "UID:forever",
            "DTSTART:20300101T080000Z",
            "DTEND:20300101T090000Z",
            "RRULE:FREQ=DAILY",
            "EXDATE:99991231T080000Z",
        ),
    )
    f = parse_ics(data, tz="Europe/Berlin")
    assert reasons(f) == {}
    by = {s.uid: s for s in f.series}
    assert by["xmas"].first_start == datetime(1965, 12, 24)
    assert by["xmas"].summary == "Christmas[0m Eve"
    assert by["forever"].skip == ()
