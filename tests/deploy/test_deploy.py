"""deploy/: the alerting rules pass `promtool check rules`; rules and dashboard query real metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ledger import Ledger
from publisher.config import BrokerConfig
from publisher.daemon import Daemon

DEPLOY = Path(__file__).parents[2] / "deploy"
RULES = DEPLOY / "prometheus-rules.yml"
DASHBOARD = DEPLOY / "grafana-dashboard.json"
_METRIC = re.compile(r"\bintent_ledger_[a-z0-9_]+\b")


@pytest.fixture
def exported(sqlite_ledger: Ledger) -> set[str]:
    """Every sample name the daemon's registry can expose (counters' _total, histograms' _bucket...):
    its own metrics and those of the parts it composes (the screens' reports of issue 10)."""
    daemon = Daemon(sqlite_ledger, BrokerConfig.from_url("mqtt://127.0.0.1:1"))  # built, not run
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
    names: set[str] = set()
    for family in daemon.metrics.registry.collect():
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return names


def _rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def _dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


def test_promtool_accepts_the_rules() -> None:
    """`promtool check rules` (Debian package prometheus, installed by scripts/system-deps)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run scripts/system-deps (Debian package prometheus)"
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in checked.stdout


def test_the_rules_cover_what_an_operator_is_paged_for() -> None:
    """Daemon down, publish failures, old retained payloads, ledger lag, screens mismatched."""
    exprs = {rule["alert"]: rule["expr"] for rule in _rules()}
    assert 'up{job="intent-ledger"}' in exprs["IntentLedgerDaemonDown"]
    assert 'result="failed"' in exprs["IntentLedgerPublishFailures"]
    assert "intent_ledger_retained_payload_age_seconds > 300" in exprs["IntentLedgerRetainedPayloadOld"]
    assert "intent_ledger_ledger_lag_events" in exprs["IntentLedgerLedgerLag"]
    assert 'intent_ledger_screens{state="mismatch"}' in exprs["IntentLedgerScreensMismatched"]
    assert all(rule["annotations"]["summary"] for rule in _rules())


def test_rules_and_dashboard_query_only_metrics_the_daemon_exports(exported: set[str]) -> None:
    """A renamed metric breaks this test, not a silent alert or an empty panel."""
    known = exported
    used = {
        name
        for text in [r["expr"] for r in _rules()] + _dashboard_queries()
        for name in _METRIC.findall(text)
    }
    assert used - known == set()
    assert {"intent_ledger_publishes_total", "intent_ledger_publish_ack_latency_seconds_bucket"} <= used


def test_the_dashboard_shows_every_metric_the_daemon_exports(exported: set[str]) -> None:
    """Each exported family has a panel (counters' _created and histograms' _sum/_count aside)."""
    used = {name for text in _dashboard_queries() for name in _METRIC.findall(text)}
    families = {n for n in exported if not n.endswith(("_created", "_sum", "_count"))}
    histograms = {n.removesuffix("_bucket") for n in families if n.endswith("_bucket")}
    missing = {n for n in families if n not in used and n.removesuffix("_bucket") not in histograms}
    missing |= {h for h in histograms if f"{h}_bucket" not in used}
    assert missing == set()
