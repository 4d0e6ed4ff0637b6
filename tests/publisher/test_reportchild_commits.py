"""The report process's commits on SQLite do not wait for the disk; the daemon's still do."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy

from ledger import Ledger
from ledger.persistence import engine_of
from publisher.reportchild import relax_commits


def _synchronous(ledger: Ledger) -> int:
    with engine_of(ledger).connect() as conn:
        return int(conn.execute(sqlalchemy.text("PRAGMA synchronous")).scalar_one())


def test_the_report_process_commits_without_fsync_and_the_daemon_with(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    daemon = Ledger(url)
    daemon.max_notification_id()  # the daemon's first transaction puts the file in WAL mode
    reports = Ledger(url, create=False)
    try:
        reports.max_notification_id()  # a connection opened before: opened again, relaxed
        relax_commits(reports)
        assert _synchronous(reports) == 1  # NORMAL: WAL synced by checkpoints, not by commits
        assert _synchronous(daemon) == 2  # FULL, as before
    finally:
        reports.close()
        daemon.close()
