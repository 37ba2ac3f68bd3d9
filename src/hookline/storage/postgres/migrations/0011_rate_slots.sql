-- 0011: each rate-limited endpoint's send timeline, shared by every worker, and the
-- slowdown a receiver's Retry-After asked for (domain/ratelimit.py, docs/delivery.md).
-- next_slot is in microseconds; slowed_at in ms.
CREATE TABLE rate_slots (
    endpoint_id TEXT PRIMARY KEY,
    next_slot BIGINT NOT NULL,
    granted INTEGER NOT NULL,
    slow_rate DOUBLE PRECISION,
    slowed_at BIGINT
);
