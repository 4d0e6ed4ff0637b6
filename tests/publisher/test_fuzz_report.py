"""Fuzzing screen reports: 10,000 generated payloads, each decoded or refused in one line, never a traceback.

The decoder writes nothing (a refused report cannot touch the ledger); what it
accepts re-encodes to a report that decodes to itself.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from publisher.report import MAX_REPORT_BYTES, decode_report, encode_report

pytestmark = pytest.mark.slow

GOOD: dict[str, Any] = {
    "schema_version": "1.0",
    "client_id": "lobby-1",
    "reported_at": "2026-06-01T08:00:05Z",
    "intent_id": "0b4e7f0c-1d2e-4f3a-8b9c-0d1e2f3a4b5c",
    "tv_state": "on",
    "since": "2026-06-01T08:00:00Z",
    "detail": None,
}

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(
        [
            "1.0",
            "1.7",
            "2.0",
            "on",
            "off",
            "unknown",
            "ON",
            "2026-06-01T08:00:00Z",
            "2026-02-30T08:00:00Z",
            "2026-06-01T08:00:00.5Z",
            "2026-06-01T08:00:00+02:00",
            "2027-06-01T08:00:00Z",
            "x" * 201,
            "lobby.1",
            "-bad",
        ]
    ),
    st.text(max_size=10),
)
mutations = st.dictionaries(st.sampled_from([*GOOD, "extra"]), values, max_size=3)
dropped = st.sets(st.sampled_from(list(GOOD)), max_size=2)


def _report(change: tuple[dict[str, Any], set[str]]) -> bytes:
    edits, removed = change
    body = {k: v for k, v in {**GOOD, **edits}.items() if k not in removed}
    return json.dumps(body).encode()


def _splice(edit: tuple[int, int, bytes]) -> bytes:
    at, cut, insert = edit
    raw = json.dumps(GOOD).encode()
    return raw[:at] + insert + raw[at + cut :]


payloads = st.one_of(
    st.tuples(mutations, dropped).map(_report),
    st.tuples(st.integers(0, 250), st.integers(0, 8), st.binary(max_size=6)).map(_splice),
    st.binary(max_size=64),
    st.integers(MAX_REPORT_BYTES - 200, MAX_REPORT_BYTES + 200).map(
        lambda n: json.dumps({**GOOD, "detail": None, "pad": "x" * max(0, n - 250)}).encode()
    ),
)


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(payloads)
def test_reports_decode_or_are_refused_in_one_line(data: bytes) -> None:
    try:
        report = decode_report(data)
    except InvalidInput as e:
        message = str(e)
        assert message.startswith("invalid report: ") and "\n" not in message
        assert "msgspec" not in message
        return
    assert len(data) <= MAX_REPORT_BYTES
    assert decode_report(encode_report(report)) == report
