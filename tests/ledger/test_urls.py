"""ledger.urls: one reading of database URLs (backend, driver forms, masking, explanations)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import InvalidDatabaseUrl, LedgerUnavailable
from ledger.urls import database_env, is_postgres, mask, parse_database_url, unreachable


def test_postgres_urls_get_our_driver_for_sqlalchemy_and_plain_libpq_for_psycopg() -> None:
    for text in (
        "postgres://u:pw@h:5433/db",
        "postgresql://u:pw@h:5433/db",
        "postgresql+psycopg://u:pw@h:5433/db",
    ):
        url = parse_database_url(text)
        assert url.backend == "postgresql"
        assert is_postgres(text)
        assert url.sqlalchemy_url == "postgresql+psycopg://u:pw@h:5433/db"
        assert url.conninfo == "postgresql://u:pw@h:5433/db"
        assert url.masked.endswith("://u:***@h:5433/db")
        assert "pw" not in url.masked
    assert database_env("postgres://u@h/db")["SQLALCHEMY_URL"] == "postgresql+psycopg://u@h/db"


def test_sqlite_urls_name_their_file() -> None:
    assert parse_database_url("sqlite:///ledger.db").path == Path("ledger.db")
    assert parse_database_url("sqlite:////var/lib/il/ledger.db?timeout=5").path == Path(
        "/var/lib/il/ledger.db"
    )
    assert parse_database_url("sqlite://").path is None
    assert not is_postgres("sqlite:///ledger.db")


@pytest.mark.parametrize(
    "text",
    ["", "ledger.db", "postgresql://h:port/db", "sqlite://host/x.db", "mysql://h/db", "postgresql:///db"],
)
def test_malformed_or_unsupported_urls_are_bad_input(text: str) -> None:
    with pytest.raises(InvalidDatabaseUrl):
        parse_database_url(text)


def test_mask_hides_passwords_even_in_urls_it_cannot_parse() -> None:
    assert mask("postgresql://u:s3cret@h/db") == "postgresql://u:***@h/db"
    assert mask("postgresql://u:s3cret@h:port/db") == "postgresql://u:***@h:port/db"
    assert mask("sqlite:///x.db") == "sqlite:///x.db"


def test_missing_files_and_directories(tmp_path: Path) -> None:
    with pytest.raises(LedgerUnavailable, match="does not exist"):
        parse_database_url(f"sqlite:///{tmp_path}/ledger.db").checked(create=False)
    parse_database_url(f"sqlite:///{tmp_path}/ledger.db").checked(create=True)
    with pytest.raises(LedgerUnavailable, match=f"directory {tmp_path}/gone does not exist"):
        parse_database_url(f"sqlite:///{tmp_path}/gone/ledger.db").checked(create=True)


DRIVER = (
    '(psycopg.OperationalError) connection failed: FATAL: database "ledger" does not exist '
    "(Background on this error at: https://sqlalche.me/e/20/e3q8)"
)


def test_unreachable_explains_what_the_driver_said_without_its_words() -> None:
    url = parse_database_url("postgresql://u:pw@db.example:5433/ledger")
    assert str(unreachable(url, RuntimeError(DRIVER))) == (
        'cannot use the ledger postgresql://u:***@db.example:5433/ledger: database "ledger" does not exist; '
        "create it (createdb ledger) or fix --db or INTENT_LEDGER_DB"
    )
    odd = RuntimeError(
        "(psycopg.OperationalError) SSL SYSCALL error (Background on this error at: https://x)"
    )
    said = str(unreachable(url, odd))
    assert "psycopg" not in said
    assert "http" not in said
    assert "SSL SYSCALL error" in said
