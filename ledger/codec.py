"""Typed decoders of stored event states: the library's mapper's result, read by msgspec.

eventsourcing's mapper decodes each record with `json.loads` and an object hook
for its instants, then builds the event from that dict. A msgspec decoder typed
with the event's own annotations reads the same bytes into the very same event
object: the same fields, in the order the mapper's dict has them (the order the
event's dataclass fields are stored in, then `originator_id` and
`originator_version`). A state it cannot read exactly (a field unknown to the
class or missing from it, a `class_version` to upcast) gives None, and the
caller asks the mapper. For the uncompressed, unencrypted ledgers we write.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import resolve_topic

from ledger import events as ev

__all__ = [
    "INSTANTS_KEPT",
    "UNREADABLE",
    "Reader",
    "decode_event",
    "decode_issued",
    "decode_issued_rows",
    "reader_of",
    "shared_instant",
]


class _Instant(msgspec.Struct):
    # eventsourcing's DatetimeAsISO: {"_type_": "datetime_iso", "_data_": "...+00:00"}.
    data: datetime = msgspec.field(name="_data_")


# Its annotation resolved now (msgspec keeps what it found): later, a test faking the clock
# may have replaced this module's `datetime`.
msgspec.json.Decoder(_Instant)


def _stored_fields(cls: type) -> list[tuple[str, Any]]:
    # The event's own annotations, in the order the mapper's dict has them; instants are
    # stored wrapped. Derived, not restated, so a field added to the event is read too.
    skip = ("originator_id", "originator_version")
    return [
        (name, _Instant if hint is datetime else hint)
        for name, hint in typing.get_type_hints(cls).items()
        if name not in skip and typing.get_origin(hint) is not typing.ClassVar
    ]


class _Decoder:
    """The typed decoder of one event class."""

    __slots__ = ("cls", "decoder", "schedule", "stamped")

    def __init__(self, cls: type, *, strict: bool = True) -> None:
        fields = _stored_fields(cls)
        state = msgspec.defstruct(f"{cls.__name__}State", fields, forbid_unknown_fields=strict)
        self.cls = cls
        self.decoder = msgspec.json.Decoder(state)
        instants = tuple(name for name, hint in fields if hint is _Instant)
        # The record stamp is the event's own (rarely another's); the other instants, the
        # schedule's times, are shared by many events of a fleet.
        self.stamped = "timestamp" in instants
        self.schedule = tuple(name for name in instants if name != "timestamp")

    def decode(self, originator_id: UUID, version: int, state: bytes) -> Any:
        # One call a row on the fold's path: the struct read, its dict, the event built as
        # the mapper builds it (`ev.new_event`: the instance dict set at once), inline.
        s: Any = self.decoder.decode(state)
        state_dict = _asdict(s)  # field order: the order the mapper's dict has
        if self.stamped:
            state_dict["timestamp"] = s.timestamp.data
        for name in self.schedule:
            state_dict[name] = shared_instant(state_dict[name].data)
        state_dict["originator_id"] = originator_id
        state_dict["originator_version"] = version
        event: Any = _new(self.cls)
        _set(event, "__dict__", state_dict)
        return event


_asdict = msgspec.structs.asdict
_new = object.__new__
_set = object.__setattr__
_decoders: dict[type, _Decoder] = {}

# Recently decoded instants: equal ones decoded again are the object held already, so a
# fleet's events at the same times (what a fold holds for every scheduled event) share
# them. Bounded: emptied when full, never grows with the ledger.
_INSTANTS: dict[datetime, datetime] = {}
INSTANTS_KEPT = 4_096


def shared_instant(instant: datetime) -> datetime:
    """`instant`, or an equal one decoded recently (UTC only: equal instants of other offsets differ)."""
    if instant.tzinfo is not UTC:
        return instant
    held = _INSTANTS.get(instant)
    if held is None:
        if len(_INSTANTS) >= INSTANTS_KEPT:
            _INSTANTS.clear()
        held = _INSTANTS[instant] = instant
    return held


Reader = Callable[[UUID, int, bytes], Any]
# What a reader raises for a state it cannot read exactly (the mapper's to read).
UNREADABLE = (msgspec.DecodeError, msgspec.ValidationError)


def _decoder_of(cls: type) -> _Decoder | None:
    decoder = _decoders.get(cls)
    if decoder is None:
        if not issubclass(cls, CanMutateAggregate) or getattr(cls, "class_version", 1) != 1:
            return None
        decoder = _decoders[cls] = _Decoder(cls)
    return decoder


def decode_event(cls: type, originator_id: UUID, version: int, state: bytes) -> Any | None:
    """The event of `cls` stored as `state` at `version` of `originator_id` (None: ask the mapper)."""
    decoder = _decoder_of(cls)
    if decoder is None:
        return None
    try:
        return decoder.decode(originator_id, version, state)
    except UNREADABLE:
        return None


def reader_of(topic: str) -> Reader | None:
    """`decode_event` for events of `topic`, found once (None: a class the mapper reads); it
    raises one of `UNREADABLE` where `decode_event` gives None."""
    decoder = _decoder_of(resolve_topic(topic))
    return None if decoder is None else decoder.decode


class _InstantDict(typing.TypedDict):
    _data_: datetime


def _issued_decoder() -> tuple[msgspec.json.Decoder[Any], tuple[str, ...]]:
    # A TypedDict: the decoder builds the event's dict itself, keys in stored order (the
    # mapper's), unknown fields ignored as the mapper ignores them; the instants unwrapped
    # after, not shared (one log's own times, not a fleet's).
    fields = _stored_fields(ev.IntentIssued)
    typed_dict: Any = typing.TypedDict
    state = typed_dict(
        "IntentIssuedState", {name: _InstantDict if hint is _Instant else hint for name, hint in fields}
    )
    return msgspec.json.Decoder(state), tuple(name for name, hint in fields if hint is _Instant)


_issued, _issued_instants = _issued_decoder()


def decode_issued(originator_id: UUID, version: int, state: bytes) -> ev.IntentIssued:
    """The `IntentIssued` stored as `state` (its JSON) at `version` of `originator_id`.

    Typed with the event's own schema; tested against the mapper on stored rows.
    """
    (event,) = decode_issued_rows(originator_id, ((version, state),))
    return event


def decode_issued_rows(originator_id: UUID, rows: Iterable[tuple[int, bytes]]) -> list[ev.IntentIssued]:
    """`decode_issued` of each (version, state) of one aggregate's rows, in one loop."""
    decode, instants = _issued.decode, _issued_instants
    events: list[ev.IntentIssued] = []
    append = events.append
    for version, state in rows:
        state_dict = decode(state)
        for name in instants:
            state_dict[name] = state_dict[name]["_data_"]
        state_dict["originator_id"] = originator_id
        state_dict["originator_version"] = version
        event = _new(ev.IntentIssued)
        _set(event, "__dict__", state_dict)
        append(event)
    return events
