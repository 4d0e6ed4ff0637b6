"""Prometheus metrics and the retained self-check, scraped over HTTP from a running daemon."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from prometheus_client.parser import text_string_to_metric_families

from ledger import Ledger, TargetRef, Window
from ledger.values import floor_second
from publisher.config import BrokerConfig
from publisher.daemon import Daemon, RunSettings
from publisher.metrics import Metrics
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, free_port, retained, wait_for
from tests.publisher.helpers import fast, make_log, running


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_publishes_and_the_self_check_repairs_a_tampered_intent(
    sqlite_ledger: Ledger, mosquitto: Mosquitto
) -> None:
    """Counters count, the age gauge is sane, and a foreign retained payload is replaced."""
    now = floor_second(datetime.now(UTC))
    sqlite_ledger.add_client("c1", "lobby", ME)
    sqlite_ledger.add_client("c2", None, ME)
    sqlite_ledger.add_event(
        "e", TargetRef("group", "lobby"), Window(now - timedelta(minutes=1), now + timedelta(hours=1)), ME
    )
    port = free_port()
    log, capture = make_log()
    # A refresh (the same intent_id) landing between the forgery and the sweep would repair c1
    # before the self-check saw it: with a day's ttl the first one falls within 12 hours, not 30 s.
    settings = RunSettings(ttl=86_400, check_every=0.5)
    daemon = Daemon(sqlite_ledger, BrokerConfig.from_url(mosquitto.url), settings, log=log, **fast())
    daemon.metrics.serve(port)
    with running(daemon):
        wait_for(
            lambda: (
                value(scrape(port), "intent_ledger_publishes_total", kind="transition", result="acked") == 2
            ),
            what="two acked transition publishes",
        )
        metrics = scrape(port)
        assert (
            value(
                metrics, "intent_ledger_transitions_total", reason="event_window_active", desired_state="on"
            )
            == 1
        )
        assert (
            value(metrics, "intent_ledger_transitions_total", reason="no_active_event", desired_state="off")
            == 1
        )
        assert value(metrics, "intent_ledger_broker_connected") == 1
        assert value(metrics, "intent_ledger_publish_ack_latency_seconds_count") >= 2
        assert value(metrics, "intent_ledger_ledger_lag_events") == 0

        # Somebody else overwrites c1's retained intent: the self-check notices and repairs it.
        intruder = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        intruder.connect("127.0.0.1", mosquitto.port)
        intruder.loop_start()
        intruder.publish(
            "infoscreen/c1/power/intent",
            b'{"intent_id": "forged", "issued_at": "2026-01-01T00:00:00Z"}',
            qos=1,
            retain=True,
        ).wait_for_publish(5)
        # c2's current id without an issued_at: not a payload of ours (once, it stopped the sweep).
        bare = b'{"intent_id": "%s"}' % sqlite_ledger.issued("c2")[-1].intent_id.encode()
        intruder.publish("infoscreen/c2/power/intent", bare, qos=1, retain=True).wait_for_publish(5)
        intruder.disconnect()
        intruder.loop_stop()
        wait_for(
            lambda: value(scrape(port), "intent_ledger_retained_mismatches_total") >= 1,
            timeout=10,
            what="the mismatch to be counted",
        )
        expected = sqlite_ledger.issued("c1")[-1].intent_id
        wait_for(
            lambda: (
                (m := retained(mosquitto.port, "infoscreen/c1/power/intent"))
                and m.json().get("intent_id") == expected
            ),
            what="the repair",
        )
        wait_for(
            lambda: (m := retained(mosquitto.port, "infoscreen/c2/power/intent")) and "issued_at" in m.json(),
            what="c2's repair",
        )
        sqlite_ledger.add_client("c3", None, ME)  # and the daemon is still at work
        wait_for(lambda: retained(mosquitto.port, "infoscreen/c3/power/intent"), what="c3's intent")
        age = value(scrape(port), "intent_ledger_retained_payload_age_seconds")
        assert 0 <= age < 60  # issued at the start, moments ago
    # c1's (the sweep may come to c2's first: its order is not the intruder's)
    held = [r["held"] for r in capture.records("mismatch") if r["topic"] == "infoscreen/c1/power/intent"]
    assert held[0] == "forged"
    assert any(r["kind"] == "repair" and r["client_id"] == "c1" for r in capture.records("publish"))


def test_a_batch_of_ack_latencies_counts_as_observing_each() -> None:
    """observe_acks() gives the same buckets, count and sum as observe() once per value."""
    one_by_one, batched = Metrics(), Metrics()
    latencies = [0.0004, 0.001, 0.0011, 0.003, 0.05, 0.05, 0.7, 3.0, 12.0]
    for s in latencies:
        one_by_one.ack_latency.observe(s)
    batched.observe_acks(latencies)

    def samples(m: Metrics) -> dict[tuple[str, str], float]:
        return {
            (s.name, s.labels.get("le", "")): s.value
            for family in m.registry.collect()
            if family.name == "intent_ledger_publish_ack_latency_seconds"
            for s in family.samples
            if not s.name.endswith("_created")
        }

    assert samples(batched) == samples(one_by_one)
    assert samples(batched)[("intent_ledger_publish_ack_latency_seconds_count", "")] == len(latencies)
