"""The screen loop in-process on a real Mosquitto, with a recording TV: when it switches, when
it retries, what it reports. Intents are published by hand (retained, QoS 1)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from projections.shard import Shard
from publisher.config import BrokerConfig
from publisher.contract import Power
from publisher.logs import EventLog
from publisher.mqtt import MqttSession
from publisher.screen import Screen, ScreenLoop, ScreenSettings
from publisher.topics import Topics
from publisher.tv import Reading
from tests.publisher.broker import Mosquitto, Subscriber, wait_for
from tests.publisher.helpers import LogCapture

INTENT, STATE = "infoscreen/c1/power/intent", "infoscreen/c1/power/state"


class RecordingTv:
    """Switches succeed unless `broken`; every call is recorded."""

    def __init__(self) -> None:
        self.calls: list[Power] = []
        self.broken = False
        self._lock = threading.Lock()

    def switch(self, power: Power) -> Reading:
        with self._lock:
            self.calls.append(power)
        return Reading("unknown", "HDMI-CEC: no answer") if self.broken else Reading(power)

    def read(self) -> Reading | None:
        return None

    def seen(self) -> list[Power]:
        with self._lock:
            return list(self.calls)


def intent(state: str, intent_id: str, issued: datetime, ttl: int = 600) -> bytes:
    z = "%Y-%m-%dT%H:%M:%SZ"
    return json.dumps(
        {
            "schema_version": "1.0",
            "intent_id": intent_id,
            "issued_at": issued.strftime(z),
            "expires_at": (issued + timedelta(seconds=ttl)).strftime(z),
            "target": {"client_id": "c1", "group_id": None},
            "power": {
                "desired_state": state,
                "reason": "event_window_active" if state == "on" else "no_active_event",
                "grace_seconds": 0,
            },
            "event_window": None
            if state == "off"
            else {"start": issued.strftime(z), "end": (issued + timedelta(hours=1)).strftime(z)},
        }
    ).encode()


class Rig:
    def __init__(self, mosquitto: Mosquitto, report_every: int, mqtt_version: str = "5") -> None:
        self.tv = RecordingTv()
        self.capture = LogCapture()
        broker = BrokerConfig.from_url(mosquitto.url, mqtt_version)
        screen = Screen("c1", self.tv, ScreenSettings(report_every=report_every))
        self.loop = ScreenLoop([screen], broker, log=EventLog(self.capture))
        self.server = MqttSession(broker)
        self.server.connect()
        self.reports = Subscriber(mosquitto.port, STATE)
        self.thread = threading.Thread(target=self.loop.run, name="screen")
        self.thread.start()

    def publish(self, payload: bytes) -> None:
        delivery = self.server.publish(INTENT, payload)
        assert delivery.wait(5)
        assert delivery.ok

    def states(self) -> list[tuple[str | None, str]]:
        return [(m.json()["intent_id"], m.json()["tv_state"]) for m in self.reports.on(STATE)]

    def close(self) -> None:
        self.loop.stop()
        self.thread.join(15)
        assert not self.thread.is_alive()
        self.server.close()
        self.reports.close()


@pytest.fixture
def rig(mosquitto: Mosquitto, request: pytest.FixtureRequest) -> Iterator[Rig]:
    r = Rig(mosquitto, *getattr(request, "param", (300,)))
    yield r
    r.close()


def test_the_first_intent_sets_the_level_and_refreshes_switch_nothing(rig: Rig) -> None:
    """An `off` first: the TV is switched off at once (to be sure), reported; a refresh of it
    (newer issued_at) switches nothing; an `on` switches on and is reported with its id."""
    wait_for(lambda: rig.states() == [(None, "unknown")], what="the report before any intent")
    now = datetime.now(UTC).replace(microsecond=0)
    rig.publish(intent("off", "i-off", now))
    wait_for(lambda: rig.states()[-1:] == [("i-off", "off")], what="the report off")
    rig.publish(intent("off", "i-off", now + timedelta(seconds=1)))
    rig.publish(intent("on", "i-on", now + timedelta(seconds=1)))
    wait_for(lambda: rig.states()[-1:] == [("i-on", "on")], what="the report on")
    assert rig.tv.seen() == ["off", "on"]
    verdicts = [r["verdict"] for r in rig.capture.records("message") if r["topic"] == INTENT]
    assert verdicts == ["accepted", "accepted", "accepted"]


@pytest.mark.parametrize("rig", [(1,)], indirect=True)
def test_a_failed_switch_is_retried_once_a_report_period(rig: Rig) -> None:
    """The TV does not answer: unknown, with the detail; the next period switches again, and
    once it answers the report says on."""
    rig.tv.broken = True
    now = datetime.now(UTC).replace(microsecond=0)
    rig.publish(intent("on", "i-on", now))
    wait_for(lambda: len(rig.tv.seen()) >= 2, what="a retry")
    assert ("i-on", "unknown") in rig.states()
    details = [m.json()["detail"] for m in rig.reports.on(STATE) if m.json()["tv_state"] == "unknown"]
    assert "HDMI-CEC: no answer" in details
    rig.tv.broken = False
    wait_for(lambda: rig.states()[-1:] == [("i-on", "on")], what="the report on after the retry")
    assert set(rig.tv.seen()) == {"on"}


def test_an_expired_intent_is_reported_as_none(rig: Rig) -> None:
    """The held intent expires (ttl 2 s, nothing newer): intent_id null in the next report; the TV
    stays on to the end of its event window."""
    now = datetime.now(UTC).replace(microsecond=0)
    rig.publish(intent("on", "short", now, ttl=2))
    wait_for(lambda: ("short", "on") in rig.states(), what="the report on")
    wait_for(lambda: rig.states()[-1:] == [(None, "on")], what="the report after the expiry")
    assert rig.tv.seen() == ["on"]


@pytest.mark.parametrize("rig", [(300, "3.1.1")], indirect=True)
def test_under_mqtt_3_1_1(rig: Rig) -> None:
    """An MQTT 3.1.1 connection (--mqtt-version 3.1.1): the same intents, the same reports."""
    now = datetime.now(UTC).replace(microsecond=0)
    rig.publish(intent("on", "i-on", now))
    wait_for(lambda: rig.states()[-1:] == [("i-on", "on")], what="the report on")
    assert rig.tv.seen() == ["on"]


def test_a_sharded_server_is_heard_on_its_own_shards_status_topic(rig: Rig) -> None:
    """With `--shard i/N` each shard has its status topic; the screen takes the one whose shard
    owns it (crc32 of its id) and ignores the others'."""
    own, other = (Shard(i, 2) for i in sorted(range(2), key=lambda i: not Shard(i, 2).owns("c1")))
    wait_for(lambda: rig.states() == [(None, "unknown")], what="the first report")
    for shard in (other, own):
        topic = Topics("infoscreen", shard).status
        body = b'{"status": "online", "started_at": "2027-01-04T07:00:00Z"}'
        assert rig.server.publish(topic, body).wait(5)
    mine = Topics("infoscreen", own).status
    wait_for(
        lambda: [r["topic"] for r in rig.capture.records("message")] == [mine],
        what="the own shard's status taken",
    )
    assert rig.loop.screens[0].contract.server_online
