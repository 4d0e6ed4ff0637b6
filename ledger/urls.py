"""Database URLs: the one place that parses, checks, masks and explains them.

The ledger lives in an SQLite file (`sqlite:///PATH`) or in PostgreSQL
(`postgresql://USER[:PASSWORD]@HOST[:PORT]/DB`, `postgres://` and the
`+psycopg` driver accepted). Everything that needs a URL (the application
service, the daemon's LISTEN connection and lease, the command line) asks
this module, so a URL is understood, shown (password masked) and explained
(when its database cannot be reached) the same way everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, urlsplit, urlunsplit

from ledger.errors import InvalidDatabaseUrl, LedgerUnavailable

__all__ = ["DatabaseUrl", "database_env", "is_postgres", "mask", "parse_database_url", "unreachable"]

Backend = Literal["sqlite", "postgresql"]
_SCHEMES: dict[str, Backend] = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "postgresql+psycopg": "postgresql",
}
_USE = "use sqlite:///PATH or postgresql://USER@HOST[:PORT]/DB (--db or INTENT_LEDGER_DB)"
_FIX = "fix --db or INTENT_LEDGER_DB"


def mask(text: str) -> str:
    """The URL with its password replaced by `***` (safe to show and log)."""
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        password = None
        parts = None
    if parts is None or not password:
        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", text)  # what urlsplit could not read
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass(frozen=True)
class DatabaseUrl:
    """A checked ledger URL: its backend, what SQLAlchemy and libpq need, how to show it."""

    text: str
    backend: Backend
    parts: SplitResult

    @property
    def masked(self) -> str:
        return mask(self.text)

    @property
    def path(self) -> Path | None:
        """The SQLite file (None for PostgreSQL or an in-memory SQLite)."""
        if self.backend != "sqlite":
            return None
        name = self.parts.path[1:] if self.parts.path.startswith("/") else self.parts.path
        return None if name in ("", ":memory:") else Path(name)

    @property
    def sqlalchemy_url(self) -> str:
        """The URL with the driver we ship (psycopg 3; SQLAlchemy's bare scheme means psycopg2)."""
        if self.backend == "postgresql":
            return urlunsplit(self.parts._replace(scheme="postgresql+psycopg"))
        return self.text

    @property
    def conninfo(self) -> str:
        """The libpq connection string of a PostgreSQL URL (for psycopg connections of our own)."""
        return urlunsplit(self.parts._replace(scheme="postgresql"))

    def checked(self, *, create: bool) -> DatabaseUrl:
        """Itself, once the file can be created (`create`) or exists (read-only commands)."""
        self.check_directory() if create else self.check_exists()
        return self

    def check_directory(self) -> None:
        """A file that would be created must have a directory to be created in."""
        path = self.path
        if path is not None and not path.parent.is_dir():
            raise LedgerUnavailable(
                f"cannot use the ledger {self.masked}: directory {path.parent} does not exist; "
                f"create it or {_FIX}"
            )

    def check_exists(self) -> None:
        """For commands that only read: an SQLite ledger that is not there is an error, not created."""
        self.check_directory()
        path = self.path
        if path is not None and not path.is_file():
            raise LedgerUnavailable(
                f"no ledger at {self.masked}: file {path} does not exist; {_FIX}, "
                "or create it with a command that writes (e.g. client add)"
            )


def parse_database_url(text: str) -> DatabaseUrl:
    """Check a ledger URL; `InvalidDatabaseUrl` (bad input) says what is wrong and what to use."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:
        reason = "bad port" if "port" in str(e).lower() else "cannot be read"
        raise InvalidDatabaseUrl(f"malformed database URL {mask(text)!r} ({reason}): {_USE}") from None
    if not parts.scheme or "://" not in text:
        raise InvalidDatabaseUrl(f"malformed database URL {mask(text)!r}: {_USE}")
    backend = _SCHEMES.get(parts.scheme.lower())
    if backend is None:
        raise InvalidDatabaseUrl(f"unsupported database URL {mask(text)!r} (scheme {parts.scheme}): {_USE}")
    if backend == "sqlite" and parts.netloc:
        raise InvalidDatabaseUrl(
            f"malformed database URL {mask(text)!r}: an SQLite URL is sqlite:///relative/path "
            "or sqlite:////absolute/path"
        )
    if backend == "postgresql" and not parts.hostname and port is None and "host=" not in parts.query:
        raise InvalidDatabaseUrl(f"malformed database URL {mask(text)!r} (no host): {_USE}")
    return DatabaseUrl(text, backend, parts)


def is_postgres(text: str) -> bool:
    return urlsplit(text).scheme.lower() in {s for s, b in _SCHEMES.items() if b == "postgresql"}


def database_env(text: str) -> dict[str, str]:
    """The eventsourcing environment for a ledger URL (SQLite file or PostgreSQL)."""
    url = parse_database_url(text)
    return {"PERSISTENCE_MODULE": "ledger.persistence:Factory", "SQLALCHEMY_URL": url.sqlalchemy_url}


# What the drivers say (sqlite3, libpq through psycopg) -> what an operator should do.
_EXPLAINED: tuple[tuple[str, str], ...] = (
    (r'database "([^"]+)" does not exist', r'database "\1" does not exist; create it (createdb \1) or {fix}'),
    (r'role "([^"]+)" does not exist', r'role "\1" does not exist; create it or {fix}'),
    (r'password authentication failed for user "([^"]+)"', r'password authentication failed for "\1"; {fix}'),
    (r"no password supplied", r"the server wants a password; put it in the URL or ~/.pgpass"),
    (r"connection refused", r"connection refused; is PostgreSQL running at {where} and accepting TCP?"),
    (
        r"could not translate host name|name or service not known|nodename nor servname",
        r"unknown host {host}; {fix}",
    ),
    (r"timeout expired|timed out", r"no answer from {where} (timed out); is the host reachable?"),
    (r"unable to open database file", r"cannot open the file; check its directory and permissions"),
    (r"database is locked", r"the file is locked by another process; retry"),
    (r"file is not a database|file is encrypted", r"the file is not an SQLite database; {fix}"),
    (r"relation \"[^\"]+\" does not exist|no such table", r"it holds no ledger yet; {fix}, or write to it"),
)


def unreachable(url: DatabaseUrl, error: BaseException) -> LedgerUnavailable:
    """Our one-line error for a database the drivers could not use (no library names, no links)."""
    cause: BaseException = getattr(error, "orig", None) or error.__cause__ or error
    message = " ".join(str(cause).split())
    host = url.parts.hostname or "localhost"
    where = f"{host}:{url.parts.port or 5432}"
    for pattern, advice in _EXPLAINED:
        found = re.search(pattern, message, re.IGNORECASE)
        if found:
            text = found.expand(advice).format(fix=_FIX, where=where, host=host)
            return LedgerUnavailable(f"cannot use the ledger {url.masked}: {text}")
    detail = re.sub(r"\s*\(Background on this error at:[^)]*\)", "", message)
    detail = re.sub(r"^\(?[\w.]+(Error|Exception)\)?\s*:?\s*", "", detail)  # driver class names
    detail = re.sub(r"https?://\S+", "", detail).strip(" :;") or "the database refused the operation"
    return LedgerUnavailable(f"cannot use the ledger {url.masked}: {detail}; {_FIX}")
