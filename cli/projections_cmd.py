"""`projections`: maintenance of the SQL read model."""

from __future__ import annotations

import click

from cli.base import CONTEXT, LedgerGroup, echo_json, json_option, ledger_of

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
    from projections.readmodel import ReadModel  # `-h` lists the command without it

    model = ReadModel(ledger_of(ctx, read_only=True))
    rows = model.rebuild()
    result = {"rows": rows, "position": model.position()}
    echo_json(result) if as_json else click.echo(
        f"read model rebuilt: {rows} rows, position {result['position']}"
    )
