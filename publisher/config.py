"""Broker settings from a URL: `mqtt://user:pass@host:1883`, `mqtts://host?ca=...&cert=...&key=...`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from publisher.errors import InvalidBrokerUrl

__all__ = ["MQTT_VERSIONS", "PREFIX_MAX", "BrokerConfig", "check_prefix"]

MQTT_VERSIONS = ("5", "3.1.1")
_OPTIONS = {"ca", "cert", "key", "insecure", "keepalive"}
# A silent connection (a NAT that forgot it, a hung broker) is noticed within twice the
# keepalive: paho pings after one keepalive without a byte from the broker and gives up
# after another. The broker drops us (and publishes the Will) after 1.5 keepalives.
KEEPALIVE = 4


@dataclass(frozen=True)
class BrokerConfig:
    """Where and how to connect. `password` never appears in `repr` or logs."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    mqtt_version: str = "5"
    keepalive: int = KEEPALIVE

    @classmethod
    def from_url(cls, url: str, mqtt_version: str = "5") -> BrokerConfig:
        """Parse `mqtt[s]://[user[:password]@]host[:port][?ca=F&cert=F&key=F&insecure=1&keepalive=S]`.

        Without a password in the URL, `INTENT_LEDGER_MQTT_PASSWORD` is used, so
        secrets can stay out of command lines.
        """
        if mqtt_version not in MQTT_VERSIONS:
            raise InvalidBrokerUrl(f"invalid MQTT version {mqtt_version!r}: use 5 or 3.1.1")
        parts = _split(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise InvalidBrokerUrl(
                f"invalid broker URL {_redact(url)!r}: use mqtt://host:port or mqtts://..."
            )
        try:
            port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        except ValueError:
            raise InvalidBrokerUrl(f"invalid broker URL {_redact(url)!r}: bad port") from None
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - _OPTIONS
        if unknown:
            raise InvalidBrokerUrl(f"unknown broker URL option(s): {', '.join(sorted(unknown))}")
        try:
            keepalive = int(query.get("keepalive", str(KEEPALIVE)))
        except ValueError:
            raise InvalidBrokerUrl("invalid keepalive: whole seconds") from None
        if not 1 <= keepalive <= 65_535:
            raise InvalidBrokerUrl("invalid keepalive: 1 to 65535 seconds")
        for name in ("ca", "cert", "key"):
            path = query.get(name)
            if path and not os.path.isfile(path):
                raise InvalidBrokerUrl(f"broker URL option {name}: no such file {path!r}")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        if username and password is None:
            password = os.environ.get("INTENT_LEDGER_MQTT_PASSWORD")
        return cls(
            host=parts.hostname,
            port=port,
            username=username,
            password=password,
            tls=parts.scheme == "mqtts" or any(query.get(n) for n in ("ca", "cert")),
            ca_file=query.get("ca") or None,
            cert_file=query.get("cert") or None,
            key_file=query.get("key") or None,
            insecure=query.get("insecure", "0").lower() in ("1", "true", "yes"),
            mqtt_version=mqtt_version,
            keepalive=keepalive,
        )

    def redacted(self) -> str:
        """The URL to show in logs: the password replaced by `***`."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}{':***' if self.password else ''}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def _redact(url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:  # unparseable: whatever sits between the scheme's '//' and an '@' goes
        return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url, count=1)
    return url.replace(f":{password}@", ":***@", 1) if password else url


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError:  # an unclosed [IPv6 address]
        raise InvalidBrokerUrl(f"invalid broker URL {_redact(url)!r}: malformed host") from None


PREFIX_MAX = 200  # characters: a site's path of levels, far below MQTT's 65,535-byte topics


def check_prefix(prefix: str) -> str:
    """A topic prefix: non-empty levels without wildcards or control characters, no leading or
    trailing '/', at most PREFIX_MAX characters of UTF-8."""
    if len(prefix) > PREFIX_MAX:  # first: the messages below quote it whole
        raise InvalidBrokerUrl(
            f"invalid topic prefix {prefix[:20]!r}...: longer than {PREFIX_MAX} characters"
        )
    levels = prefix.split("/")
    if not prefix or any(not level or set(level) & {"+", "#"} for level in levels):
        raise InvalidBrokerUrl(f"invalid topic prefix {prefix!r}: levels without + # or empty parts")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000 for c in prefix):
        raise InvalidBrokerUrl(
            f"invalid topic prefix {prefix!r}: control characters or bytes that are not UTF-8"
        )
    return prefix
