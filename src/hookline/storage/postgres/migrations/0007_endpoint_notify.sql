-- 0007: every worker hears at once that an endpoint was disabled or enabled again, by
-- whichever statement (an API update, a worker's disable on 410 Gone), so that none starts
-- an attempt it already holds for a disabled endpoint (docs/delivery.md, "Faults and
-- recovery bounds"). The payload is "disabled:version:endpoint_id"; the channel is the one
-- PostgresConnector.listen listens on. Disables are rare: one notification per change.
CREATE FUNCTION hookline_notify_endpoint() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        'hookline_endpoints', NEW.disabled || ':' || NEW.version || ':' || NEW.id
    );
    RETURN NULL;
END;
$$;
CREATE TRIGGER endpoints_disabled_notify AFTER UPDATE OF disabled ON endpoints
    FOR EACH ROW WHEN (OLD.disabled IS DISTINCT FROM NEW.disabled)
    EXECUTE FUNCTION hookline_notify_endpoint();
