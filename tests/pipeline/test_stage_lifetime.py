"""A replaced stage is freed as soon as its last request ends (no reference cycles), and
retiring its metrics never deadlocks, even from inside a metrics flush."""

from __future__ import annotations

import gc
import weakref

from mwhost import testing
from mwhost.metrics import METRICS
from mwhost.web import load_live
from tests.wat import const_guest


def test_a_stage_is_freed_without_the_cyclic_collector(tmp_path):
    settings = testing.pipeline_settings(tmp_path, ("short_lived", const_guest({"action": "continue"}), {}))
    live = load_live(settings)
    stage = live.holder.current.stages[0]
    instance = stage._idle[0].instance
    ref = weakref.ref(stage)
    gc.disable()
    try:
        del stage
        live.holder.current.stages = ()
        live = None
        assert ref() is None  # reference counting alone freed it
        assert instance.closed  # and its instances with it
    finally:
        gc.enable()


def test_retiring_meters_inside_a_flush_does_not_deadlock():
    meter = METRICS.meter("flushy", "0" * 64, "request")
    meter.record(0.001, True)
    real = METRICS.published()

    class Reentrant:
        """Stands for a garbage collection that runs a Stage.__del__ in the middle of a flush."""

        def __getattr__(self, name):
            METRICS.retire(meter)
            return getattr(real, name)

    try:
        METRICS._published = Reentrant()
        METRICS.flush()  # would hang forever with a non-reentrant lock taken in retire()
    finally:
        METRICS._published = real
    METRICS.flush()
