-- 0005: endpoints' open circuit breakers, shared by every worker, so that a breaker one
-- worker opened holds the endpoint's deliveries on all of them (docs/delivery.md).
CREATE TABLE circuits (
    endpoint_id TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    open_until INTEGER NOT NULL,
    cooldown_ms INTEGER NOT NULL
);
