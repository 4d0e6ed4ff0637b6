"""MQTT topic names: intents, the server status, the self-check's wildcards and probes.

An intent log's name (ledger.names: `c1` or `groups/lobby`) is the middle of its
topic: `{prefix}/c1/power/intent`, `{prefix}/groups/lobby/power/intent`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ledger.errors import InvalidInput
from ledger.names import log_name
from projections.shard import Shard

__all__ = ["Topics", "status_shard"]


@dataclass(frozen=True)
class Topics:
    """The topics of one daemon: its prefix and shard."""

    prefix: str
    shard: Shard

    def intent(self, name: str) -> str:
        """The retained intent topic of log `name`."""
        return f"{self.prefix}/{name}/power/intent"

    @property
    def status(self) -> str:
        """`{prefix}/server/status`, or `{prefix}/server/{i}-of-{n}/status` for one of n shards."""
        if self.shard.count == 1:
            return f"{self.prefix}/server/status"
        return f"{self.prefix}/server/{self.shard.index}-of-{self.shard.count}/status"

    @property
    def wildcards(self) -> list[str]:
        """Every client's and every group's intent topic."""
        return [self.intent("+"), self.intent(log_name(None, "+"))]

    def probe(self) -> str:
        """A fresh topic the self-check publishes to mark the end of the retained messages."""
        return f"{self.prefix}/server/probe/{uuid.uuid4().hex}"


def status_shard(prefix: str, topic: str) -> Shard | None:
    """The shard whose status `topic` is (`{prefix}/server/{i}-of-{n}/status`), else None."""
    head, tail = f"{prefix}/server/", "/status"
    if not (topic.startswith(head) and topic.endswith(tail)):
        return None
    index, sep, count = topic[len(head) : -len(tail)].partition("-of-")
    if not (sep and index.isdigit() and count.isdigit()):
        return None
    try:
        return Shard(int(index), int(count))
    except InvalidInput:
        return None
