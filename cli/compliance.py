"""`audit compliance`: intended, delivered and observed, per screen and for the fleet."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from cli.base import CONTEXT, ID, INSTANT, check_order, echo_json, echo_table, json_option, ledger_of

__all__ = ["audit_compliance", "report_stale"]

report_stale = click.option(
    "--report-stale",
    "stale",
    type=click.IntRange(1, 86_400),
    default=900,
    show_default=True,
    help="Seconds after a screen's last report from which its state is unknown.",
)


@click.command("compliance", context_settings=CONTEXT)
@click.option("--client", "clients", type=ID, multiple=True, help="This client (repeat for more).")
@click.option("--group", "group_id", type=ID, help="The clients of this group during the range.")
@click.option("--all", "every", is_flag=True, help="Every client.")
@click.option("--from", "start", type=INSTANT, required=True, help="Start of the range.")
@click.option("--to", "end", type=INSTANT, required=True, help="End of the range (exclusive).")
@report_stale
@json_option
@click.pass_context
def audit_compliance(
    ctx: click.Context,
    clients: tuple[str, ...],
    group_id: str | None,
    every: bool,
    start: datetime,
    end: datetime,
    stale: int,
    as_json: bool,
) -> None:
    """Seconds on as scheduled: the recorded intents beside what the screens reported.

    Per client and for the fleet: scheduled_on_s (the intent was on),
    observed_on_s (of those, the screen reported on), unscheduled_on_s (on while
    the intent was off, after the grace), unknown_s (no fresh report, or the
    screen could not tell), coverage (observed_on_s / scheduled_on_s) and the
    stretches where the screen reported the opposite of the intent.

    Example:

    \b
        intent-ledger audit compliance --group lobby --from 2026-03-31T00:00:00Z --to 2026-04-01T00:00:00Z
        intent-ledger audit compliance --all --from 2026-03-31T00:00:00Z --to 2026-04-01T00:00:00Z --json
    """
    if sum((bool(clients), group_id is not None, every)) != 1:
        raise click.UsageError("give --client (one or more), --group or --all")
    check_order(start, end, "--from", "--to")
    from projections.observed import compliance_report  # loaded only when an audit runs

    answer = compliance_report(
        ledger_of(ctx, read_only=True),
        start,
        end,
        clients=list(clients) or None,
        group_id=group_id,
        stale=stale,
    )
    if as_json:
        echo_json(answer)
        return
    _print_compliance(answer)


def _print_compliance(answer: dict[str, Any]) -> None:
    figures = ["scheduled_on_s", "observed_on_s", "unscheduled_on_s", "unknown_s", "coverage"]
    rows = [
        {**c, "coverage": _percent(c["coverage"]), "mismatches": len(c["mismatches"])}
        for c in answer["clients"]
    ]
    echo_table(rows, ["client_id", *figures, "mismatches"])
    fleet = answer["fleet"]
    click.echo(
        f"fleet ({fleet['clients']} clients, {answer['from']}..{answer['to']}): "
        f"coverage {_percent(fleet['coverage']) or '-'}; "
        + ", ".join(f"{name} {fleet[name]}" for name in figures[:-1])
    )
    stretches = [{"client_id": c["client_id"], **m} for c in answer["clients"] for m in c["mismatches"]]
    if stretches:
        click.echo("mismatches:")
        echo_table(stretches, ["client_id", "start", "end", "intended", "observed"])


def _percent(share: float | None) -> str | None:
    """A coverage as the text shows it (None: no seconds were scheduled on; JSON keeps the share)."""
    return None if share is None else f"{share:.2%}"
