"""The endpoint form's own parsing (what HTML cannot type), and where a refusal is shown."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData

from hookline.domain.errors import InvalidRequest
from hookline.web.forms import EndpointForm, errors_of


def _form(**fields: str) -> EndpointForm:
    return EndpointForm.posted(FormData(list(fields.items())))


def test_headers_are_one_name_and_value_per_line() -> None:
    form = _form(headers="X-A: 1\n\n  X-B:two: three  \n")
    assert form.header_map() == {"X-A": "1", "X-B": "two: three"}


def test_a_header_line_without_a_colon_is_refused_at_the_headers_field() -> None:
    with pytest.raises(InvalidRequest) as refused:
        _form(headers="X-A: 1\nnope").header_map()
    assert refused.value.loc == ("body", "headers") and "Line 2" in refused.value.detail


def test_an_empty_rate_limit_is_none_and_a_word_is_refused() -> None:
    assert _form(rateLimit="").throttle_rate() is None
    assert _form(rateLimit=" 7 ").throttle_rate() == 7
    with pytest.raises(InvalidRequest):
        _form(rateLimit="fast").throttle_rate()


def test_channels_are_comma_separated_and_held_to_the_api_s_shape() -> None:
    assert _form(channels="eu, us ,").channel_list() == ["eu", "us"]
    assert _form(channels=" ").channel_list() is None
    with pytest.raises(InvalidRequest):
        _form(channels="has space").channel_list()
    with pytest.raises(InvalidRequest):
        _form(channels=",".join(f"c{i}" for i in range(11))).channel_list()


def test_the_operations_locations_map_to_the_form_s_fields() -> None:
    """``throttleRate`` is the rate limit field, ``filterTypes`` the event types; a
    location no field owns is a general message."""
    rate = errors_of(InvalidRequest("too fast", loc=("body", "throttleRate")))
    assert rate.get("rateLimit") == "too fast"
    types = errors_of(InvalidRequest("unknown", loc=("body", "filterTypes")))
    assert types.get("eventTypes") == "unknown"
    general = errors_of(InvalidRequest("odd", loc=("body", "policy", "x")))
    assert general.general == ["odd"] and bool(general)
