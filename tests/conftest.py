"""Fixtures: real ledgers on an SQLite file and on the PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from ledger import Ledger, Meta
from projections.tables import ALL_TABLES

_BASE_PG_URL = os.environ.get("INTENT_LEDGER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Under pytest-xdist each worker drops and creates tables of its own, so each has its own database.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _worker_url(url: str, worker: str) -> str:
    """The URL of `worker`'s own database beside the one `url` names (`url` itself for no worker)."""
    if not worker:
        return url
    parsed = sqlalchemy.make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


PG_URL = _worker_url(_BASE_PG_URL, _WORKER)
STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
ME = Meta("tester")


def pytest_configure() -> None:
    """Create this worker's database (`<database>_gw0`, ...) on the same server when it is missing."""
    if PG_URL == _BASE_PG_URL:
        return
    name = sqlalchemy.make_url(PG_URL).database
    engine = sqlalchemy.create_engine(_BASE_PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            known = conn.execute(sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if known.first() is None:
                conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    except sqlalchemy.exc.OperationalError:
        pass  # PostgreSQL is away: the postgres tests will say so
    finally:
        engine.dispose()


def reset_postgres() -> None:
    """Drop the ledger's tables so each test starts from an empty ledger."""
    engine = sqlalchemy.create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            for table in reversed(ALL_TABLES):
                conn.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {table}"))
    finally:
        engine.dispose()


@pytest.fixture(params=STORES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty ledger database, once per store; PostgreSQL's tables dropped after too."""
    if request.param == "postgres":
        reset_postgres()
        yield PG_URL
        reset_postgres()  # nothing left behind for the next reader of the shared database
        return
    yield f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The PostgreSQL test database, empty before and after the test."""
    reset_postgres()
    yield PG_URL
    reset_postgres()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    app = Ledger(db_url)
    yield app
    app.close()


@pytest.fixture
def sqlite_ledger(sqlite_url: str) -> Iterator[Ledger]:
    app = Ledger(sqlite_url)
    yield app
    app.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that used PostgreSQL leaves none of the ledger's tables behind (a shared database)."""
    if not any(item.get_closest_marker("postgres") for item in session.items) or exitstatus != 0:
        return
    engine = sqlalchemy.create_engine(PG_URL)
    try:
        left = set(sqlalchemy.inspect(engine).get_table_names()) & set(ALL_TABLES)
    except sqlalchemy.exc.OperationalError:
        return  # PostgreSQL is away: the postgres tests said so already
    finally:
        engine.dispose()
    if left:
        session.config.get_terminal_writer().line(
            f"tests left tables behind in {PG_URL}: {', '.join(sorted(left))}", red=True
        )
        session.exitstatus = 1
