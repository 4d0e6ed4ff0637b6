"""A reap's log lines are built and written LINES at a time, all of them, in publish order."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger import Ledger, Meta
from ledger.sync import parse_snapshot
from publisher import acks as module
from publisher.config import BrokerConfig
from publisher.daemon import Daemon, RunSettings
from tests.publisher.broker import Mosquitto
from tests.publisher.helpers import make_log


def test_a_settled_window_is_logged_in_pieces_of_lines(
    sqlite_ledger: Ledger, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "LINES", 8)
    clients = [f"c{i:03d}" for i in range(60)]
    fleet = {"clients": [{"client_id": c, "group_id": "g"} for c in clients]}
    sqlite_ledger.sync(parse_snapshot(json.dumps(fleet)), prune=False, now=datetime.now(UTC), meta=Meta("t"))
    log, capture = make_log()
    sizes: list[int] = []
    write_all = log.write_all

    def counted(records: list[tuple[str, dict[str, Any]]]) -> None:
        if any(event == "publish" for event, _ in records):
            sizes.append(len(records))
        write_all(records)

    log.write_all = counted  # type: ignore[method-assign]
    daemon = Daemon(sqlite_ledger, BrokerConfig.from_url(mosquitto.url), RunSettings(window=100), log=log)
    reaped: list[str] = []
    finish = daemon.acks._finish

    def noted(item: Any, now: datetime) -> None:
        reaped.append(item.name)
        finish(item, now)

    monkeypatch.setattr(daemon.acks, "_finish", noted)
    assert daemon.run_once() == []
    assert max(sizes) == 8  # a window of 60 settled, logged 8 lines at a time
    assert sum(sizes) == 60
    published = [r["client_id"] for r in capture.records("publish")]
    assert published == [name for name in reaped if name != "server"]  # in the order they settled
    assert sorted(published) == clients
