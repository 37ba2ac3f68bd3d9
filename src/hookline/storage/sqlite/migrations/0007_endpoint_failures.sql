-- 0007: since when each endpoint has failed without a success, and how far auto-disable
-- has gone for that failing period (warned, disabled), shared by every worker
-- (docs/delivery.md, "Operational webhooks and auto-disable").
CREATE TABLE endpoint_failures (
    endpoint_id TEXT PRIMARY KEY,
    failing_since INTEGER NOT NULL,
    step INTEGER NOT NULL DEFAULT 0
);
