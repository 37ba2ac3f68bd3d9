-- hookline schema for PostgreSQL. Times are integer milliseconds since the Unix epoch;
-- lists and maps are JSON text. Ids are time-sortable, so ORDER BY id is ORDER BY time:
-- in byte order, which the columns holding ids keep with the "C" collation whatever the
-- database's own (migration 0016).

CREATE TABLE schema_version (
    version INTEGER NOT NULL
);

-- applications, event_types and endpoints carry a version that every write of the row
-- moves; an update writes only while the row is at the version it was read at.
CREATE TABLE applications (
    id TEXT COLLATE "C" PRIMARY KEY,
    uid TEXT UNIQUE,
    name TEXT NOT NULL,
    throttle_rate INTEGER,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    policy TEXT
);

CREATE TABLE event_types (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    deprecated INTEGER NOT NULL DEFAULT 0,
    schemas TEXT,
    group_name TEXT,
    feature_flags TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE endpoints (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT COLLATE "C" NOT NULL,
    uid TEXT,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    throttle_rate INTEGER,
    disabled INTEGER NOT NULL DEFAULT 0,
    event_types TEXT,
    channels TEXT,
    metadata TEXT NOT NULL,
    headers TEXT NOT NULL,
    keys TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    policy TEXT,
    auth TEXT,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_app ON endpoints (app_id, id);

-- Disabling or enabling an endpoint tells every LISTENing worker at once, on
-- hookline_endpoints, as "disabled:version:endpoint_id".
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

CREATE TABLE messages (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT COLLATE "C" NOT NULL,
    event_type TEXT NOT NULL,
    event_id TEXT COLLATE "C",
    payload BYTEA,
    channels TEXT,
    tags TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    deliver_at BIGINT,
    ordering_key TEXT,
    trace_context TEXT,
    UNIQUE (app_id, event_id)
);
CREATE INDEX messages_app ON messages (app_id, id);
-- Maintenance's walk to the payloads past their expiry (payloadRetentionPeriod): only the
-- messages that still hold a payload are in it.
CREATE INDEX messages_payload_expiry ON messages (expires_at) WHERE payload IS NOT NULL;

-- One row per (message, endpoint): the queue. status follows Svix's MessageStatus
-- (0 success, 1 pending, 2 fail, 3 sending). A claimed row is SENDING with
-- next_attempt_at = lease expiry, so a dead worker's rows become due again by themselves.
CREATE TABLE deliveries (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT COLLATE "C" NOT NULL,
    msg_id TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT COLLATE "C" NOT NULL,
    status INTEGER NOT NULL,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    lease_token TEXT,
    worker_id TEXT COLLATE "C",
    manual INTEGER NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    fallback_for TEXT,
    ordering_key TEXT,
    UNIQUE (msg_id, endpoint_id)
);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, msg_id);
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, next_attempt_at)
    WHERE status IN (1, 3) AND ordering_key IS NULL;
CREATE INDEX deliveries_leased ON deliveries (worker_id) WHERE status = 3;
-- Ordered endpoints (docs/delivery.md): ordering_key is the sequence a delivery joined when
-- it was written (its message's key, '' for none; NULL when its endpoint was not ordered).
-- Claims find the rows outside sequences through deliveries_endpoint_due, and the head of
-- each sequence (its first pending or sending row) through deliveries_sequence.
CREATE INDEX deliveries_sequence ON deliveries (endpoint_id, ordering_key, msg_id)
    WHERE status IN (1, 3) AND ordering_key IS NOT NULL;

-- A delivery that becomes claimable (written pending, or set pending again) wakes the
-- workers LISTENing on hookline_work: once per statement, and only if a row it wrote is
-- pending.
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

CREATE TABLE attempts (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT COLLATE "C" NOT NULL,
    msg_id TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT COLLATE "C" NOT NULL,
    url TEXT NOT NULL,
    status INTEGER NOT NULL,
    response_status_code INTEGER NOT NULL,
    response TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    trigger_type INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    fallback_for TEXT
);
CREATE INDEX attempts_msg ON attempts (msg_id, id);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, id);

CREATE TABLE tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    app_id TEXT COLLATE "C",
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    name TEXT,
    capabilities TEXT,
    session_id TEXT COLLATE "C",
    configured INTEGER NOT NULL DEFAULT 0,
    last_used_at BIGINT,
    allowed_networks TEXT
);

CREATE INDEX tokens_app ON tokens (app_id);

