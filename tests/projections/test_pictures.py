"""Timeline pictures: SVG and HTML that parse, one row per client, the right spans; Chromium renders."""

from __future__ import annotations

import itertools
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from cli.main import cli
from ledger import Ledger, Meta, TargetRef, Window
from projections.observations import ObservationLog, Run, Seen
from projections.pictures import Stretch, observed_stretches, render_html, render_svg, render_text, rows_for
from projections.projector import Projector
from tests.conftest import ME

T0 = datetime(2026, 3, 31, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"
OPS = Meta("ops", "maintenance window")


def at(h: float) -> datetime:
    return T0 + timedelta(hours=h)


@pytest.fixture
def incident(sqlite_ledger: Ledger) -> Ledger:
    """Two lobby screens, adjacent windows, one client override; intents recorded through the day."""
    with freeze_time(at(5)):
        sqlite_ledger.add_client("lobby-1", "lobby", ME)
        sqlite_ledger.add_client("lobby-2", "lobby", ME)
        sqlite_ledger.add_event("a", TargetRef("group", "lobby"), Window(at(8), at(9)), ME)
        sqlite_ledger.add_event("b", TargetRef("group", "lobby"), Window(at(9), at(10)), ME)
        sqlite_ledger.add_event("c", TargetRef("group", "lobby"), Window(at(11), at(12)), ME)
        sqlite_ledger.add_override(
            "oops", TargetRef("client", "lobby-2"), "off", Window(at(11.25), at(11.5)), OPS
        )
        projector = Projector(sqlite_ledger)
        projector.start(at(5))
    while (wake := projector.next_wakeup()) is not None and wake <= at(20):
        with freeze_time(wake):
            projector.step(wake)
    return sqlite_ledger


def spans(svg: ET.Element, client: str, state: str) -> int:
    (row,) = [g for g in svg.iter(f"{SVG}g") if g.get("data-client") == client]
    return sum(1 for r in row.iter(f"{SVG}rect") if r.get("class") == f"span {state}")


def test_svg_has_one_row_per_client_with_the_right_on_spans(incident: Ledger) -> None:
    """lobby-1: on 08-10 and 11-12 (two spans); lobby-2: the override splits 11-12 in two."""
    svg = ET.fromstring(render_svg(rows_for(incident, at(6), at(14), group="lobby"), at(6), at(14)))
    rows = [g.get("data-client") for g in svg.iter(f"{SVG}g") if g.get("class") == "row"]
    assert rows == ["lobby-1", "lobby-2"]
    assert spans(svg, "lobby-1", "on") == 2
    assert spans(svg, "lobby-2", "on") == 3
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "label"]
    assert incident.issued("lobby-1")[1].intent_id[:8] in labels


class _Tags(HTMLParser):
    """Start tags, and the text of each table's cells by the table's class."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: dict[tuple[str, str], int] = {}  # (class, client) -> data rows
        self.text: dict[tuple[str, str], str] = {}
        self._table: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        if tag in ("table", "p") and found.get("data-client"):
            self._table = (str(found.get("class")), str(found["data-client"]))
            self.rows[self._table] = -1 if tag == "table" else 0  # minus the header row
            self.text[self._table] = ""
        elif tag == "tr" and self._table:
            self.rows[self._table] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("table", "p"):
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._table:
            self.text[self._table] += data + " "


def parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


def test_html_report_is_self_contained_with_per_client_tables(incident: Ledger) -> None:
    """One file: inline SVG; per client the transitions, the windows and overrides with who
    set them and their note, the observed stretches; no external resources."""
    page = render_html(rows_for(incident, at(6), at(14), ["lobby-1", "lobby-2"]), at(6), at(14))
    parsed = parse(page)
    tags = parsed.tags
    assert [a.get("data-client") for t, a in tags if t == "table" and a.get("class") == "transitions"] == [
        "lobby-1",
        "lobby-2",
    ]
    assert sum(1 for t, _ in tags if t == "svg") == 1
    assert not any(a.get("src") or a.get("href") for _, a in tags)
    assert "not delivered" in page  # recorded by a projector alone: no daemon published them
    for client in ("lobby-1", "lobby-2"):
        recorded = [e for e in incident.issued(client) if at(6) <= e.effective_at < at(14)]
        assert parsed.rows[("transitions", client)] == len(recorded)
        assert parsed.rows[("items", client)] == 3 + (client == "lobby-2")  # a, b, c (+ oops)
        assert "none recorded" in parsed.text[("none observed", client)]  # no screen reported
    assert "maintenance window" in parsed.text[("items", "lobby-2")]  # the note, visible
    assert "ops" in parsed.text[("items", "lobby-2")]  # who set it


def test_empty_tables_say_none_recorded(incident: Ledger) -> None:
    """A range before anything happened: no transitions, no windows: "none recorded", and the
    picture's bands say so too."""
    rows = rows_for(incident, at(0), at(1), ["lobby-1"])
    parsed = parse(render_html(rows, at(0), at(1)))
    assert ("transitions", "lobby-1") not in parsed.rows
    for kind in ("none transitions", "none items", "none observed"):
        assert "none recorded" in parsed.text[(kind, "lobby-1")]
    svg = ET.fromstring(render_svg(rows, at(0), at(1)))
    texts = {t.get("class"): t.text for t in svg.iter(f"{SVG}text") if t.get("class")}
    assert texts["observed-empty"] == "no reports"
    assert [r.get("class") for r in svg.iter(f"{SVG}rect") if r.get("class", "").startswith("issued")] == [
        "issued empty"  # the first intent was issued at 05:00
    ]
    assert texts["issued-empty"] == "none recorded"


