"""``ApplicationLabels`` over each backend's store: the names in
HOOKLINE_METRICS_APPLICATIONS (uids or ids) become the application ids the metrics hook
counts apart, and follow the applications as they are created and deleted."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from hookline.domain.operational import OPERATIONAL_APP_ID
from hookline.instrumentation import AttemptFinished, MetricsHook
from hookline.operations.metric_labels import ApplicationLabels
from tests.conftest import make_app
from tests.integration.conftest import Ops
from tests.unit.test_metrics_hook import attempt


def metrics_directory(tmp_path: Path) -> str:
    """A directory of the metrics' own: a scrape reads every ``.db`` file where it points,
    and the SQLite store of these tests keeps its database in ``tmp_path``."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    return str(directory)


def successes(hook: MetricsHook, name: str) -> float:
    text = hook.exposition().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "hookline_application_attempts_total" and labels == {
                "application": name,
                "outcome": "2xx",
            }:
                return float(sample.value)
    raise AssertionError(f"no series for {name}")


def success_of(app_id: str) -> AttemptFinished:
    return attempt(200, app_id=app_id)


async def test_names_resolve_by_uid_or_id_and_unknown_names_are_reported(
    ops: Ops, tmp_path: Path
) -> None:
    """A uid and an id each find their application; a name that finds none is counted as
    missing (so it is looked up again soon) and its series stays at 0."""
    by_uid = make_app(uid="acme")
    by_id = make_app()
    for app in (by_uid, by_id):
        await ops.store.create_application(app)
    hook = MetricsHook(metrics_directory(tmp_path), "1", ("acme", by_id.id, "not-yet"))
    missing = await ApplicationLabels(hook).refresh(ops.ops)
    assert missing == 1
    for app in (by_uid, by_id, by_id):
        hook(success_of(app.id))
    assert successes(hook, "acme") == 1
    assert successes(hook, by_id.id) == 2
    assert successes(hook, "not-yet") == 0


async def test_an_application_created_later_is_counted_from_the_next_look_up(
    ops: Ops, tmp_path: Path
) -> None:
    """An application created after start gets its series once a look-up finds it, and a
    deleted one stops being counted apart, without a restart."""
    hook = MetricsHook(metrics_directory(tmp_path), "1", ("acme",))
    labels = ApplicationLabels(hook)
    assert await labels.refresh(ops.ops) == 1
    app = make_app(uid="acme")
    await ops.store.create_application(app)
    hook(success_of(app.id))
    assert successes(hook, "acme") == 0
    assert await labels.refresh(ops.ops) == 0
    hook(success_of(app.id))
    assert successes(hook, "acme") == 1
    await ops.store.delete_application(app.id)
    assert await labels.refresh(ops.ops) == 1
    hook(success_of(app.id))
    assert successes(hook, "acme") == 1


async def test_the_operational_application_is_never_counted_apart(ops: Ops, tmp_path: Path) -> None:
    """hookline's own application for operational webhooks is not a customer's: naming its
    id finds nothing."""
    hook = MetricsHook(metrics_directory(tmp_path), "1", (OPERATIONAL_APP_ID,))
    await ops.store.create_application(make_app())
    assert await ApplicationLabels(hook).refresh(ops.ops) == 1
