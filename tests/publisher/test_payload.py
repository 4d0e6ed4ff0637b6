"""The v1 payload: key order, UTC whole seconds, JSON Schema, evolution."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.intent import IntentFields
from projections.timeline import REASONS
from publisher.payload import (
    build_payload,
    decode_payload,
    encode_payload,
    json_schema,
    payload_template,
    stamped,
)

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


NAMES = st.one_of(st.none(), st.text(max_size=12))
INSTANTS = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=0))


@given(
    client=NAMES,
    group=NAMES,
    state=st.sampled_from(["on", "off"]),
    reason=st.sampled_from(sorted(REASONS)),
    grace=st.integers(0, 2**40),
    window=st.one_of(st.none(), st.fixed_dictionaries({"start": st.text(), "end": st.text()})),
    intent_id=st.text(),
    issued_at=INSTANTS,
    ttl=st.integers(1, 10**6),
)
@settings(max_examples=200, deadline=None)
def test_a_template_stamped_is_the_payload_built_then(
    client: str | None,
    group: str | None,
    state: str,
    reason: str,
    grace: int,
    window: dict[str, str] | None,
    intent_id: str,
    issued_at: datetime,
    ttl: int,
) -> None:
    """A payload encoded ahead of its stamps (quotes, escapes and keys' text in any field) and
    stamped at the publish is byte for byte the one built and encoded then."""
    fields = IntentFields(client, group, state, reason, grace, window)
    built = build_payload(intent_id=intent_id, fields=fields, issued_at=issued_at, ttl=ttl)
    data, issued, expires = stamped(payload_template(intent_id, fields), issued_at, ttl)
    assert data == encode_payload(built)
    assert (issued, expires) == (built.issued_at, built.expires_at)
