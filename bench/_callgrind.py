"""Counting instructions with callgrind: the client-request shim, the command, the dumps' totals.

The measured process loads a few lines of C (compiled at each run) to start and stop the
instrumentation and to dump the counters, named, at the edges of what it measures.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["command", "dumps", "shim"]

_SHIM = """
#include <valgrind/callgrind.h>
void cg_dump(const char *s) { CALLGRIND_DUMP_STATS_AT(s); }
void cg_zero(void) { CALLGRIND_ZERO_STATS; }
void cg_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void cg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
"""


def shim(folder: Path, tools: tuple[str, ...] = ()) -> Path:
    """The shim's library, compiled in `folder` (SystemExit: valgrind, cc or one of `tools` missing)."""
    for tool in ("valgrind", "cc", *tools):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")
    library = folder / "libcgshim.so"
    (folder / "shim.c").write_text(_SHIM)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(library), str(folder / "shim.c")], check=True)
    return library


def command(out: Path, module: str, args: list[str]) -> list[str]:
    """`python -m module args` under callgrind, instrumented only where the shim says, a file a thread."""
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--separate-threads=yes",
        f"--callgrind-out-file={out}/callgrind.out.%p",
        sys.executable,
        "-m",
        module,
        *args,
    ]


def dumps(folder: Path) -> Iterator[tuple[bool, str | None, int]]:
    """Each dump in `folder`: of the main thread (files `...-01`) or not, the name it was dumped
    with (None: at a thread's or the program's end), its instructions."""
    for path in sorted(folder.glob("callgrind.out.*-*")):
        name = None
        with path.open() as f:
            for line in f:
                if line.startswith("desc: Trigger: Client Request: "):
                    name = line.split(": ", 3)[3].strip()
                elif line.startswith("totals:"):
                    yield path.name.endswith("-01"), name, int(line.split()[1])
                    break
