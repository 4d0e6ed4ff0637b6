"""`sync`, `state`, `replay` and `schema`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.base import (
    CONTEXT,
    ID,
    INSTANT,
    check_order,
    counted,
    echo_json,
    echo_table,
    json_option,
    ledger_of,
    meta_of,
    view_of,
    warn_unknown_groups,
)
from cli.feeds import FEED_OPTIONS, feed_options, import_feed
from ledger.fetch import source_label
from ledger.values import floor_second

if TYPE_CHECKING:  # each command imports what it runs: `-h` lists them without the ledger
    from ledger import Receipt
    from ledger.ics import IcsFeed

__all__ = ["replay", "schema", "state", "sync"]


def _now() -> datetime:
    # The command line owns the clock; everything below it takes `now` as an argument.
    return floor_second(datetime.now(UTC))


def _change_row(event: object) -> dict[str, object]:
    from ledger.events import event_fields

    return {"event": type(event).__name__, **event_fields(event)}


@click.command(context_settings=CONTEXT)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@feed_options
@click.option(
    "--prune",
    is_flag=True,
    help="Remove clients absent from the file; cancel absent events, overrides and series that have not "
    "ended yet (--ics: only this prefix's items on this target).",
)
@click.option("--dry-run", is_flag=True, help="Show the ledger events, append nothing.")
@click.option("--note", help="Free text kept with the change, for audits.")
@click.option("--actor", help="Who makes the change (default: sync:<file>, sync:<host> for a URL).")
@json_option
@click.pass_context
def sync(
    ctx: click.Context,
    /,
    file: Path | None,
    ics_source: str | None,
    prune: bool,
    dry_run: bool,
    note: str | None,
    actor: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Apply a schedule snapshot (JSON) or an iCalendar feed as the minimal set of ledger events.

    All of it is appended in one transaction, or nothing is. Running the same
    sync twice appends nothing the second time. With --ics, SOURCE is an
    iCalendar file or an http(s) URL (30 s, at most 10 MB) mapped onto one
    client or group; components it cannot import are named on stderr.
    Prints one summary line; --json lists every ledger event.

    Example:

    \b
        intent-ledger sync fleet.json --prune --dry-run
        intent-ledger sync --ics timetable.ics --group room-101 --prune
    """
    if ics_source is not None:
        if file is not None:
            raise click.UsageError("give FILE or --ics SOURCE, not both")
        receipt, feed = import_feed(
            ledger_of(ctx, read_only=dry_run, or_empty=True),
            ics_source,
            options=options,
            prune=prune,
            dry_run=dry_run,
            note=note,
            actor=actor,
            now=_now(),
        )
        _report(receipt, f"sync --ics {source_label(ics_source)}", dry_run, as_json, feed)
        warn_unknown_groups(receipt)
        return
    if file is None:
        raise click.UsageError("missing FILE (or --ics SOURCE)")
    given = [name for name in FEED_OPTIONS if options[name] not in (None, False)]
    if given:
        raise click.UsageError(f"--{given[0].replace('_', '-')} goes with --ics only")
    try:
        data = file.read_bytes()
    except OSError as e:
        raise click.BadParameter(f"cannot read {file}: {e.strerror}", param_hint="FILE") from None
    from ledger.sync import parse_snapshot

    snapshot = parse_snapshot(data)
    meta = meta_of(actor, note, default=f"sync:{file.name}")
    ledger = ledger_of(ctx, read_only=dry_run, or_empty=True)
    receipt = ledger.sync(
        snapshot, prune=prune, now=_now(), meta=meta, dry_run=dry_run, allow_empty=options["allow_empty"]
    )
    _report(receipt, f"sync {file.name}", dry_run, as_json)
    warn_unknown_groups(receipt, (c.group_id for c in snapshot.clients))


