"""The daemon when PostgreSQL drops its connections: the lease is taken again, LISTEN resumes,
the boundaries that passed are recorded, and the next publish follows promptly.

`pg_terminate_backend` on the shared server ends only this test's own sessions
(found by an application_name of its own); the restart test uses a private
cluster, never the shared one.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger import Ledger, TargetRef, Window
from ledger.values import floor_second, format_instant
from projections.queries import replay_rows
from publisher.daemon import Backoff, Daemon, RunSettings
from publisher.lease import lease_for
from publisher.settings import DB_ERRORS
from tests.conftest import ME, PG_URL, reset_postgres
from tests.publisher.broker import Mosquitto, wait_for
from tests.publisher.faults import PrivatePostgres
from tests.publisher.helpers import LogCapture, make_log
from tests.publisher.test_lease_faults import own_url, terminate

pytestmark = pytest.mark.postgres


@contextmanager
def active(daemon: Daemon, url: str) -> Iterator[threading.Thread]:
    """The daemon's loop with its lease, as `intent-ledger run` does."""
    thread = threading.Thread(target=daemon.run, args=(lease_for(url, "infoscreen/0-1"),), name="daemon")
    thread.start()
    try:
        yield thread
    finally:
        daemon.stop()
        thread.join(20)
        assert not thread.is_alive(), "daemon did not stop"


def acked(capture: LogCapture, client: str, **match: Any) -> list[dict[str, Any]]:
    return [
        r
        for r in capture.records("publish")
        if r["client_id"] == client and r["result"] == "acked" and all(r[k] == v for k, v in match.items())
    ]


def _daemon(ledger: Ledger, mosquitto: Mosquitto) -> tuple[Daemon, LogCapture]:
    log, capture = make_log()
    # The real database backoff: the promptness after an outage is part of what is tested.
    daemon = Daemon(
        ledger,
        mosquitto.config(),
        RunSettings(ttl=20, refresh=2),
        log=log,
        connect_backoff=Backoff(0.05, 0.2),
    )
    return daemon, capture


def test_terminated_backends_do_not_stop_the_daemon(mosquitto: Mosquitto) -> None:
    """All of our sessions killed (ledger pool, LISTEN, lease): still active, and a change made
    afterwards is published promptly."""
    reset_postgres()
    tag = f"faults-{uuid.uuid4().hex[:12]}"
    url = own_url(PG_URL, tag)
    ledger = Ledger(url)
    other = Ledger(PG_URL)
    try:
        now = floor_second(datetime.now(UTC))
        ledger.add_client("c1", None, ME)
        daemon, capture = _daemon(ledger, mosquitto)
        with active(daemon, url) as thread:
            wait_for(lambda: acked(capture, "c1"), what="the first publish")
            assert terminate(PG_URL, tag) >= 2  # at least the lease and LISTEN
            killed = time.monotonic()
            window = Window(now - timedelta(minutes=1), now + timedelta(hours=1))
            other.add_event("e1", TargetRef("client", "c1"), window, ME)
            wait_for(lambda: acked(capture, "c1", desired_state="on"), 10, "the change after the kill")
            took = time.monotonic() - killed
            wait_for(lambda: daemon.lease is not None and daemon.lease.retakes >= 1, 10, "the lease retaken")
            assert thread.is_alive()
            assert not daemon.lease_lost
        assert [(r["role"], r.get("lease")) for r in capture.records("role")] == [
            ("active", None),
            ("active", "retaken"),  # said once, when the lease was taken again
        ]
    finally:
        ledger.close()
        other.close()
    print(f"\npg_terminate_backend: change published {took:.2f} s after the kill")


@pytest.mark.slow
def test_a_database_restart_records_the_boundary_that_passed(
    private_pg: PrivatePostgres, mosquitto: Mosquitto
) -> None:
    """The cluster stops (every session ended) while a window ends, and starts again: refreshes
    go on from memory meanwhile; afterwards the `off` is recorded at the boundary and published."""
    ledger = Ledger(private_pg.url)
    try:
        now = floor_second(datetime.now(UTC))
        end = now + timedelta(seconds=3)
        ledger.add_client("c1", None, ME)
        ledger.add_event("e1", TargetRef("client", "c1"), Window(now - timedelta(hours=1), end), ME)
        daemon, capture = _daemon(ledger, mosquitto)
        with active(daemon, private_pg.url) as thread:
            wait_for(lambda: acked(capture, "c1", desired_state="on"), what="on")
            private_pg.stop()
            refreshes = len(acked(capture, "c1", kind="refresh"))
            wait_for(lambda: datetime.now(UTC) > end + timedelta(seconds=2), 10, "the boundary to pass")
            wait_for(
                lambda: len(acked(capture, "c1", kind="refresh")) > refreshes, 10, "a refresh from memory"
            )
            assert not acked(capture, "c1", desired_state="off")
            private_pg.start()
            answering = time.monotonic()
            wait_for(
                lambda: acked(capture, "c1", desired_state="off"), 10, "the off once the database answers"
            )
            took = time.monotonic() - answering
            # The lease is checked once a second, apart from the off: wait for it as for the off.
            wait_for(lambda: daemon.lease is not None and daemon.lease.retakes >= 1, 10, "the lease retaken")
            assert thread.is_alive()
            assert not daemon.lease_lost
        rows = replay_rows(ledger, "c1")
        assert [r["desired_state"] for r in rows] == ["on", "off"]
        assert rows[-1]["effective_at"] == format_instant(end)  # at the boundary, not when recorded
        assert rows[-1]["cause"]["kind"] == "boundary"
        assert [(r["role"], r.get("lease")) for r in capture.records("role")] == [
            ("active", None),
            ("active", "retaken"),  # said once, when the lease was taken again
        ]
    finally:
        ledger.close()
    print(f"\nPostgreSQL restart: the off published {took:.2f} s after the database answered")


def test_a_terminated_backend_under_the_log_read_is_a_database_error_the_daemon_retries() -> None:
    """The log read's rows come from the driver's cursor, its errors still as every query's: one
    the daemon's backoff catches (not the driver's own class, which would stop it), the dead
    connection dropped, and the next read answers."""
    reset_postgres()
    tag = f"logread-{uuid.uuid4().hex[:12]}"
    ledger = Ledger(own_url(PG_URL, tag))
    try:
        ledger.add_client("c1", None, ME)
        assert [n for n, _ in ledger.read(0, limit=10)]
        assert terminate(PG_URL, tag) >= 1
        with pytest.raises(DB_ERRORS):
            list(ledger.read(0, limit=10))
        assert [n for n, _ in ledger.read(0, limit=10)]
    finally:
        ledger.close()
        reset_postgres()
