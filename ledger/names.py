"""Names and ids: intent logs are named by a client's id or `groups/<group_id>`; ids are uuid5 of names.

The one place that knows the `groups/` rule (MQTT topics are derived from
these names in publisher.topics). Aggregate ids and intent ids are uuid5 of
natural keys in fixed namespaces, so they are found without an index and are
identical on every rebuild.
"""

from __future__ import annotations

from uuid import UUID, uuid5

__all__ = ["GROUPS", "INTENT_NAMESPACE", "NAMESPACE", "group_of", "intent_id_for", "log_name"]

NAMESPACE = UUID("3f0c2b8e-6a51-5d2e-9a7c-1b4d8e6f2a90")
INTENT_NAMESPACE = UUID("9c1e7a44-2f3b-5b8d-8e61-70a2d4c5b3f1")
GROUPS = "groups/"


def log_name(client_id: str | None, group_id: str | None) -> str:
    """The log of a client (`client_id`) or, with no client, of a group (`groups/<group_id>`)."""
    return client_id if client_id is not None else f"{GROUPS}{group_id}"


def group_of(name: str) -> str | None:
    """The group of a group log's name (None: the name is a client's)."""
    return name.removeprefix(GROUPS) if name.startswith(GROUPS) else None


def intent_id_for(name: str, seq: int) -> str:
    """`uuid5(INTENT_NAMESPACE, "{client_id}/{seq}")`, or `"groups/{group_id}/{seq}"`."""
    return str(uuid5(INTENT_NAMESPACE, f"{name}/{seq}"))
