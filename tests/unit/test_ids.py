"""Prefixed, time-sortable ids."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from ksuid import KsuidMs

from hookline.domain import ids

AT = datetime(2026, 3, 1, 12, 0, 0, 8000, tzinfo=UTC)  # on a 4 ms tick


SetClock = Callable[[datetime], None]


@pytest.fixture
def set_clock(monkeypatch: pytest.MonkeyPatch) -> SetClock:
    """Pin the id clock to a chosen instant, starting from a fresh monotonic guard."""
    monkeypatch.setattr(ids, "_last", 0)

    def set_(at: datetime) -> None:
        ns = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
        monkeypatch.setattr(ids, "_clock_ns", lambda: ns)

    return set_


def test_ids_have_prefix_and_ksuid_body() -> None:
    """An id is the prefix, an underscore and 27 base62 characters."""
    value = ids.new_id(ids.MESSAGE)
    prefix, _, body = value.partition("_")
    assert prefix == "msg"
    assert len(body) == 27 and body.isalnum()


def test_prefix_constants_match_svix() -> None:
    """The prefixes are the ones Svix clients expect to see."""
    assert (ids.APP, ids.ENDPOINT, ids.MESSAGE, ids.ATTEMPT) == ("app", "ep", "msg", "atmpt")
    assert (ids.DELIVERY, ids.TOKEN, ids.TASK) == ("dlv", "tok", "qtask")


def test_ids_sort_in_creation_order_even_within_a_millisecond() -> None:
    """Ids made one after another sort strictly increasing as strings."""
    made = [ids.new_id(ids.ATTEMPT) for _ in range(5000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_keep_increasing_when_the_clock_stalls_or_steps_back(set_clock: SetClock) -> None:
    """A frozen or backward-stepping clock still yields strictly increasing ids."""
    set_clock(AT)
    frozen = [ids.new_id(ids.MESSAGE) for _ in range(200)]
    set_clock(AT - timedelta(seconds=5))
    stepped_back = [ids.new_id(ids.MESSAGE) for _ in range(200)]
    made = frozen + stepped_back
    assert made == sorted(made) and len(set(made)) == len(made)


def test_ids_from_many_threads_are_unique_and_each_thread_sees_them_increase() -> None:
    """Concurrent callers never get the same id, and each caller's ids increase."""
    per_thread: list[list[str]] = [[] for _ in range(8)]

    def make(out: list[str]) -> None:
        out.extend(ids.new_id(ids.DELIVERY) for _ in range(1000))

    threads = [threading.Thread(target=make, args=(out,)) for out in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [value for out in per_thread for value in out]
    assert len(set(everything)) == len(everything)
    assert all(out == sorted(out) for out in per_thread)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_replay_the_parents_ids(set_clock: SetClock) -> None:
    """After fork the child draws fresh randomness, so parent and child never mint equal ids."""
    set_clock(AT)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        os.write(write_end, ids.new_id(ids.MESSAGE).encode())
        os._exit(0)
    os.close(write_end)
    parent = ids.new_id(ids.MESSAGE)
    child = os.read(read_end, 100).decode()
    os.waitpid(pid, 0)
    os.close(read_end)
    assert child and child != parent


def test_ids_decode_as_millisecond_ksuids() -> None:
    """Our fast encoder writes exactly what svix-ksuid reads back (same bytes, same time)."""
    body = ids.new_id(ids.MESSAGE).removeprefix("msg_")
    parsed = KsuidMs.from_base62(body)
    assert str(parsed) == body
    assert abs((parsed.datetime - datetime.now(UTC)).total_seconds()) < 1


def test_a_run_of_ids_is_consecutive_values_in_increasing_order(set_clock: SetClock) -> None:
    """new_ids spells consecutive KsuidMs values, carrying across digits like an integer."""
    set_clock(AT)
    run = ids.new_ids(ids.DELIVERY, 200)
    values = [int.from_bytes(bytes(KsuidMs.from_base62(i.partition("_")[2]))) for i in run]
    assert values == list(range(values[0], values[0] + 200))
    assert run == sorted(run) and len(set(run)) == 200
    assert all(i.startswith("dlv_") and len(i) == 4 + 27 for i in run)


def test_an_id_minted_after_a_run_sorts_after_the_whole_run(set_clock: SetClock) -> None:
    """A run reserves its values, so the clock stalling cannot mint one of them again."""
    set_clock(AT)
    run = ids.new_ids(ids.DELIVERY, 50)
    after = ids.new_id(ids.DELIVERY)
    assert after > run[-1]


def test_increment_carries_through_trailing_z_digits() -> None:
    """The string increment agrees with encoding value + 1 where every digit carries."""
    for value in (61, 62 * 62 - 1, 62**9 - 1, 62**18 - 1, 12345 * 62**5 - 1):
        assert ids._increment(ids._base62(value)) == ids._base62(value + 1)


def test_an_empty_run_mints_nothing() -> None:
    """Asking for no ids reserves nothing."""
    assert ids.new_ids(ids.DELIVERY, 0) == []
