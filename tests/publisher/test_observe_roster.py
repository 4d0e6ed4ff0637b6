"""Reports from clients the report process's roster does not know yet (publisher.roster, .undecided).

The Observer alone, its clock injected through `tick(now)` and the roster's
clock a fake one: a report from a client registered after the roster's last
read waits for the next read (never `unknown_client` because the roster
lagged), a flood of reports from unregistered screens costs one read a
second, and a screen's reports are classified in the order they came.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from ledger import Ledger
from projections.observation_reads import latest_reports
from publisher.observe import RESULTS
from publisher.roster import REREAD
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, wait_for
from tests.publisher.helpers import make_log, observer_on
from tests.publisher.test_observe import ERRORS, Screens, T, report
from tests.publisher.test_roster import Clock, Counted


@pytest.fixture
def screens(mosquitto: Mosquitto) -> Iterator[Screens]:
    s = Screens(mosquitto.port)
    yield s
    s.close()


def test_unknown_clients_wait_for_the_next_read_of_the_roster(
    ledger: Ledger, mosquitto: Mosquitto, screens: Screens
) -> None:
    ledger.add_client("lobby-1", None, ME)
    clock = Clock()
    roster = Counted(ledger, clock)
    roster.refresh()
    registry = CollectorRegistry()
    log, _capture = make_log()
    observer = observer_on(ledger, mosquitto, log, registry, errors=ERRORS, registered=roster.registered)
    observer.start()
    assert observer.link is not None
    wait_for(observer.link.subscribed.is_set, what="the SUBACK")

    def counts() -> dict[str, float]:
        value = registry.get_sample_value
        return {r: n for r in RESULTS if (n := value("intent_ledger_reports_total", {"result": r}) or 0)}

    def settle(done: Callable[[], bool], what: str) -> None:
        def ticked() -> bool:
            observer.tick(T)
            return done()

        wait_for(ticked, what=what)

    try:
        screens.send("ghost-0", report("ghost-0"))  # the first look is at once: unknown
        settle(lambda: counts() == {"unknown_client": 1}, "ghost-0")
        ledger.add_client("late", None, ME)  # after the roster's last read
        for i in range(1, 41):
            screens.send(f"ghost-{i}", report(f"ghost-{i}"))
        screens.send("late", report("late"))
        screens.send("late", report("late", T + timedelta(seconds=1), "off"))
        screens.send("lobby-1", report("lobby-1"))
        settle(lambda: counts().get("accepted") == 1, "lobby-1 accepted")
        settle(lambda: not observer.inbox(), "every report looked at")
        observer.tick(T)
        assert counts() == {"unknown_client": 1, "accepted": 1}  # the rest held: no read since
        assert roster.reads == 2
        clock.now += REREAD
        done = {"unknown_client": 41, "accepted": 3}
        settle(lambda: counts() == done, "the held reports classified")
        assert roster.reads == 3
    finally:
        observer.close()  # writes what it accepted
    engine = ledger.factory.datastore.engine  # type: ignore[attr-defined]
    assert latest_reports(engine)["late"]["tv_state"] == "off"  # both, in order
