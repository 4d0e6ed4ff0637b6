"""TLS against a real Mosquitto TLS listener, with certificates each test generates.

`intent-ledger run --once` over `mqtts://`: the server certificate is verified by
default, a client certificate gives mutual TLS, and a wrong CA, an expired
certificate or a missing client certificate is one line on stderr and exit 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from ledger import Ledger
from tests.conftest import ME
from tests.publisher.broker import Mosquitto, retained, tls_listener
from tests.publisher.certs import Authority, Pair


def run_once(db: str, url: str) -> Result:
    return CliRunner().invoke(cli, ["--db", db, "--mqtt-url", url, "run", "--once"])


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    folder = tmp_path / "pki"
    folder.mkdir()
    return Authority(folder)


def _broker(folder: Path, ca: Authority, server: Pair, *, mutual: bool = False) -> Mosquitto:
    folder.mkdir()
    broker = Mosquitto(folder, tls_listener(ca.ca, server.cert, server.key, require_certificate=mutual))
    broker.start()
    return broker


@pytest.fixture
def tls_broker(tmp_path: Path, ca: Authority) -> Iterator[Mosquitto]:
    broker = _broker(tmp_path / "tls", ca, ca.issue("broker"))
    yield broker
    broker.stop()


@pytest.fixture
def mtls_broker(tmp_path: Path, ca: Authority) -> Iterator[Mosquitto]:
    broker = _broker(tmp_path / "mtls", ca, ca.issue("broker"), mutual=True)
    yield broker
    broker.stop()


def retained_over_tls(broker: Mosquitto, ca: Authority, client: Pair, topic: str) -> object:
    def configure(c: paho.Client) -> None:
        c.tls_set(ca_certs=str(ca.ca), certfile=str(client.cert), keyfile=str(client.key))

    return retained(broker.port, topic, configure)


def _one_line_failure(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("Error: ")
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert "SSL" not in result.stderr.split(":", 2)[1]


def test_server_certificate_verified_by_default(
    sqlite_ledger: Ledger, sqlite_url: str, ca: Authority, tls_broker: Mosquitto
) -> None:
    """mqtts:// with the CA: the broker's certificate and host name check out, every PUBACK arrives."""
    sqlite_ledger.add_client("c1", None, ME)
    result = run_once(sqlite_url, f"mqtts://localhost:{tls_broker.port}?ca={ca.ca}")
    assert result.exit_code == 0, result.stderr
    assert '"result":"acked"' in result.stdout.replace(" ", "")


def test_without_the_ca_the_broker_is_not_trusted(
    sqlite_ledger: Ledger, sqlite_url: str, tls_broker: Mosquitto
) -> None:
    """No `ca=`: the system's trust store is used, which does not know our CA: refused."""
    sqlite_ledger.add_client("c1", None, ME)
    result = run_once(sqlite_url, f"mqtts://localhost:{tls_broker.port}")
    _one_line_failure(result, f"mqtts://localhost:{tls_broker.port}", "not trusted")


def test_a_wrong_ca_fails_in_one_line(
    sqlite_ledger: Ledger, sqlite_url: str, tmp_path: Path, tls_broker: Mosquitto
) -> None:
    other = tmp_path / "other-pki"
    other.mkdir()
    wrong = Authority(other, "other-ca")
    sqlite_ledger.add_client("c1", None, ME)
    result = run_once(sqlite_url, f"mqtts://localhost:{tls_broker.port}?ca={wrong.ca}")
    _one_line_failure(result, "not trusted")


def test_an_expired_server_certificate_fails_in_one_line(
    sqlite_ledger: Ledger, sqlite_url: str, tmp_path: Path, ca: Authority
) -> None:
    now = datetime.now(UTC)
    expired = ca.issue(
        "expired-broker", valid_from=now - timedelta(days=10), valid_until=now - timedelta(days=1)
    )
    broker = _broker(tmp_path / "expired", ca, expired)
    try:
        sqlite_ledger.add_client("c1", None, ME)
        result = run_once(sqlite_url, f"mqtts://localhost:{broker.port}?ca={ca.ca}")
        _one_line_failure(result, "expired")
    finally:
        broker.stop()


def test_a_host_name_mismatch_fails_and_insecure_skips_only_that(
    sqlite_ledger: Ledger, sqlite_url: str, tmp_path: Path, ca: Authority
) -> None:
    """`insecure=1` is paho's meaning: the host name is not checked, the chain still is."""
    elsewhere = ca.issue("elsewhere", hosts=("broker.example.net",))
    broker = _broker(tmp_path / "elsewhere", ca, elsewhere)
    other = tmp_path / "other-pki"
    other.mkdir()
    wrong = Authority(other, "other-ca")
    try:
        sqlite_ledger.add_client("c1", None, ME)
        base = f"mqtts://127.0.0.1:{broker.port}"
        _one_line_failure(run_once(sqlite_url, f"{base}?ca={ca.ca}"), "not trusted")
        assert run_once(sqlite_url, f"{base}?ca={ca.ca}&insecure=1").exit_code == 0
        _one_line_failure(run_once(sqlite_url, f"{base}?ca={wrong.ca}&insecure=1"), "not trusted")
    finally:
        broker.stop()


def test_mutual_tls_with_a_client_certificate(
    sqlite_ledger: Ledger, sqlite_url: str, ca: Authority, mtls_broker: Mosquitto
) -> None:
    """The broker demands a client certificate: with ours it accepts and the intent is retained."""
    client = ca.issue("intent-server", server=False)
    sqlite_ledger.add_client("c1", None, ME)
    url = f"mqtts://localhost:{mtls_broker.port}?ca={ca.ca}&cert={client.cert}&key={client.key}"
    result = run_once(sqlite_url, url)
    assert result.exit_code == 0, result.stderr
    assert retained_over_tls(mtls_broker, ca, client, "infoscreen/c1/power/intent") is not None


def test_mutual_tls_without_a_client_certificate_fails_in_one_line(
    sqlite_ledger: Ledger, sqlite_url: str, ca: Authority, mtls_broker: Mosquitto
) -> None:
    sqlite_ledger.add_client("c1", None, ME)
    result = run_once(sqlite_url, f"mqtts://localhost:{mtls_broker.port}?ca={ca.ca}")
    _one_line_failure(result, f"mqtts://localhost:{mtls_broker.port}", "client certificate")


def test_mutual_tls_with_a_certificate_of_another_ca_fails_in_one_line(
    sqlite_ledger: Ledger, sqlite_url: str, tmp_path: Path, ca: Authority, mtls_broker: Mosquitto
) -> None:
    other = tmp_path / "other-pki"
    other.mkdir()
    stranger = Authority(other, "other-ca").issue("intruder", server=False)
    sqlite_ledger.add_client("c1", None, ME)
    url = f"mqtts://localhost:{mtls_broker.port}?ca={ca.ca}&cert={stranger.cert}&key={stranger.key}"
    _one_line_failure(run_once(sqlite_url, url), f"mqtts://localhost:{mtls_broker.port}", "certificate")


def test_help_says_insecure_skips_only_the_host_name() -> None:
    text = " ".join(CliRunner().invoke(cli, ["--help"]).stdout.split())
    assert "insecure=1 skips only the host-name check" in text
    assert "insecure=1` skips only the host-name check" in Path("docs/operations.md").read_text()
