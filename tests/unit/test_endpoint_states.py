"""``EndpointStates``: the newest observation of an endpoint wins, whatever order they come."""

from __future__ import annotations

from dataclasses import replace

from hookline.delivery.disabled import EndpointStates
from tests.conftest import make_app, make_endpoint


def test_a_delivery_read_before_a_disable_is_held() -> None:
    """A delivery carrying its endpoint as read (enabled, version 1) is held once version 2
    says disabled."""
    endpoint = make_endpoint(make_app())
    states = EndpointStates()
    assert not states.blocks(endpoint)
    states.observe(endpoint.id, endpoint.version + 1, True)
    assert states.blocks(endpoint)


def test_an_older_observation_never_overrides_a_newer_one() -> None:
    """A heartbeat's read that crossed a notification (older version) changes nothing."""
    endpoint = make_endpoint(make_app())
    states = EndpointStates()
    states.observe(endpoint.id, 3, True)
    states.observe_all({endpoint.id: (2, False)})
    assert states.blocks(endpoint)


def test_a_delivery_read_after_a_re_enable_goes_through() -> None:
    """A delivery whose endpoint was read at a newer version than the known disable (a
    re-enable whose notification was lost) is not held."""
    endpoint = make_endpoint(make_app())
    states = EndpointStates()
    states.observe(endpoint.id, 2, True)
    assert not states.blocks(replace(endpoint, version=3, disabled=False))


def test_forgetting_keeps_disabled_endpoints_and_held_ones() -> None:
    """Pruning drops enabled endpoints no longer held, never a disabled one."""
    app = make_app()
    held, gone, off = make_endpoint(app), make_endpoint(app), make_endpoint(app)
    states = EndpointStates()
    states.observe(held.id, 2, False)
    states.observe(gone.id, 2, False)
    states.observe(off.id, 2, True)
    states.keep_only({held.id})
    assert states.blocks(replace(off, version=2))
    states.observe(gone.id, 1, True)
    assert states.blocks(replace(gone, version=1))
