-- 0010: each rate-limited endpoint's send timeline, shared by every worker, and the
-- slowdown a receiver's Retry-After asked for (domain/ratelimit.py, docs/delivery.md).
-- next_slot is in microseconds; slowed_at in ms.
CREATE TABLE rate_slots (
    endpoint_id TEXT PRIMARY KEY,
    next_slot INTEGER NOT NULL,
    granted INTEGER NOT NULL,
    slow_rate REAL,
    slowed_at INTEGER
);
-- An application's rate limit reaches its endpoints' deliveries: routes cached against the
-- endpoint counter of 0003 are read again when it changes.
CREATE TRIGGER application_rate_changed AFTER UPDATE OF throttle_rate ON applications
WHEN OLD.throttle_rate IS NOT NEW.throttle_rate
BEGIN
    UPDATE endpoint_changes SET version = version + 1;
END;
