"""`client`, `event`, `override` and `policy`: the commands that manage the schedule."""

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
    warn_unknown_groups,
)
from ledger import Policy, TargetRef, Window
from projections.queries import client_rows, event_rows, override_rows

__all__ = ["client", "event", "override", "policy"]


def _target(client_id: str | None, group_id: str | None) -> TargetRef:
    if (client_id is None) == (group_id is None):
        raise click.UsageError("give exactly one of --client and --group")
    return TargetRef("client", client_id) if client_id else TargetRef("group", str(group_id))


def _window(start: datetime, end: datetime) -> Window:
    return Window(start, end)


@click.group(cls=LedgerGroup, context_settings=CONTEXT)
def client() -> None:
    """Fleet membership: register, assign, remove and list clients.

    Example:

    \b
        intent-ledger client add lobby-1 --group lobby
    """


@client.command("add", context_settings=CONTEXT)
@click.argument("client_id", type=ID)
@click.option("--group", "group_id", type=ID, help="The group the client belongs to.")
@change_options
@click.pass_context
def client_add(
    ctx: click.Context, client_id: str, group_id: str | None, actor: str | None, note: str | None
) -> None:
    """Register a client (one TV), optionally in a group.

    A removed client may be registered again; its intent log continues.

    Example:

    \b
        intent-ledger client add lobby-1 --group lobby --note "new screen"
    """
    receipt = ledger_of(ctx).add_client(client_id, group_id, meta_of(actor, note))
    report(receipt, f"client {client_id} registered")


@client.command("assign", context_settings=CONTEXT)
@click.argument("client_id", type=ID)
@click.option("--group", "group_id", type=ID, help="The client's new group.")
@click.option("--no-group", is_flag=True, help="Take the client out of its group.")
@change_options
@click.pass_context
def client_assign(
    ctx: click.Context,
    client_id: str,
    group_id: str | None,
    no_group: bool,
    actor: str | None,
    note: str | None,
) -> None:
    """Move a client to another group, or out of any group.

    Example:

    \b
        intent-ledger client assign lobby-1 --group cafeteria
    """
    if (group_id is None) == (not no_group):
        raise click.UsageError("give exactly one of --group and --no-group")
    receipt = ledger_of(ctx).assign_client(client_id, group_id, meta_of(actor, note))
    report(receipt, f"client {client_id} assigned to {group_id or 'no group'}")


@client.command("remove", context_settings=CONTEXT)
@click.argument("client_id", type=ID)
@change_options
@click.pass_context
def client_remove(ctx: click.Context, client_id: str, actor: str | None, note: str | None) -> None:
    """Remove a client: its TV goes off and its retained intent is cleared.

    Example:

    \b
        intent-ledger client remove lobby-1 --note "screen dismantled"
    """
    report(ledger_of(ctx).remove_client(client_id, meta_of(actor, note)), f"client {client_id} removed")


@client.command("list", context_settings=CONTEXT)
@json_option
@click.pass_context
def client_list(ctx: click.Context, as_json: bool) -> None:
    """List every client the ledger knows, registered or removed.

    Example:

    \b
        intent-ledger client list --json
    """
    rows = client_rows(ledger_of(ctx, read_only=True))
    echo_json(rows) if as_json else echo_table(rows, ["client_id", "group_id", "status"])


@click.group(cls=LedgerGroup, context_settings=CONTEXT)
def event() -> None:
    """The schedule: event windows for a client or a group.

    Example:

    \b
        intent-ledger event list
    """


@event.command("add", context_settings=CONTEXT)
@click.argument("event_id", type=ID)
@click.option("--client", "client_id", type=ID, help="Schedule it for this client.")
@click.option("--group", "group_id", type=ID, help="Schedule it for this group.")
@click.option("--start", type=INSTANT, required=True, help="RFC 3339 with offset.")
@click.option("--end", type=INSTANT, required=True, help="RFC 3339 with offset (exclusive).")
@change_options
@click.pass_context
def event_add(
    ctx: click.Context,
    event_id: str,
    client_id: str | None,
    group_id: str | None,
    start: datetime,
    end: datetime,
    actor: str | None,
    note: str | None,
) -> None:
    """Schedule an event window [start, end) for a client or a group.

    Example:

    \b
        intent-ledger event add assembly --group lobby --start 2026-03-31T10:00:00Z --end 2026-03-31T11:00:00Z
    """
    target = _target(client_id, group_id)
    receipt = ledger_of(ctx).add_event(event_id, target, _window(start, end), meta_of(actor, note))
    report(receipt, f"event {event_id} scheduled for {target}")
    warn_unknown_groups(receipt)


@event.command("move", context_settings=CONTEXT)
@click.argument("event_id", type=ID)
@click.option("--start", type=INSTANT, required=True, help="New start, RFC 3339 with offset.")
@click.option("--end", type=INSTANT, required=True, help="New end, RFC 3339 with offset.")
@change_options
@click.pass_context
def event_move(
    ctx: click.Context, event_id: str, start: datetime, end: datetime, actor: str | None, note: str | None
) -> None:
    """Give an event new times (also while it runs); reinstates a cancelled event.

    Example:

    \b
        intent-ledger event move assembly --start 2026-03-31T10:30:00Z --end 2026-03-31T11:30:00Z
    """
    receipt = ledger_of(ctx).move_event(event_id, _window(start, end), meta_of(actor, note))
    report(receipt, f"event {event_id} moved")


@event.command("cancel", context_settings=CONTEXT)
@click.argument("event_id", type=ID)
@change_options
@click.pass_context
def event_cancel(ctx: click.Context, event_id: str, actor: str | None, note: str | None) -> None:
    """Cancel an event; its id stays taken.

    Example:

    \b
        intent-ledger event cancel assembly --note "moved online"
    """
    report(ledger_of(ctx).cancel_event(event_id, meta_of(actor, note)), f"event {event_id} cancelled")


@event.command("list", context_settings=CONTEXT)
@json_option
@click.pass_context
def event_list(ctx: click.Context, as_json: bool) -> None:
    """List every event, scheduled or cancelled, by start time.

    Example:

    \b
        intent-ledger event list --json
    """
    rows = event_rows(ledger_of(ctx, read_only=True))
    echo_json(rows) if as_json else echo_table(rows, ["event_id", "target", "start", "end", "status"])


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
    target = _target(client_id, group_id)
    receipt = ledger_of(ctx).add_override(
        override_id, target, state, _window(start, end), meta_of(actor, note)
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
    receipt = ledger_of(ctx).clear_override(override_id, meta_of(actor, note))
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
    rows = override_rows(ledger_of(ctx, read_only=True))
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
