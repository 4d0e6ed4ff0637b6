"""`timeline`: pictures of clients' intents for incident tickets."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from cli.base import CONTEXT, ID, INSTANT, ledger_of
from cli.compliance import report_stale

__all__ = ["timeline"]


@click.command(context_settings=CONTEXT)
@click.option("--client", "clients", type=ID, multiple=True, help="A client's row (repeatable).")
@click.option("--group", "group_id", type=ID, help="One row per registered member of this group.")
@click.option(
    "--from", "start", type=INSTANT, required=True, help="Start of the picture (UTC offset required)."
)
@click.option("--to", "end", type=INSTANT, required=True, help="End of the picture.")
@click.option("--svg", "svg", type=click.Path(dir_okay=False, path_type=Path), help="Write an SVG file.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a self-contained HTML report.",
)
@report_stale
@click.pass_context
def timeline(
    ctx: click.Context,
    clients: tuple[str, ...],
    group_id: str | None,
    start: datetime,
    end: datetime,
    svg: Path | None,
    html_file: Path | None,
    stale: int,
) -> None:
    """Draw per client three bands: the schedule, the intents issued, the state the screen reported.

    The schedule band outlines event windows and marks overrides (with their ids);
    the issued band marks each recorded transition with its intent_id; the observed
    band hatches `unknown` (from --report-stale seconds after a screen's last report
    until its next). The HTML report adds per client the transitions with
    their delivery, the windows and overrides with who set them and their note, and
    the observed stretches. Without --svg or --html the schedule is drawn as text.

    Example:

    \b
        intent-ledger timeline --group lobby --from 2026-03-31T06:00:00Z --to 2026-03-31T20:00:00Z --html incident.html
    """
    if bool(clients) == bool(group_id):
        raise click.UsageError("give --client (one or more) or --group")
    if end <= start:
        raise click.BadParameter("must be after --from", param_hint="--to")
    if svg and html_file:
        raise click.UsageError("give at most one of --svg and --html")
    from projections.pictures import render_html, render_svg, render_text, rows_for  # audit code: lazy

    chosen = list(clients) if clients else None
    rows = rows_for(ledger_of(ctx, read_only=True), start, end, chosen, group_id, stale)
    if svg:
        svg.write_text(render_svg(rows, start, end))
        click.echo(f"wrote {svg} ({len(rows)} rows)")
    elif html_file:
        html_file.write_text(
            render_html(rows, start, end, f"Intent timeline: {group_id or ', '.join(clients)}")
        )
        click.echo(f"wrote {html_file} ({len(rows)} rows)")
    else:
        click.echo(render_text(rows, start, end))
