"""The API's rate rule (``domain/throttle.py``): GCRA per key, bounded memory, address keys."""

from __future__ import annotations

import pytest

from hookline.domain.throttle import Rate, Throttle, address_key


def test_a_burst_is_admitted_then_refused_with_the_wait_until_the_next_slot() -> None:
    """At 2/s with a burst of 3, three requests at once pass, the fourth waits 0.5 s."""
    throttle = Throttle(Rate(2.0, 3))
    assert [throttle.take("k", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert throttle.take("k", 0.0) == pytest.approx(0.5)
    assert throttle.take("k", 0.49) == pytest.approx(0.01)
    assert throttle.take("k", 0.5) == 0.0


def test_a_refused_request_is_not_counted() -> None:
    """Hammering while refused does not push the next slot further away."""
    throttle = Throttle(Rate(1.0, 1))
    assert throttle.take("k", 0.0) == 0.0
    for _ in range(100):
        assert throttle.take("k", 0.1) == pytest.approx(0.9)
    assert throttle.take("k", 1.0) == 0.0


def test_the_sustained_rate_is_the_configured_one() -> None:
    """Asking every 1/8 s for 10 s at 4/s with a burst of 4: every ask passes until the
    burst is spent (at 0.75 s), then one every 1/4 s; 4 + 4 x 10 in all (times chosen
    exact in binary)."""
    throttle = Throttle(Rate(4.0, 4))
    admitted = [i / 8 for i in range(81) if throttle.take("k", i / 8) == 0.0]
    assert admitted == [i / 8 for i in range(7)] + [i / 4 for i in range(4, 41)]
    assert len(admitted) == 4 + 4 * 10


def test_keys_are_counted_apart() -> None:
    """One key's debt is not another's."""
    throttle = Throttle(Rate(1.0, 1))
    assert throttle.take("a", 0.0) == 0.0
    assert throttle.take("a", 0.0) > 0
    assert throttle.take("b", 0.0) == 0.0


def test_charge_counts_past_the_limit_and_wait_reads_without_counting() -> None:
    """``charge`` (a failed authentication) always counts; ``wait`` never does."""
    throttle = Throttle(Rate(1.0, 2))
    for _ in range(4):
        throttle.charge("k", 0.0)
    assert throttle.wait("k", 0.0) == pytest.approx(3.0)
    assert throttle.wait("k", 0.0) == pytest.approx(3.0)
    assert throttle.wait("k", 3.0) == 0.0


def test_memory_is_bounded_forgetting_paid_keys_first() -> None:
    """Past ``max_keys`` the keys whose debt is paid go first, then the least recently
    charged: an attacker with many addresses cannot grow the table."""
    throttle = Throttle(Rate(1.0, 1), max_keys=3)
    throttle.charge("old", 0.0)
    throttle.charge("busy", 0.0)
    for _ in range(5):
        throttle.charge("busy", 0.0)
    throttle.charge("recent", 5.0)
    throttle.charge("new", 5.0)
    assert len(throttle) == 3
    assert throttle.wait("busy", 5.0) > 0
    assert throttle.wait("old", 5.0) == 0.0
    for i in range(100):
        throttle.charge(f"flood-{i}", 5.0)
    assert len(throttle) == 3


def test_rate_of_turns_burst_seconds_into_requests_and_zero_into_no_limit() -> None:
    """A rate of 0 is no limit; otherwise the burst is the rate times the burst seconds,
    and at least one request."""
    assert Rate.of(0, 10) is None
    assert Rate.of(1000, 10) == Rate(1000, 10_000)
    assert Rate.of(0.01, 10) == Rate(0.01, 1)
    with pytest.raises(ValueError, match="at least one"):
        Rate(1.0, 0)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_an_ipv6_client_is_counted_by_its_64_prefix(address: str, key: str) -> None:
    """One host holds a whole /64, so that is the unit a per-address budget applies to."""
    assert address_key(address) == key
