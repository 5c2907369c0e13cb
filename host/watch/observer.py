"""watchdog observers with a polling fallback for file systems without inotify."""

from __future__ import annotations

import logging
import os
import pathlib
from typing import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

logger = logging.getLogger("mwhost.watch")

#: set to 1 to force polling (network file systems, some containers)
POLLING_ENV = "MWHOST_WATCH_POLLING"


# NOTE: inotify also reports opens and read-only closes; reacting to those would make every
# reader of the manifest wake every watcher (which reads it again...).
_CHANGES = {"created", "modified", "moved", "deleted", "closed"}


OnPath = Callable[[pathlib.Path, str], None]


class _Callback(FileSystemEventHandler):
    def __init__(self, on_path: OnPath) -> None:
        self.on_path = on_path

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in _CHANGES:
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path:
                self.on_path(pathlib.Path(os.fsdecode(path)), event.event_type)


def watch_folder(folder: pathlib.Path, on_path: OnPath, poll_interval: float = 0.5) -> BaseObserver:
    """Call ``on_path(path, kind)`` for every file event in ``folder`` (not recursive; kind is
    watchdog's event type: "closed" means closed after writing); started, daemon."""
    folder.mkdir(parents=True, exist_ok=True)
    handler = _Callback(on_path)
    use_polling = os.environ.get(POLLING_ENV) == "1"
    observer: BaseObserver = PollingObserver(timeout=poll_interval) if use_polling else Observer()
    try:
        _start(observer, handler, folder)
    except OSError as err:  # e.g. inotify limits reached, or no inotify at all
        logger.warning("watching %s by polling: %s", folder, err)
        observer = PollingObserver(timeout=poll_interval)
        _start(observer, handler, folder)
    return observer


def _start(observer: BaseObserver, handler: FileSystemEventHandler, folder: pathlib.Path) -> None:
    observer.daemon = True  # never keeps a worker alive at exit
    observer.schedule(handler, str(folder), recursive=False)
    observer.start()
