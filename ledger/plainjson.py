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

__all__ = ["PlainJsonMapper", "SplitState"]

# (head, tail): a stored state is head + the JSON of its record instant's transcoding + tail.
SplitState = tuple[bytes, bytes]
# A stand-in record instant while a state is encoded ahead of its instant: its encoding is
# found and cut out (no schedule, window or cause is at the first microsecond of year 1).
_STAND_IN = datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC)


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

    @property
    def splits(self) -> bool:
        """Whether plain states are encoded here (and `split_state` may split them)."""
        return self._instant is not None

    def split_state(self, domain_event: Any) -> SplitState | None:
        """The stored state of `domain_event` encoded ahead of its `timestamp` (its value is
        ignored): `spliced` of it and an instant is the state `to_stored_event` writes for the
        event holding that instant. None: not plain (the stock path encodes it)."""
        if self._instant is None:
            return None
        probe = object.__new__(type(domain_event))
        object.__setattr__(probe, "__dict__", {**vars(domain_event), "timestamp": _STAND_IN})
        state = _plain_state(probe, self._instant)
        if state is None:
            return None
        cut = self.encoded_instant(_STAND_IN)
        head, found, tail = state.partition(cut)
        return (head, tail) if found and cut not in tail else None

    def encoded_instant(self, instant: datetime) -> bytes:
        """The JSON of `instant`'s transcoding, as a state holds it (one a chunk's record instant)."""
        assert self._instant is not None
        return _plain_encoder.encode(_encoded(instant, self._instant))


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
    if value.microsecond or value.tzinfo is not UTC:
        return instant.encode(value)  # a clock reading (a timestamp): seen once
    key = (instant.name, value)
    encoded = _instants.get(key)
    if encoded is None:
        if len(_instants) >= _INSTANTS:
            _instants.clear()
        encoded = _instants[key] = instant.encode(value)
    return encoded
