"""`screen` (the reference screen client) and `simulate` (simulated screens, then their compliance)."""

from __future__ import annotations

from collections.abc import Callable

import click

from cli.base import CONTEXT, ID, json_option, ledger_of
from publisher.stopsignal import stop_on_signals

# The screen loop (paho), the simulation and the audit load only when a command runs:
# `intent-ledger -h` imports this module for the commands' short help.

__all__ = ["screen", "simulate"]


def broker_options(f: Callable[..., None]) -> Callable[..., None]:
    """`--prefix`, `--mqtt-version`, `--report-every`: as the server's, for every screen command."""
    f = click.option(
        "--report-every",
        type=click.IntRange(1, 86_400),
        default=300,
        show_default=True,
        help="Report every S seconds when nothing changes.",
    )(f)
    f = click.option(
        "--mqtt-version",
        type=click.Choice(["5", "3.1.1"]),
        default="5",
        show_default=True,
        help="3.1.1 for brokers without MQTT 5.",
    )(f)
    return click.option("--prefix", default="infoscreen", show_default=True, help="Topic prefix.")(f)


@click.command(context_settings=CONTEXT)
@click.argument("client_id", type=ID)
@click.option("--on-cmd", help="Shell command that switches the TV on.")
@click.option("--off-cmd", help="Shell command that switches the TV off.")
@click.option("--status-cmd", help="Shell command that prints `on` or `off` (anything else: unknown).")
@click.option(
    "--cmd-timeout",
    type=click.FloatRange(0.1, 600),
    default=10.0,
    show_default=True,
    help="Seconds a command may run before it is killed (the TV state is then unknown).",
)
@broker_options
@click.pass_context
def screen(
    ctx: click.Context,
    client_id: str,
    on_cmd: str | None,
    off_cmd: str | None,
    status_cmd: str | None,
    cmd_timeout: float,
    prefix: str,
    mqtt_version: str,
    report_every: int,
) -> None:
    """The reference screen client: follow the client's intent, drive its TV, report what it does.

    Follows docs/client-contract.md exactly. The commands run through the shell as
    given, never with anything from a payload. Without --status-cmd the TV state is
    that of the last successful command; a failing or hanging one reports `unknown`.
    Logs one JSON line per message, switch and report on stdout; reconnects on its
    own; SIGTERM or Ctrl-C exits 0. The MQTT client id is the screen's id.

    Example:

    \b
        export INTENT_LEDGER_MQTT_URL='mqtts://lobby-1@broker:8883?ca=/etc/ssl/ca.pem'
        intent-ledger screen lobby-1 --on-cmd 'cec-ctl -d0 --to 0 --image-view-on' \\
            --off-cmd 'cec-ctl -d0 --to 0 --standby' --status-cmd /usr/local/bin/tv-power-status
    """
    if not (on_cmd or off_cmd or status_cmd):
        raise click.UsageError("give --on-cmd and --off-cmd (and --status-cmd if the TV can tell)")
    from publisher.config import BrokerConfig, check_prefix
    from publisher.screen import Screen, ScreenLoop, ScreenSettings
    from publisher.tv import CommandTv

    broker = BrokerConfig.from_url(ctx.find_root().params["mqtt_url"], mqtt_version)
    settings = ScreenSettings(prefix=check_prefix(prefix), report_every=report_every)
    loop = ScreenLoop(
        [Screen(client_id, CommandTv(on_cmd, off_cmd, status_cmd, cmd_timeout), settings)], broker
    )
    stop_on_signals(loop.stop)
    loop.run()


@click.command(context_settings=CONTEXT)
@click.option("--client", "clients", type=ID, multiple=True, help="A client to simulate (repeatable).")
@click.option("--group", "group_id", type=ID, help="Every registered member of this group.")
@click.option("--all", "everyone", is_flag=True, help="Every registered client.")
@click.option(
    "--duration",
    type=click.IntRange(1, 86_400),
    default=60,
    show_default=True,
    help="Seconds to run before the compliance is printed.",
)
@json_option
@broker_options
@click.pass_context
def simulate(
    ctx: click.Context,
    clients: tuple[str, ...],
    group_id: str | None,
    everyone: bool,
    duration: int,
    as_json: bool,
    prefix: str,
    mqtt_version: str,
    report_every: int,
) -> None:
    """Simulated screens whose TVs obey at once, then `audit compliance` for the run.

    One MQTT connection per screen, each following docs/client-contract.md with
    the library `screen` uses, switching its pretend TV at once and reporting.
    With `intent-ledger run` ingesting the reports, the compliance printed at the
    end should be complete: an operator's end-to-end check of a deployment. The
    audited range starts once every screen follows an intent. Run it for clients
    without a real screen (both would report on the same topic).

    Example:

    \b
        intent-ledger simulate --group lobby --duration 120
        intent-ledger simulate --client lobby-1 --client lobby-2 --duration 60 --json
    """
    if (bool(clients) + bool(group_id) + everyone) != 1:
        raise click.UsageError("give --client (one or more), --group or --all")
    from cli.compliance import audit_compliance
    from publisher import simulation
    from publisher.config import BrokerConfig, check_prefix
    from publisher.screen import ScreenSettings
    from publisher.simulation import chosen_clients, simulated_client_id

    ledger = ledger_of(ctx, existing=True)
    chosen = chosen_clients(ledger, list(clients) or None, group_id)
    broker = BrokerConfig.from_url(ctx.find_root().params["mqtt_url"], mqtt_version)
    settings = ScreenSettings(
        prefix=check_prefix(prefix), report_every=report_every, mqtt_client_id=simulated_client_id
    )
    run = simulation.simulate(
        ledger, broker, chosen, duration, settings, on_loop=lambda loop: stop_on_signals(loop.stop)
    )
    if run.missing:
        shown = ", ".join(run.missing[:5])
        click.echo(
            f"warning: the last reports of {len(run.missing)} screen(s) are not stored yet ({shown}): "
            "is `intent-ledger run` ingesting reports from this broker into this database?",
            err=True,
        )
    ctx.invoke(audit_compliance, clients=tuple(run.clients), start=run.start, end=run.end, as_json=as_json)
