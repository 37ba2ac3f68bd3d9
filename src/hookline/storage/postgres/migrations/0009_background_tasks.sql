-- 0009: background tasks (recover, replay-missing, bulk replay, redrive), each a row that
-- any process's runner leases and walks in batches from its cursor (docs/delivery.md), and
-- an index of each application's dead letters (failed deliveries) for listing and redrive.
CREATE TABLE background_tasks (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    endpoint_id TEXT,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    filter TEXT NOT NULL,
    cursor TEXT NOT NULL,
    scanned BIGINT NOT NULL DEFAULT 0,
    queued BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    lease_token TEXT,
    lease_until BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX background_tasks_app ON background_tasks (app_id, id);
CREATE INDEX background_tasks_due ON background_tasks (lease_until) WHERE status = 'running';
CREATE INDEX deliveries_dead ON deliveries (app_id, id) WHERE status = 2;
