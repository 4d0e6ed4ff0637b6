"""audit compliance against hand-computed timelines: the pure fold, then on each store.

The day: the intent is off until 11:00, on 11:00-13:00 (an event), off after;
grace 30 s. The audit covers 10:00-14:00 (14,400 s, 7,200 of them on). Six
screens report every 300 s (a report on every change):

- obeys:    off; on at 11:00:01 (reported 11:00:02); off at 13:00:30 (in grace).
- never_on: off all day, though it names the on intent.
- silent:   never reports.
- stays_on: on since 08:00, all day.
- stale:    obeys until its last report at 11:55:02; unknown from 12:10:02.
- blind:    reports every 300 s that it cannot tell.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from click.testing import CliRunner
from freezegun import freeze_time

from cli.main import cli
from ledger import Ledger, TargetRef, Window
from ledger.values import format_instant
from projections import audit
from projections.compliance import Intended, compliance, fleet_totals, observed_at, to_epoch
from projections.delivery import delivery
from projections.observations import TABLES, ObservationLog, Run, Seen
from projections.observed import compliance_report
from projections.projector import Projector
from projections.readmodel import ReadModel
from tests.conftest import ME

DAY = datetime(2026, 3, 31, tzinfo=UTC)
SCREENS = ("obeys", "never_on", "silent", "stays_on", "stale", "blind")


def at(text: str) -> datetime:
    h, m, *s = (int(p) for p in text.split(":"))
    return DAY + timedelta(hours=h, minutes=m, seconds=s[0] if s else 0)


def e(text: str) -> int:
    return int(at(text).timestamp())


EXPECTED: dict[str, dict[str, Any]] = {
    "obeys": {
        "scheduled_on_s": 7200,
        "observed_on_s": 7199,
        "unscheduled_on_s": 0,
        "unknown_s": 0,
        "coverage": 0.9999,
        "mismatches": [("11:00:00", "11:00:01", "on", "off")],
    },
    "never_on": {
        "scheduled_on_s": 7200,
        "observed_on_s": 0,
        "unscheduled_on_s": 0,
        "unknown_s": 0,
        "coverage": 0.0,
        "mismatches": [("11:00:00", "13:00:00", "on", "off")],
    },
    "silent": {
        "scheduled_on_s": 7200,
        "observed_on_s": 0,
        "unscheduled_on_s": 0,
        "unknown_s": 14400,
        "coverage": 0.0,
        "mismatches": [],
    },
    "stays_on": {
        "scheduled_on_s": 7200,
        "observed_on_s": 7200,
        "unscheduled_on_s": 3600 + 3570,
        "unknown_s": 0,
        "coverage": 1.0,
        "mismatches": [("10:00:00", "11:00:00", "off", "on"), ("13:00:30", "14:00:00", "off", "on")],
    },
    "stale": {
        "scheduled_on_s": 7200,
        "observed_on_s": 4201,  # 11:00:01 .. 12:10:02
        "unscheduled_on_s": 0,
        "unknown_s": 6598,  # 12:10:02 .. 14:00
        "coverage": 0.5835,
        "mismatches": [("11:00:00", "11:00:01", "on", "off")],
    },
}
EXPECTED["blind"] = EXPECTED["silent"]  # a screen that cannot tell says as little as a silent one
FLEET = {
    "clients": 6,
    "scheduled_on_s": 43200,
    "observed_on_s": 18600,
    "unscheduled_on_s": 7170,
    "unknown_s": 35398,
    "coverage": 0.4306,
}

# Per screen: the changes it reports (first reported_at, since, tv_state, names the on intent)
# and when it stops reporting; between changes it reports every 300 s.
CHANGES: dict[str, tuple[list[tuple[str, str, str, bool]], str]] = {
    "obeys": (
        [
            ("09:00:00", "09:00:00", "off", False),
            ("11:00:02", "11:00:01", "on", True),
            ("13:00:31", "13:00:30", "off", False),
        ],
        "14:00:00",
    ),
    "never_on": (
        [("09:00:00", "09:00:00", "off", False), ("11:00:02", "09:00:00", "off", True)],
        "14:00:00",
    ),
    "silent": ([], "14:00:00"),
    "stays_on": ([("09:00:00", "08:00:00", "on", False)], "14:00:00"),
    "stale": (
        [("09:00:00", "09:00:00", "off", False), ("11:00:02", "11:00:01", "on", True)],
        "11:55:02",
    ),
    "blind": ([("09:00:00", "09:00:00", "unknown", False)], "14:00:00"),
}


def reports_of(screen: str, on_id: str | None = None, off_id: str | None = None) -> list[Seen]:
    """Every report the screen sends: one per change, then every 300 s until the next."""
    changes, until = CHANGES[screen]
    seen = []
    for i, (first, since, state, names_on) in enumerate(changes):
        stop = at(changes[i + 1][0]) if i + 1 < len(changes) else at(until) + timedelta(seconds=1)
        t = at(first)
        while t < stop:
            stamp = format_instant(t)
            seen.append(
                Seen(
                    screen,
                    stamp,
                    format_instant(at(since)),
                    on_id if names_on else off_id,
                    state,
                    None,
                    stamp,
                )
            )
            t += timedelta(seconds=300)
    return seen


def runs_of(screen: str) -> list[Run]:
    """The runs those reports make (as the observation tables keep them)."""
    runs: list[Run] = []
    for report in reports_of(screen):
        last = runs[-1] if runs else None
        if last is not None and (last.intent_id, last.tv_state) == (report.intent_id, report.tv_state):
            runs[-1] = Run(last.started_at, last.since, last.intent_id, last.tv_state, report.reported_at, 0)
        else:
            runs.append(
                Run(
                    report.reported_at, report.since, report.intent_id, report.tv_state, report.reported_at, 0
                )
            )
    return runs


INTENDED = [
    Intended(e("09:00"), "off", "no_active_event", 30),
    Intended(e("11:00"), "on", "event_window_active", 30),
    Intended(e("13:00"), "off", "no_active_event", 30),
]


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **{
            k: row[k]
            for k in ("scheduled_on_s", "observed_on_s", "unscheduled_on_s", "unknown_s", "coverage")
        },
        "mismatches": [
            (m["start"][11:19], m["end"][11:19], m["intended"], m["observed"]) for m in row["mismatches"]
        ],
    }


@pytest.mark.parametrize("screen", SCREENS)
def test_the_fold_gives_the_hand_computed_figures(screen: str) -> None:
    result = compliance(screen, INTENDED, runs_of(screen), e("10:00"), e("14:00"))
    assert _figures(result.as_dict()) == EXPECTED[screen]


def test_fleet_totals_add_up_and_coverage_is_of_the_totals() -> None:
    rows = [compliance(s, INTENDED, runs_of(s), e("10:00"), e("14:00")) for s in SCREENS]
    assert fleet_totals(rows) == FLEET
    assert fleet_totals([])["coverage"] is None


def test_grace_counts_only_after_on_to_off_and_only_its_seconds() -> None:
    """On 60 s past an on -> off with grace 30: 30 s unscheduled; an off -> off gives no grace."""
    intended = [
        Intended(e("10:00"), "on", "event_window_active", 30),
        Intended(e("11:00"), "off", "no_active_event", 30),
        Intended(e("12:00"), "off", "client_override", 30),
    ]
    runs = [
        Run("2026-03-31T10:00:00Z", "2026-03-31T10:00:00Z", None, "on", "2026-03-31T11:00:00Z", 1),
        Run("2026-03-31T11:01:00Z", "2026-03-31T11:01:00Z", None, "off", "2026-03-31T11:55:00Z", 1),
        Run("2026-03-31T12:00:00Z", "2026-03-31T12:00:00Z", None, "on", "2026-03-31T12:55:00Z", 1),
    ]
    result = compliance("c", intended, runs, e("10:00"), e("13:00"))
    assert (result.scheduled_on_s, result.observed_on_s) == (3600, 3600)
    assert result.unscheduled_on_s == 30 + 3600
    assert result.mismatches[0][:2] == (e("11:00:30"), e("11:01"))


def test_a_client_is_audited_only_while_it_has_an_intent_and_is_registered() -> None:
    """Before its first intent and after its removal, nothing counts (not even unknown)."""
    intended = [
        Intended(e("11:00"), "on", "event_window_active", 30),
        Intended(e("12:00"), "off", "client_deregistered", 30),
    ]
    result = compliance("c", intended, [], e("10:00"), e("14:00"))
    assert (result.scheduled_on_s, result.unknown_s, result.coverage) == (3600, 3600, 0.0)


def test_observed_state_rules_since_staleness_and_unknown() -> None:
    """since reaches back; silence turns unknown after `stale` s until the next report."""
    runs = [
        Run("2026-03-31T10:05:00Z", "2026-03-31T10:00:00Z", None, "on", "2026-03-31T10:05:00Z", 1),
        Run("2026-03-31T11:00:00Z", "2026-03-31T10:30:00Z", None, "off", "2026-03-31T11:00:00Z", 1),
    ]
    assert observed_at(runs, e("09:59:59")) == "unknown"
    assert observed_at(runs, e("10:02")) == "on"  # reported at 10:05: on since 10:00
    assert observed_at(runs, e("10:19:59")) == "on"
    assert observed_at(runs, e("10:20")) == "unknown"  # 900 s after 10:05, until 11:00
    assert observed_at(runs, e("10:45")) == "unknown"
    assert observed_at(runs, e("10:45"), stale=3600) == "off"  # the 11:00 report: off since 10:30
    assert observed_at(runs, e("11:00")) == "off"
    assert observed_at(runs, e("11:15")) == "unknown"
    assert to_epoch("2026-03-31T10:00:00Z") == e("10:00") == to_epoch("2026-03-31T12:00:00+02:00")
    with pytest.raises(ValueError, match="without an offset"):
        to_epoch("2026-03-31T10:00:00")  # never read in the host's zone


# On each store: the same day through the projector, the observation writer and the query.


def _day(ledger: Ledger) -> dict[str, dict[str, str]]:
    with freeze_time(at("08:00")):
        for screen in SCREENS:
            ledger.add_client(screen, "lobby", ME)
        ledger.add_client("elsewhere", "hall", ME)
        ledger.add_event("show", TargetRef("group", "lobby"), Window(at("11:00"), at("13:00")), ME)
    projector = Projector(ledger)
    with freeze_time(at("09:00")):
        projector.start(at("09:00"))
    for boundary in ("11:00", "13:00"):
        with freeze_time(at(boundary)):
            projector.step(at(boundary))
    ids = {}
    for screen in SCREENS:
        issued = ledger.issued(screen)
        ids[screen] = {"on": issued[1].intent_id, "off": issued[0].intent_id}
    return ids


def _store(ledger: Ledger, ids: dict[str, dict[str, str]], split_after: int = 900) -> ObservationLog:
    writer = ObservationLog(ledger, split_after)
    for screen in SCREENS:
        for report in reports_of(screen, ids[screen]["on"], ids[screen]["off"]):
            writer.add(report)
            if report.reported_at.endswith("0:00Z"):  # written in several batches
                writer.flush(limit=2)
    writer.flush()
    assert writer.pending() == 0
    return writer


def test_audit_compliance_on_each_store_matches_the_hand_computed_figures(ledger: Ledger) -> None:
    ids = _day(ledger)
    _store(ledger, ids)
    report = compliance_report(ledger, at("10:00"), at("14:00"), group_id="lobby")
    assert (report["from"], report["to"]) == ("2026-03-31T10:00:00Z", "2026-03-31T14:00:00Z")
    assert {row["client_id"]: _figures(row) for row in report["clients"]} == EXPECTED
    assert report["fleet"] == FLEET
    everyone = compliance_report(ledger, at("10:00"), at("14:00"))
    assert [r["client_id"] for r in everyone["clients"]] == sorted([*SCREENS, "elsewhere"])
    (one,) = compliance_report(ledger, at("10:00"), at("14:00"), clients=["stale"])["clients"]
    assert _figures(one) == EXPECTED["stale"]


def test_report_stale_moves_the_unknown_stretch(ledger: Ledger) -> None:
    ids = _day(ledger)
    _store(ledger, ids)
    (row,) = compliance_report(ledger, at("10:00"), at("14:00"), clients=["stale"], stale=1800)["clients"]
    assert (row["observed_on_s"], row["unknown_s"]) == (4201 + 900, 6598 - 900)


def test_the_cli_prints_the_json_shape_and_a_readable_table(ledger: Ledger, db_url: str) -> None:
    ids = _day(ledger)
    _store(ledger, ids)
    args = [
        "--db",
        db_url,
        "audit",
        "compliance",
        "--from",
        "2026-03-31T10:00:00Z",
        "--to",
        "2026-03-31T14:00:00Z",
    ]
    result = CliRunner().invoke(cli, [*args, "--group", "lobby", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert set(answer) >= {"from", "to", "clients", "fleet"}
    assert set(answer["clients"][0]) == {
        "client_id",
        "scheduled_on_s",
        "observed_on_s",
        "unscheduled_on_s",
        "unknown_s",
        "coverage",
        "mismatches",
    }
    never_on = next(c for c in answer["clients"] if c["client_id"] == "never_on")
    assert never_on["mismatches"] == [
        {
            "start": "2026-03-31T11:00:00Z",
            "end": "2026-03-31T13:00:00Z",
            "intended": "on",
            "observed": "off",
        }
    ]
    text = CliRunner().invoke(cli, [*args, "--client", "obeys", "--client", "silent"])
    assert text.exit_code == 0, text.output
    assert "coverage 49.99%" in text.stdout
    obeys = next(line.split() for line in text.stdout.splitlines() if line.startswith("obeys "))
    assert obeys[5].endswith("%")  # a screen's coverage as the fleet's, not a share
    assert "mismatches:" in text.stdout
    for bad in (["--all", "--group", "lobby"], []):
        assert CliRunner().invoke(cli, [*args, *bad]).exit_code == 2
    backwards = ["--db", db_url, "audit", "compliance", "--all", "--from", "2026-03-31T14:00:00Z"]
    assert CliRunner().invoke(cli, [*backwards, "--to", "2026-03-31T10:00:00Z"]).exit_code == 2
    unknown = CliRunner().invoke(cli, [*args, "--client", "nobody"])
    assert unknown.exit_code == 2
    assert "nobody" in unknown.output
    assert CliRunner().invoke(cli, [*args, "--group", "nogroup"]).exit_code == 2


def test_delivery_gains_followed_and_matched_and_fleet_gains_observed(ledger: Ledger) -> None:
    ids = _day(ledger)
    _store(ledger, ids)
    on = {t["intent_id"]: t for t in delivery(ledger, "obeys")["transitions"]}[ids["obeys"]["on"]]
    assert (on["followed_at"], on["matched_at"]) == ("2026-03-31T11:00:02Z", "2026-03-31T11:00:02Z")
    never = delivery(ledger, "never_on")["transitions"][1]
    assert (never["followed_at"], never["matched_at"]) == ("2026-03-31T11:00:02Z", None)
    rows = {r["client_id"]: r["observed"] for r in audit.fleet_at(ledger, at("12:30"), "lobby")}
    assert rows == {
        "obeys": "on",
        "never_on": "off",
        "silent": "unknown",
        "stays_on": "on",
        "stale": "unknown",
        "blind": "unknown",
    }


def test_observations_survive_projections_rebuild(ledger: Ledger, db_url: str) -> None:
    ids = _day(ledger)
    _store(ledger, ids)
    before = compliance_report(ledger, at("10:00"), at("14:00"), group_id="lobby")
    result = CliRunner().invoke(cli, ["--db", db_url, "projections", "rebuild"])
    assert result.exit_code == 0, result.output
    assert compliance_report(ledger, at("10:00"), at("14:00"), group_id="lobby") == before
    assert ReadModel(ledger).position() == ledger.max_notification_id()


def test_a_read_model_from_before_the_grace_column_is_read_again(ledger: Ledger) -> None:
    _day(ledger)
    ReadModel(ledger).catch_up()
    engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE audit_transitions DROP COLUMN grace_seconds")
    model = ReadModel(ledger)
    assert model.position() == 0
    model.catch_up()
    (row,) = compliance_report(ledger, at("10:00"), at("14:00"), clients=["silent"])["clients"]
    assert _figures(row) == EXPECTED["silent"]


def test_read_only_commands_create_no_observation_tables(ledger: Ledger, db_url: str, tmp_path: Path) -> None:
    """A ledger no daemon has observed: every read answers "no observations" and creates nothing."""
    _day(ledger)
    engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
    span = ["--from", "2026-03-31T10:00:00Z", "--to", "2026-03-31T14:00:00Z"]
    runner = CliRunner()
    for args in (
        ["audit", "compliance", "--all", *span, "--json"],
        ["audit", "delivery", "obeys"],
        ["audit", "fleet", "--at", "2026-03-31T12:30:00Z", "--json"],
        ["timeline", "--client", "obeys", *span, "--html", str(tmp_path / "t.html")],
        ["timeline", "--group", "lobby", *span],
    ):
        result = runner.invoke(cli, ["--db", db_url, *args])
        assert result.exit_code == 0, (args, result.output)
    tables = set(sqlalchemy.inspect(engine).get_table_names())
    assert not tables & {t.name for t in TABLES}
    (row,) = compliance_report(ledger, at("10:00"), at("14:00"), clients=["obeys"])["clients"]
    assert (row["observed_on_s"], row["unknown_s"]) == (0, 14_400)
    assert {r["client_id"]: r["observed"] for r in audit.fleet_at(ledger, at("12:30"), "lobby")}["obeys"] == (
        "unknown"
    )
