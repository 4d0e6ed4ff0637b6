"""The intent log aggregate: the intents issued for one client (or one group topic), in order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import Transcoding
from eventsourcing.utils import get_topic

from ledger import events as ev
from ledger.intent import CurrentIntent, IntentFields
from ledger.names import intent_id_for, log_name, uuid5_of
from ledger.values import check_instant

__all__ = ["NOTHING_PENDING", "CurrentIntentAsDict", "IntentLog"]


class _NothingPending(list):  # type: ignore[type-arg]
    """The pending events of every intent log with none: one empty list shared by a fleet's logs
    instead of one each. Equal to any empty list (the library compares aggregates by `__dict__`);
    adding to it would give the event to every log holding it, so every way of adding refuses.
    Copies and pickles are the one shared list (a copied log is a log with nothing pending)."""

    def _refuse(self, *_args: Any) -> Any:
        raise TypeError("an intent log's shared empty pending list was added to")

    append = extend = insert = __iadd__ = __imul__ = __setitem__ = _refuse

    def __copy__(self) -> _NothingPending:
        return self

    def __deepcopy__(self, _memo: Any) -> _NothingPending:
        return self

    def __reduce__(self) -> str:
        return "NOTHING_PENDING"


NOTHING_PENDING: list[Any] = _NothingPending()


class IntentLog(Aggregate):
    """The intents issued for one client (or one group topic), in order; never restarts."""

    # Version 2: `last` is a CurrentIntent (snapshots of version 1 hold it as a dict).
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        if isinstance(state.get("last"), dict):
            state["last"] = _current_from_dict(state["last"])

    def __init__(self, client_id: str | None, group_id: str | None) -> None:
        self.client_id = client_id
        self.group_id = group_id
        self.seq = 0
        self.last: CurrentIntent | None = None

    def collect_events(self) -> Sequence[CanMutateAggregate[UUID]]:
        """The pending events, in order; the log then holds the shared empty list."""
        collected = self._pending_events
        if collected is NOTHING_PENDING:
            return []
        self._pending_events = NOTHING_PENDING
        return collected

    @staticmethod
    def id_for(name: str) -> UUID:
        return uuid5_of(f"intents/{name}")

    @staticmethod
    def name_for(client_id: str | None, group_id: str | None) -> str:
        return log_name(client_id, group_id)

    @staticmethod
    def stamp() -> datetime:
        """A new record instant, as each event would take its own (see `open` and `issue`)."""
        return ev.IntentIssued.create_timestamp()

    @classmethod
    def open(
        cls, client_id: str | None, group_id: str | None, timestamp: datetime | None = None
    ) -> IntentLog:
        """A new log, its opening pending; `timestamp`: the batch's record instant (default a new one).

        The events of one batch are recorded in one transaction: one instant for all of
        them is one object held by every log it opens, not two of their own per log.
        """
        # The event `_create` would build, without its per-call introspection.
        name = cls.name_for(client_id, group_id)
        log_id = cls.id_for(name)
        stamp = cls.stamp() if timestamp is None else timestamp
        opened = ev.new_event(
            ev.IntentLogOpened,
            {
                "originator_id": log_id,
                "originator_version": cls.INITIAL_VERSION,
                "timestamp": stamp,
                "originator_topic": _TOPIC,
                "client_id": client_id,
                "group_id": group_id,
            },
        )
        # What the library's `Created.mutate` builds (its base init, then `__init__`, then the
        # event's `apply`), without resolving the topic and matching keyword arguments per call.
        log = object.__new__(cls)
        log.__base_init__(log_id, cls.INITIAL_VERSION, stamp)
        log.__init__(client_id, group_id)  # type: ignore[misc]
        opened.apply(log)
        log._pending_events.append(opened)  # the new list `__base_init__` made
        return log

    @property
    def name(self) -> str:
        return self.name_for(self.client_id, self.group_id)

    def issue(
        self,
        fields: IntentFields,
        effective_at: datetime,
        cause: dict[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        """Record the next transition; `fields` are the semantic fields of the intent
        (`timestamp`: the batch's record instant, as `open`)."""
        state = self.next_state(fields, effective_at, cause)
        state["timestamp"] = stamp = self.stamp() if timestamp is None else timestamp
        issued = ev.new_event(ev.IntentIssued, state)
        # The library's `mutate` of the log's own next event (its id and version hold by
        # construction): the event's `apply` (its `current()` is these very fields, at its
        # seq and clamped instant: held as they are, not rebuilt), the version, the instant.
        self.seq = seq = state["seq"]
        self.last = CurrentIntent(seq, state["effective_at"], fields)
        self._version = state["originator_version"]
        self._modified_on = stamp
        pending = self._pending_events
        if pending is NOTHING_PENDING:
            self._pending_events = [issued]
        else:
            pending.append(issued)

    def next_state(
        self, fields: IntentFields, effective_at: datetime, cause: dict[str, Any]
    ) -> dict[str, Any]:
        """The state of the `IntentIssued` that `issue` appends next, its `timestamp` still None."""
        effective_at = check_instant(effective_at, "effective_at")
        if self.last is not None and effective_at < self.last.effective_at:
            # Never let the recorded timeline run backwards (clock steps, late commits).
            effective_at = self.last.effective_at
        seq = self.seq + 1
        # The event `trigger_event` would build (the dataclass's field order), without its
        # per-call keyword copies and setattrs.
        return {
            "originator_id": self._id,
            "originator_version": self._version + 1,
            "timestamp": None,
            "seq": seq,
            "intent_id": intent_id_for(log_name(self.client_id, self.group_id), seq),
            "effective_at": effective_at,
            "desired_state": fields.desired_state,
            "reason": fields.reason,
            "event_window": fields.event_window,
            "client_id": fields.client_id,
            "group_id": fields.group_id,
            "grace_seconds": fields.grace_seconds,
            "cause": cause,
        }

    def issue_built(self, issued: ev.IntentIssued, current: CurrentIntent) -> None:
        """Append `issued`, built ahead from `next_state` while this log was as it is now, with
        `current` its `current()`: what `issue` does, without building them now."""
        version = issued.originator_version
        assert version == self._version + 1
        # As `issue`: the library's attributes set directly, not through its properties.
        self.seq = issued.seq
        self.last = current
        self._version = version
        self._modified_on = issued.timestamp
        pending = self._pending_events
        if pending is NOTHING_PENDING:
            self._pending_events = [issued]
        else:
            pending.append(issued)


class CurrentIntentAsDict(Transcoding):
    """Stores an intent log's `last` in its snapshots as the dict version 1 stored inline."""

    type = CurrentIntent
    name = "current_intent"

    def encode(self, obj: CurrentIntent) -> dict[str, Any]:
        return {
            "seq": obj.seq,
            "intent_id": obj.intent_id,
            "effective_at": obj.effective_at,
            "fields": msgspec.structs.asdict(obj.fields),
        }

    def decode(self, data: dict[str, Any]) -> CurrentIntent:
        return _current_from_dict(data)


def _current_from_dict(data: dict[str, Any]) -> CurrentIntent:
    return CurrentIntent(data["seq"], data["effective_at"], IntentFields(**data["fields"]))


_TOPIC = get_topic(IntentLog)
