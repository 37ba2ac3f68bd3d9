"""The results of Svix's statistics tasks, as pure rules: per application, the attempts made
in a window (``application.stats``) and the event types its endpoints subscribe to
(``event-type.aggregate``). The shapes are Svix's documented task ``data``, camelCase keys
included, since they are shown to Svix SDKs as they are stored.
"""

from __future__ import annotations

from collections.abc import Iterable

from hookline.domain.models import Application


def app_usage(app: Application, attempts: int) -> dict[str, object]:
    """One entry of ``appStats``: Svix calls the attempts made ``messageDestinations``."""
    return {"appId": app.id, "appUid": app.uid, "messageDestinations": attempts}


def event_type_usage(
    app_id: str, endpoint_filters: Iterable[tuple[str, ...] | None]
) -> dict[str, object]:
    """One entry of ``event_types``: the event types its endpoints name, sorted, and whether
    one of them takes every type (no filter)."""
    named: set[str] = set()
    catch_all = False
    for event_types in endpoint_filters:
        if event_types:
            named.update(event_types)
        else:
            catch_all = True
    return {
        "appId": app_id,
        "explicitlySubscribedEventTypes": sorted(named),
        "hasCatchAllEndpoint": catch_all,
    }
