"""Validation of identifiers, instants, windows and policy (DESIGN section 2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ledger.errors import InvalidId, InvalidInstant, InvalidPolicy, InvalidWindow
from ledger.values import Policy, Window, check_id, check_instant, format_instant, parse_instant

BAD_IDS = [
    "",
    "a/b",
    "a+b",
    "a#b",
    "a b",
    "a\x00b",
    "ümlaut",
    "x" * 65,
    "-lead",
    "_lead",
    ".lead",
    "tab\t",
    "line\n",
]


@pytest.mark.parametrize("value", ["a", "lobby-1", "A.b_c-9", "0", "x" * 64])
def test_valid_ids_are_accepted(value: str) -> None:
    """Letters, digits and _ . - up to 64 characters pass unchanged."""
    assert check_id("client_id", value) == value


@pytest.mark.parametrize("value", BAD_IDS)
def test_ids_that_cannot_be_topic_levels_are_rejected(value: str) -> None:
    """Wildcards, separators, spaces, NUL, non-ASCII and 65 characters are rejected."""
    with pytest.raises(InvalidId, match="client_id"):
        check_id("client_id", value)


def test_instants_with_offsets_are_normalised_to_utc() -> None:
    """`Z` and `+02:00` parse to the same aware UTC instant."""
    assert parse_instant("2026-03-31T12:00:00Z") == datetime(2026, 3, 31, 12, tzinfo=UTC)
    assert parse_instant("2026-03-31T14:00:00+02:00") == datetime(2026, 3, 31, 12, tzinfo=UTC)
    assert parse_instant("2026-03-31T12:00:00.000Z") == datetime(2026, 3, 31, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-03-31T12:00:00", "no UTC offset"),
        ("2026-03-31T12:00:00.500Z", "whole seconds"),
        ("2026-03-31", "RFC 3339"),
        ("2026-02-30T12:00:00Z", "day is out of range"),
        ("yesterday", "RFC 3339"),
    ],
)
def test_bad_instants_are_rejected_with_a_reason(text: str, message: str) -> None:
    """Naive, fractional, date-only and impossible instants are never guessed."""
    with pytest.raises(InvalidInstant, match=message):
        parse_instant(text)


def test_check_instant_rejects_naive_and_fractional_datetimes() -> None:
    """Library callers get the same rules as the command line."""
    with pytest.raises(InvalidInstant):
        check_instant(datetime(2026, 1, 1))
    with pytest.raises(InvalidInstant):
        check_instant(datetime(2026, 1, 1, microsecond=5, tzinfo=UTC))
    east = timezone(timedelta(hours=2))
    assert check_instant(datetime(2026, 1, 1, 2, tzinfo=east)) == datetime(2026, 1, 1, tzinfo=UTC)


def test_format_instant_is_utc_whole_seconds_with_z() -> None:
    """The one timestamp format of the payload."""
    assert (
        format_instant(datetime(2026, 3, 31, 14, tzinfo=timezone(timedelta(hours=2))))
        == "2026-03-31T12:00:00Z"
    )


def test_windows_are_half_open_and_at_most_31_days() -> None:
    """end must be after start; 31 days is the longest window."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    assert Window(start, start + timedelta(days=31)).contains(start)
    assert not Window(start, start + timedelta(hours=1)).contains(start + timedelta(hours=1))
    with pytest.raises(InvalidWindow, match="end must be after start"):
        Window(start, start)
    with pytest.raises(InvalidWindow, match="31 days"):
        Window(start, start + timedelta(days=31, seconds=1))


@pytest.mark.parametrize("field", ["pre_roll", "post_roll", "bridge_gap", "grace_seconds"])
def test_policy_values_must_be_non_negative_whole_seconds(field: str) -> None:
    """Negative, fractional or boolean policy values are refused."""
    for bad in (-1, 1.5, True, 10**9):
        with pytest.raises(InvalidPolicy):
            Policy(**{field: bad})  # type: ignore[arg-type]


def test_an_error_quoting_a_newline_from_the_input_stays_one_line() -> None:
    from ledger.errors import InvalidSnapshot
    from ledger.sync import parse_snapshot

    with pytest.raises(InvalidSnapshot) as refused:
        parse_snapshot(b'{"clients": [], "\\nts": 1}')
    message = str(refused.value)
    assert "\n" not in message
    assert "\\nts" in message


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:30:00-01:00",
        "0001-01-01T00:00:00+01:00",
        "9000-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
    ],
)
def test_instants_outside_the_ledgers_years_are_refused_not_overflowed(text: str) -> None:
    """Past datetime's end once in UTC, or outside 1970-8999: refused, never an OverflowError later."""
    with pytest.raises(InvalidInstant, match="outside the years 1970 to 8999"):
        parse_instant(text)
    assert parse_instant("8999-12-31T23:59:59Z").year == 8999
    assert parse_instant("1970-01-01T00:00:00Z") == datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("offset", ["+24:00", "-25:00", "+02:60"])
def test_an_offset_of_a_day_or_more_is_refused_in_plain_words(offset: str) -> None:
    with pytest.raises(InvalidInstant, match="the offset must be less than 24 hours") as raised:
        parse_instant(f"2030-06-04T08:00:00{offset}")
    assert "timedelta" not in str(raised.value)
