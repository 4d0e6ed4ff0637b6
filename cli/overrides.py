"""`override` and `policy`: the commands that override the schedule and tune the timeline policy."""

from __future__ import annotations

from datetime import datetime

import click

from cli.base import (
    CONTEXT,
    ID,
    INSTANT,
    LedgerGroup,
    change_options,
    echo_json,
    echo_table,
    json_option,
    ledger_of,
    meta_of,
    report,
    view_of,
    warn_unknown_groups,
)
from cli.fleet import target_of, window_of
from ledger import Policy
from projections.queries import override_rows

__all__ = ["override", "policy"]


@click.group(cls=LedgerGroup, context_settings=CONTEXT)
def override() -> None:
    """Manual overrides: force a client or a group on or off for a window.

    Example:

    \b
        intent-ledger override list --json
    """


@override.command("add", context_settings=CONTEXT)
@click.argument("override_id", type=ID)
@click.option("--client", "client_id", type=ID, help="Override this client.")
@click.option("--group", "group_id", type=ID, help="Override this group.")
@click.option("--state", type=click.Choice(["on", "off"]), required=True, help="Desired state.")
@click.option("--start", type=INSTANT, required=True, help="RFC 3339 with offset.")
@click.option("--end", type=INSTANT, required=True, help="RFC 3339 with offset (exclusive).")
@change_options
@click.pass_context
def override_add(
    ctx: click.Context,
    override_id: str,
    client_id: str | None,
    group_id: str | None,
    state: str,
    start: datetime,
    end: datetime,
    actor: str | None,
    note: str | None,
) -> None:
    """Force a client or a group on or off over [start, end).

    A client override beats a group override; among one level the latest wins.

    Example:

    \b
        intent-ledger override add maint-1 --client lobby-1 --state off --start 2026-03-31T06:00:00Z --end 2026-03-31T07:00:00Z --note maintenance
    """
    target = target_of(client_id, group_id)
    receipt = ledger_of(ctx).add_override(
        override_id, target, state, window_of(start, end), meta_of(actor, note)
    )
    report(receipt, f"override {override_id} set for {target}")
    warn_unknown_groups(receipt)


@override.command("clear", context_settings=CONTEXT)
@click.argument("override_id", type=ID)
@change_options
@click.pass_context
def override_clear(ctx: click.Context, override_id: str, actor: str | None, note: str | None) -> None:
    """Clear an override; its id stays taken.

    Example:

    \b
        intent-ledger override clear maint-1
    """
    receipt = ledger_of(ctx, existing=True).clear_override(override_id, meta_of(actor, note))
    report(receipt, f"override {override_id} cleared")


@override.command("list", context_settings=CONTEXT)
@json_option
@click.pass_context
def override_list(ctx: click.Context, as_json: bool) -> None:
    """List every override, active or cleared, by start time.

    Example:

    \b
        intent-ledger override list --json
    """
    rows = override_rows(view_of(ctx))
    columns = ["override_id", "target", "desired_state", "start", "end", "status"]
    echo_json(rows) if as_json else echo_table(rows, columns)


@click.group(cls=LedgerGroup, context_settings=CONTEXT)
def policy() -> None:
    """The timeline policy: pre-roll, post-roll, bridge gap and grace.

    Example:

    \b
        intent-ledger policy show
    """


@policy.command("show", context_settings=CONTEXT)
@json_option
@click.pass_context
def policy_show(ctx: click.Context, as_json: bool) -> None:
    """Show the policy in force (all values in seconds).

    Example:

    \b
        intent-ledger policy show --json
    """
    values = ledger_of(ctx, read_only=True).policy().as_dict()
    echo_json(values) if as_json else echo_table([values], list(values))


@policy.command("set", context_settings=CONTEXT)
@click.option("--pre-roll", type=int, help="Seconds the TV goes on before each event.")
@click.option("--post-roll", type=int, help="Seconds the TV stays on after each event.")
@click.option("--bridge-gap", type=int, help="Gaps up to this many seconds stay on.")
@click.option("--grace", "grace_seconds", type=int, help="Seconds a client waits before switching off.")
@change_options
@click.pass_context
def policy_set(
    ctx: click.Context,
    pre_roll: int | None,
    post_roll: int | None,
    bridge_gap: int | None,
    grace_seconds: int | None,
    actor: str | None,
    note: str | None,
) -> None:
    """Change some policy values; the others stay as they are.

    Example:

    \b
        intent-ledger policy set --pre-roll 300 --bridge-gap 900 --note "warm up panels"
    """
    given = {
        "pre_roll": pre_roll,
        "post_roll": post_roll,
        "bridge_gap": bridge_gap,
        "grace_seconds": grace_seconds,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        raise click.UsageError("give at least one of --pre-roll, --post-roll, --bridge-gap, --grace")
    Policy(**changes)  # validates the values before anything is read or written
    report(ledger_of(ctx).set_policy(changes, meta_of(actor, note)), "policy changed")
