"""An SQLite ledger on a disk that fills up (a tmpfs of the test's own).

Refreshes go on from memory, each episode is one error line (and one line when it
ends), and recording resumes, at the boundary's instant, once the disk is writable.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger, TargetRef, Window
from ledger.values import floor_second, format_instant
from projections.queries import replay_rows
from publisher.daemon import Daemon, RunSettings
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, wait_for
from tests.publisher.helpers import LogCapture, fast, make_log, running

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of our own (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk` with one file (deleted to free the disk again)."""
    filler = disk / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def acked(capture: LogCapture, **match: Any) -> list[dict[str, Any]]:
    return [
        r
        for r in capture.records("publish")
        if r["result"] == "acked" and all(r[k] == v for k, v in match.items())
    ]


def _episode(ledger: Ledger, mosquitto: Mosquitto, break_it: Any, mend: Any) -> tuple[LogCapture, float]:
    start = floor_second(datetime.now(UTC)) + timedelta(seconds=3)
    ledger.add_client("c1", None, ME)
    ledger.add_event("e1", TargetRef("client", "c1"), Window(start, start + timedelta(hours=1)), ME)
    log, capture = make_log()
    with running(Daemon(ledger, mosquitto.config(), RunSettings(ttl=10, refresh=1), log=log, **fast())):
        wait_for(lambda: acked(capture, client_id="c1"), what="the first publish")
        break_it()
        wait_for(lambda: datetime.now(UTC) > start + timedelta(seconds=1), 10, "the boundary")
        refreshes = len(acked(capture, kind="refresh"))
        wait_for(lambda: len(acked(capture, kind="refresh")) >= refreshes + 3, 15, "refreshes from memory")
        assert not acked(capture, desired_state="on")  # not recorded, so not published
        mend()
        mended = time.monotonic()
        wait_for(lambda: acked(capture, desired_state="on"), 10, "the on once writable")
        took = time.monotonic() - mended
    rows = replay_rows(ledger, "c1")
    assert [(r["desired_state"], r["effective_at"]) for r in rows][-1] == ("on", format_instant(start))
    errors = [r for r in capture.records() if r.get("state") == "error"]
    assert len(errors) == 1, errors  # one line for the episode, however many retries failed
    assert capture.records("ledger")[-1]["state"] == "ok"
    return capture, took


def test_a_full_disk_keeps_refreshing_and_records_once_freed(tiny_disk: Path, mosquitto: Mosquitto) -> None:
    ledger = Ledger(f"sqlite:///{tiny_disk / 'ledger.db'}")
    filler: list[Path] = []
    try:
        _capture, took = _episode(
            ledger, mosquitto, lambda: filler.append(fill(tiny_disk)), lambda: filler[0].unlink()
        )
    finally:
        ledger.close()
    print(f"\nSQLite disk full: the on published {took:.2f} s after space was freed")
