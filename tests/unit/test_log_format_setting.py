"""``HOOKLINE_LOG_FORMAT``: text by default, json on request, anything else refused at start;
with json, uvicorn keeps no handlers of its own, so its lines reach the JSON handler."""

from __future__ import annotations

import pytest

from hookline.cli import build_parser
from hookline.config import ConfigError, load_settings
from hookline.server import uvicorn_logging


def test_log_format_defaults_to_text_and_accepts_json_from_env_or_flag() -> None:
    """Text by default; ``HOOKLINE_LOG_FORMAT=JSON`` and ``--log-format json`` give json,
    for serve and for worker."""
    assert load_settings(environ={}).log_format == "text"
    assert load_settings(environ={"HOOKLINE_LOG_FORMAT": "JSON"}).log_format == "json"
    for command in ("serve", "worker"):
        args = build_parser().parse_args([command, "--log-format", "json"])
        assert load_settings({"log_format": args.log_format}, environ={}).log_format == "json"


def test_an_unknown_log_format_stops_the_start_naming_the_setting() -> None:
    """A format hookline does not write is refused with the variable's name."""
    with pytest.raises(ConfigError, match="HOOKLINE_LOG_FORMAT='xml': must be text or json"):
        load_settings(environ={"HOOKLINE_LOG_FORMAT": "xml"})


def test_uvicorn_keeps_its_layout_for_text_and_hands_its_lines_over_for_json() -> None:
    """With text uvicorn configures its loggers as always; with json it configures none."""
    assert uvicorn_logging(load_settings(environ={})) == {}
    json_settings = load_settings(environ={"HOOKLINE_LOG_FORMAT": "json"})
    assert uvicorn_logging(json_settings) == {"log_config": None}
