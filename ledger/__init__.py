"""The event-sourced ledger: domain events, aggregates, validation, the application service.

The names below load on first use (PEP 562), so `ledger.values` or
`ledger.errors` can be imported without eventsourcing and SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.app import Ledger, Receipt
    from ledger.domain import Meta, TargetRef
    from ledger.errors import InvalidInput, LedgerError
    from ledger.recurrence import Recurrence
    from ledger.values import Policy, Window, format_instant, parse_instant

__all__ = [
    "InvalidInput",
    "Ledger",
    "LedgerError",
    "Meta",
    "Policy",
    "Receipt",
    "Recurrence",
    "TargetRef",
    "Window",
    "format_instant",
    "parse_instant",
]

_HOMES = {
    "Ledger": "ledger.app",
    "Receipt": "ledger.app",
    "Recurrence": "ledger.recurrence",
    "Meta": "ledger.domain",
    "TargetRef": "ledger.domain",
    "InvalidInput": "ledger.errors",
    "LedgerError": "ledger.errors",
    "Policy": "ledger.values",
    "Window": "ledger.values",
    "format_instant": "ledger.values",
    "parse_instant": "ledger.values",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
