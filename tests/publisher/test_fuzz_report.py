"""Fuzzing screen reports: 10,000 generated payloads, each decoded or refused in one line, never a traceback.

What the decoder accepts re-encodes to a report that decodes to itself. A
sample goes through the daemon's ingestion (`Observer`) on a real SQLite
ledger: after every report it refuses, every row is as it was.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from ledger import Ledger
from ledger.errors import InvalidInput
from publisher.logs import EventLog
from publisher.observe import Observer
from publisher.report import MAX_REPORT_BYTES, decode_report, encode_report
from publisher.settings import DB_ERRORS
from tests.conftest import ME
from tests.ledger.test_fuzz_sync import dump

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
        assert message.startswith("invalid report: ")
        assert "\n" not in message
        assert "msgspec" not in message
        return
    assert len(data) <= MAX_REPORT_BYTES
    assert decode_report(encode_report(report)) == report


NOW = datetime(2026, 6, 1, 8, 0, 6, tzinfo=UTC)  # GOOD's reported_at is within the skew allowed


@pytest.fixture(scope="module")
def observer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Observer, Path, CollectorRegistry]:
    db = tmp_path_factory.mktemp("reports") / "ledger.db"
    ledger = Ledger(f"sqlite:///{db}")
    ledger.add_client("lobby-1", None, ME)
    registry = CollectorRegistry()
    seen = Observer(
        ledger, prefix="infoscreen", registry=registry, log=EventLog(io.StringIO()), errors=DB_ERRORS
    )
    return seen, db, registry


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(payloads)
def test_a_refused_report_leaves_the_database_byte_identical(
    observer: tuple[Observer, Path, CollectorRegistry], data: bytes
) -> None:
    seen, db, registry = observer

    def accepted() -> float:
        return registry.get_sample_value("intent_ledger_reports_total", {"result": "accepted"}) or 0.0

    before, count = dump(db), accepted()
    seen._on_report(None, None, SimpleNamespace(topic="infoscreen/lobby-1/power/state", payload=data))
    seen.tick(NOW)
    seen.close()  # writes what was accepted, now
    if accepted() == count:  # refused (or a duplicate): nothing stored
        assert dump(db) == before, "a refused report changed the database"
