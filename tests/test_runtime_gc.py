"""Collector settings of the server processes."""

from __future__ import annotations

import gc

from settings.runtime import SERVER_GC_THRESHOLD, tune_gc_for_server


def test_server_gc_tuning_freezes_start_up_objects_and_raises_the_thresholds() -> None:
    before = gc.get_threshold()
    try:
        tune_gc_for_server()
        assert gc.get_threshold() == SERVER_GC_THRESHOLD
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
