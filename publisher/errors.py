"""Errors of the MQTT side, with messages an operator can act on."""

from __future__ import annotations

from ledger.errors import InvalidInput, LedgerError

__all__ = ["BrokerUnavailable", "InvalidBrokerUrl", "NotConnected", "PublisherError"]


class PublisherError(LedgerError):
    """Base class of the publisher's runtime failures (exit 1)."""


class InvalidBrokerUrl(InvalidInput):
    """The broker URL or its options are malformed (exit 2)."""


class BrokerUnavailable(PublisherError):
    """The broker could not be reached, or refused the connection."""


class NotConnected(PublisherError):
    """A publish was attempted without a live connection; nothing was queued."""
