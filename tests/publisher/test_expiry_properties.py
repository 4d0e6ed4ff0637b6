"""The Message Expiry Interval the daemon hands paho, packed once: the very bytes paho packs."""

from __future__ import annotations

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from publisher.pahoclient import ExpiryCache


@pytest.mark.parametrize("seconds", [1, 127, 128, 600, 16_384, 86_400, 2**32 - 1])
def test_packed_once_is_what_paho_packs(seconds: int) -> None:
    reference = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    reference.MessageExpiryInterval = seconds
    shared = ExpiryCache().get(seconds)
    assert shared.pack() == reference.pack() == shared.pack()  # type: ignore[no-untyped-call]
    assert shared.MessageExpiryInterval == seconds  # type: ignore[attr-defined]
    read = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    read.unpack(shared.pack())  # type: ignore[no-untyped-call]
    assert read.MessageExpiryInterval == seconds  # type: ignore[attr-defined]
