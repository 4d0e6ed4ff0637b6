"""The event-sourced ledger: domain events, aggregates, validation, the application service."""

from __future__ import annotations

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
