"""A local HTTP server for feed tests: serves fixed bodies, errors, endless and stalled bodies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FeedServer", "serve_feeds"]

_CHUNK = b"X" * 65536


@dataclass
class FeedServer:
    """Routes of a running server; `url(path)` addresses one."""

    port: int
    bodies: dict[str, bytes] = field(default_factory=dict)
    auth: dict[str, str] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    finished: dict[str, threading.Event] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str, userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}{path}"


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:  # noqa: C901  (one HTTP handler class)
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet in test output
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            done = server.finished.setdefault(path, threading.Event())
            try:
                self._answer(path)
            except OSError:
                pass  # the client hung up: what the endless and stalled routes expect
            finally:
                done.set()

        def _answer(self, path: str) -> None:
            if path in server.auth and self.headers.get("Authorization") != server.auth[path]:
                self.send_error(401)
            elif path in server.bodies:
                body = server.bodies[path]
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif path.startswith("/redirect"):  # /redirect/private.ics -> /private.ics
                self.send_response(302)
                self.send_header("Location", path.removeprefix("/redirect"))
                self.end_headers()
            elif path == "/declared-huge.ics":
                self.send_response(200)
                self.send_header("Content-Length", str(50 * 1024 * 1024))
                self.end_headers()
            elif path == "/endless.ics":  # no Content-Length: the size shows only while reading
                self.send_response(200)
                self.end_headers()
                server.sent[path] = 0
                while server.sent[path] < 200 * 1024 * 1024:
                    self.wfile.write(_CHUNK)
                    server.sent[path] += len(_CHUNK)
            elif path == "/stalled.ics":
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"BEGIN:VCALENDAR\r\n")
                self.wfile.flush()
                server.release.wait(30)
            elif path == "/silent.ics":
                server.release.wait(30)
            else:
                self.send_error(404)

    return Handler


@contextmanager
def serve_feeds() -> Iterator[FeedServer]:
    """A server on 127.0.0.1 at a free port, in a thread, for the duration of the block."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = FeedServer(httpd.server_address[1])
    httpd.RequestHandlerClass = _handler(state)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
