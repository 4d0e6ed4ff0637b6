"""paho's handles of publishes sharing one condition: the network process's (publisher.netchild)."""

from __future__ import annotations

import threading

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

__all__ = ["LightInfo", "light_infos"]

# The slots LightInfo.__init__ sets, as paho's own __init__ does: another paho's handle may
# have others, and then keeps its own class.
_SLOTS = frozenset({"mid", "_published", "_condition", "rc", "_iterpos"})


class LightInfo(paho.MQTTMessageInfo):
    """paho's handle of one publish, without a condition of its own.

    paho gives every QoS 1 message it holds (up to the daemon's window of them, awaiting
    their PUBACK) a `threading.Condition`, for `wait_for_publish`: an RLock, a deque and
    six bound methods, several times the message's own size. This process never waits on a
    publish (its PUBACKs come as `on_publish` calls on its one thread), so its messages
    share one condition: what paho does with it (take it, notify) still works.
    """

    __slots__ = ()
    _shared = threading.Condition()

    def __init__(self, mid: int) -> None:  # paho's own, but the condition
        self.mid = mid
        self._published = False
        self._condition = LightInfo._shared
        self.rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        self._iterpos = 0


def light_infos() -> bool:
    """paho's messages in this process get a `LightInfo` (the network process only: a process
    with threads waiting on their publishes needs paho's own); False: this paho's handle is
    not the one LightInfo mirrors, and stays as it is."""
    if frozenset(paho.MQTTMessageInfo.__slots__) != _SLOTS:
        return False
    paho.MQTTMessageInfo = LightInfo  # type: ignore[misc]
    return True
