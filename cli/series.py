"""`series`: recurring windows in local time (DESIGN section 11): add, change, skip, unskip, cancel, list, show."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

import click

from cli.base import (
    CONTEXT,
    ID,
    LedgerGroup,
    change_options,
    counted,
    echo_json,
    echo_table,
    json_option,
    ledger_of,
    meta_of,
    report,
)
from ledger import Recurrence, TargetRef
from ledger.recurrence import parse_rule, rule_parts, zone
from projections.series_views import find_series, occurrence_rows, series_row, series_rows

__all__ = ["series"]

F = TypeVar("F", bound=Callable[..., Any])


class _Date(click.ParamType):  # type: ignore[type-arg]  # generic since click 8.2
    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a date YYYY-MM-DD that exists", param, ctx)


class _Clock(click.ParamType):  # type: ignore[type-arg]  # generic since click 8.2
    name = "HH:MM[:SS]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> time:
        if isinstance(value, time):
            return value
        try:
            if not isinstance(value, str) or len(value) not in (5, 8):
                raise ValueError
            return time.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a local time HH:MM or HH:MM:SS", param, ctx)


DATE, CLOCK = _Date(), _Clock()


def _rule_options(f: F) -> F:
    """The options that describe a series' rule, shared by `add` and `change`."""
    for decorator in reversed(
        [
            click.option("--tz", help="IANA zone of the local times, e.g. Europe/Berlin (or UTC)."),
            click.option("--from", "first_day", type=DATE, help="Local date of the first occurrence."),
            click.option("--start", type=CLOCK, help="Local start time of every occurrence."),
            click.option("--end", type=CLOCK, help="Local end time (next day when not after --start)."),
            click.option("--days", type=click.IntRange(0, 31), help="Days more between start and end."),
            click.option("--rrule", help="RFC 5545 RRULE without DTSTART (default FREQ=DAILY)."),
            click.option("--until", type=DATE, help="Last local date an occurrence may start (inclusive)."),
        ]
    ):
        f = decorator(f)
    return f


def _recurrence(current: Recurrence | None, **given: Any) -> Recurrence:
    """A recurrence from the options; with `current` (series change) missing ones keep their value."""
    if current is None:
        missing = [
            f"--{k.replace('first_day', 'from')}" for k in ("tz", "first_day", "start", "end") if not given[k]
        ]
        if missing:
            raise click.UsageError(f"missing option {', '.join(missing)}")
    tz = given["tz"] or (current.tz if current else "UTC")
    zone(tz)
    day = given["first_day"] or (current.first_start.date() if current else date.min)
    start = given["start"] or (current.first_start.time() if current else time())
    end = given["end"] or (current.first_end.time() if current else time())
    days = given["days"]
    if days is None:
        days = _extra_days(current) if current else 0
    rule = given["rrule"] or (current.rrule if current else "FREQ=DAILY")
    if given["until"] is not None:
        parts = rule_parts(parse_rule(rule))
        parts["UNTIL"] = given["until"].strftime("%Y%m%d")
        rule = ";".join(f"{k}={v}" for k, v in parts.items())
    end_day = day + timedelta(days=(0 if end > start else 1) + days)
    return Recurrence(tz, datetime.combine(day, start), datetime.combine(end_day, end), parse_rule(rule))


def _extra_days(current: Recurrence) -> int:
    nights = (current.first_end.date() - current.first_start.date()).days
    return nights - (0 if current.first_end.time() > current.first_start.time() else 1)


@click.group(cls=LedgerGroup, context_settings=CONTEXT)
def series() -> None:
    """Recurring windows in local time: opening hours, timetables, holidays.

    Example:

    \b
        intent-ledger series add lobby-hours --group lobby --tz Europe/Berlin --from 2027-01-04 --start 07:30 --end 16:00 --rrule "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
    """


@series.command("add", context_settings=CONTEXT)
@click.argument("series_id", type=ID)
@click.option("--client", "client_id", type=ID, help="The client the series is for.")
@click.option("--group", "group_id", type=ID, help="The group the series is for.")
@_rule_options
@change_options
@click.pass_context
def series_add(
    ctx: click.Context, /, series_id: str, client_id: str | None, group_id: str | None, **options: Any
) -> None:
    """Schedule a series: from --from, every occurrence --start..--end local time in --tz.

    --end is on the same day, or the next day when it is not after --start,
    plus --days. --rrule defaults to FREQ=DAILY; --until adds an inclusive
    last local date. A local time that does not exist (spring forward) takes
    the offset before the gap; one that exists twice (fall back) is the first.

    Example:

    \b
        intent-ledger series add lobby-hours --group lobby --tz Europe/Berlin --from 2027-01-04 --start 07:30 --end 16:00 --rrule "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR" --note "opening hours"
    """
    if (client_id is None) == (group_id is None):
        raise click.UsageError("give exactly one of --client and --group")
    target = TargetRef("client", client_id) if client_id else TargetRef("group", str(group_id))
    meta = meta_of(options.pop("actor"), options.pop("note"))
    receipt = ledger_of(ctx).schedule_series(series_id, target, _recurrence(None, **options), meta)
    report(receipt, f"series {series_id} scheduled")


