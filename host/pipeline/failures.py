"""Failure attribution: one log line per failure kind and stage, rate-limited, with what an
operator needs to find the culprit (stage, version, phase, kind, trap code, guest stderr)."""

from __future__ import annotations

import logging
import time

from ..errors import GuestTrap

logger = logging.getLogger("mwhost.pipeline")

#: at most one line per stage and kind per interval; the rest is counted
LOG_INTERVAL_S = 1.0


def failure_kind(err: Exception) -> str:
    """A short label: trap, timeout, fuel, memory, load, refused, abi."""
    return getattr(err, "kind", "abi")


def annotate(err: BaseException, instance) -> None:
    """Attach what the failed instance knows (stderr, memory) before it is thrown away."""
    if not hasattr(err, "kind") and not isinstance(err, Exception):
        return
    stderr = list(instance.log.last_stderr)
    err.guest_stderr = stderr  # type: ignore[attr-defined]
    err.guest_log = instance.log.recent  # type: ignore[attr-defined]
    out_of_memory = any("out of memory" in line for line in stderr)  # Go's runtime says so
    if out_of_memory or (isinstance(err, GuestTrap) and instance.memory_exhausted()):
        err.kind = "memory"  # type: ignore[attr-defined]


class FailureLog:
    """Per stage: logs the first failure of each kind per interval and counts the rest."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, list] = {}  # kind -> [last logged at, suppressed since]

    def report(self, stage, err: Exception, phase: str, request_id: str | None = None) -> None:
        kind = failure_kind(err)
        now = time.monotonic()
        entry = self._last.get(kind)
        if entry is not None and now - entry[0] < LOG_INTERVAL_S:
            entry[1] += 1
            return
        suppressed = entry[1] if entry is not None else 0
        self._last[kind] = [now, 0]
        stderr = getattr(err, "guest_stderr", None)
        logger.error(
            "stage %s failed in the %s phase (%s, %s, version %s): %s%s%s",
            stage.name, phase, kind, "fail_open" if stage.fail_open else "fail_closed",
            stage.version[:12], err,
            f"; guest stderr: {' | '.join(stderr)}" if stderr else "",
            f" [{suppressed} more like it in the last {LOG_INTERVAL_S:.0f}s not logged]" if suppressed else "",
            extra={"stage": stage.name, "version": stage.version, "phase": phase, "kind": kind,
                   "trap_code": getattr(err, "trap_code", None), "request_id": request_id})
