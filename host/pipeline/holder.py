"""The one reference a swap rebinds."""

from __future__ import annotations

import threading

from .pipeline import Pipeline


class PipelineHolder:
    """Holds the current pipeline. Requests read ``current`` once into a local, so a swap
    never mixes versions within one request; the old pipeline lives until its last request ends.
    """

    __slots__ = ("current", "_lock")

    def __init__(self, pipeline: Pipeline | None = None) -> None:
        self.current = pipeline or Pipeline()
        self._lock = threading.Lock()

    def swap(self, pipeline: Pipeline) -> Pipeline:
        """Make ``pipeline`` current (built and checked beforehand); return the previous one."""
        with self._lock:
            previous, self.current = self.current, pipeline
        return previous