def test_three_bands_observed_unknown_hatched_and_a_legend(incident: Ledger) -> None:
    """Observed stretches are drawn in their own band, unknown with the hatch; the legend names
    every mark."""
    (row,) = rows_for(incident, at(6), at(14), ["lobby-1"])
    row.observed = [Stretch(at(6), at(8), "unknown", "no report yet"), Stretch(at(8), at(14), "on")]
    svg = ET.fromstring(render_svg([row], at(6), at(14)))
    observed = [r for r in svg.iter(f"{SVG}rect") if r.get("class", "").startswith("observed")]
    assert [(r.get("class"), r.get("fill")) for r in observed] == [
        ("observed unknown", "url(#unknown-hatch)"),
        ("observed on", "#2e7d32"),
    ]
    issued = [r.get("class") for r in svg.iter(f"{SVG}rect") if r.get("class", "").startswith("issued")]
    assert issued == ["issued off", "issued on", "issued off", "issued on", "issued off"]
    assert any(p.get("id") == "unknown-hatch" for p in svg.iter(f"{SVG}pattern"))
    (legend,) = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "legend"]
    words = " ".join(t.text or "" for t in legend.iter(f"{SVG}text"))
    for word in ("on", "off", "unknown", "event window", "override", "transition"):
        assert word in words


def test_labels_never_overlap(sqlite_ledger: Ledger) -> None:
    """Twenty transitions a minute apart in an eight-hour picture: the intent-id labels that are
    drawn do not overlap (two staggered lines), and event/override ids are written on the picture."""
    with freeze_time(at(5)):
        sqlite_ledger.add_client("busy", None, ME)
        sqlite_ledger.add_event("long", TargetRef("client", "busy"), Window(at(7), at(13)), ME)
        for k in range(10):
            start = at(8) + timedelta(minutes=2 * k)
            window = Window(start, start + timedelta(minutes=1))
            sqlite_ledger.add_override(f"o{k}", TargetRef("client", "busy"), "off", window, ME)
        projector = Projector(sqlite_ledger)
        projector.start(at(5))
    while (wake := projector.next_wakeup()) is not None and wake <= at(14):
        with freeze_time(wake):
            projector.step(wake)
    svg = ET.fromstring(render_svg(rows_for(sqlite_ledger, at(6), at(14), ["busy"]), at(6), at(14)))
    texts = list(svg.iter(f"{SVG}text"))
    for kind in ("label", "item-label"):
        drawn = [
            (float(t.get("y", 0)), float(t.get("x", 0)), len(t.text or ""))
            for t in texts
            if t.get("class") == kind
        ]
        assert drawn
        for (y1, x1, n1), (y2, x2, _) in itertools.pairwise(sorted(drawn)):
            if y1 == y2:
                assert x1 + n1 * 5.2 < x2, f"{kind} labels overlap at x={x1} and x={x2}"
    assert {t.text for t in texts if t.get("class") == "item-label"} >= {"long", "o0: off"}
    marks = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "transition"]
    assert len(marks) == 2 + 20  # every transition is marked, labelled or not


