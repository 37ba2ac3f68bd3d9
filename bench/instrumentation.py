"""What an emit site costs when nobody listens, against the same site without one.

Run with ``python -m bench.instrumentation``. Each figure is the best of several timeit
repeats, in nanoseconds per call, on this machine, in the same run: the baseline is a
function doing a delivery's bookkeeping alone; the others add the instrumentation check
as emitters write it: ``wants`` asked once when the emitter is built, a flag read per call)
and, for scale, building and emitting an event to one hook that does nothing, and asking
``wants`` on every call instead of once.
"""

from __future__ import annotations

import os
import platform
import timeit
from datetime import UTC, datetime

from hookline.instrumentation import AttemptFinished, Event, Instrumentation

REPEATS = 7
CALLS = 1_000_000
STARTED = datetime(2026, 12, 7, tzinfo=UTC)


class NullHook:
    events: frozenset[type[Event]] = frozenset({AttemptFinished})

    def __call__(self, event: Event) -> None:
        return None


class Site:
    """A stand-in for the worker's per-delivery bookkeeping, with an emit site or without."""

    def __init__(self, instrumentation: Instrumentation | None) -> None:
        self.instrumentation = instrumentation or Instrumentation()
        self.listening = self.instrumentation.wants(AttemptFinished)
        self.load: dict[str, int] = {}

    def bare(self) -> None:
        self.load["ep_1"] = self.load.get("ep_1", 0) + 1
        self.load["ep_1"] -= 1

    def flagged(self) -> None:
        self.load["ep_1"] = self.load.get("ep_1", 0) + 1
        if self.listening:
            self.emit()
        self.load["ep_1"] -= 1

    def asking(self) -> None:
        self.load["ep_1"] = self.load.get("ep_1", 0) + 1
        if self.instrumentation.wants(AttemptFinished):
            self.emit()
        self.load["ep_1"] -= 1

    def emit(self) -> None:
        self.instrumentation.emit(
            AttemptFinished(
                "app_1", "msg_1", "ep_1", "atmpt_1", 200, None, 3, 1, False, "success", STARTED
            )
        )


def best_ns(call: object) -> float:
    timer = timeit.Timer(call)  # type: ignore[arg-type]
    return min(timer.repeat(REPEATS, CALLS)) / CALLS * 1e9


def main() -> None:
    silent = Site(None)
    heard = Site(Instrumentation([NullHook()]))
    rows = [
        ("site without instrumentation (baseline)", best_ns(silent.bare)),
        ("no listener, flag read per call (as emitters do)", best_ns(silent.flagged)),
        ("no listener, wants() asked per call", best_ns(silent.asking)),
        ("one do-nothing hook: event built and emitted", best_ns(heard.flagged)),
    ]
    baseline = rows[0][1]
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"settings: best of {REPEATS} x {CALLS:,} calls")
    for name, ns in rows:
        print(f"{name:50} {ns:7.1f} ns per call (+{ns - baseline:.1f})")


if __name__ == "__main__":
    main()
