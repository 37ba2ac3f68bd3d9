"""update_with_retry: read, apply a pure change, write; re-read on a lost race; 409 at last."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pytest

from hookline.api.errors import hookline_error_response
from hookline.domain.errors import Conflict, NotFound
from hookline.operations.updates import (
    UNSET,
    UPDATE_TRIES,
    Unset,
    changed_fields,
    update_with_retry,
)


class Box:
    """A versioned value whose writes fail while ``races`` is positive, like a moved row."""

    def __init__(self, value: int, races: int = 0) -> None:
        self.value = value
        self.version = 0
        self.races = races
        self.reads = 0
        self.writes: list[int] = []

    async def read(self) -> tuple[int, int]:
        self.reads += 1
        return self.value, self.version

    async def write(self, new: tuple[int, int]) -> tuple[int, int] | None:
        value, version = new
        self.writes.append(value)
        if self.races > 0:
            self.races -= 1
            self.value += 100
            self.version += 1
            return None
        if version != self.version:
            return None
        self.value, self.version = value, version + 1
        return self.value, self.version


def add_one(current: tuple[int, int]) -> tuple[int, int]:
    return current[0] + 1, current[1]


async def test_an_update_without_a_race_reads_once_and_writes_once() -> None:
    """The common case costs one read and one write."""
    box = Box(1)
    assert await update_with_retry(box.read, add_one, box.write) == (2, 1)
    assert box.reads == 1 and box.writes == [2]


async def test_a_lost_race_is_reapplied_to_the_new_state() -> None:
    """When another writer got there first, the change is applied again on top of theirs."""
    box = Box(1, races=2)
    result = await update_with_retry(box.read, add_one, box.write)
    assert result == (202, 3)
    assert box.value == 202 and box.reads == 3


async def test_too_many_lost_races_are_a_409_and_nothing_is_claimed() -> None:
    """After UPDATE_TRIES lost races the caller gets Conflict(concurrent_update), never a 2xx."""
    box = Box(1, races=UPDATE_TRIES)
    with pytest.raises(Conflict) as caught:
        await update_with_retry(box.read, add_one, box.write)
    assert caught.value.code == "concurrent_update"
    assert len(box.writes) == UPDATE_TRIES


async def test_a_known_current_state_spares_the_first_read() -> None:
    """``current`` is used for the first try; a retry reads again."""
    box = Box(5, races=1)
    result = await update_with_retry(box.read, add_one, box.write, current=(5, 0))
    assert result == (106, 2) and box.reads == 1


async def test_a_vanished_object_stops_the_update_with_its_404() -> None:
    """If the read finds nothing (deleted meanwhile), its NotFound ends the update."""

    async def gone() -> int:
        raise NotFound("Endpoint not found")

    async def never(value: int) -> int | None:
        raise AssertionError("no write without a read")

    with pytest.raises(NotFound):
        await update_with_retry(gone, lambda v: v, never)


@dataclass(frozen=True)
class Patch:
    name: str | Unset | None = UNSET
    note: str | Unset | None = UNSET


def test_changed_fields_keeps_only_what_is_set_and_ignores_null_required_fields() -> None:
    """UNSET fields are left alone; a None for a required field means "keep", not "clear"."""
    assert changed_fields(Patch()) == {}
    assert changed_fields(Patch(note=None)) == {"note": None}
    assert changed_fields(Patch(name=None, note=None), required=("name",)) == {"note": None}
    assert changed_fields(Patch(name="n"), required=("name",)) == {"name": "n"}


def test_a_lost_update_reaches_the_client_as_a_409() -> None:
    """The API answers Conflict(concurrent_update) with 409 and that code, never a 2xx."""
    response = hookline_error_response(Conflict("changed meanwhile", code="concurrent_update"))
    assert response.status == 409
    assert orjson.loads(response.body) == {
        "code": "concurrent_update",
        "detail": "changed meanwhile",
    }
