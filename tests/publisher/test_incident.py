"""The incident review end to end: a real daemon and broker, then `audit why` and `audit delivery`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from cli.main import cli
from ledger import Ledger, Meta, TargetRef, Window
from projections import audit, delivery
from projections.pictures import render_html, rows_for
from projections.projector import Projector
from tests.conftest import ME
from tests.publisher.broker import Mosquitto
from tests.publisher.helpers import VirtualClock, drive, virtual_daemon

pytestmark = pytest.mark.usefixtures("daemon_sessions")  # each kind of broker session

T0 = datetime(2026, 3, 31, 6, tzinfo=UTC)


def at(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def test_dark_lobby_tv_during_the_assembly_is_explained_and_delivered(
    sqlite_ledger: Ledger, sqlite_url: str, mosquitto: Mosquitto
) -> None:
    """Off during 10:00-11:00 because of a mistaken client override; every transition was delivered."""
    clock = VirtualClock(T0)
    with freeze_time(T0):
        sqlite_ledger.add_client("lobby-1", "lobby", Meta("alice"))
        sqlite_ledger.add_event(
            "assembly", TargetRef("group", "lobby"), Window(at(4), at(5)), Meta("scheduler")
        )
    with freeze_time(at(3)):
        sqlite_ledger.add_override(
            "panel-test",
            TargetRef("client", "lobby-1"),
            "off",
            Window(at(3), at(6)),
            Meta("bob", "testing the panel, wrong screen"),
        )
    daemon, _ = virtual_daemon(sqlite_ledger, mosquitto, clock)
    drive(daemon, clock, at(8))

    answer = audit.why(sqlite_ledger, "lobby-1", at(4.25))
    assert (answer["desired_state"], answer["decided_by"]) == ("off", ["override panel-test"])
    assert answer["overrides"][0]["made_by"]["actor"] == "bob"
    assert answer["overrides"][0]["made_by"]["note"] == "testing the panel, wrong screen"

    report = delivery.delivery(sqlite_ledger, "lobby-1")
    assert [(t["desired_state"], t["reason"]) for t in report["transitions"]] == [
        ("off", "no_active_event"),
        ("off", "client_override"),
        ("off", "no_active_event"),
    ]
    assert all(t["first_acked_at"] and t["flags"] == [] for t in report["transitions"])
    assert report["failures"] == []
    assert 0 < report["largest_retained_age_seconds"] <= 300  # refreshed every ttl/2
    text = CliRunner().invoke(cli, ["--db", sqlite_url, "audit", "delivery", "lobby-1"]).stdout
    assert "client_override" in text
    assert "largest retained payload age" in text
    page = render_html(rows_for(sqlite_ledger, T0, at(8), ["lobby-1"]), T0, at(8))
    assert all(t["first_acked_at"] in page for t in report["transitions"])
    assert "not delivered" not in page


def test_transitions_nobody_published_are_flagged_missing(sqlite_ledger: Ledger) -> None:
    """Recorded but never acknowledged (no daemon published them): flagged `missing`."""
    with freeze_time(T0):
        sqlite_ledger.add_client("c1", None, ME)
        Projector(sqlite_ledger).start(T0)
    (row,) = delivery.delivery(sqlite_ledger, "c1")["transitions"]
    assert row["flags"] == ["missing"]
    assert row["first_acked_at"] is None
