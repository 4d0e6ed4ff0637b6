"""PostgreSQL follow: a killed LISTEN connection is reconnected without losing or repeating a transition."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy

from ledger import Ledger, TargetRef, Window
from ledger.values import floor_second
from publisher.config import BrokerConfig
from publisher.daemon import Daemon
from tests.conftest import ME, PG_URL
from tests.publisher.broker import Mosquitto, Subscriber, wait_for
from tests.publisher.helpers import fast, make_log, running


def _sql(statement: str) -> list[int]:
    engine = sqlalchemy.create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            return [row[0] for row in conn.execute(sqlalchemy.text(statement))]
    finally:
        engine.dispose()


def _ids(sub: Subscriber, topic: str) -> set[str]:
    return {p["intent_id"] for p in sub.intents(topic)}


LISTENERS = (
    "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
    " AND datname = current_database()"
)


@pytest.mark.postgres
def test_a_terminated_listen_connection_is_reconnected_and_nothing_is_lost_or_repeated(
    pg_url: str, mosquitto: Mosquitto, subscribe: Callable[..., Subscriber]
) -> None:
    """pg_terminate_backend on the LISTEN connection: the next edits still arrive, once each."""
    ledger = Ledger(pg_url)
    other = Ledger(pg_url)
    now = floor_second(datetime.now(UTC))
    ledger.add_client("c1", None, ME)
    topic = "infoscreen/c1/power/intent"
    sub = subscribe(topic)
    daemon = Daemon(ledger, BrokerConfig.from_url(mosquitto.url), log=make_log()[0], **fast())
    try:
        with running(daemon):
            sub.wait(lambda s: s.intents(topic), what="the first intent")
            assert daemon._watcher is not None
            wait_for(daemon._watcher.connected.is_set, what="the LISTEN connection")
            killed = set(_sql(LISTENERS))
            assert killed
            _sql(f"SELECT pg_terminate_backend(pid) FROM ({LISTENERS}) AS listeners")
            for i, hours in enumerate((1, 2, 3)):
                window = Window(now - timedelta(minutes=1), now + timedelta(hours=hours))
                if i == 0:
                    other.add_event("e", TargetRef("client", "c1"), window, ME)
                else:
                    other.move_event("e", window, ME)

                def arrived(s: Subscriber, want: int = i + 2) -> bool:
                    return len(_ids(s, topic)) == want

                sub.wait(arrived, timeout=3, what=f"intent {i + 2}")
            wait_for(lambda: set(_sql(LISTENERS)) - killed, what="a new LISTEN connection")
        seqs = [e.seq for e in ledger.issued("c1")]
        assert seqs == [1, 2, 3, 4]  # off, then one transition per edit: none lost, none repeated
    finally:
        other.close()
        ledger.close()
