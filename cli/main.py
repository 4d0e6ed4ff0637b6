"""The `intent-ledger` command line: thin click commands over ledger, projections, publisher.

Commands are lazy: `COMMANDS` maps each name to "module:attr", and a module is
imported only when its command runs (or `-h` lists it). To add a command, write
it in a module of cli/ (heavy imports inside the function) and add one line here.
"""

from __future__ import annotations

import click

from cli.base import CONTEXT, LazyGroup

__all__ = ["COMMANDS", "cli", "main"]

COMMANDS = {
    "client": "cli.fleet:client",
    "event": "cli.fleet:event",
    "override": "cli.overrides:override",
    "policy": "cli.overrides:policy",
    "series": "cli.series:series",
    "sync": "cli.query:sync",
    "state": "cli.query:state",
    "replay": "cli.query:replay",
    "run": "cli.run:run",
    "audit": "cli.audit:audit",
    "timeline": "cli.timeline:timeline",
    "projections": "cli.projections_cmd:projections",
    "schema": "cli.query:schema",
    "screen": "cli.screen:screen",
    "simulate": "cli.screen:simulate",
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings=CONTEXT)
@click.version_option(package_name="intent-ledger", prog_name="intent-ledger")
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

    Shell completion (bash; zsh_source and fish_source for those shells):

    \b
        eval "$(_INTENT_LEDGER_COMPLETE=bash_source intent-ledger)"
    """


def main() -> None:
    cli.main(prog_name="intent-ledger")
