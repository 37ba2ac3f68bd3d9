-- 0022: per-endpoint attempt rollups (docs/observability.md, "Statistics"): one row per
-- endpoint and minute and per endpoint and hour (period: 60 or 3600 seconds), added to in
-- the transaction that records the attempts, so statistics over a month read a few hundred
-- rows. Counts only, so rows merge by addition; the latency_N columns count durations per
-- bucket of hookline.domain.rollups.LATENCY_EDGES_MS. The period index serves retention,
-- which prunes minute rows sooner than hour rows.
CREATE TABLE endpoint_rollups (
    endpoint_id TEXT COLLATE "C" NOT NULL,
    period INTEGER NOT NULL,
    start_at BIGINT NOT NULL,
    app_id TEXT COLLATE "C" NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    success BIGINT NOT NULL DEFAULT 0,
    status_3xx BIGINT NOT NULL DEFAULT 0,
    status_4xx BIGINT NOT NULL DEFAULT 0,
    status_5xx BIGINT NOT NULL DEFAULT 0,
    timeout BIGINT NOT NULL DEFAULT 0,
    connection BIGINT NOT NULL DEFAULT 0,
    dns BIGINT NOT NULL DEFAULT 0,
    tls BIGINT NOT NULL DEFAULT 0,
    ssrf_blocked BIGINT NOT NULL DEFAULT 0,
    other BIGINT NOT NULL DEFAULT 0,
    latency_0 BIGINT NOT NULL DEFAULT 0,
    latency_1 BIGINT NOT NULL DEFAULT 0,
    latency_2 BIGINT NOT NULL DEFAULT 0,
    latency_3 BIGINT NOT NULL DEFAULT 0,
    latency_4 BIGINT NOT NULL DEFAULT 0,
    latency_5 BIGINT NOT NULL DEFAULT 0,
    latency_6 BIGINT NOT NULL DEFAULT 0,
    latency_7 BIGINT NOT NULL DEFAULT 0,
    latency_8 BIGINT NOT NULL DEFAULT 0,
    latency_9 BIGINT NOT NULL DEFAULT 0,
    latency_10 BIGINT NOT NULL DEFAULT 0,
    latency_11 BIGINT NOT NULL DEFAULT 0,
    duration_ms BIGINT NOT NULL DEFAULT 0,
    payload_bytes BIGINT NOT NULL DEFAULT 0,
    payloads BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, period, start_at)
);
CREATE INDEX endpoint_rollups_period ON endpoint_rollups (period, start_at);

-- 0021: the result of a background task that computes one (Svix's statistics tasks:
-- application.stats, event-type.aggregate), as JSON, shown as the task's data; NULL for the
-- tasks that walk deliveries. Such a task is the organization's, not an application's:
-- its app_id is ''.
ALTER TABLE background_tasks ADD COLUMN result TEXT;
