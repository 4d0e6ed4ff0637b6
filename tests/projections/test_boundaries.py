"""Each target's next boundary, earliest first (projections.boundaries): pure logic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from projections.boundaries import Boundaries

T0 = datetime(2026, 4, 1, 8, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_the_earliest_live_boundary_comes_first_and_a_rescheduled_one_moves() -> None:
    b = Boundaries()
    b.schedule("a", at(10))
    b.schedule("b", at(5))
    assert b.next() == at(5)
    b.schedule("b", at(20))  # later: its old entry is stale
    assert b.next() == at(10)
    b.schedule("a", None)  # none any more
    assert b.next() == at(20)
    assert b.due == {"b": at(20)}


def test_pop_due_takes_what_is_due_by_now_once_in_order_and_leaves_the_rest() -> None:
    b = Boundaries({"a": at(3), "b": at(1), "c": at(9)})
    b.schedule("a", at(2))
    assert list(b.pop_due(at(5))) == [(at(1), "b"), (at(2), "a")]
    assert list(b.pop_due(at(5))) == []
    assert b.due == {"c": at(9)}
    assert b.next() == at(9)


def test_nothing_scheduled_has_no_next() -> None:
    b = Boundaries()
    assert b.next() is None
    b.schedule("a", at(1))
    b.schedule("a", None)
    assert b.next() is None
    assert list(b.pop_due(at(100))) == []


# A step: a take of what is due by a minute (an int), or a schedule (a name, a minute or None).
_STEPS = st.lists(
    st.one_of(
        st.integers(0, 50),
        st.tuples(st.sampled_from("abcde"), st.one_of(st.none(), st.integers(0, 50))),
    )
)


@given(_STEPS)
def test_it_agrees_with_a_plain_mapping_through_schedules_and_takes(
    steps: list[int | tuple[str, int | None]],
) -> None:
    """Schedules and takes mixed: a target taken and scheduled again (at the instant of a stale
    entry of its own, say) is taken once, when it is due again."""
    b, plain = Boundaries(), dict[str, datetime]()
    for step in steps:
        if isinstance(step, int):
            due = sorted((when, name) for name, when in plain.items() if when <= at(step))
            assert list(b.pop_due(at(step))) == due
            for _, name in due:
                del plain[name]
        else:
            name, minutes = step
            when = None if minutes is None else at(minutes)
            b.schedule(name, when)
            if when is None:
                plain.pop(name, None)
            else:
                plain[name] = when
        assert b.next() == min(plain.values(), default=None)
        assert b.due == plain
