"""The paho-mqtt 2.x client as every broker session builds it, and what its connect failures say.

Shared by the in-process session (publisher.mqtt) and the network process
(publisher.netchild), so both connect with the same options and Will and
raise `BrokerUnavailable` with the same words.
"""

from __future__ import annotations

import itertools
import os
import ssl

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from publisher.config import BrokerConfig
from publisher.errors import BrokerUnavailable

__all__ = ["ExpiryCache", "before_connack", "client_id", "new_client", "open_connection"]

# One count for every kind of session: two sessions of one process never share a client id
# (the broker would drop the first as the second connects).
_serial = itertools.count(1)


def client_id() -> str:
    """A client id no other session of this process has had."""
    return f"intent-ledger-{os.getpid()}-{next(_serial)}"


def new_client(
    config: BrokerConfig, *, client_id: str, will: tuple[str, bytes] | None, inflight: int
) -> paho.Client:
    """A client for `config` (MQTT 5 by default, 3.1.1 on request), never reconnecting by itself."""
    v5 = config.mqtt_version == "5"
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        clean_session=None if v5 else True,
        reconnect_on_failure=False,
    )
    # The default window of 20 is faster than a large one (paho rescans its queue per PUBACK).
    client.max_inflight_messages_set(inflight)
    if config.username:
        client.username_pw_set(config.username, config.password)
    if config.tls:
        client.tls_set(ca_certs=config.ca_file, certfile=config.cert_file, keyfile=config.key_file)
        client.tls_insecure_set(config.insecure)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    return client


def open_connection(client: paho.Client, config: BrokerConfig) -> None:
    """Open the connection and send CONNECT; raise BrokerUnavailable when it cannot be opened."""
    where = config.redacted()
    try:
        client.connect(
            config.host,
            config.port,
            keepalive=config.keepalive,
            clean_start=True if config.mqtt_version == "5" else paho.MQTT_CLEAN_START_FIRST_ONLY,
        )
    except ssl.SSLCertVerificationError as e:
        raise BrokerUnavailable(f"broker {where} not trusted (TLS): {e.verify_message or e.reason}") from None
    except ssl.SSLError as e:
        raise BrokerUnavailable(f"TLS handshake with broker {where} failed: {_tls_reason(e)}") from None
    except (OSError, ValueError) as e:
        raise BrokerUnavailable(f"cannot reach broker {where}: {e}") from None


def before_connack(config: BrokerConfig, *, answered: bool, refused: str | None, timeout: float) -> str:
    """Why a connection that did not reach a successful CONNACK failed (the BrokerUnavailable line).

    `answered`: a CONNACK came (`refused` its failure code, if any); otherwise the broker
    closed the connection first, or said nothing within `timeout`.
    """
    where = config.redacted()
    if refused is not None:
        return f"broker {where} refused the connection: {refused}"
    if not answered:
        return f"no CONNACK from broker {where} within {timeout:g} s"
    hint = ""
    if config.tls:  # a TLS 1.3 server checks the client's certificate after the handshake
        hint = (
            ": its TLS listener may require a client certificate (cert=...&key=...)"
            if config.cert_file is None
            else ": it may not accept this client certificate"
        )
    return f"broker {where} closed the connection before CONNACK{hint}"


class ExpiryCache:
    """PUBLISH properties by Message Expiry Interval: building a paho Properties is slow, and the
    few expiry values repeat, so they are shared."""

    def __init__(self) -> None:
        self._by_seconds: dict[int, Properties] = {}

    def get(self, seconds: int) -> Properties:
        properties = self._by_seconds.get(seconds)
        if properties is None:
            properties = self._by_seconds[seconds] = _Expiry(seconds)
        return properties


class _Expiry(Properties):
    """A PUBLISH's Message Expiry Interval, packed once: paho packs a message's properties
    every time it sends one (a scan of every property name), and these never change."""

    _packed: bytes

    def __init__(self, seconds: int) -> None:
        super().__init__(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        self.MessageExpiryInterval = seconds
        packed = super().pack()  # type: ignore[no-untyped-call]
        object.__setattr__(self, "_packed", packed)  # paho's __setattr__ takes property names only

    def pack(self) -> bytes:
        return self._packed


def _tls_reason(e: ssl.SSLError) -> str:
    # `reason` is OpenSSL's code ("TLSV1_ALERT_UNKNOWN_CA"); say it in words, without the C file name.
    reason = str(e.reason or e.strerror or "handshake refused")
    return reason.lower().replace("_", " ")
