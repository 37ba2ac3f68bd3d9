-- 0005: workers are woken by the database whenever a delivery becomes claimable: written
-- pending, or set pending again (a retry, a resend, a recovery, a deferral), by whichever
-- statement. A new write path cannot forget to wake them. The trigger runs once per
-- statement, so a publish of 500 deliveries costs one check and one notification, and a
-- statement that leaves no row pending (a claim, a lease handed to the publishing
-- process's worker, a success) sends none. The channel is the one PostgresStore.listen
-- listens on.
CREATE FUNCTION hookline_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM written WHERE status = 1) THEN
        PERFORM pg_notify('hookline_work', '');
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER deliveries_inserted_notify AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION hookline_notify_work();
CREATE TRIGGER deliveries_updated_notify AFTER UPDATE ON deliveries
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION hookline_notify_work();
