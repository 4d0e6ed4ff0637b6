"""The mapper a ledger writes with: plain events encoded by msgspec into the stock bytes.

Public API of eventsourcing only (a `Mapper` subclass, the transcoder's registered
transcodings); reading is the stock mapper's, untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent, Transcoder, Transcoding
from eventsourcing.utils import get_topic

__all__ = ["PlainJsonMapper"]


class PlainJsonMapper(Mapper[UUID]):
    """Writes the very bytes the stock mapper writes, encoding plain events with msgspec.

    Plain: every field a str, int, bool, None, or a datetime (stored as the transcoder's
    registered datetime transcoding, wrapped at the top level), and lists and str-keyed
    dicts of the first four. Anything else (a snapshot, a nested instant, a float, a
    subclass of str), and a cipher or a compressor, takes the stock path.
    """

    def __init__(self, transcoder: Transcoder, compressor: Any = None, cipher: Any = None) -> None:
        super().__init__(transcoder, compressor=compressor, cipher=cipher)
        self._instant = _instant_transcoding(self)

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        instant = self._instant
        if instant is not None:
            state = _plain_state(domain_event, instant)
            if state is not None:
                return StoredEvent(
                    originator_id=domain_event.originator_id,
                    originator_version=domain_event.originator_version,
                    topic=get_topic(type(domain_event)),
                    state=state,
                )
        return super().to_stored_event(domain_event)


def _instant_transcoding(mapper: Mapper[UUID]) -> Transcoding | None:
    transcoder = mapper.transcoder
    if mapper.cipher or mapper.compressor or not isinstance(transcoder, JSONTranscoder):
        return None
    return transcoder.types.get(datetime)


_SCALARS = (str, int, bool, type(None))
_plain_encoder = msgspec.json.Encoder()
_class_versions: dict[type, int] = {}
# The encodings of the whole-second UTC instants seen last (effective instants, windows): a
# boundary's thousands of events share theirs, and isoformat is a tenth of encoding one.
# Equal UTC instants have equal encodings (another zone's equal instant would not).
_instants: dict[tuple[str, datetime], Any] = {}
_INSTANTS = 256
# The clock reading encoded last, by identity (the same object is the same instant).
_stamp: tuple[Any, Any, Any] = (None, None, None)


def _plain(value: Any) -> bool:
    # Loops, not all() over generators: this runs for every nested value of every event.
    kind = type(value)
    if kind is dict:
        for k, v in value.items():
            if type(k) is not str or (type(v) not in _SCALARS and not _plain(v)):
                return False
        return True
    if kind is list:
        return all(map(_plain, value))
    return kind in _SCALARS


def _plain_state(event: Any, instant: Transcoding) -> bytes | None:
    # The stock mapper's state: the event's dict without its id and version, then its
    # class version when above 1; instants as {"_type_": ..., "_data_": ...}.
    state = dict(vars(event))
    del state["originator_id"], state["originator_version"]
    for name, value in state.items():
        if type(value) in _SCALARS:
            continue
        if isinstance(value, datetime):
            state[name] = {"_type_": instant.name, "_data_": _encoded(value, instant)}
        elif not _plain(value):
            return None
    kind = type(event)
    class_version = _class_versions.get(kind)
    if class_version is None:
        class_version = _class_versions[kind] = getattr(kind, "class_version", 1)
    if class_version > 1:
        state["class_version"] = class_version
    try:
        return _plain_encoder.encode(state)
    except (OverflowError, UnicodeEncodeError):  # ints beyond 64 bits, lone surrogates
        return None


def _encoded(value: datetime, instant: Transcoding) -> Any:
    global _stamp
    if value.microsecond or value.tzinfo is not UTC:
        # A clock reading: the record instant of a chunk's events is one object, encoded once.
        held, by, encoded = _stamp
        if held is not value or by is not instant:
            encoded = instant.encode(value)
            _stamp = (value, instant, encoded)
        return encoded
    key = (instant.name, value)
    encoded = _instants.get(key)
    if encoded is None:
        if len(_instants) >= _INSTANTS:
            _instants.clear()
        encoded = _instants[key] = instant.encode(value)
    return encoded