def _report(receipt: Receipt, what: str, dry_run: bool, as_json: bool, feed: IcsFeed | None = None) -> None:
    rows = [_change_row(e) for e in receipt.events]
    counts = (
        {"events": len(feed.events), "series": len(feed.series), "not_imported": len(feed.skipped)}
        if feed
        else {}
    )
    if as_json:
        extra = {}
        if feed is not None:
            extra = {
                "feed": counts,
                "not_imported": [str(s) for s in feed.skipped],
                "notes": list(feed.notes),
            }
        echo_json({"dry_run": dry_run, "appended": 0 if dry_run else len(rows), "changes": rows, **extra})
        return
    verb = "would append" if dry_run else "appended"
    found = (
        f" (the feed: {', '.join(f'{n} {k}' for k, n in counts.items())})".replace("_", " ") if feed else ""
    )
    kinds = "" if feed else _summary(rows)  # a feed's own counts say what it held
    click.echo(f"{what}: {verb} {counted(len(rows), 'ledger event')}{kinds}{found}")


def _summary(rows: list[dict[str, object]]) -> str:
    # "(3 EventScheduled, 1 ClientRegistered)": what kinds of change, the listing is --json.
    counts: dict[str, int] = {}
    for row in rows:
        name = str(row["event"])
        if not name.endswith(("Claimed", "Named", "Opened")):  # bookkeeping of ids and groups
            counts[name] = counts.get(name, 0) + 1
    return f" ({', '.join(f'{n} {k}' for k, n in counts.items())})" if counts else ""


@click.command(context_settings=CONTEXT)
@click.argument("client_id", type=ID)
@click.option("--at", type=INSTANT, help="The instant (default: now).")
@json_option
@click.pass_context
def state(ctx: click.Context, client_id: str, at: datetime | None, as_json: bool) -> None:
    """The effective intent of a client now or at --at.

    Uses the current membership and policy; what the ledger knew earlier is
    `audit --as-of`.

    Example:

    \b
        intent-ledger state lobby-1 --at 2026-03-31T10:15:00Z --json
    """
    from projections.queries import state_of

    row = state_of(view_of(ctx), client_id, at or _now())
    if as_json:
        echo_json(row)
    else:
        window = row["event_window"]
        span = f" {window['start']}..{window['end']}" if window else ""
        click.echo(
            f"{client_id} at {row['at']}: {row['desired_state']} ({row['reason']}){span}"
            f"; next change {row['next_boundary'] or 'never'}"
        )


@click.command(context_settings=CONTEXT)
@click.argument("client_id", type=ID)
@click.option("--since", type=INSTANT, help="Only transitions effective at or after this.")
@click.option("--until", type=INSTANT, help="Only transitions effective before this.")
@json_option
@click.pass_context
def replay(
    ctx: click.Context, client_id: str, since: datetime | None, until: datetime | None, as_json: bool
) -> None:
    """The client's recorded intent history, oldest first.

    Example:

    \b
        intent-ledger replay lobby-1 --since 2026-03-31T00:00:00Z --json
    """
    from projections.readmodel import ReadModel

    check_order(since, until)
    ledger = ledger_of(ctx, read_only=True)
    model = ReadModel(ledger)
    model.catch_up()  # the read model answers; it first reads what the ledger appended since
    rows = model.replay(client_id, since, until)
    if not rows and not model.replay(client_id):
        ledger.client(client_id)  # an unknown client is an error, a quiet one an empty list
    if as_json:
        echo_json(rows)
        return
    table = [
        {
            **r,
            "event_window": (
                f"{r['event_window']['start']}..{r['event_window']['end']}" if r["event_window"] else None
            ),
            "cause": r["cause"].get("kind"),
        }
        for r in rows
    ]
    echo_table(
        table, ["seq", "effective_at", "desired_state", "reason", "event_window", "cause", "intent_id"]
    )


@click.command(context_settings=CONTEXT)
@click.option("--report", "of_report", is_flag=True, help="The screens' report payload instead.")
def schema(of_report: bool) -> None:
    """Print the JSON Schema of the v1 intent payload (or, with --report, of the v1 report).

    Example:

    \b
        intent-ledger schema > intent-v1.schema.json
        intent-ledger schema --report > report-v1.schema.json
    """
    from publisher.payload import json_schema
    from publisher.report import report_schema

    echo_json(report_schema() if of_report else json_schema())
