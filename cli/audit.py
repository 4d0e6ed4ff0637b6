"""`audit`: incident review queries over the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from cli.base import (
    CONTEXT,
    ID,
    INSTANT,
    LedgerGroup,
    check_order,
    echo_json,
    echo_table,
    json_option,
    ledger_of,
)
from cli.compliance import audit_compliance

__all__ = ["audit"]


@click.group(cls=LedgerGroup, context_settings=CONTEXT)
def audit() -> None:
    """Incident review: why a TV was on or off, and who changed what.

    Example:

    \b
        intent-ledger audit why lobby-1 --at 2026-03-31T10:00:00Z --as-of 2026-03-31T09:55:00Z
    """


@audit.command("why", context_settings=CONTEXT)
@click.argument("client_id", type=ID)
@click.option("--at", type=INSTANT, required=True, help="The instant in question.")
@click.option("--as-of", "as_of", type=INSTANT, help="What the ledger knew then (default: now).")
@json_option
@click.pass_context
def audit_why(
    ctx: click.Context, client_id: str, at: datetime, as_of: datetime | None, as_json: bool
) -> None:
    """The state of a client at --at and the exact records that produced it.

    Bitemporal: with --as-of only the changes committed by then count.

    Example:

    \b
        intent-ledger audit why lobby-1 --at 2026-03-31T10:00:00Z --as-of 2026-03-31T09:55:00Z --json
    """
    from projections import audit as queries  # loaded only when an audit runs

    answer = queries.why(ledger_of(ctx, read_only=True), client_id, at, as_of)
    if as_json:
        echo_json(answer)
        return
    _print_why(answer)


def _by(made: dict[str, Any] | None) -> str:
    if made is None:
        return ""
    note = f' "{made["note"]}"' if made["note"] else ""
    return f"  [{made['change']} by {made['actor']} at {made['at']}{note}]"


def _print_why(a: dict[str, Any]) -> None:
    known = f" as known at {a['as_of']}" if a["as_of"] else ""
    window = a["event_window"]
    span = f", window {window['start']}..{window['end']}" if window else ""
    click.echo(f"{a['client_id']} at {a['at']}{known}: {a['desired_state']} ({a['reason']}{span})")
    click.echo(f"decided by: {', '.join(a['decided_by']) or a['reason']}")
    m = a["membership"]
    state = "registered" if m["registered"] else "removed"
    click.echo(f"membership: {state}, group {m['group_id'] or '-'}{_by(m['made_by'])}")
    p = a["policy"]
    click.echo(
        f"policy: pre-roll {p['pre_roll']} s, post-roll {p['post_roll']} s, bridge gap "
        f"{p['bridge_gap']} s, grace {p['grace_seconds']} s{_by(p['made_by'])}"
    )
    for o in a["overrides"]:
        click.echo(
            f"override {o['override_id']} ({o['target']}, {o['status']}): {o['desired_state']} "
            f"{o['window']['start']}..{o['window']['end']}{_by(o['made_by'])}"
        )
    for e in a["events"]:
        click.echo(
            f"event {e['event_id']} ({e['target']}, {e['status']}): "
            f"{e['window']['start']}..{e['window']['end']}{_by(e['made_by'])}"
        )


@audit.command("fleet", context_settings=CONTEXT)
@click.option("--at", type=INSTANT, required=True, help="The instant.")
@click.option("--group", "group_id", type=ID, help="Only this group's clients.")
@json_option
@click.pass_context
def audit_fleet(ctx: click.Context, at: datetime, group_id: str | None, as_json: bool) -> None:
    """Every client's state at --at, and what its screen reported (observed: on, off, unknown).

    Example:

    \b
        intent-ledger audit fleet --at 2026-03-31T10:00:00Z --group lobby
    """
    from projections import audit as queries  # loaded only when an audit runs

    rows = queries.fleet_at(ledger_of(ctx, read_only=True), at, group_id)
    if as_json:
        echo_json(rows)
        return
    echo_table(rows, ["client_id", "group_id", "desired_state", "reason", "observed"])


@audit.command("changes", context_settings=CONTEXT)
@click.option("--since", type=INSTANT, help="Changes committed at or after this.")
@click.option("--until", type=INSTANT, help="Changes committed before this.")
@click.option("--client", "client_id", type=ID, help="Changes to this client.")
@click.option("--group", "group_id", type=ID, help="Changes to this group (and clients moved into it).")
@click.option("--actor", help="Changes made by this actor.")
@json_option
@click.pass_context
def audit_changes(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    client_id: str | None,
    group_id: str | None,
    actor: str | None,
    as_json: bool,
) -> None:
    """Ledger changes: who, what, when, and their note.

    Example:

    \b
        intent-ledger audit changes --client lobby-1 --since 2026-03-31T00:00:00Z
    """
    from projections import audit as queries  # loaded only when an audit runs

    check_order(since, until)
    rows = queries.changes(
        ledger_of(ctx, read_only=True),
        since=since,
        until=until,
        client_id=client_id,
        group_id=group_id,
        actor=actor,
    )
    if as_json:
        echo_json(rows)
        return
    echo_table(rows, ["position", "at", "change", "target", "actor", "note"])


@audit.command("gaps", context_settings=CONTEXT)
@click.option("--group", "group_id", type=ID, help="Only this group's clients.")
@click.option(
    "--max-gap",
    type=click.IntRange(1, 86_400),
    default=900,
    show_default=True,
    help="Longest off stretch, in seconds, to report.",
)
@json_option
@click.pass_context
def audit_gaps(ctx: click.Context, group_id: str | None, max_gap: int, as_json: bool) -> None:
    """Short off stretches between two on blocks: candidates for the bridge-gap policy.

    Example:

    \b
        intent-ledger audit gaps --group classrooms --max-gap 600
    """
    from projections import audit as queries  # loaded only when an audit runs

    rows = queries.gaps(ledger_of(ctx, read_only=True), group_id, max_gap)
    if as_json:
        echo_json(rows)
        return
    echo_table(rows, ["client_id", "start", "end", "seconds"])


@audit.command("delivery", context_settings=CONTEXT)
@click.argument("client_id", type=ID)
@click.option("--since", type=INSTANT, help="Transitions effective at or after this.")
@click.option("--until", type=INSTANT, help="Transitions effective before this.")
@click.option(
    "--late",
    "late_after",
    type=click.IntRange(0, 86_400),
    default=5,
    show_default=True,
    help="Seconds after effective_at beyond which a first PUBACK is late.",
)
@json_option
@click.pass_context
def audit_delivery(
    ctx: click.Context,
    client_id: str,
    since: datetime | None,
    until: datetime | None,
    late_after: int,
    as_json: bool,
) -> None:
    """Recorded transitions beside what was published, acknowledged and reported.

    Flags late, missing, failed and expired-at-receipt deliveries, and shows the
    largest age the client's retained payload reached between publishes.
    followed_at is the screen's first report naming the intent, matched_at its
    first with that intent and the TV in the desired state.

    Example:

    \b
        intent-ledger audit delivery lobby-1 --since 2026-03-31T00:00:00Z --json
    """
    from projections.delivery import delivery as delivered  # loaded only when an audit runs

    check_order(since, until)
    report = delivered(ledger_of(ctx, read_only=True), client_id, since, until, late_after)
    if as_json:
        echo_json(report)
        return
    table = [{**t, "flags": ",".join(t["flags"]) or "ok"} for t in report["transitions"]]
    echo_table(
        table,
        [
            "seq",
            "effective_at",
            "desired_state",
            "reason",
            "first_acked_at",
            "flags",
            "followed_at",
            "matched_at",
            "intent_id",
        ],
    )
    click.echo(
        f"largest retained payload age: {report['largest_retained_age_seconds']} s; "
        f"failures: {len(report['failures'])}"
    )


audit.add_command(audit_compliance)
