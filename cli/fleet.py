"""`client` and `event`: the commands that manage the fleet and its events (overrides: cli.overrides)."""

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
from ledger import TargetRef, Window
from projections.queries import client_rows, event_rows

__all__ = ["client", "event", "target_of", "window_of"]


def target_of(client_id: str | None, group_id: str | None) -> TargetRef:
    if (client_id is None) == (group_id is None):
        raise click.UsageError("give exactly one of --client and --group")
    return TargetRef("client", client_id) if client_id else TargetRef("group", str(group_id))


def window_of(start: datetime, end: datetime) -> Window:
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
    receipt = ledger_of(ctx, existing=True).assign_client(client_id, group_id, meta_of(actor, note))
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
    report(
        ledger_of(ctx, existing=True).remove_client(client_id, meta_of(actor, note)),
        f"client {client_id} removed",
    )


@client.command("list", context_settings=CONTEXT)
@json_option
@click.pass_context
def client_list(ctx: click.Context, as_json: bool) -> None:
    """List every client the ledger knows, registered or removed.

    Example:

    \b
        intent-ledger client list --json
    """
    rows = client_rows(view_of(ctx))
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
    target = target_of(client_id, group_id)
    receipt = ledger_of(ctx).add_event(event_id, target, window_of(start, end), meta_of(actor, note))
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
    receipt = ledger_of(ctx, existing=True).move_event(event_id, window_of(start, end), meta_of(actor, note))
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
    report(
        ledger_of(ctx, existing=True).cancel_event(event_id, meta_of(actor, note)),
        f"event {event_id} cancelled",
    )


@event.command("list", context_settings=CONTEXT)
@json_option
@click.pass_context
def event_list(ctx: click.Context, as_json: bool) -> None:
    """List every event, scheduled or cancelled, by start time.

    Example:

    \b
        intent-ledger event list --json
    """
    rows = event_rows(view_of(ctx))
    echo_json(rows) if as_json else echo_table(rows, ["event_id", "target", "start", "end", "status"])
