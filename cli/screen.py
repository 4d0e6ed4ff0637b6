"""`screen` (the reference screen client) and `simulate` (simulated screens, then their compliance)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING

import click

from cli.audit import audit_compliance
from cli.base import CONTEXT, ID, json_option, ledger_of
from ledger import Ledger
from ledger.errors import ClientNotFound
from ledger.values import floor_second, format_instant
from projections.observation_reads import latest_reports
from projections.observations import metadata
from projections.queries import client_rows

if TYPE_CHECKING:  # the screen loop (paho) loads only when a screen runs
    from publisher.screen import Screen

__all__ = ["await_ingestion", "chosen_clients", "screen", "simulate", "stop_on_signals"]


def stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGTERM and Ctrl-C end the loop cleanly (exit 0)."""

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


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


def simulated_client_id(client_id: str) -> str:
    """Simulated screens never take a real screen's MQTT client id (the broker would drop it)."""
    return f"intent-ledger-simulate-{os.getpid()}-{client_id}"


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
    end should be complete: an operator's end-to-end check of a deployment. Run
    it for clients without a real screen (both would report on the same topic).

    Example:

    \b
        intent-ledger simulate --group lobby --duration 120
        intent-ledger simulate --client lobby-1 --client lobby-2 --duration 60 --json
    """
    if (bool(clients) + bool(group_id) + everyone) != 1:
        raise click.UsageError("give --client (one or more), --group or --all")
    ledger = ledger_of(ctx)
    chosen = chosen_clients(ledger, list(clients) or None, group_id)
    from publisher.config import BrokerConfig, check_prefix
    from publisher.logs import EventLog
    from publisher.screen import Screen, ScreenLoop, ScreenSettings
    from publisher.tv import SimulatedTv

    broker = BrokerConfig.from_url(ctx.find_root().params["mqtt_url"], mqtt_version)
    settings = ScreenSettings(
        prefix=check_prefix(prefix), report_every=report_every, mqtt_client_id=simulated_client_id
    )
    with open(os.devnull, "w") as quiet:  # the compliance at the end is the output
        screens = [Screen(c, SimulatedTv(), settings) for c in chosen]
        loop = ScreenLoop(screens, broker, log=EventLog(quiet))
        stop_on_signals(loop.stop)
        start = floor_second(loop.now())
        loop.run(until=start + timedelta(seconds=duration), farewell="simulation ended")
    end = floor_second(loop.now())
    missing = await_ingestion(ledger, screens)
    if missing:
        click.echo(
            f"warning: the last reports of {len(missing)} screen(s) are not stored yet ({', '.join(missing[:5])}): "
            "is `intent-ledger run` ingesting reports from this broker into this database?",
            err=True,
        )
    ctx.invoke(audit_compliance, clients=tuple(chosen), start=start, end=end, as_json=as_json)


def chosen_clients(ledger: Ledger, clients: list[str] | None, group_id: str | None) -> list[str]:
    """The registered clients named, or the members of `group_id`, or (neither) every one."""
    registered = {r["client_id"]: r["group_id"] for r in client_rows(ledger) if r["status"] == "registered"}
    if clients is not None:
        missing = [c for c in clients if c not in registered]
        if missing:
            raise ClientNotFound(missing[0])
        return list(dict.fromkeys(clients))
    return sorted(c for c, g in registered.items() if group_id is None or g == group_id)


def await_ingestion(ledger: Ledger, screens: list[Screen], timeout: float = 15.0) -> list[str]:
    """Wait until the observation tables hold each screen's last report; the screens still missing."""
    engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
    metadata.create_all(engine, checkfirst=True)
    sent = {s.client_id: s.reporter.last for s in screens}
    last = {c: format_instant(r.reported_at) for c, r in sent.items() if r is not None}
    deadline = time.monotonic() + timeout
    while True:
        stored = latest_reports(engine)
        missing = [c for c, at in last.items() if c not in stored or stored[c]["reported_at"] < at]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.2)  # a poll with a deadline: the daemon writes reports in batches
