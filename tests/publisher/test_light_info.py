"""The network process's paho messages share one condition (publisher.lightinfo)."""

from __future__ import annotations

import subprocess
import sys

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import MQTTErrorCode

from publisher import lightinfo
from publisher.lightinfo import LightInfo

_SLOTS = [name for name in paho.MQTTMessageInfo.__slots__ if name != "_condition"]


def test_a_light_info_starts_as_paho_s_own_but_for_its_condition() -> None:
    ours, theirs = LightInfo(7), paho.MQTTMessageInfo(7)
    assert {name: getattr(ours, name) for name in _SLOTS} == {name: getattr(theirs, name) for name in _SLOTS}
    assert tuple(ours) == tuple(theirs) == (MQTTErrorCode.MQTT_ERR_SUCCESS, 7)
    assert LightInfo(1)._condition is LightInfo(2)._condition


def test_a_light_info_is_published_as_paho_s_own() -> None:
    info = LightInfo(3)
    assert not info.is_published()
    info._set_as_published()
    assert info.is_published()
    info.wait_for_publish(0.01)  # published: returns at once, raises nothing


def test_only_the_network_process_swaps_paho_s_infos() -> None:
    # Importing the module (as the daemon does, for its Pipe) leaves paho as it is.
    assert type(paho.MQTTMessage(1, b"t").info) is paho.MQTTMessageInfo
    program = (
        "import paho.mqtt.client as paho\n"
        "from publisher.lightinfo import light_infos\n"
        "assert light_infos()\n"
        "print(type(paho.MQTTMessage(1, b't').info).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "LightInfo"


def test_a_paho_whose_handle_differs_keeps_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lightinfo, "_SLOTS", lightinfo._SLOTS | {"another"})
    assert not lightinfo.light_infos()
    assert type(paho.MQTTMessage(1, b"t").info) is paho.MQTTMessageInfo


def test_the_network_process_swaps_them_before_it_serves() -> None:
    # netchild.main with its parent already gone: it swaps, reads EOF and ends at once.
    program = (
        "import os, socket, sys\n"
        "import paho.mqtt.client as paho\n"
        "from publisher import netchild\n"
        "ours, theirs = socket.socketpair()\n"
        "theirs.close()\n"
        "sys.argv = ['netchild', str(ours.detach())]\n"
        "real = netchild.light_infos\n"
        "def swapped():\n"
        "    real()\n"
        "    os.write(1, type(paho.MQTTMessage(1, b't').info).__name__.encode())\n"
        "    return True\n"
        "netchild.light_infos = swapped\n"
        "netchild.main()\n"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (0, "LightInfo")
