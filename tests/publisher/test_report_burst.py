"""A burst of reports that takes several write transactions, on a real Mosquitto and both stores:
every report is stored, none dropped, each screen's in the order it sent them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from prometheus_client import CollectorRegistry

from ledger import Ledger
from ledger.values import format_instant
from projections.observation_reads import latest_reports, runs_between
from publisher.report import build_report, encode_report
from tests.publisher.broker import Mosquitto, wait_for
from tests.publisher.helpers import make_log, observer_on

T = datetime(2027, 3, 29, 5, 30, tzinfo=UTC)
SCREENS = 1_200  # more than two write transactions' worth on either store
ON_ID = "0f0c7a4e-6b0c-5d8e-9a51-3a2f1c9d4b7e"


def _payload(name: str, at: datetime, state: str) -> bytes:
    body = build_report(client_id=name, reported_at=at, intent_id=ON_ID, tv_state=state, since=at)  # type: ignore[arg-type]
    return encode_report(body)


def _publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Every message (QoS 1, not retained), in order, on one connection, until all are acknowledged."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_burst_of_several_transactions_is_stored_completely_and_in_each_screens_order(
    ledger: Ledger, mosquitto: Mosquitto
) -> None:
    names = [f"s{n:05d}" for n in range(SCREENS)]
    registry = CollectorRegistry()
    log, _capture = make_log()
    observer = observer_on(ledger, mosquitto, log, registry, registered=lambda _name: True, background=True)
    writes: list[int | None] = []  # the limit of each write transaction
    flush = observer.writer.flush

    def counted(limit: int | None = None) -> None:
        writes.append(limit)
        flush(limit)

    observer.writer.flush = counted  # type: ignore[method-assign]
    observer.tick(T + timedelta(minutes=1))  # the clock the reports are judged by
    observer.start()
    assert observer.link is not None
    wait_for(observer.link.subscribed.is_set, what="the SUBACK")
    later = T + timedelta(seconds=60)  # each screen: on, then off a minute later (a new run)
    messages = [(f"infoscreen/{n}/power/state", _payload(n, T, "on")) for n in names]
    messages += [(f"infoscreen/{n}/power/state", _payload(n, later, "off")) for n in names]
    try:
        _publish(mosquitto.port, messages)

        def accepted() -> float:
            return registry.get_sample_value("intent_ledger_reports_total", {"result": "accepted"}) or 0.0

        wait_for(lambda: accepted() == 2 * SCREENS, 60, "every report classified")
        wait_for(lambda: observer.writer.pending() == 0, 120, "every report written")
    finally:
        observer.close()
    assert observer.writer.dropped == 0
    assert accepted() == 2 * SCREENS
    engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
    runs = runs_between(engine, "2027-03-29T00:00:00Z", "2027-03-30T00:00:00Z", names)
    first, second = format_instant(T), format_instant(later)
    for name in names:
        assert [(r.started_at, r.tv_state) for r in runs[name]] == [(first, "on"), (second, "off")]
    latest = latest_reports(engine)
    assert {n: (row["reported_at"], row["tv_state"]) for n, row in latest.items()} == dict.fromkeys(
        names, (second, "off")
    )
    assert len(writes) >= 3  # the burst took several transactions
