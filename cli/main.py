"""The `intent-ledger` command line: thin click commands over ledger, projections, publisher."""

from __future__ import annotations

import click

from cli.audit import audit
from cli.base import CONTEXT, LedgerGroup
from cli.fleet import client, event
from cli.overrides import override, policy
from cli.projections_cmd import projections
from cli.query import replay, schema, state, sync
from cli.run import run
from cli.screen import screen, simulate
from cli.series import series
from cli.timeline import timeline

__all__ = ["cli", "main"]


@click.group(cls=LedgerGroup, context_settings=CONTEXT)
@click.option(
    "--db",
    envvar="INTENT_LEDGER_DB",
    default="sqlite:///intent-ledger.db",
    show_default=True,
    help="Ledger database URL (env INTENT_LEDGER_DB).",
)
@click.option(
    "--mqtt-url",
    envvar="INTENT_LEDGER_MQTT_URL",
    default="mqtt://127.0.0.1:1883",
    show_default=True,
    help="Broker URL (env INTENT_LEDGER_MQTT_URL): mqtt://[user[:password]@]host[:port], or mqtts://host:8883?ca=F&cert=F&key=F for TLS. The broker's certificate chain is always verified; insecure=1 skips only the host-name check.",
)
def cli(db: str, mqtt_url: str) -> None:
    """Event-sourced TV power intents for an infoscreen fleet.

    Example:

    \b
        intent-ledger --db sqlite:///fleet.db client add lobby-1 --group lobby
    """


for command in (
    client,
    event,
    override,
    policy,
    series,
    sync,
    state,
    replay,
    run,
    audit,
    timeline,
    projections,
    schema,
    screen,
    simulate,
):
    cli.add_command(command)


def main() -> None:
    cli.main(prog_name="intent-ledger")
