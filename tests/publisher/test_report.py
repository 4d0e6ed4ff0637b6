"""The v1 report payload: key order, strict decoding, the 4 KB cap, its JSON Schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from cli.main import cli
from publisher.report import (
    MAX_REPORT_BYTES,
    InvalidReport,
    build_report,
    decode_report,
    encode_report,
    report_schema,
)

SEED = (Path(__file__).parent / "payloads" / "report-v1.0-seed.json").read_text()
VALIDATOR = jsonschema.Draft202012Validator(report_schema())
T = datetime(2027, 3, 29, 5, 30, 2, tzinfo=UTC)


def test_the_specifications_example_decodes_validates_and_reencodes_identically() -> None:
    VALIDATOR.validate(json.loads(SEED))
    encoded = encode_report(decode_report(SEED))
    assert encoded == json.dumps(json.loads(SEED), separators=(",", ":")).encode()
    assert list(json.loads(encoded)) == [
        "schema_version",
        "client_id",
        "reported_at",
        "intent_id",
        "tv_state",
        "since",
        "detail",
    ]


def test_built_reports_are_schema_valid_and_round_trip() -> None:
    """detail is optional; a long one is cut to 200 characters; a null intent_id is fine."""
    for detail in (None, "x" * 500):
        report = build_report(
            client_id="lobby-1", reported_at=T, intent_id=None, tv_state="unknown", since=T, detail=detail
        )
        document = json.loads(encode_report(report))
        VALIDATOR.validate(document)
        assert decode_report(encode_report(report)) == report
    assert report.detail == "x" * 200
    assert report.reported_at == "2027-03-29T05:30:02Z"


def test_a_later_minor_version_with_new_fields_still_decodes() -> None:
    future = json.loads(SEED) | {"schema_version": "1.4", "brightness": 80}
    VALIDATOR.validate(future)
    assert decode_report(json.dumps(future)).tv_state == "on"


def test_a_built_report_drops_nuls_from_its_detail() -> None:
    report = build_report(
        client_id="c1", reported_at=T, intent_id=None, tv_state="on", since=T, detail="a\x00b"
    )
    assert report.detail == "ab"
    assert decode_report(encode_report(report)).detail == "ab"


def test_detail_may_be_absent() -> None:
    document = json.loads(SEED)
    del document["detail"]
    VALIDATOR.validate(document)
    assert decode_report(json.dumps(document)).detail is None


@pytest.mark.parametrize(
    "change",
    [
        {"reported_at": "2027-03-29T05:30:02+00:00"},
        {"reported_at": "2027-03-29T05:30:02.500Z"},
        {"since": "2027-03-29T07:30:01+02:00"},
        {"schema_version": "2.0"},
        {"tv_state": "standby"},
        {"client_id": "lobby/1"},
        {"client_id": ""},
        {"intent_id": "not-a-uuid"},
        {"detail": "x" * 201},
        {"detail": "bad\x00detail"},  # PostgreSQL's text refuses NUL: one would fail its whole batch
        {"tv_state": None},
    ],
)
def test_schema_and_decoder_reject_non_v1_reports(change: dict[str, Any]) -> None:
    bad = json.loads(SEED) | change
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(bad)
    with pytest.raises(InvalidReport):
        decode_report(json.dumps(bad))


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe garbage",
        b"",
        b"null",
        b"[]",
        b'{"schema_version": "1.0"}',
        json.dumps(json.loads(SEED) | {"since": "2027-03-29T05:30:03Z"}).encode(),  # after reported_at
        json.dumps(json.loads(SEED) | {"reported_at": "2027-02-31T05:30:02Z"}).encode(),  # no such day
    ],
)
def test_decoder_rejects_garbage_and_impossible_reports_in_one_line(data: bytes) -> None:
    with pytest.raises(InvalidReport) as raised:
        decode_report(data)
    assert "\n" not in str(raised.value)
    assert str(raised.value).startswith("invalid report")


def test_reports_over_4_kb_are_rejected_before_decoding() -> None:
    document = json.loads(SEED) | {"padding": "x" * MAX_REPORT_BYTES}
    with pytest.raises(InvalidReport, match="at most 4096"):
        decode_report(json.dumps(document))
    fits = json.loads(SEED) | {"padding": ""}
    fits["padding"] = "x" * (MAX_REPORT_BYTES - len(json.dumps(fits)))
    assert len(json.dumps(fits)) == MAX_REPORT_BYTES
    assert decode_report(json.dumps(fits)).client_id == "lobby-1"


def test_build_refuses_since_after_reported_at() -> None:
    with pytest.raises(InvalidReport):
        build_report(client_id="c", reported_at=T, intent_id=None, tv_state="on", since=T.replace(second=3))


def test_schema_report_prints_the_report_json_schema() -> None:
    result = CliRunner().invoke(cli, ["schema", "--report"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == report_schema()
    assert json.loads(result.stdout) != json.loads(CliRunner().invoke(cli, ["schema"]).stdout)
