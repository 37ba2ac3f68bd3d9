"""``HOOKLINE_PORTAL_FRAME_ANCESTORS``: only source expressions that cannot end the CSP
directive, with ``'self'`` by default."""

from __future__ import annotations

import pytest

from hookline.config import ConfigError, load_settings


def test_by_default_only_hookline_s_own_origin_may_frame_the_portal() -> None:
    assert load_settings(environ={}).portal_frame_ancestors == "'self'"


@pytest.mark.parametrize(
    ("given", "directive"),
    [
        ("'none'", "'none'"),
        ("https://app.example.com", "https://app.example.com"),
        ("'self', https://*.example.com:8443", "'self' https://*.example.com:8443"),
        ("https:", "https:"),
    ],
)
def test_sources_are_space_or_comma_separated(given: str, directive: str) -> None:
    settings = load_settings(environ={"HOOKLINE_PORTAL_FRAME_ANCESTORS": given})
    assert settings.portal_frame_ancestors == directive


@pytest.mark.parametrize(
    "given",
    [
        "",
        "*",
        "'self' 'none'",
        "https://a.example.com; script-src *",
        "https://a.example.com/path",
        "'unsafe-inline'",
        "javascript:",
    ],
)
def test_a_value_that_is_not_a_frame_ancestors_list_stops_the_start(given: str) -> None:
    """An empty list, ``*``, ``'none'`` beside others, anything that could end the
    directive or add one: a ``ConfigError`` naming the variable."""
    with pytest.raises(ConfigError, match="HOOKLINE_PORTAL_FRAME_ANCESTORS"):
        load_settings(environ={"HOOKLINE_PORTAL_FRAME_ANCESTORS": given})
