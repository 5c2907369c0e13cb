"""Watching for new pipeline generations: the manifest in every worker, the drop folder."""

from .drop import DropFolder
from .live import LivePipeline
from .observer import watch_folder

__all__ = ["DropFolder", "LivePipeline", "watch_folder"]
