"""Names and ids: intent logs are named by a client's id or `groups/<group_id>`; ids are uuid5 of names.

The one place that knows the `groups/` rule (MQTT topics are derived from
these names in publisher.topics). Aggregate ids and intent ids are uuid5 of
natural keys in fixed namespaces, so they are found without an index and are
identical on every rebuild.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from typing import Any
from uuid import UUID, SafeUUID

__all__ = ["GROUPS", "INTENT_NAMESPACE", "NAMESPACE", "group_of", "intent_id_for", "log_name", "uuid5_of"]

NAMESPACE = UUID("3f0c2b8e-6a51-5d2e-9a7c-1b4d8e6f2a90")
INTENT_NAMESPACE = UUID("9c1e7a44-2f3b-5b8d-8e61-70a2d4c5b3f1")
GROUPS = "groups/"


def _sha1_of() -> Callable[[bytes], Any]:
    # CPython's built-in SHA-1 digests a short name in a fraction of the instructions OpenSSL's
    # takes (a context made and freed per digest); the same digest. hashlib's where it is absent.
    try:
        return importlib.import_module("_sha1").sha1  # type: ignore[no-any-return]
    except ImportError:  # pragma: no cover (other interpreters)
        return lambda data: hashlib.sha1(data, usedforsecurity=False)


_sha1 = _sha1_of()
_INTENT_NS = INTENT_NAMESPACE.bytes
_NS = NAMESPACE.bytes
# uuid.UUID(bytes=..., version=5) without its per-call checks: version 5, RFC 4122 variant.
_KEEP = ~(0xF000 << 64) & ~(0xC000 << 48)
_STAMP = (0x5000 << 64) | (0x8000 << 48)
_SAFE = SafeUUID.unknown
_new = object.__new__
_set = object.__setattr__


def log_name(client_id: str | None, group_id: str | None) -> str:
    """The log of a client (`client_id`) or, with no client, of a group (`groups/<group_id>`)."""
    return client_id if client_id is not None else f"{GROUPS}{group_id}"


def group_of(name: str) -> str | None:
    """The group of a group log's name (None: the name is a client's)."""
    return name.removeprefix(GROUPS) if name.startswith(GROUPS) else None


def intent_id_for(name: str, seq: int) -> str:
    """`uuid5(INTENT_NAMESPACE, "{client_id}/{seq}")`, or `"groups/{group_id}/{seq}"`."""
    # The stdlib builds a UUID object (an int and its version arithmetic) only to format it;
    # here the digest's bytes are stamped and formatted directly.
    d = bytearray(_sha1(_INTENT_NS + f"{name}/{seq}".encode()).digest()[:16])
    d[6] = (d[6] & 0x0F) | 0x50  # version 5
    d[8] = (d[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = d.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def uuid5_of(name: str) -> UUID:
    """`uuid.uuid5(NAMESPACE, name)`: the UUID its `__init__` would make of the stamped digest."""
    value = int.from_bytes(_sha1(_NS + name.encode()).digest()[:16], "big") & _KEEP | _STAMP
    made = _new(UUID)
    _set(made, "int", value)  # as UUID.__init__ sets them (a UUID is immutable)
    _set(made, "is_safe", _SAFE)
    return made
