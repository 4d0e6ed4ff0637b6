"""`sync --ics SOURCE`: the options, and the import of one iCalendar feed onto one target."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import click

from cli.base import ID, BadInput, meta_of
from ledger.fetch import TIMEOUT, fetch, is_url

if TYPE_CHECKING:  # `-h` lists `sync` without icalendar, eventsourcing or SQLAlchemy
    from ledger import Ledger, Receipt, TargetRef
    from ledger.ics import IcsFeed

__all__ = ["FEED_OPTIONS", "feed_options", "import_feed"]

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_PREFIX = "ics-"
# The parameters that mean something only with --ics.
FEED_OPTIONS = ("client", "group", "id_prefix", "tz", "strict")


def feed_options(f: F) -> F:
    """The options of `sync --ics`."""
    for decorator in reversed(
        [
            click.option(
                "--ics",
                "ics_source",
                metavar="SOURCE",
                help="Import an iCalendar file or http(s) URL instead of a snapshot (with --client or --group).",
            ),
            click.option("--client", type=ID, help="--ics: the client the feed schedules."),
            click.option("--group", type=ID, help="--ics: the group the feed schedules."),
            click.option(
                "--id-prefix",
                help=f"--ics: prefix of the ids made from the feed's UIDs (default {DEFAULT_PREFIX}).",
            ),
            click.option(
                "--tz",
                metavar="ZONE",
                help="--ics: zone of floating and all-day times (default X-WR-TIMEZONE).",
            ),
            click.option(
                "--strict", is_flag=True, help="--ics: refuse the feed if any component cannot be imported."
            ),
            click.option(
                "--allow-empty",
                is_flag=True,
                help="Let --prune remove everything when the file has no clients (--ics: when the feed "
                "has no events at all).",
            ),
            # Tests shorten it; operators have the 30 s of DESIGN section 12.
            click.option("--timeout", type=float, default=TIMEOUT, hidden=True),
        ]
    ):
        f = decorator(f)
    return f


def _target(client: str | None, group: str | None) -> TargetRef:
    from ledger.domain import TargetRef

    if (client is None) == (group is None):
        raise click.UsageError("--ics needs exactly one of --client and --group")
    return TargetRef("client", client) if client is not None else TargetRef("group", str(group))


def _actor(source: str) -> str:
    # A URL's path and query often hold the calendar's secret: the actor names its host only.
    return f"sync:{urlsplit(source).hostname or 'feed'}" if is_url(source) else f"sync:{Path(source).name}"


def import_feed(
    ledger: Ledger,
    source: str,
    *,
    options: dict[str, Any],
    prune: bool,
    dry_run: bool,
    note: str | None,
    actor: str | None,
    now: datetime,
) -> tuple[Receipt, IcsFeed]:
    """Read the feed, say what is not imported, and apply the rest (or, with --strict, refuse)."""
    from ledger.ics import check_options, parse_ics

    target = _target(options["client"], options["group"])
    prefix = DEFAULT_PREFIX if options["id_prefix"] is None else options["id_prefix"]
    check_options(prefix, options["tz"])  # bad options are exit 2 before any download
    feed = parse_ics(fetch(source, timeout=options["timeout"]), prefix=prefix, tz=options["tz"])
    for line in feed.notes:
        click.echo(f"Note: {line}", err=True)
    for skipped in feed.skipped:
        click.echo(f"Warning: {skipped}", err=True)
    if options["strict"] and feed.skipped:
        raise BadInput(
            f"{len(feed.skipped)} component(s) of the feed cannot be imported (--strict): nothing applied"
        )
    meta = meta_of(actor, note, default=_actor(source))
    receipt = ledger.sync_feed(
        feed,
        target,
        prefix=prefix,
        prune=prune,
        now=now,
        meta=meta,
        dry_run=dry_run,
        allow_empty=options["allow_empty"],
    )
    return receipt, feed