def test_text_view_and_cli(incident: Ledger, sqlite_url: str, tmp_path: Path) -> None:
    """The terminal view draws the same rows; the CLI writes files and refuses bad ranges."""
    text = render_text(rows_for(incident, at(6), at(14), group="lobby"), at(6), at(14), width=32)
    lobby2 = next(line for line in text.splitlines() if line.startswith("lobby-2"))
    assert "!" in lobby2
    assert "#" in lobby2
    runner = CliRunner()
    base = ["--db", sqlite_url, "timeline", "--group", "lobby", "--from", "2026-03-31T06:00:00Z"]
    out = tmp_path / "t.svg"
    assert runner.invoke(cli, [*base, "--to", "2026-03-31T14:00:00Z", "--svg", str(out)]).exit_code == 0
    ET.parse(out)
    bad = runner.invoke(cli, [*base, "--to", "2026-03-31T05:00:00Z"])
    assert bad.exit_code == 2
    assert len(bad.stderr.splitlines()) == 1


@pytest.mark.browser
def test_html_report_renders_in_headless_chromium(incident: Ledger, tmp_path: Path) -> None:
    """Chromium opens the report and paints it to a PNG of the requested size."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed (.ci/run installs it)"
    page = tmp_path / "incident.html"
    page.write_text(render_html(rows_for(incident, at(6), at(14), group="lobby"), at(6), at(14)))
    png = tmp_path / "incident.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={png}",
            "--window-size=1200,800",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1200, 800)
    assert len(data) > 20_000  # a blank page compresses to a few kB


def z(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_observed_stretches_follow_the_reports_and_go_unknown_when_stale() -> None:
    """Unknown before the first report; the reported state from its `since`; unknown from
    `stale` seconds after the last report of a run until the next run."""
    runs = [
        Run(z(at(8)), z(at(8) - timedelta(seconds=30)), "i1", "on", z(at(9)), 13),
        Run(z(at(11)), z(at(11)), "i2", "off", z(at(11)), 1),
    ]
    got = [(s.start, s.end, s.state) for s in observed_stretches(runs, at(7), at(12), stale=900)]
    assert got == [
        (at(7), at(8) - timedelta(seconds=30), "unknown"),
        (at(8) - timedelta(seconds=30), at(9.25), "on"),  # the last report at 09:00, + 900 s
        (at(9.25), at(11), "unknown"),
        (at(11), at(11.25), "off"),
        (at(11.25), at(12), "unknown"),
    ]
    assert [s.state for s in observed_stretches([], at(7), at(8))] == ["unknown"]


def test_rows_carry_what_the_screens_reported(incident: Ledger) -> None:
    """Reports stored by the ingestion are drawn in the observed band of their client."""
    log = ObservationLog(incident)
    for minute, state in ((0, "on"), (5, "on"), (10, "off")):
        t = z(at(8) + timedelta(minutes=minute))
        log.add(Seen("lobby-1", t, t if minute != 5 else z(at(8)), "i1", state, None, t + ".000"))
    log.flush()
    one, two = rows_for(incident, at(6), at(14), group="lobby")
    assert [(s.start, s.state) for s in one.observed] == [
        (at(6), "unknown"),
        (at(8), "on"),
        (at(8) + timedelta(minutes=10), "off"),
        (at(8) + timedelta(minutes=25), "unknown"),  # 900 s after the last report
    ]
    assert two.observed == []  # lobby-2 never reported: "no reports"


def test_report_stale_moves_the_unknown_stretch_of_the_observed_band(
    incident: Ledger, sqlite_url: str, tmp_path: Path
) -> None:
    """`timeline --report-stale S`, as `run` and `audit compliance` take it: unknown from S
    seconds after the last report, not 900."""
    log = ObservationLog(incident)
    t = z(at(8))
    log.add(Seen("lobby-1", t, t, "i1", "on", None, t + ".000"))
    log.flush()
    (row,) = rows_for(incident, at(6), at(14), clients=["lobby-1"], stale=1800)
    assert [(s.start, s.state) for s in row.observed] == [
        (at(6), "unknown"),
        (at(8), "on"),
        (at(8.5), "unknown"),  # 1800 s after the report
    ]
    base = ["--db", sqlite_url, "timeline", "--client", "lobby-1", "--from", "2026-03-31T06:00:00Z"]
    base += ["--to", "2026-03-31T14:00:00Z"]
    runner = CliRunner()
    pictures = []
    for stale in ("900", "1800"):
        out = tmp_path / f"t{stale}.svg"
        result = runner.invoke(cli, [*base, "--report-stale", stale, "--svg", str(out)])
        assert result.exit_code == 0, result.output
        pictures.append(out.read_text())
    assert pictures[0] != pictures[1]
    assert runner.invoke(cli, [*base, "--report-stale", "0"]).exit_code == 2
