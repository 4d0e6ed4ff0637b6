"""Starting a network process (publisher.netchild): a child with paho imported, awaiting its session.

`python -S -c ...` with our own search path, not multiprocessing's spawn: the
child's start-up (an interpreter and paho) is on the path of a connect, so it
imports as little as it can. Spawn would
first import the parent's `__main__` (the CLI, a benchmark, pytest) in the
child; `site` would run the .pth files' import hooks. A process started
ahead (`NetworkProcess()` before the caller's own start-up, as `run` does)
takes that off the connect.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from publisher.netchild import Pipe

__all__ = ["PIPE_BUFFER", "SEND_WAIT", "NetworkProcess"]

# Seconds a message to the child may take to be written: longer, and the child is stuck (not
# reading its pipe) and is ended, its session lost, rather than the daemon's loop with it.
SEND_WAIT = 10.0
PIPE_BUFFER = 4 << 20  # bytes of publishes the pipe to the child holds (at most; see below)
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where `publisher` is
# The child's program: an import that fails (an installation changed under a running daemon)
# or a Ctrl-C during it is one line on the daemon's stderr, not a traceback; the daemon sees
# the exit and loses the session.
_START = """import sys
sys.path[:] = {path!r}
try:
    from publisher.netchild import main
except KeyboardInterrupt:
    sys.exit(1)
except Exception as e:
    why = " ".join(str(e).split()) or "import failed"
    sys.stderr.write("intent-ledger: the network process did not start: " + why + "\\n")
    sys.exit(1)
main()
"""


class NetworkProcess:
    """A started child and our end of its pipe; raises OSError when no process can be started."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        path = [_ROOT, *sys.path]
        start = _START.format(path=path)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-S", "-c", start, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()  # only the child holds its end: the pipe closes when either dies
        ours.settimeout(SEND_WAIT)
        # Room for a chunk's publishes in the pipe: the daemon goes on evaluating and recording
        # the next chunk while the child publishes this one, instead of waiting in `sendall`
        # for the child to read. The kernel caps it at net.core.wmem_max.
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIPE_BUFFER)
        self.pipe = Pipe(ours)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def discard(self) -> None:
        """End a child that never got its session (it would end with our exit anyway)."""
        self.pipe.close()
        if self.alive:
            self.process.kill()
        self.process.wait()
