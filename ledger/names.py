"""Names and ids: intent logs are named by a client's id or `groups/<group_id>`; ids are uuid5 of names.

The one place that knows the `groups/` rule (MQTT topics are derived from
these names in publisher.topics). Aggregate ids and intent ids are uuid5 of
natural keys in fixed namespaces, so they are found without an index and are
identical on every rebuild.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

__all__ = ["GROUPS", "INTENT_NAMESPACE", "NAMESPACE", "group_of", "intent_id_for", "log_name", "uuid5_of"]

NAMESPACE = UUID("3f0c2b8e-6a51-5d2e-9a7c-1b4d8e6f2a90")
INTENT_NAMESPACE = UUID("9c1e7a44-2f3b-5b8d-8e61-70a2d4c5b3f1")
GROUPS = "groups/"

_INTENT_SHA1 = hashlib.sha1(INTENT_NAMESPACE.bytes, usedforsecurity=False)
_SHA1 = hashlib.sha1(NAMESPACE.bytes, usedforsecurity=False)


def log_name(client_id: str | None, group_id: str | None) -> str:
    """The log of a client (`client_id`) or, with no client, of a group (`groups/<group_id>`)."""
    return client_id if client_id is not None else f"{GROUPS}{group_id}"


def group_of(name: str) -> str | None:
    """The group of a group log's name (None: the name is a client's)."""
    return name.removeprefix(GROUPS) if name.startswith(GROUPS) else None


def intent_id_for(name: str, seq: int) -> str:
    """`uuid5(INTENT_NAMESPACE, "{client_id}/{seq}")`, or `"groups/{group_id}/{seq}"`."""
    global _recent, _older
    key = (name, seq)
    found = _recent.get(key) or _older.get(key)
    if found is None:
        if len(_recent) >= _IDS_KEPT:
            _older, _recent = _recent, {}
        found = _recent[key] = _uuid5_str(_INTENT_SHA1, f"{name}/{seq}")
    return found


# The intent ids derived lately, in two generations: a published intent's id is derived again
# for its log line and its receipt once it is acknowledged, a window of publishes later.
# Bounded: the older generation is dropped when the recent one is full.
_recent: dict[tuple[str, int], str] = {}
_older: dict[tuple[str, int], str] = {}
_IDS_KEPT = 2_048


def uuid5_of(name: str) -> UUID:
    """`uuid.uuid5(NAMESPACE, name)`, the stamped digest given to UUID as bytes."""
    return UUID(bytes=_uuid5_bytes(_SHA1, name))


def _uuid5_str(namespace: hashlib._Hash, name: str) -> str:
    """`str(uuid.uuid5(ns, name))`, given `namespace` = sha1 fed with `ns.bytes`.

    The stdlib builds a UUID object (an int and its version arithmetic) only to
    format it; here the digest's bytes are stamped and formatted directly.
    """
    x = _uuid5_bytes(namespace, name).hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _uuid5_bytes(namespace: hashlib._Hash, name: str) -> bytes:
    h = namespace.copy()
    h.update(name.encode())
    d = bytearray(h.digest()[:16])
    d[6] = (d[6] & 0x0F) | 0x50  # version 5
    d[8] = (d[8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(d)
