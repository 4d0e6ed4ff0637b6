"""The v1 intent payload: a msgspec Struct, its JSON encoding and its JSON Schema.

Evolution rules (docs/schema-evolution.md): fields are only ever added, with a
default, under the same major `schema_version`; no field changes type or
meaning; readers ignore fields they do not know.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec

from ledger.intent import IntentFields
from ledger.values import format_instant

__all__ = [
    "SCHEMA_VERSION",
    "EventWindow",
    "IntentPayload",
    "PayloadTemplate",
    "Power",
    "Target",
    "Timestamp",
    "build_payload",
    "decode_payload",
    "encode_payload",
    "json_schema",
    "payload_template",
    "stamped",
]

SCHEMA_VERSION = "1.0"

Timestamp = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
        description="UTC instant, whole seconds: YYYY-MM-DDTHH:MM:SSZ",
    ),
]
Reason = Literal[
    "event_window_active", "no_active_event", "group_override", "client_override", "client_deregistered"
]


class Target(msgspec.Struct, kw_only=True):
    client_id: str | None
    group_id: str | None


class Power(msgspec.Struct, kw_only=True):
    desired_state: Literal["on", "off"]
    reason: Reason
    grace_seconds: Annotated[int, msgspec.Meta(ge=0)]


class EventWindow(msgspec.Struct, kw_only=True):
    start: Timestamp
    end: Timestamp


class IntentPayload(msgspec.Struct, kw_only=True):
    """What a client receives on `{prefix}/{client_id}/power/intent` (keys in this order)."""

    schema_version: Annotated[str, msgspec.Meta(pattern=r"^1\.[0-9]+$")]
    intent_id: str
    issued_at: Timestamp
    expires_at: Timestamp
    target: Target
    power: Power
    event_window: EventWindow | None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(IntentPayload)


@functools.lru_cache(maxsize=64)
def _stamps(issued_at: datetime, ttl: int) -> tuple[str, str]:
    # A burst stamps thousands of payloads with the same second: format it once.
    return format_instant(issued_at), format_instant(issued_at + timedelta(seconds=ttl))


def build_payload(*, intent_id: str, fields: IntentFields, issued_at: datetime, ttl: int) -> IntentPayload:
    """A payload for a recorded intent's semantic `fields`, stamped now (`issued_at`)."""
    window = fields.event_window
    issued, expires = _stamps(issued_at, ttl)
    return IntentPayload(
        schema_version=SCHEMA_VERSION,
        intent_id=intent_id,
        issued_at=issued,
        expires_at=expires,
        target=Target(client_id=fields.client_id, group_id=fields.group_id),
        power=Power(
            desired_state=fields.desired_state,  # type: ignore[arg-type]
            reason=fields.reason,  # type: ignore[arg-type]
            grace_seconds=fields.grace_seconds,
        ),
        event_window=None if window is None else EventWindow(start=window["start"], end=window["end"]),
    )


def encode_payload(payload: IntentPayload) -> bytes:
    return _encoder.encode(payload)


class PayloadTemplate(msgspec.Struct, frozen=True, gc=False):
    """A payload's encoding without its stamps: `stamped` splices them in (built ahead of them)."""

    intent_id: str
    head: bytes  # up to the `issued_at` text
    tail: bytes  # after the `expires_at` text


# A stand-in stamp while a template is encoded: a Timestamp's length, so the cut is at fixed
# offsets from the key; the keys come right after `intent_id`, a string encoded with its quotes.
_STAND_IN = datetime(2000, 1, 1, tzinfo=UTC)
_ISSUED_KEY = b',"issued_at":"'
_BETWEEN = '","expires_at":"'
_STAMP_LENGTH = len("2000-01-01T00:00:00Z")


def payload_template(intent_id: str, fields: IntentFields) -> PayloadTemplate:
    """The encoding `build_payload` and `encode_payload` make for `intent_id` and `fields`, around
    its `issued_at` and `expires_at` texts: `stamped` of it and a stamp is those very bytes."""
    encoded = encode_payload(build_payload(intent_id=intent_id, fields=fields, issued_at=_STAND_IN, ttl=0))
    cut = encoded.index(_ISSUED_KEY) + len(_ISSUED_KEY)
    rest = cut + 2 * _STAMP_LENGTH + len(_BETWEEN)
    return PayloadTemplate(intent_id, encoded[:cut], encoded[rest:])


@functools.lru_cache(maxsize=64)
def _stamp_bytes(issued_at: str, expires_at: str) -> bytes:
    return (issued_at + _BETWEEN + expires_at).encode()


def stamped(template: PayloadTemplate, issued_at: datetime, ttl: int) -> tuple[bytes, str, str]:
    """The encoded payload of `template` stamped now (`issued_at`), and its `issued_at` and
    `expires_at` texts: what `build_payload` and `encode_payload` would make."""
    issued, expires = _stamps(issued_at, ttl)
    return template.head + _stamp_bytes(issued, expires) + template.tail, issued, expires


def decode_payload(data: bytes | str) -> IntentPayload:
    return _decoder.decode(data)


def json_schema() -> dict[str, Any]:
    return msgspec.json.schema(IntentPayload)
