"""Fixtures every end-to-end test module shares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.harness import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local receiver on loopback for the test, stopped after it."""
    started = Receiver().start()
    yield started
    started.stop()
