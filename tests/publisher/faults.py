"""Fault fixtures: a TCP proxy that can go dark, and a private PostgreSQL cluster to stop and start.

`DarkProxy` forwards a local port to another (a broker, a database) on threads;
`go_dark()` stops forwarding in both directions without closing any socket, the
way a NAT or firewall that forgot a connection looks from both ends.
`PrivatePostgres` is a cluster of our own in a temporary folder, run as the
`postgres` user, so a test can stop and start a database without touching the
shared server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from tests.publisher.broker import accepting, free_port, wait_for

__all__ = ["DarkProxy", "PrivatePostgres"]


class DarkProxy:
    """127.0.0.1:`port` forwards to 127.0.0.1:`target`, until it goes dark."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._light = threading.Event()
        self._light.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []  # the connections that still forward
        self._stale: list[socket.socket] = []  # those that went dark, kept open
        self._lock = threading.Lock()
        self.accepted = 0
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def dark(self) -> bool:
        return not self._light.is_set()

    def go_dark(self) -> None:
        """Stop forwarding; every socket stays open, so neither end hears a FIN or a RST."""
        self._light.clear()

    def light_up(self) -> None:
        """Forward again, but only on connections made from now on.

        The connections that went dark stay dark: a forgotten NAT entry does
        not come back, and the peer must reconnect.
        """
        self.forget()
        self._light.set()

    def forget(self) -> None:
        """What a NAT or firewall does when it drops its entry: today's connections go dark
        for good (no FIN, no RST), new connections get through."""
        with self._lock:
            self._stale += self._sockets
            self._sockets = []

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                inside, _ = self._listener.accept()
            except OSError:
                return
            if self.dark:
                with self._lock:
                    self._stale.append(inside)  # accepted by the kernel, then silence
                continue
            try:
                outside = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                inside.close()
                continue
            outside.settimeout(None)
            self.accepted += 1
            with self._lock:
                self._sockets += [inside, outside]
            for a, b in ((inside, outside), (outside, inside)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self.dark or source not in self._live():
                    continue  # swallowed: the sender's kernel acknowledged it, nobody else sees it
                sink.sendall(data)
        except OSError:
            pass
        if not self.dark and source in self._live():
            for s in (source, sink):  # a real close passes through while the light is on
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def _live(self) -> list[socket.socket]:
        with self._lock:
            return list(self._sockets)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets + self._stale:
            s.close()


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"no {name} under /usr/lib/postgresql/*/bin")
    return found[-1]


class PrivatePostgres:
    """A PostgreSQL cluster of our own on a free port, owned by the `postgres` user."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: its folders are root's and closed to the postgres user.
        self.folder = Path(tempfile.mkdtemp(prefix="intent-ledger-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        shutil.chown(self.folder, "postgres", "postgres")
        self._as_postgres(_pg_bin("initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *argv: str) -> None:
        command = argv if os.geteuid() != 0 else ("runuser", "-u", "postgres", "--", *argv)
        subprocess.run(command, check=True, capture_output=True, cwd=self.folder)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "server.log")
        self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")
        wait_for(lambda: accepting(self.port), 20, "the private PostgreSQL to accept connections")

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session (as a restart or failover does); `immediate` is a crash."""
        self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
