"""`run`: the projection runner daemon."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from cli.base import CONTEXT, ledger_of
from ledger.errors import InvalidInput

if TYPE_CHECKING:
    from projections.shard import Shard

__all__ = ["run"]


@click.command(context_settings=CONTEXT)
@click.option("--once", is_flag=True, help="Publish every intent, wait for all PUBACKs, exit.")
@click.option(
    "--ttl",
    type=click.IntRange(10, 86_400),
    default=600,
    show_default=True,
    help="Seconds an intent stays valid after it is issued.",
)
@click.option("--refresh", type=click.IntRange(1, 86_400), help="Republish every S seconds [default: ttl/2].")
@click.option("--group-topics", is_flag=True, help="Also publish {prefix}/groups/{group}/power/intent.")
@click.option(
    "--mqtt-version",
    type=click.Choice(["5", "3.1.1"]),
    default="5",
    show_default=True,
    help="3.1.1 for brokers without MQTT 5 (expiry then lives in the payload alone).",
)
@click.option("--prefix", default="infoscreen", show_default=True, help="Topic prefix.")
@click.option(
    "--shard",
    "shard_text",
    default="0/1",
    show_default=True,
    help="i/N: publish only the clients whose stable hash falls in shard i of N.",
)
@click.option("--metrics-port", type=click.IntRange(1, 65_535), help="Serve Prometheus metrics on this port.")
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address the metrics server binds (0.0.0.0 for a remote Prometheus).",
)
@click.option(
    "--no-observe", is_flag=True, help="Do not ingest the screens' reports ({prefix}/+/power/state)."
)
@click.option(
    "--report-stale",
    type=click.IntRange(60, 86_400),
    default=900,
    show_default=True,
    help="Seconds after a screen's last report from which its state counts as unknown.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="One short text line per record, or JSON lines [default: text on a terminal, else json].",
)
@click.pass_context
def run(
    ctx: click.Context,
    once: bool,
    ttl: int,
    refresh: int | None,
    group_topics: bool,
    mqtt_version: str,
    prefix: str,
    metrics_port: int | None,
    metrics_host: str,
    shard_text: str,
    log_format: str | None,
    no_observe: bool,
    report_stale: int,
) -> None:
    """Follow the ledger and keep every client's retained intent on the broker.

    Logs one line per transition and per publish outcome on stdout: short text
    on a terminal, JSON lines otherwise (--log-format). SIGTERM or Ctrl-C
    publishes the server status `offline` and exits 0.

    Example:

    \b
        intent-ledger run --ttl 600 --group-topics --metrics-port 9464
        intent-ledger run --once --log-format text
        intent-ledger run --shard 0/2    # and --shard 1/2 elsewhere; run each twice for a hot standby
        INTENT_LEDGER_MQTT_URL=mqtts://intent-server@broker:8883?ca=/etc/ssl/ca.pem intent-ledger run
    """
    from publisher.malloc import one_arena

    one_arena()  # before any thread of ours starts (publisher.malloc)
    # The daemon (paho, psycopg, prometheus-client) loads only when it runs.
    from publisher.config import BrokerConfig, check_prefix

    broker = BrokerConfig.from_url(ctx.find_root().params["mqtt_url"], mqtt_version)
    if refresh is not None and refresh >= ttl:
        raise click.BadParameter(f"{refresh} must be shorter than --ttl {ttl}", param_hint="--refresh")
    shard = _shard(shard_text)
    from publisher.session import ProcSessions

    # The broker session's own process starts now, beside our imports and the ledger's opening.
    sessions = ProcSessions(ahead=True)
    from publisher.daemon import Daemon, RunSettings
    from publisher.lease import lease_for
    from publisher.logs import EventLog, LogFormat, default_format

    settings = RunSettings(
        prefix=check_prefix(prefix),
        ttl=ttl,
        refresh=refresh,
        group_topics=group_topics,
        shard=shard,
        observe=not no_observe,
        report_process=True,
        net_process=True,
        report_stale=report_stale,
    )
    chosen: LogFormat = "text" if log_format == "text" else "json"
    if log_format is None:
        chosen = default_format(sys.stdout)
    log = EventLog(sys.stdout, log_format=chosen)
    daemon = Daemon(ledger_of(ctx), broker, settings, log=log, session_factory=sessions)
    if metrics_port is not None:
        daemon.metrics.serve(metrics_port, metrics_host)
    if once:
        failures = daemon.run_once()
        if failures:
            shown = "; ".join(failures[:5]) + (f"; and {len(failures) - 5} more" if len(failures) > 5 else "")
            raise click.ClickException(f"{len(failures)} publish(es) failed: {shown}")
        return

    from publisher.stopsignal import stop_on_signals

    stop_on_signals(daemon.stop)
    # One active daemon per prefix and shard; the others wait as hot standbys.
    daemon.run(lease_for(ledger_of(ctx).db_url, f"{prefix}/{shard.index}-{shard.count}"))
    if daemon.lease_lost:
        raise click.ClickException("lost the lease: another instance is active for this shard")


def _shard(text: str) -> Shard:
    from projections.shard import Shard

    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not i/N", param_hint="--shard") from None
    try:
        return Shard(index, count)
    except InvalidInput as e:
        raise click.BadParameter(str(e), param_hint="--shard") from None
