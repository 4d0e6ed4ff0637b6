"""Screens reporting as a fleet does, in a process of their own (bench_observe's latency part).

The screens are other machines: their publishing must not take the GIL of the
process being measured. Reads the screens' names (one a line) from the file
given, connects, says `ready`, and on `go` (stdin) publishes every screen's
report at once (a broker restart) and prints `burst S` (seconds to its last
PUBACK), then one every 300 s / N (each screen every 300 s) until stdin
closes; then prints how many it sent and clears the retained reports (the
next run on the same broker starts without them).

    python -m bench._reportflow PORT NAMES_FILE
"""

from __future__ import annotations

import os
import sys
import threading
from datetime import UTC, datetime

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `bench.*`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._broker import RawPublisher
from publisher.report import build_report, encode_report

__all__ = ["reports"]

PREFIX = "infoscreen"


def reports(names: list[str]) -> list[tuple[str, bytes]]:
    """Each screen's report, stamped now (tv off, following no intent)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return [
        (
            f"{PREFIX}/{name}/power/state",
            encode_report(
                build_report(client_id=name, reported_at=now, intent_id=None, tv_state="off", since=now)
            ),
        )
        for name in names
    ]


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path) as f:
        names = f.read().split()
    publisher = RawPublisher(port)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    stop = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    seconds = publisher.burst(reports(names))
    sent = len(names)
    print(f"burst {seconds:.3f}", flush=True)
    interval = 300 / len(names)
    while not stop.wait(interval):
        ((topic, payload),) = reports([names[sent % len(names)]])
        publisher.client.publish(topic, payload, qos=1, retain=True)
        sent += 1
    print(sent, flush=True)
    publisher.burst([(topic, b"") for topic, _ in reports(names)])  # retained reports deleted
    publisher.close()


if __name__ == "__main__":
    main()
