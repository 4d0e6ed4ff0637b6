"""One broker session under network faults: a link that goes dark, a session dropped as dead.

Each test runs with each kind of session (paho in this process, or in a process of its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from publisher.config import BrokerConfig
from publisher.errors import BrokerUnavailable
from publisher.session import SessionFactory
from tests.publisher.broker import Mosquitto, retained, wait_for
from tests.publisher.faults import DarkProxy

pytestmark = pytest.mark.slow


@pytest.fixture
def proxy(mosquitto: Mosquitto) -> Iterator[DarkProxy]:
    front = DarkProxy(mosquitto.port)
    yield front
    front.close()


def test_the_proxy_forwards_until_it_goes_dark(session_kind: SessionFactory, proxy: DarkProxy) -> None:
    session = session_kind(BrokerConfig.from_url(f"mqtt://127.0.0.1:{proxy.port}?keepalive=60"))
    session.connect()
    try:
        assert session.publish("t/a", b"1", expiry=60).wait(5)
        proxy.go_dark()
        silent = session.publish("t/a", b"2", expiry=60)
        assert not silent.wait(0.5)
        assert not session.lost.is_set()
    finally:
        session.close()


def test_a_dark_link_is_noticed_by_the_keepalive(
    session_kind: SessionFactory, mosquitto: Mosquitto, proxy: DarkProxy
) -> None:
    """No byte from the broker for two keepalives: the session counts as lost, its publishes failed."""
    session = session_kind(
        BrokerConfig.from_url(f"mqtt://127.0.0.1:{proxy.port}?keepalive=1"),
        will=("infoscreen/server/status", b"offline"),
    )
    session.connect()
    assert session.publish("infoscreen/server/status", b"online", expiry=60).wait(5)
    proxy.go_dark()
    pending = session.publish("infoscreen/x/power/intent", b"stale", expiry=60)
    wait_for(session.lost.is_set, 10, "the keepalive to notice the silence")
    assert pending.done
    assert not pending.ok
    session.close()
    # The broker lost us too, without a DISCONNECT: it publishes the Will.
    wait_for(
        lambda: (m := retained(mosquitto.port, "infoscreen/server/status")) and m.payload == b"offline",
        10,
        "the Will",
    )
    assert retained(mosquitto.port, "infoscreen/x/power/intent") is None  # the stale one never arrived


def test_after_the_dark_link_a_new_session_gets_through(
    session_kind: SessionFactory, proxy: DarkProxy
) -> None:
    session = session_kind(BrokerConfig.from_url(f"mqtt://127.0.0.1:{proxy.port}?keepalive=1"))
    session.connect()
    proxy.go_dark()
    with pytest.raises(BrokerUnavailable, match="no CONNACK"):
        session_kind(BrokerConfig.from_url(f"mqtt://127.0.0.1:{proxy.port}")).connect(timeout=0.5)
    proxy.light_up()
    fresh = session_kind(BrokerConfig.from_url(f"mqtt://127.0.0.1:{proxy.port}"))
    fresh.connect()
    assert fresh.publish("t/b", b"fresh", expiry=60).wait(5)
    fresh.close()
    session.close()


def test_abandon_drops_the_queue_and_leaves_the_will(
    session_kind: SessionFactory, mosquitto: Mosquitto
) -> None:
    """A session abandoned as dead sends no DISCONNECT: the broker publishes the Will."""
    session = session_kind(BrokerConfig.from_url(mosquitto.url), will=("s/status", b"offline"))
    session.connect()
    assert session.publish("s/status", b"online", expiry=60).wait(5)
    session.abandon("no PUBACK for 10 s and nothing else from the broker")
    assert session.lost.is_set()
    assert "no PUBACK" in str(session.lost_reason)
    wait_for(lambda: (m := retained(mosquitto.port, "s/status")) and m.payload == b"offline", 10, "Will")
    session.close()  # closing an abandoned session is harmless
