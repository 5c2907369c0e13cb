"""Run a check in a forked child process and read its verdict back through a pipe."""

from __future__ import annotations

import os
import select
import signal
from typing import Callable


def passes_in_child(check: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    """Whether ``check()`` returned True in a child forked now, within ``timeout_s`` (the
    child is killed past it). The child never returns into pytest: it reports and exits."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        verdict = b"?"
        try:
            if check():
                verdict = b"T"
        finally:
            os.write(write, verdict)
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], timeout_s)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        return bool(ready) and os.read(read, 1) == b"T"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
