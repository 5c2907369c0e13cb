"""The audit log: one JSON line per write in ``<data_dir>/audit.log``, from the admin API
and the drop folder alike.

Each line says who (the token's ``sub``, or ``drop-folder``), what (``action`` on ``stage``), when (``at``, UTC,
ISO 8601), the module's ``sha256``, and the result (``ok`` or ``refused`` with the HTTP
``status`` and the problem's ``detail``). Calls refused before a token was accepted (401)
are not written here, so nobody without a token can fill the disk; they go to the host log.
Workers append under an exclusive lock, one whole line per write.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import logging
import os
import pathlib
import re
from typing import Any, Protocol

from ..errors import HostError
from ..metrics import METRICS

logger = logging.getLogger("mwhost.admin")

#: details longer than this are cut in the audit line (the full text went to the client)
MAX_DETAIL = 1000
_STAGE_IN_PATH = re.compile(r"/middlewares/[^/\s]+")


def operation_label(action: str) -> str:
    """A bounded metric label for an action: the route, not the stage name in it."""
    return _STAGE_IN_PATH.sub("/middlewares/{name}", action)


class AuditStream(Protocol):
    """Where a fleet host's audit records go besides its file (host/fleet/store.py)."""

    def audit(self, record: dict[str, Any]) -> None: ...
    def audit_records(self, limit: int) -> list[dict[str, Any]]: ...


#: how many of the fleet's latest records ``read`` returns from its stream
STREAM_READ_LIMIT = 10_000


class AuditLog:
    """Appends audit records to a JSON-lines file and, on a fleet host, to the fleet's audit
    stream (so every host's writes can be read from any host; docs/fleet.md)."""

    def __init__(self, path: pathlib.Path, stream: AuditStream | None = None) -> None:
        self.path = path
        self.stream = stream

    def record(self, who: str, action: str, stage: str | None, result: str, status: int,
               **fields: Any) -> dict[str, Any]:
        entry = {
            "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
            "who": who, "action": action, "stage": stage, "result": result, "status": status,
            "pid": os.getpid(),
            **{k: v for k, v in fields.items() if v is not None},
        }
        if isinstance(entry.get("detail"), str) and len(entry["detail"]) > MAX_DETAIL:
            entry["detail"] = entry["detail"][:MAX_DETAIL] + "..."
        line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
        METRICS.admin_operation(operation_label(action), result)
        logger.info("admin %s %s by %s: %s (%s)", action, stage or "", who, result, status,
                    extra={"stage": stage, "version": entry.get("sha256")})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as out:
                fcntl.flock(out, fcntl.LOCK_EX)
                try:
                    out.write(line)
                finally:
                    fcntl.flock(out, fcntl.LOCK_UN)
        except OSError as err:
            # NOTE: the change itself is done (or refused) already; losing its audit line is
            # logged loudly rather than turned into a failed call that did change something.
            logger.error("cannot write the audit log %s: %s; record: %s", self.path, err, line.decode().strip())
        if self.stream is not None:
            try:
                self.stream.audit(entry)
            except HostError as err:  # NOTE: the local line is written; the change is not undone
                logger.error("audit record not added to the fleet's stream: %s", err)
        return entry

    def latest(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` records, newest first, read from the end of the file (it
        only grows, so a long-lived host's whole log is never read for a page of it)."""
        try:
            with open(self.path, "rb") as log:
                lines = _last_lines(log, limit)
        except FileNotFoundError:
            return []
        records = []
        for line in reversed(lines):
            try:
                record = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue  # NOTE: a line cut by a full disk is skipped, not a failed read
            if isinstance(record, dict):
                records.append(record)
        return records

    def read(self) -> list[dict[str, Any]]:
        """Every record so far (for tests and tools): a fleet host's from the fleet's stream
        (the latest STREAM_READ_LIMIT, every host's), its own file while Redis is down."""
        if self.stream is not None:
            try:
                return self.stream.audit_records(STREAM_READ_LIMIT)
            except HostError as err:
                logger.warning("reading this host's audit log: the fleet's stream is unreachable: %s", err)
        try:
            return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        except FileNotFoundError:
            return []


#: bytes read from the end of the audit log per step while looking for whole lines
_TAIL_BLOCK = 64 * 1024


def _last_lines(log: Any, count: int) -> list[bytes]:
    """The last ``count`` non-empty lines of the binary file ``log``, oldest first."""
    log.seek(0, os.SEEK_END)
    end = log.tell()
    data = b""
    while end > 0 and data.count(b"\n") <= count:
        start = max(0, end - _TAIL_BLOCK)
        log.seek(start)
        data = log.read(end - start) + data
        end = start
    lines = [line for line in data.split(b"\n") if line.strip()]
    if end > 0:
        lines = lines[1:]  # NOTE: the first piece may be the tail of a longer line
    return lines[-count:]
