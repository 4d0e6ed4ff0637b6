"""A client's blocks spliced into its group's are the blocks of merging every window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.values import MAX_WINDOW, Policy, Window
from projections.merge import merge_blocks
from projections.splice import merged_with, uncapped

T0 = datetime(2026, 3, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def windows(max_minutes: int) -> st.SearchStrategy[list[Window]]:
    one = st.tuples(st.integers(0, 60 * 24 * 90), st.integers(1, max_minutes)).map(
        lambda p: Window(T0 + p[0] * MINUTE, T0 + (p[0] + p[1]) * MINUTE)
    )
    return st.lists(one, max_size=40)


policies = st.builds(
    Policy,
    pre_roll=st.sampled_from([0, 60, 600]),
    post_roll=st.sampled_from([0, 300, 900]),
    bridge_gap=st.sampled_from([0, 120, 3600]),
)


@settings(max_examples=400, deadline=None)
@given(
    group=st.one_of(windows(120), windows(MAX_WINDOW // MINUTE)),
    own=st.one_of(windows(240), windows(MAX_WINDOW // MINUTE)).filter(bool),
    policy=policies,
)
def test_spliced_blocks_are_the_merge_of_every_window(
    group: list[Window], own: list[Window], policy: Policy
) -> None:
    """Short windows, long ones that reach the 31-day cap, windows bridging blocks: the splice
    gives exactly `merge_blocks` of all of them, or None (the cap split a block: merge them all)."""
    group_blocks = merge_blocks(group, policy)
    expected = merge_blocks([*group, *own], policy)
    got = merged_with(group_blocks, own, policy)
    if got is None:  # only where the cap split a block
        assert not uncapped(group_blocks, policy) or not uncapped(expected, policy)
    else:
        assert got == expected


def test_a_window_between_two_blocks_bridges_them() -> None:
    """A client's window in the gap between two of its group's blocks joins both into one."""
    policy = Policy(pre_roll=0, post_roll=0, bridge_gap=600)
    group = [Window(T0, T0 + 60 * MINUTE), Window(T0 + 80 * MINUTE, T0 + 120 * MINUTE)]
    own = [Window(T0 + 65 * MINUTE, T0 + 75 * MINUTE)]
    group_blocks = merge_blocks(group, policy)
    assert len(group_blocks) == 2
    got = merged_with(group_blocks, own, policy)
    assert got == merge_blocks([*group, *own], policy)
    assert got is not None
    assert len(got) == 1
