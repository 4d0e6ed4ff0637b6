"""Payloads built ahead with a prepared boundary's transitions (`Projector.extra_of`, `built`), on
each store: given only for the very intent they were built for, once; a change landing after
they were built, or a chunk's failed write, leaves the targets it touched to be built at their
publish, as without the preparation."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

import pytest

from ledger import Ledger
from projections.projector import Projector
from publisher.payload import PayloadTemplate, build_payload, encode_payload, payload_template, stamped
from publisher.settings import DB_ERRORS
from tests.projections.test_prepared import changed_fleet, changes, prepare
from tests.projections.test_projector import LOBBY, at, clock  # noqa: F401 (the fixture)
from tests.projections.test_projector_chunks import CLIENTS, chunked, failing_ledger, fleet  # noqa: F401

TTL = 600


def templates(projector: Projector, names: list[str], now: datetime) -> dict[str, bytes]:
    """The payloads published from a template at `now`, by name (each checked against the
    payload built from the current intent then)."""
    out = {}
    for name in names:
        current = projector.current(name)
        assert current is not None
        template: PayloadTemplate | None = projector.built(name, current)
        if template is not None:
            data = stamped(template, now, TTL)[0]
            fields, intent_id = current.fields, current.intent_id
            assert data == encode_payload(
                build_payload(intent_id=intent_id, fields=fields, issued_at=now, ttl=TTL)
            )
            out[name] = data
    return out


@pytest.mark.usefixtures("clock")
def test_a_change_after_the_payloads_were_built_is_honoured(ledger: Ledger) -> None:
    """The targets a change landing after the preparation touched get no template (their
    transitions are issued anew); the others' templates are their payloads, given once."""
    projector = changed_fleet(ledger)
    projector.extra_of = payload_template
    prepare(projector, at(1) - timedelta(seconds=10))
    changes(ledger)
    chunked(projector, at(1), 3)
    names = [*CLIENTS, "c8"]
    given = templates(projector, names, at(1))
    assert sorted(given) == ["c1", "c2", "c4", "c6", "c8"]  # c3 moved, c5 overridden, c7 moved
    assert templates(projector, names, at(1)) == {}  # once


@pytest.mark.usefixtures("clock")
def test_a_failed_write_drops_the_payloads_built_for_it(
    failing_ledger: tuple[Ledger, Callable[[], AbstractContextManager[None]]],  # noqa: F811 (the fixture)
) -> None:
    """The second chunk's write fails: the templates of the first chunk (recorded) stay theirs,
    those of the failed chunk and of the one evaluated meanwhile are dropped; the retried step
    issues those anew, and their payloads are built at the publish."""
    ledger, failing = failing_ledger
    fleet(ledger)
    projector = Projector(ledger)
    projector.extra_of = payload_template
    projector.start(at(0))
    prepare(projector, at(1) - timedelta(seconds=10))
    assert [e.client_id for e in projector.step(at(1), 2)] == ["c1", "c2"]
    with failing(), pytest.raises(DB_ERRORS):
        projector.step(at(1), 2)
    assert sorted(projector._extras) == ["c1", "c2"]
    projector.step(at(1) + timedelta(seconds=5))
    assert sorted(templates(projector, CLIENTS, at(1))) == ["c1", "c2"]
    assert not projector._extras


@pytest.mark.usefixtures("clock")
def test_a_template_waits_while_its_chunk_is_not_recorded(ledger: Ledger) -> None:
    """While the chunk of a target is evaluated ahead and not recorded, its current intent is the
    one before: asking for it gives nothing and keeps the template for the recorded intent."""
    fleet(ledger)
    projector = Projector(ledger)
    projector.extra_of = payload_template
    projector.start(at(0))
    before = {c: projector.current(c) for c in CLIENTS}
    prepare(projector, at(1) - timedelta(seconds=10))
    projector.step(at(1), 2)  # c1, c2 recorded; c3, c4 evaluated ahead
    assert projector.pending
    for c in ("c3", "c4"):
        current = projector.current(c)
        assert current is before[c]
        assert current is not None
        assert projector.built(c, current) is None
    while projector.pending:
        projector.step(at(1), 2)
    assert sorted(templates(projector, CLIENTS, at(1))) == CLIENTS


@pytest.mark.usefixtures("clock")
def test_nothing_is_built_for_the_publisher_without_its_builder(ledger: Ledger) -> None:
    """A projector nobody publishes from (`extra_of` unset) holds no templates."""
    fleet(ledger)
    projector = Projector(ledger)
    projector.start(at(0))
    prepare(projector, at(1) - timedelta(seconds=10))
    chunked(projector, at(1), 3)
    assert not projector._extras
