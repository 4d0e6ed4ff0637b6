"""ledger.quickread: an SQLite file read with sqlite3 gives the very aggregates `Ledger` gives."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger, Meta, Recurrence, TargetRef, Window
from ledger.errors import ClientNotFound
from ledger.quickread import LedgerView, open_view
from ledger.topics import SCHEDULE_TOPICS
from tests.conftest import PG_URL

META = Meta("test")


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2030, 1, 1, hour, minute, tzinfo=UTC)


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url)
    lobby = TargetRef("group", "lobby")
    ledger.add_client("a1", "lobby", META)
    ledger.add_client("a2", None, META)
    ledger.add_client("a3", "lobby", META)
    ledger.remove_client("a3", META)
    ledger.add_event("e1", TargetRef("client", "a1"), Window(_at(8), _at(9)), META)
    ledger.move_event("e1", Window(_at(8, 15), _at(9)), META)
    ledger.add_event("e2", lobby, Window(_at(10), _at(11)), META)
    ledger.cancel_event("e2", META)
    ledger.add_override("o1", lobby, "off", Window(_at(8, 30), _at(8, 45)), META)
    ledger.set_policy({"pre_roll": 120, "grace_seconds": 45}, META)
    rule = Recurrence("Europe/Berlin", datetime(2030, 1, 2, 7), datetime(2030, 1, 2, 8), "FREQ=DAILY;COUNT=5")
    ledger.schedule_series("s1", lobby, rule, META)
    ledger.skip_series("s1", [date(2030, 1, 3)], META)
    ledger.close()
    return url


@pytest.fixture
def view(url: str) -> Iterator[LedgerView]:
    found = open_view(url)
    assert found is not None
    yield found
    found.close()


def _state(aggregate: Any) -> tuple[type, dict[str, Any]]:
    return type(aggregate), vars(aggregate)


def test_the_view_folds_the_same_aggregates_as_the_ledger(url: str, view: LedgerView) -> None:
    ledger = Ledger(url, create=False)
    try:
        expected = {k: _state(a) for k, a in ledger.aggregates(SCHEDULE_TOPICS).items()}
        assert {k: _state(a) for k, a in view.aggregates(SCHEDULE_TOPICS).items()} == expected
        assert len(expected) > 5
        assert _state(view.client("a1")) == _state(ledger.client("a1"))
        assert _state(view.client("a3")) == _state(ledger.client("a3"))
        assert _state(view.group("lobby")) == _state(ledger.group("lobby"))
        assert view.group("nobody") is None
        assert view.policy() == ledger.policy()
        assert view.policy().pre_roll == 120
    finally:
        ledger.close()


def test_an_unknown_client_is_the_ledgers_error(view: LedgerView) -> None:
    with pytest.raises(ClientNotFound, match="zz"):
        view.client("zz")


def test_what_the_view_cannot_read_is_left_to_the_ledger(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_ledger = tmp_path / "other.db"
    sqlite3.connect(not_a_ledger).execute("CREATE TABLE t (x)").connection.close()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite at all, " * 100)
    for other in (
        PG_URL,
        "sqlite://",
        f"sqlite:///{tmp_path / 'missing.db'}",
        f"sqlite:///{not_a_ledger}",
        f"sqlite:///{garbage}",
        f"{url}?timeout=5",
    ):
        assert open_view(other) is None, other
    monkeypatch.setenv("LEDGER_COMPRESSOR_TOPIC", "zlib")
    assert open_view(url) is None
