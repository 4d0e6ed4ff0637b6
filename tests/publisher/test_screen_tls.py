"""`intent-ledger screen` over mutual TLS: the same broker URL options as the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from tests.publisher.broker import Mosquitto, wait_for
from tests.publisher.certs import Authority
from tests.publisher.test_tls import ca, mtls_broker, retained_over_tls  # noqa: F401  (fixtures)


def test_a_screen_reports_over_mutual_tls(ca: Authority, mtls_broker: Mosquitto) -> None:  # noqa: F811
    """mqtts:// with the CA and a client certificate: the report is stored; SIGTERM exits 0."""
    mine = ca.issue("lobby-1", server=False)
    url = f"mqtts://localhost:{mtls_broker.port}?ca={ca.ca}&cert={mine.cert}&key={mine.key}"
    process = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "screen", "lobby-1", "--on-cmd", "true"],
        env={**os.environ, "INTENT_LEDGER_MQTT_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        message = wait_for(
            lambda: retained_over_tls(mtls_broker, ca, mine, "infoscreen/lobby-1/power/state"),
            timeout=20,
            what="the report over TLS",
        )
        assert json.loads(message.payload)["client_id"] == "lobby-1"
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        process.kill()
        process.wait(10)
