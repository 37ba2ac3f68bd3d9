"""``HOOKLINE_METRICS_APPLICATIONS``: the applications whose attempts get series of their own,
a short list the operator chose (bounded, so labels stay few)."""

from __future__ import annotations

import pytest

from hookline.config import MAX_METRICS_APPLICATIONS, ConfigError, load_settings


def test_no_application_is_named_unless_the_operator_names_some() -> None:
    """By default no application id or uid becomes a label."""
    assert load_settings(environ={}).metrics_applications == ()


def test_names_are_trimmed_and_kept_once_in_the_order_given() -> None:
    """Spaces and repeats in the list change nothing: each name is one label value."""
    settings = load_settings(environ={"HOOKLINE_METRICS_APPLICATIONS": " acme, globex,acme,,"})
    assert settings.metrics_applications == ("acme", "globex")


def test_more_names_than_the_bound_stop_the_start() -> None:
    """Over a hundred names is refused with the setting's name: a label per application
    is for a chosen few, anomaly detection watches the rest."""
    names = ",".join(f"app{number}" for number in range(MAX_METRICS_APPLICATIONS + 1))
    with pytest.raises(ConfigError, match=r"HOOKLINE_METRICS_APPLICATIONS=.*at most 100"):
        load_settings(environ={"HOOKLINE_METRICS_APPLICATIONS": names})
