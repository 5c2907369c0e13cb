"""Logging set-up: plain text or one JSON object per line, with request context.

Every log record mwhost writes about a stage carries ``stage`` and ``version`` (failures
also ``phase`` and ``kind``); a record made while a request is being handled also carries
that request's ``request_id`` (the ``request_id`` ctx a stage set, else the
``x-request-id`` header) and the pipeline ``generation`` serving it.

One record is one line: control characters in a message (a ``%0A`` in a request path, a
header value, a stage name) are escaped as ``\\xNN`` before any formatter sees them, so
nobody can forge a log line through a request. A traceback spans lines by nature (and its
exception message may carry request data): in text format each of its lines starts with
``  | ``, so none of them can pass for a record of its own.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time

#: (request_id, generation) of the request being handled in this thread, if any
REQUEST: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar("mwhost_request", default=None)

TEXT_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
_FIELDS = ("stage", "version", "phase", "kind", "trap_code", "generation", "request_id")
#: C0 and C1 controls, DEL and the Unicode line separators, but not tab (log viewers break
#: lines at several of them; host/runtime/guestlog.py escapes guest text the same way)
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """``text`` with every control character but tab written as ``\\xNN`` (``\\uNNNN``)."""
    return _CONTROLS.sub(lambda found: ascii(found.group())[1:-1], text)


class EscapeControls(logging.Filter):
    """A handler filter: the record's message, formatted with its args, with control
    characters escaped (args often carry request data: paths, headers, stage names)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        # PERF: most messages have no control character; leave those records untouched
        if _CONTROLS.search(message):
            record.msg, record.args = escape_controls(message), None
        return True


#: the start of every line of a traceback in text logs
TRACEBACK_MARK = "  | "


def marked_lines(text: str) -> str:
    """``text`` escaped like :func:`escape_controls` but for its line breaks, each line
    starting with :data:`TRACEBACK_MARK`."""
    return "\n".join(TRACEBACK_MARK + escape_controls(line) for line in text.split("\n"))


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` lines; a traceback's lines are marked as its own (see the module doc)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        return marked_lines(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 (logging's name)
        return marked_lines(stack_info)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, pid, message and mwhost's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        current = REQUEST.get()
        if current is not None:
            entry["request_id"], entry["generation"] = current
        for field in _FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """Root logging for ``mwhost serve``: ``text`` or ``json`` lines on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(EscapeControls())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def json_enabled() -> bool:
    """Whether a JSON formatter is installed (the web layer then records request context)."""
    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)
