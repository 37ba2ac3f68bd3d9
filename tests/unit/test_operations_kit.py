"""The shipped operations kit (``deploy/``): its rules and dashboard name only metrics that
hookline exports, every alert is documented and unit-tested both ways, and the dashboard
imports into Grafana with the data source chosen at import.

promtool's own checks are in ``tests/integration/test_prometheus_rules.py``, a real
Prometheus scraping hookline in ``tests/e2e/test_prometheus_scrape.py``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hookline.instrumentation._metrics import exported_families

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "hookline.json"
OBSERVABILITY = ROOT / "docs" / "observability.md"

METRIC = re.compile(r"(?<![\w:])hookline_[a-z0-9_]+")
"""A hookline metric's name in PromQL; a recording rule's name (``hookline:…``) is not one."""
RECORDED = re.compile(r"(?<![\w:])hookline:[a-z0-9_:]+")
SUFFIXES = {"_total": "counter", "_bucket": "histogram", "_sum": "histogram"}
SUFFIXES["_count"] = "histogram"
SEVERITIES = {"critical", "warning", "info"}
FAMILIES = exported_families()
"""Every family hookline exports with its type, from the code that exports them."""
ROWS = [
    "Ingest",
    "Fan-out",
    "Outcomes",
    "Latency",
    "Backlog",
    "Lag",
    "Retries",
    "Give-ups",
    "Endpoint health",
    "API",
    "Store",
    "Process",
    "Anomalies",
]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def rule_expressions() -> Iterator[str]:
    for rule in rules():
        yield rule["expr"]


def rule_test_expressions() -> Iterator[str]:
    for case in load_yaml(ALERTS_TEST)["tests"]:
        for series in case.get("input_series", []):
            yield series["series"]
        for check in case.get("promql_expr_test", []):
            yield check["expr"]
            for sample in check.get("exp_samples", []):
                yield sample["labels"]


def dashboard_expressions() -> Iterator[str]:
    board = dashboard()
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in board["templating"]["list"]:
        yield variable["definition"]
        yield variable["query"]["query"]


EXPRESSIONS = {
    "alerts.yml": rule_expressions,
    "alerts_test.yml": rule_test_expressions,
    "hookline.json": dashboard_expressions,
}


def exported(name: str) -> bool:
    """Whether a scrape can hold a series of this name: a gauge's own name, a counter's
    ``_total``, a histogram's ``_bucket``, ``_sum`` or ``_count``."""
    if FAMILIES.get(name) == "gauge":
        return True
    return any(
        name.endswith(suffix) and FAMILIES.get(name.removesuffix(suffix)) == kind
        for suffix, kind in SUFFIXES.items()
    )


def test_series_names_are_checked_against_their_type() -> None:
    """A counter is named with ``_total``, a histogram by its series, a gauge by itself; an
    unknown name, or a known one with the wrong suffix, is not exported."""
    assert exported("hookline_messages_accepted_total")
    assert exported("hookline_attempt_duration_seconds_bucket")
    assert exported("hookline_build_info")
    assert not exported("hookline_messages_accepted")
    assert not exported("hookline_messages_accepted_bucket")
    assert not exported("hookline_attempt_duration_seconds_total")
    assert not exported("hookline_no_such_metric_total")


@pytest.mark.parametrize("source", sorted(EXPRESSIONS))
def test_every_metric_named_is_one_hookline_exports(source: str) -> None:
    """Every ``hookline_…`` series in the rules, their unit tests and the dashboard's
    queries is a series of a family that ``exported_families()`` lists, with its type's suffix."""
    names = {name for expr in EXPRESSIONS[source]() for name in METRIC.findall(expr)}
    assert len(names) >= 5, names
    unknown = sorted(name for name in names if not exported(name))
    assert unknown == [], f"{source} names series hookline does not export: {unknown}"


@pytest.mark.parametrize("source", sorted(EXPRESSIONS))
def test_every_recorded_series_named_is_recorded_by_the_rules(source: str) -> None:
    """A ``hookline:…`` series used anywhere is one that ``alerts.yml`` records."""
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    used = {name for expr in EXPRESSIONS[source]() for name in RECORDED.findall(expr)}
    assert used <= recorded


def test_the_dashboard_shows_every_exported_family() -> None:
    """No figure hookline exports is left off the dashboard."""
    shown = {name for expr in dashboard_expressions() for name in METRIC.findall(expr)}
    families = {
        name.removesuffix(suffix)
        for name in shown
        for suffix in ("", *SUFFIXES)
        if name.endswith(suffix) and name.removesuffix(suffix) in FAMILIES
    }
    assert sorted(set(FAMILIES) - families) == []


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces
    to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_is_labelled_and_has_a_runbook_section() -> None:
    """Each alert has a severity, a ``for`` duration, a summary, a description and a
    one-line runbook ending in a link to a section of docs/observability.md that exists."""
    docs = OBSERVABILITY.read_text()
    anchors = {github_anchor(line.lstrip("#")) for line in docs.splitlines() if line[:1] == "#"}
    for alert in alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in SEVERITIES, name
        assert re.fullmatch(r"\d+[smh]", alert["for"]), name
        annotations = alert["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}, name
        assert "\n" not in annotations["runbook"], name
        link = re.search(r"docs/observability\.md#([\w-]+)$", annotations["runbook"])
        assert link is not None, name
        assert link.group(1) == name.lower()
        assert link.group(1) in anchors, f"{name}: no section #{link.group(1)}"


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_does_not() -> None:
    """alerts_test.yml evaluates each alert at a time it must fire and at a time it must
    stay silent."""
    fired: set[str] = set()
    silent: set[str] = set()
    for case in load_yaml(ALERTS_TEST)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else silent).add(check["alertname"])
    names = {alert["alert"] for alert in alerts()}
    assert len(names) >= 10
    assert names <= fired
    assert names <= silent


def test_the_dashboard_asks_for_its_data_source_at_import() -> None:
    """The dashboard declares one Prometheus input, ``DS_PROMETHEUS``, and every panel, query
    and variable reads from it; it is recent enough for Grafana 10 and 11."""
    board = dashboard()
    assert board["__inputs"] == [
        {
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes hookline",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }
    ]
    source = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    assert 36 <= board["schemaVersion"] <= 41
    for variable in board["templating"]["list"]:
        assert variable["datasource"] == source
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == source, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["datasource"] == source for target in panel["targets"])


def test_the_dashboard_has_its_rows_in_order_and_panels_on_the_grid() -> None:
    """Rows come in the documented order, each with at least one panel; panel ids are
    unique, every panel fits the 24-column grid and has a title and a description."""
    panels = dashboard()["panels"]
    assert [panel["title"] for panel in panels if panel["type"] == "row"] == ROWS
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    in_row: dict[str, int] = {}
    row = ""
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            row = panel["title"]
            in_row[row] = 0
            continue
        assert panel["title"] and panel["description"]
        in_row[row] += 1
    assert all(in_row.values()), in_row
