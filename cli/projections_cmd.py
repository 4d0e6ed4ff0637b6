"""`projections`: maintenance of the SQL read model."""

from __future__ import annotations

from datetime import datetime

import click

from cli.base import CONTEXT, INSTANT, LedgerGroup, echo_json, json_option, ledger_of

__all__ = ["projections"]


@click.group("projections", cls=LedgerGroup, context_settings=CONTEXT)
def projections() -> None:
    """The audit read model (tables audit_* in the ledger's database).

    Example:

    \b
        intent-ledger projections rebuild
    """


@projections.command("rebuild", context_settings=CONTEXT)
@json_option
@click.pass_context
def projections_rebuild(ctx: click.Context, as_json: bool) -> None:
    """Drop the read model and read the whole ledger again (same tables as before).

    Example:

    \b
        intent-ledger projections rebuild --json
    """
    from projections.readmodel import ReadModel  # `-h` lists the commands without SQLAlchemy

    model = ReadModel(ledger_of(ctx, read_only=True))
    rows = model.rebuild()
    result = {"rows": rows, "position": model.position()}
    echo_json(result) if as_json else click.echo(
        f"read model rebuilt: {rows} rows, position {result['position']}"
    )


@projections.command("prune", context_settings=CONTEXT)
@click.option("--before", type=INSTANT, required=True, help="Delete what is older than this (RFC 3339).")
@json_option
@click.pass_context
def projections_prune(ctx: click.Context, before: datetime, as_json: bool) -> None:
    """Delete delivery receipts, failures and observation runs older than --before.

    The ledger and the audit read model are kept whole; each client's current
    receipt and each screen's current run are kept too. Snapshots a later snapshot
    of the same log supersedes are deleted too (the events they cache are kept). `audit delivery` marks older transitions
    "receipt_pruned". Run it from cron to bound the receipt tables.

    Example:

    \b
        intent-ledger projections prune --before 2026-03-01T00:00:00Z
    """
    from projections import retention

    deleted = retention.prune(ledger_of(ctx, existing=True), before)
    if as_json:
        echo_json({"before": before.isoformat().replace("+00:00", "Z"), "deleted": deleted})
    else:
        click.echo("pruned " + ", ".join(f"{n} from {t}" for t, n in deleted.items()))
