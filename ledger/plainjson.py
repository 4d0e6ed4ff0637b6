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

from ledger import events as ev
from ledger.events import new_event

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
            kind = type(domain_event)
            typed = _TYPED.get(kind)
            state = None if typed is None else typed(domain_event, instant)
            if state is None:
                state = _plain_state(domain_event, instant)
            if state is not None:
                # Built as the library's mapper builds its events: the instance dict at once
                # (the frozen dataclass's keyword init and per-field setattr cost more than the encoding).
                return new_event(
                    StoredEvent,
                    {
                        "originator_id": domain_event.originator_id,
                        "originator_version": domain_event.originator_version,
                        "topic": get_topic(kind),
                        "state": state,
                    },
                )
        return super().to_stored_event(domain_event)

    def _typed(self, domain_event: Any) -> bytes | None:
        """The state by the typed encoder of the event's class (None: none, or not its shape)."""
        typed = _TYPED.get(type(domain_event))
        return None if typed is None or self._instant is None else typed(domain_event, self._instant)

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
# boundary's thousands of events share theirs, and isoformat is much of encoding one.
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


# Typed encoders of the two events every first start writes for every target: the same bytes
# as `_plain_state` (the stored dict's keys, in its order), from a Struct instead of a dict copy
# checked value by value. Only for an event whose dict has exactly the keys in the order
# IntentLog builds them and whose values have the exact types; anything else is left to
# `_plain_state`.


class _Wrapped(msgspec.Struct):
    # The transcoder's wrapping of an instant: {"_type_": ..., "_data_": ...}.
    type_: str = msgspec.field(name="_type_")
    data: Any = msgspec.field(name="_data_")


class _IssuedState(msgspec.Struct):
    timestamp: _Wrapped
    seq: int
    intent_id: str
    effective_at: _Wrapped
    desired_state: str
    reason: str
    event_window: Any
    client_id: Any
    group_id: Any
    grace_seconds: int
    cause: Any


class _OpenedState(msgspec.Struct):
    timestamp: _Wrapped
    originator_topic: str
    client_id: Any
    group_id: Any


_IDS = ("originator_id", "originator_version")
_ISSUED_KEYS = _IDS + tuple(_IssuedState.__struct_fields__)
_OPENED_KEYS = _IDS + tuple(_OpenedState.__struct_fields__)
_NAME = (str, type(None))


def _issued_state(event: Any, instant: Transcoding) -> bytes | None:
    d = vars(event)
    if tuple(d) != _ISSUED_KEYS:
        return None
    ts, effective, window, cause = d["timestamp"], d["effective_at"], d["event_window"], d["cause"]
    if (
        type(ts) is not datetime
        or type(effective) is not datetime
        or type(d["seq"]) is not int
        or type(d["grace_seconds"]) is not int
        or type(d["intent_id"]) is not str
        or type(d["desired_state"]) is not str
        or type(d["reason"]) is not str
        or type(d["client_id"]) not in _NAME
        or type(d["group_id"]) not in _NAME
        or not (window is None or (type(window) is dict and _plain(window)))
        or type(cause) is not dict
        or not _plain(cause)
    ):
        return None
    name = instant.name
    state = _IssuedState(
        _Wrapped(name, _encoded(ts, instant)),
        d["seq"],
        d["intent_id"],
        _Wrapped(name, _encoded(effective, instant)),
        d["desired_state"],
        d["reason"],
        window,
        d["client_id"],
        d["group_id"],
        d["grace_seconds"],
        cause,
    )
    try:
        return _plain_encoder.encode(state)
    except (OverflowError, UnicodeEncodeError):  # ints beyond 64 bits, lone surrogates
        return None


def _opened_state(event: Any, instant: Transcoding) -> bytes | None:
    d = vars(event)
    ts, topic = d["timestamp"], d.get("originator_topic")
    if (
        tuple(d) != _OPENED_KEYS
        or type(ts) is not datetime
        or type(topic) is not str
        or type(d["client_id"]) not in _NAME
        or type(d["group_id"]) not in _NAME
    ):
        return None
    state = _OpenedState(_Wrapped(instant.name, _encoded(ts, instant)), topic, d["client_id"], d["group_id"])
    try:
        return _plain_encoder.encode(state)
    except UnicodeEncodeError:
        return None


# Class version 1 (no "class_version" key in the stored state): checked, not assumed.
_TYPED = {
    cls: encode
    for cls, encode in ((ev.IntentIssued, _issued_state), (ev.IntentLogOpened, _opened_state))
    if getattr(cls, "class_version", 1) == 1
}
