"""Topic names: a shard's status topic is read back as the shard that wrote it."""

from __future__ import annotations

import pytest

from projections.shard import Shard
from publisher.topics import Topics, status_shard


@pytest.mark.parametrize(("index", "count"), [(0, 2), (1, 2), (3, 8)])
def test_a_shards_status_topic_names_that_shard(index: int, count: int) -> None:
    topic = Topics("infoscreen", Shard(index, count)).status
    assert status_shard("infoscreen", topic) == Shard(index, count)


@pytest.mark.parametrize(
    "topic",
    [
        "infoscreen/server/status",  # the unsharded server's: not a shard
        "infoscreen/server/2-of-2/status",  # no such shard
        "infoscreen/server/x-of-2/status",
        "infoscreen/server/1-2/status",
        "infoscreen/server/probe/0-of-2/status",
        "other/server/0-of-2/status",
        "infoscreen/server/0-of-2/status/extra",
    ],
)
def test_anything_else_is_no_shard(topic: str) -> None:
    assert status_shard("infoscreen", topic) is None
