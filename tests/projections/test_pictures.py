"""Timeline pictures: SVG and HTML that parse, one row per client, the right spans; Chromium renders."""

from __future__ import annotations

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
from ledger import Ledger, TargetRef, Window
from projections.pictures import render_html, render_svg, render_text, rows_for
from projections.projector import Projector
from tests.conftest import ME

T0 = datetime(2026, 3, 31, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


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
            "oops", TargetRef("client", "lobby-2"), "off", Window(at(11.25), at(11.5)), ME
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
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_html_report_is_self_contained_with_transition_tables(incident: Ledger) -> None:
    """One file: inline SVG, one transitions table per client, no external resources."""
    page = render_html(rows_for(incident, at(6), at(14), ["lobby-1", "lobby-2"]), at(6), at(14))
    parser = _Tags()
    parser.feed(page)
    tags = parser.tags
    assert [a.get("data-client") for t, a in tags if t == "table"] == ["lobby-1", "lobby-2"]
    assert sum(1 for t, _ in tags if t == "svg") == 1
    assert not any(a.get("src") or a.get("href") for _, a in tags)
    assert "not delivered" in page  # recorded by a projector alone: no daemon published them
    recorded = [
        e for c in ("lobby-1", "lobby-2") for e in incident.issued(c) if at(6) <= e.effective_at < at(14)
    ]
    assert sum(1 for t, _ in tags if t == "tr") == 2 + len(recorded)  # a header row per table


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
