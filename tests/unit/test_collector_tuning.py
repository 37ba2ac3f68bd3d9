"""``server.collector_tuned``: the garbage collector's settings while a process serves."""

from __future__ import annotations

import gc

import pytest

from hookline.server import GC_YOUNG_THRESHOLD, collector_tuned


def test_serving_freezes_the_start_up_heap_and_raises_the_young_threshold() -> None:
    """While serving, what start-up built is out of the collector's reach and young
    collections wait for more allocations; older generations keep Python's thresholds."""
    before = gc.get_threshold()
    with collector_tuned():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])


def test_the_settings_come_back_when_serving_ends() -> None:
    """A server run in-process (the tests') leaves the interpreter as it found it, even when
    it stops with an error."""
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), collector_tuned():
        raise RuntimeError("a component failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