@series.command("change", context_settings=CONTEXT)
@click.argument("series_id", type=ID)
@_rule_options
@change_options
@click.pass_context
def series_change(ctx: click.Context, /, series_id: str, **options: Any) -> None:
    """Replace a series' rule (not its skips); options not given keep their value.

    Also reinstates a cancelled series.

    Example:

    \b
        intent-ledger series change lobby-hours --start 08:00 --note "opens later from now on"
    """
    ledger = ledger_of(ctx, existing=True)
    meta = meta_of(options.pop("actor"), options.pop("note"))
    _, current = find_series(ledger, series_id)
    receipt = ledger.change_series(series_id, _recurrence(current.recurrence, **options), meta)
    report(receipt, f"series {series_id} changed")


def _dates_option(f: F) -> F:
    return click.option(
        "--date", "dates", type=DATE, multiple=True, required=True, help="A local date (repeatable)."
    )(f)


@series.command("skip", context_settings=CONTEXT)
@click.argument("series_id", type=ID)
@_dates_option
@change_options
@click.pass_context
def series_skip(
    ctx: click.Context, series_id: str, dates: tuple[date, ...], actor: str | None, note: str | None
) -> None:
    """No occurrence starts on these local dates (holidays).

    Example:

    \b
        intent-ledger series skip lobby-hours --date 2027-05-01 --date 2027-12-24 --note holidays
    """
    receipt = ledger_of(ctx, existing=True).skip_series(series_id, dates, meta_of(actor, note))
    report(receipt, f"series {series_id}: {counted(len(dates), 'date')} skipped")


@series.command("unskip", context_settings=CONTEXT)
@click.argument("series_id", type=ID)
@_dates_option
@change_options
@click.pass_context
def series_unskip(
    ctx: click.Context, series_id: str, dates: tuple[date, ...], actor: str | None, note: str | None
) -> None:
    """Occurrences on these local dates happen again.

    Example:

    \b
        intent-ledger series unskip lobby-hours --date 2027-12-24 --note "open on Christmas Eve after all"
    """
    receipt = ledger_of(ctx, existing=True).unskip_series(series_id, dates, meta_of(actor, note))
    report(receipt, f"series {series_id}: {counted(len(dates), 'date')} unskipped")


@series.command("cancel", context_settings=CONTEXT)
@click.argument("series_id", type=ID)
@change_options
@click.pass_context
def series_cancel(ctx: click.Context, series_id: str, actor: str | None, note: str | None) -> None:
    """Cancel a series; its id stays taken (`series change` reinstates it).

    Example:

    \b
        intent-ledger series cancel lobby-hours --note "site closed"
    """
    report(
        ledger_of(ctx, existing=True).cancel_series(series_id, meta_of(actor, note)),
        f"series {series_id} cancelled",
    )


@series.command("list", context_settings=CONTEXT)
@json_option
@click.pass_context
def series_list(ctx: click.Context, as_json: bool) -> None:
    """Every series, scheduled or cancelled.

    Example:

    \b
        intent-ledger series list --json
    """
    rows = series_rows(ledger_of(ctx, read_only=True))
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        row["skip"] = len(row["skip"])
    echo_table(rows, ["series_id", "target", "tz", "first_start", "first_end", "rrule", "skip", "status"])


@series.command("show", context_settings=CONTEXT)
@click.argument("series_id", type=ID)
@click.option("--from", "first", type=DATE, help="First local date (default: today in the series' zone).")
@click.option("--to", "last", type=DATE, help="Last local date, inclusive (default: 13 days after --from).")
@json_option
@click.pass_context
def series_show(
    ctx: click.Context, series_id: str, first: date | None, last: date | None, as_json: bool
) -> None:
    """A series and its occurrences starting in a range of local dates (default: the next 14 days).

    Example:

    \b
        intent-ledger series show lobby-hours --from 2027-03-22 --to 2027-04-04 --json
    """
    ledger = ledger_of(ctx, read_only=True)
    _, found = find_series(ledger, series_id)
    first = first or datetime.now(UTC).astimezone(zone(found.recurrence.tz)).date()
    last = last or first + timedelta(days=13)
    if last < first:
        raise click.UsageError("--to is before --from")
    if (last - first).days > 3660:
        raise click.UsageError("at most ten years of occurrences at a time")
    rows = occurrence_rows(found, first, last)
    if as_json:
        echo_json(rows)
        return
    head = series_row(ledger, series_id)
    click.echo(f"{series_id} ({head['target']}, {found.recurrence}, {head['status']})")
    echo_table(rows, ["occurrence", "local_start", "local_end", "start", "end"])