CREATE TABLE server_keys (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER,
    body BYTEA,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_created ON idempotency_keys (created_at);

-- Workers announce themselves here; a worker whose heartbeat is old is presumed dead and
-- the deliveries it leased are handed to others before their lease would run out.
CREATE TABLE workers (
    id TEXT COLLATE "C" PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

-- Open circuit breakers, shared by every worker (docs/delivery.md); times in ms.
CREATE TABLE circuits (
    endpoint_id TEXT COLLATE "C" PRIMARY KEY,
    failures INTEGER NOT NULL,
    open_until BIGINT NOT NULL,
    cooldown_ms BIGINT NOT NULL,
    opened_at BIGINT NOT NULL DEFAULT 0,
    failure_ratio DOUBLE PRECISION,
    reason TEXT NOT NULL DEFAULT 'consecutiveFailures',
    probe_until BIGINT,
    probe_owner TEXT
);

-- Endpoints failing without a success, and the auto-disable step reached (docs/delivery.md);
-- times in ms.
CREATE TABLE endpoint_failures (
    endpoint_id TEXT COLLATE "C" PRIMARY KEY,
    failing_since BIGINT NOT NULL,
    step INTEGER NOT NULL DEFAULT 0
);

-- Background tasks: each a row any process's runner leases (lease_until) and walks in
-- batches from its cursor, committing the cursor with each batch's writes.
CREATE TABLE background_tasks (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT COLLATE "C",
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
    updated_at BIGINT NOT NULL,
    result TEXT
);
CREATE INDEX background_tasks_app ON background_tasks (app_id, id);
CREATE INDEX background_tasks_due ON background_tasks (lease_until) WHERE status = 'running';
CREATE INDEX deliveries_dead ON deliveries (app_id, id) WHERE status = 2;

-- Each rate-limited endpoint's send timeline, shared by every worker, and the slowdown a
-- receiver's Retry-After asked for (domain/ratelimit.py); next_slot in µs, slowed_at in ms.
CREATE TABLE rate_slots (
    endpoint_id TEXT COLLATE "C" PRIMARY KEY,
    next_slot BIGINT NOT NULL,
    granted INTEGER NOT NULL,
    slow_rate DOUBLE PRECISION,
    slowed_at BIGINT
);

-- The audit log (docs/security.md, "Audit log"): append-only; entries outlive their
-- application; retention removes the oldest.
CREATE TABLE audit_log (
    id TEXT COLLATE "C" PRIMARY KEY,
    created_at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    actor_app_id TEXT COLLATE "C",
    address TEXT,
    action TEXT NOT NULL,
    app_id TEXT COLLATE "C",
    target_id TEXT COLLATE "C",
    summary TEXT NOT NULL
);
CREATE INDEX audit_log_app ON audit_log (app_id, id);
CREATE INDEX audit_log_created ON audit_log (created_at);

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

CREATE TABLE anomalies (
    id TEXT COLLATE "C" PRIMARY KEY,
    kind TEXT NOT NULL,
    subject_id TEXT COLLATE "C" NOT NULL,
    app_id TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT COLLATE "C",
    detected_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    resolved_at BIGINT,
    observed DOUBLE PRECISION NOT NULL,
    expected DOUBLE PRECISION NOT NULL,
    basis TEXT NOT NULL
);
CREATE UNIQUE INDEX anomalies_open ON anomalies (subject_id, kind) WHERE resolved_at IS NULL;
CREATE INDEX anomalies_resolved ON anomalies (resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX anomalies_app ON anomalies (app_id, id);

CREATE TABLE leases (
    name TEXT COLLATE "C" PRIMARY KEY,
    holder TEXT NOT NULL,
    held_until BIGINT NOT NULL
);

CREATE TABLE failure_groups (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT COLLATE "C" NOT NULL,
    outcome TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    status TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    opened_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    sample TEXT NOT NULL,
    acknowledged_at BIGINT,
    resolved_at BIGINT,
    resolved_by TEXT,
    reopened INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX failure_groups_key ON failure_groups (endpoint_id, outcome, status_code);
CREATE INDEX failure_groups_app ON failure_groups (app_id, id);
CREATE INDEX failure_groups_status ON failure_groups (status, id);
CREATE INDEX failure_groups_quiet ON failure_groups (last_seen_at, id)
    WHERE resolved_at IS NULL;
CREATE INDEX failure_groups_resolved ON failure_groups (resolved_at)
    WHERE resolved_at IS NOT NULL;

CREATE TABLE scan_cursors (
    name TEXT COLLATE "C" PRIMARY KEY,
    scanned_until BIGINT NOT NULL
);

CREATE TABLE portal_branding (
    app_id TEXT COLLATE "C" PRIMARY KEY,
    settings TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Payload search (migration 0024; docs/search.md).
CREATE FUNCTION hookline_payload_words(payload BYTEA) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT to_tsvector('simple'::regconfig, regexp_replace(
        left(convert_from(payload, 'UTF8'), 100000), '(\W|_)+', ' ', 'g')) $$;
CREATE INDEX messages_words ON messages USING gin (hookline_payload_words(payload))
    WHERE payload IS NOT NULL;
