"""``GET …/endpoint/{id}/attempt-stats``: attempt counts read from the rollups, in process."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import utcnow
from tests.integration.conftest import Api, fail_next_delivery

STATS = "/api/v1/app/acme/endpoint/ep1/attempt-stats"


async def _failed_attempt(api: Api) -> None:
    """An application ``acme`` with endpoint ``ep1`` and one attempt that got a 500."""
    r = await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    assert r.status_code == 201, r.text
    r = await api.client.post(
        "/api/v1/app/acme/endpoint", json={"url": "https://example.com/h", "uid": "ep1"}
    )
    assert r.status_code == 201, r.text
    r = await api.client.post("/api/v1/app/acme/msg", json={"eventType": "a.x", "payload": {}})
    assert r.status_code == 202, r.text
    await fail_next_delivery(api.store)


async def test_attempt_stats_count_recorded_attempts_by_outcome(api: Api) -> None:
    """An attempt recorded by the store shows in Svix's success/fail/canceled counts and in
    hookline's outcome classes, duration percentiles and payload bytes."""
    await _failed_attempt(api)
    found = (await api.client.get(STATS)).json()
    assert (found["success"], found["fail"], found["canceled"]) == (0, 1, 0)
    assert found["outcomes"]["5xx"] == 1
    assert sum(found["outcomes"].values()) == 1
    assert found["latency"]["p50Ms"] == 10
    assert found["payloadBytes"] == len(b"{}")


async def test_attempt_stats_honour_since_and_until(api: Api) -> None:
    """A window that holds the attempt counts it; one that ends before it counts nothing."""
    await _failed_attempt(api)
    now = utcnow()
    around = {"since": (now - timedelta(hours=1)).isoformat(), "until": now.isoformat()}
    before = {
        "since": (now - timedelta(days=3)).isoformat(),
        "until": (now - timedelta(days=2)).isoformat(),
    }
    assert (await api.client.get(STATS, params=around)).json()["fail"] == 1
    assert (await api.client.get(STATS, params=before)).json()["fail"] == 0


async def test_attempt_stats_refuse_a_reversed_window_and_a_bad_date(api: Api) -> None:
    """``since`` not before ``until`` and a date that is no date are 422s naming the field."""
    await _failed_attempt(api)
    now = utcnow().isoformat()
    reversed_window = await api.client.get(STATS, params={"since": now, "until": now})
    assert reversed_window.status_code == 422
    assert reversed_window.json()["detail"][0]["loc"] == ["query", "since"]
    bad = await api.client.get(STATS, params={"until": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "until"]


async def test_attempt_stats_of_an_unknown_endpoint_are_404(api: Api) -> None:
    """An endpoint that does not exist has no statistics: a 404, as for its other routes."""
    await _failed_attempt(api)
    missing = await api.client.get("/api/v1/app/acme/endpoint/nope/attempt-stats")
    assert missing.status_code == 404
