"""The error hierarchy of intent-ledger.

`InvalidInput` (and its subclasses) means the caller asked for something the
ledger refuses: nothing was appended and the command line exits 2. Every other
`LedgerError` is a runtime failure (exit 1).
"""

from __future__ import annotations

__all__ = [
    "ClientNotFound",
    "EmptyFeed",
    "EmptySnapshot",
    "EventNotFound",
    "IdConflict",
    "InvalidDatabaseUrl",
    "InvalidId",
    "InvalidInput",
    "InvalidInstant",
    "InvalidPolicy",
    "InvalidSeries",
    "InvalidSnapshot",
    "InvalidWindow",
    "LedgerBusy",
    "LedgerError",
    "LedgerUnavailable",
    "NotFound",
    "OverrideNotFound",
    "SeriesNotFound",
]


class LedgerError(Exception):
    """Base class of every error raised by intent-ledger itself.

    The message is one line whatever it quotes: control characters from the input (a
    newline inside a field name, say) are shown escaped.
    """

    def __str__(self) -> str:
        text = super().__str__()
        if text.isprintable():
            return text
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class InvalidInput(LedgerError, ValueError):
    """The request is malformed or contradicts the ledger; nothing was changed."""


class InvalidId(InvalidInput):
    pass


class InvalidInstant(InvalidInput):
    pass


class InvalidWindow(InvalidInput):
    pass


class InvalidPolicy(InvalidInput):
    pass


class InvalidSnapshot(InvalidInput):
    pass


class InvalidSeries(InvalidInput):
    """A bad zone, local time, rule or date of a series; the message names the bad part."""


class NotFound(InvalidInput):
    pass


class ClientNotFound(NotFound):
    def __init__(self, client_id: str, detail: str = "is not registered") -> None:
        super().__init__(f"client {client_id!r} {detail}")
        self.client_id = client_id


class EventNotFound(NotFound):
    def __init__(self, event_id: str) -> None:
        super().__init__(f"event {event_id!r} does not exist")
        self.event_id = event_id


class OverrideNotFound(NotFound):
    def __init__(self, override_id: str) -> None:
        super().__init__(f"override {override_id!r} does not exist")
        self.override_id = override_id


class SeriesNotFound(NotFound):
    def __init__(self, series_id: str) -> None:
        super().__init__(f"series {series_id!r} does not exist")
        self.series_id = series_id


class IdConflict(InvalidInput):
    """An id is reused with different content; the message names the existing record."""


class LedgerBusy(LedgerError):
    """Concurrent writers kept invalidating this change; it was not applied."""


class InvalidDatabaseUrl(InvalidInput):
    """A `--db` URL that is malformed or names a database we do not support."""


class LedgerUnavailable(LedgerError):
    """The ledger's database cannot be used (missing file or directory, unreachable server, ...)."""


class EmptySnapshot(LedgerError):
    """A snapshot without clients would deregister them all with --prune: refused (exit 1)."""


class EmptyFeed(LedgerError):
    """A feed with nothing in it would prune everything it imported before: refused (exit 1)."""
