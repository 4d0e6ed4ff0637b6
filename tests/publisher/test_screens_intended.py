"""The screens the screens-by-match gauge counts (publisher.ingest): every client with a current
intent of this shard, not groups, not removed clients, not clients without an intent yet."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from ledger import Ledger
from ledger.names import group_of
from projections.projector import Projector
from projections.shard import Shard
from publisher.config import BrokerConfig
from publisher.ingest import observer_for
from publisher.observe import Observer
from publisher.settings import RunSettings
from tests.conftest import ME
from tests.publisher.helpers import make_log

T = datetime(2027, 3, 29, 5, 30, tzinfo=UTC)


def _counted(projector: Projector) -> list[tuple[str, str, datetime, int]]:
    log, _capture = make_log()
    observer = observer_for(
        projector.ledger,
        BrokerConfig(),
        RunSettings(),
        projector,
        CollectorRegistry(),
        log,
    )
    assert isinstance(observer, Observer)  # RunSettings() without report_process: in-process
    return sorted(observer.screens._intended())


def _names_rule(projector: Projector) -> list[tuple[str, str, datetime, int]]:
    """What `Projector.names()` gives, filtered as the gauge needs: the rule the count keeps."""
    out = []
    for name in projector.names():
        current = projector.current(name)
        if current is None or current.removed or group_of(name) is not None:
            continue
        f = current.fields
        out.append((name, f.desired_state, current.effective_at, f.grace_seconds))
    return sorted(out)


def test_the_gauge_counts_the_clients_with_an_intent_as_the_projectors_names_would(ledger: Ledger) -> None:
    for n in range(12):
        ledger.add_client(f"s{n:02d}", "lobby" if n % 2 else None, ME)
    whole = Projector(ledger, group_topics=True)
    whole.start(T)
    ledger.remove_client("s03", ME)
    ledger.add_client("late", None, ME)  # registered, no intent recorded yet
    whole.step(T)
    shards = [Projector(ledger, shard=Shard(i, 2)) for i in range(2)]
    for p in shards:
        p.start(T)
    for projector in (whole, *shards):
        assert _counted(projector) == _names_rule(projector)
    counted = [name for name, *_ in _counted(whole)]
    assert "s03" not in counted
    assert not any(group_of(name) for name in counted)
    assert len(_counted(shards[0])) + len(_counted(shards[1])) == len(counted)
    assert len(counted) >= 11


def test_a_resumed_projector_s_gauge_counts_as_its_names_would(ledger: Ledger) -> None:
    """Resumed from a checkpoint (the logs only, the schedule not folded yet), then completed."""
    for n in range(8):
        ledger.add_client(f"s{n:02d}", "lobby" if n % 2 else None, ME)
    first = Projector(ledger, group_topics=True)
    first.start(T)
    saved = first.checkpoint(T)
    assert saved is not None
    resumed = Projector(ledger, group_topics=True)
    assert resumed.resume(saved)
    assert resumed.partial
    assert _counted(resumed) == _names_rule(resumed) == _counted(first)
    resumed.complete()
    assert _counted(resumed) == _names_rule(resumed) == _counted(first)
