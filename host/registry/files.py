"""Small file helpers: atomic writes, so a reader never sees half a file, and whether the
process that wrote a per-process file (counts, heartbeats) still lives."""

from __future__ import annotations

import fcntl
import os
import pathlib
import tempfile
from typing import BinaryIO


def write_atomic(path: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (another user's process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def try_role_lock(path: pathlib.Path) -> BinaryIO | None:
    """The open ``path`` holding an exclusive flock when no other process holds one (never
    blocks), else None; keep it open for as long as the role (decider, fleet syncer) is
    held: the lock goes with the process. ``OSError`` when the file cannot be opened."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(exist_ok=True)
    # NOTE: read-only: a file held open for writing keeps the data dir's filesystem from being
    # remounted read-only (docs/operations.md); flock needs no write access
    lock = open(path, "rb")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return None
    return lock
