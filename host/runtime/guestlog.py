"""Guest log lines (``mw.log``, WASI stdout and stderr) into the host log, bounded per call."""

from __future__ import annotations

import logging

logger = logging.getLogger("mwhost.guest")

_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}
_STREAM_LEVEL = {"stdout": logging.INFO, "stderr": logging.WARNING}
_KEPT_LINES = 5
#: what a call's failure report carries of everything the guest logged in it (mw.log, stdout,
#: stderr): the last lines, at most this many and this many bytes
RECENT_LINES = 10
RECENT_BYTES = 2048
# NOTE: guest text is untrusted: escape control characters so it cannot forge log lines.
_ESCAPE_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F) if c != 0x09}


class GuestLog:
    """Attributes every line to its stage and version and drops what exceeds the per-call budget.

    ``begin_call`` resets the budget; ``end_call`` flushes partial stream lines and reports
    what was dropped. The last stderr lines, and the last lines of any source (``recent``),
    are kept for failure reports.
    """

    __slots__ = ("label", "budget", "used", "dropped", "_partial", "_first_stderr", "_tail_stderr",
                 "_recent", "_extra", "clean")

    def __init__(self, label: str, budget: int, version: str = "") -> None:
        self.label = label
        # structured fields for JSON logs: the stage name (label before "@") and version
        self._extra = {"stage": label.split("@", 1)[0], "version": version or None}
        self.budget = budget
        self.used = 0
        self.dropped = 0
        self._partial = {"stdout": b"", "stderr": b""}
        self._first_stderr: str | None = None
        self._tail_stderr: list[str] = []
        self._recent: list[str] = []
        # PERF: nothing logged, counted or kept since the last begin_call: the next call's
        # begin_call and end_call have nothing to do (Stage.on_request skips them)
        self.clean = True

    def begin_call(self) -> None:
        self.used = 0
        self.dropped = 0
        self._first_stderr = None
        self._tail_stderr = []
        self._recent = []
        self.clean = True

    @property
    def recent(self) -> list[str]:
        """The current call's last log lines, each as ``source: text`` (bounded: RECENT_LINES,
        RECENT_BYTES), for a refusal's or failure's report."""
        return list(self._recent)

    @property
    def last_stderr(self) -> list[str]:
        """The current call's stderr for failure reports: its first line (a panic message is
        usually there) and its last ones."""
        if self._first_stderr is None:
            return []
        tail = self._tail_stderr[1:] if self._tail_stderr[:1] == [self._first_stderr] else self._tail_stderr
        return [self._first_stderr, *tail]

    @property
    def pending(self) -> bool:
        """Whether ``end_call`` has anything to do (PERF: skipped on the silent common path)."""
        return bool(self.dropped or self._partial["stdout"] or self._partial["stderr"])

    def end_call(self) -> None:
        for stream, rest in self._partial.items():
            if rest:
                self._partial[stream] = b""
                self._emit(_STREAM_LEVEL[stream], stream, rest)
        if self.dropped:
            logger.warning("[%s] guest log over budget: %d bytes dropped", self.label, self.dropped,
                           extra=self._extra)
            self.dropped = 0

    def over_budget(self, size: int) -> bool:
        """Count ``size`` bytes as dropped if they no longer fit this call's budget."""
        if self.used + size > self.budget:
            self.dropped += size
            self.clean = False
            return True
        return False

    def _admit(self, size: int) -> bool:
        self.clean = False
        if self.used + size > self.budget:
            self.dropped += size
            return False
        self.used += size
        return True

    def _emit(self, level: int, source: str, data: bytes) -> None:
        self.clean = False
        text = data.decode("utf-8", "replace").rstrip("\r\n").translate(_ESCAPE_CONTROLS)
        if source == "stderr":
            if self._first_stderr is None:
                self._first_stderr = text
            self._tail_stderr = (self._tail_stderr + [text])[-_KEPT_LINES:]
        self._keep_recent(f"{source}: {text}")
        logger.log(level, "[%s] %s: %s", self.label, source, text, extra=self._extra)

    def _keep_recent(self, entry: str) -> None:
        recent = (self._recent + [entry[:RECENT_BYTES]])[-RECENT_LINES:]
        while sum(len(line) for line in recent) > RECENT_BYTES:
            recent.pop(0)
        self._recent = recent

    def line(self, level: int, data: bytes) -> None:
        """One ``mw.log`` line."""
        if self._admit(len(data)):
            self._emit(_LEVELS.get(level, logging.INFO), "log", data)

    def stream(self, stream: str, data: bytes) -> None:
        """A chunk written to WASI stdout or stderr; complete lines are logged as they come."""
        if not self._admit(len(data)):
            return
        buffered = self._partial[stream] + data
        *lines, rest = buffered.split(b"\n")
        self._partial[stream] = rest
        for line in lines:
            self._emit(_STREAM_LEVEL[stream], stream, line)
