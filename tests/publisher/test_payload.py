"""The v1 payload: key order, UTC whole seconds, JSON Schema, evolution."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import msgspec
import pytest

from ledger.intent import IntentFields
from projections.timeline import REASONS
from publisher.payload import build_payload, decode_payload, encode_payload, json_schema

SEED = (Path(__file__).parent / "payloads" / "v1.0-seed.json").read_text()
VALIDATOR = jsonschema.Draft202012Validator(json_schema())


def test_seed_payload_decodes_validates_and_reencodes_identically() -> None:
    """The specification's example is a valid v1 payload, byte-for-byte after re-encoding."""
    VALIDATOR.validate(json.loads(SEED))
    encoded = encode_payload(decode_payload(SEED))
    assert encoded == json.dumps(json.loads(SEED), separators=(",", ":")).encode()
    assert list(json.loads(encoded)) == [
        "schema_version",
        "intent_id",
        "issued_at",
        "expires_at",
        "target",
        "power",
        "event_window",
    ]


def test_a_later_minor_version_with_new_fields_still_decodes() -> None:
    """Readers ignore fields they do not know (new fields only ever add)."""
    future = json.loads(SEED) | {"schema_version": "1.3", "brightness": 80}
    future["power"]["ramp_seconds"] = 5
    VALIDATOR.validate(future)
    assert decode_payload(json.dumps(future)).power.desired_state == "on"


@pytest.mark.parametrize(
    "change",
    [
        {"issued_at": "2026-03-31T12:00:00+00:00"},
        {"issued_at": "2026-03-31T12:00:00.500Z"},
        {"schema_version": "2.0"},
        {"power": {"desired_state": "dim", "reason": "event_window_active", "grace_seconds": 30}},
    ],
)
def test_schema_rejects_non_v1_payloads(change: dict[str, object]) -> None:
    """Offsets other than Z, fractions, another major and unknown states are invalid."""
    bad = json.loads(SEED) | change
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(bad)
    with pytest.raises(msgspec.ValidationError):
        decode_payload(json.dumps(bad))


@pytest.mark.parametrize("reason", REASONS)
def test_built_payloads_are_schema_valid_with_expiry(reason: str) -> None:
    """Every reason builds a valid payload; expires_at = issued_at + ttl."""
    on = reason in ("event_window_active", "client_override", "group_override")
    fields = IntentFields(
        client_id="c1",
        group_id=None,
        desired_state="on" if on else "off",
        reason=reason,
        grace_seconds=30,
        event_window={"start": "2026-03-31T12:00:00Z", "end": "2026-03-31T13:00:00Z"} if on else None,
    )
    issued = datetime(2026, 3, 31, 12, 0, 7, tzinfo=UTC)
    payload = build_payload(intent_id="x", fields=fields, issued_at=issued, ttl=600)
    document = json.loads(encode_payload(payload))
    VALIDATOR.validate(document)
    assert (document["issued_at"], document["expires_at"]) == ("2026-03-31T12:00:07Z", "2026-03-31T12:10:07Z")
