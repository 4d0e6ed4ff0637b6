"""The PostgreSQL lease when its connection is killed: taken again unless another instance has it."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from publisher.lease import PgLease
from tests.conftest import PG_URL
from tests.publisher.faults import PrivatePostgres

pytestmark = pytest.mark.postgres


def own_url(url: str, tag: str) -> str:
    """`url` with an application_name of our own, so a test ends only its own sessions."""
    return f"{url}{'&' if '?' in url else '?'}application_name={tag}"


def terminate(url: str, tag: str) -> int:
    """pg_terminate_backend on every session named `tag` (never anyone else's), waiting until each is gone."""
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1).split("?")[0]
    with psycopg.connect(plain, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = %s",
            (tag,),
        ).fetchall()
    return len(rows)


@pytest.fixture
def tag() -> str:
    return f"faults-{uuid.uuid4().hex[:12]}"


def test_a_terminated_lease_is_taken_again(tag: str) -> None:
    lease = PgLease(own_url(PG_URL, tag), f"test/{tag}")
    assert lease.try_acquire()
    try:
        assert terminate(PG_URL, tag) == 1
        assert lease.held()
        assert lease.retakes == 1
        assert lease.held()
        assert lease.retakes == 1
    finally:
        lease.release()


def test_a_lease_another_instance_took_is_lost(tag: str) -> None:
    name = f"test/{tag}"
    lease = PgLease(own_url(PG_URL, tag), name)
    other = PgLease(own_url(PG_URL, f"{tag}-other"), name)
    assert lease.try_acquire()
    try:
        assert not other.try_acquire()
        terminate(PG_URL, tag)
        assert other.try_acquire()  # the standby was quicker
        assert not lease.held()
        assert not lease.held()  # and stays lost
    finally:
        lease.release()
        other.release()


@pytest.mark.slow
def test_the_lease_survives_a_database_restart(private_pg: PrivatePostgres) -> None:
    """Down: counts as ours (nobody can take it there). Back: taken again on the first check."""
    lease = PgLease(private_pg.url, "test/restart")
    assert lease.try_acquire()
    private_pg.stop()
    assert lease.held()
    assert lease.unreachable
    private_pg.start()
    assert lease.held()
    assert not lease.unreachable
    assert lease.retakes == 1
    lease.release()
