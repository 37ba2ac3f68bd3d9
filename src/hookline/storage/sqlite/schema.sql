-- hookline schema for SQLite. Times are integer milliseconds since the Unix epoch;
-- lists and maps are JSON text. Ids are time-sortable, so ORDER BY id is ORDER BY time.

CREATE TABLE schema_version (
    version INTEGER NOT NULL
);

-- applications, event_types and endpoints carry a version that every write of the row
-- moves; an update writes only while the row is at the version it was read at.
CREATE TABLE applications (
    id TEXT PRIMARY KEY,
    uid TEXT UNIQUE,
    name TEXT NOT NULL,
    throttle_rate INTEGER,
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
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
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
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
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    policy TEXT,
    auth TEXT,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_app ON endpoints (app_id, id);

-- Moved by every change to an endpoint row: a publish that routed against endpoints read
-- before the write lock checks inside it that they are still current.
CREATE TABLE endpoint_changes (
    version INTEGER NOT NULL
);
INSERT INTO endpoint_changes (version) VALUES (0);
CREATE TRIGGER endpoint_inserted AFTER INSERT ON endpoints
BEGIN
    UPDATE endpoint_changes SET version = version + 1;
END;
CREATE TRIGGER endpoint_updated AFTER UPDATE ON endpoints
BEGIN
    UPDATE endpoint_changes SET version = version + 1;
END;
CREATE TRIGGER endpoint_deleted AFTER DELETE ON endpoints
BEGIN
    UPDATE endpoint_changes SET version = version + 1;
END;

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_id TEXT,
    payload BLOB,
    channels TEXT,
    tags TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    deliver_at INTEGER,
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
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    status INTEGER NOT NULL,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_token TEXT,
    worker_id TEXT,
    manual INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
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

CREATE TABLE attempts (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    url TEXT NOT NULL,
    status INTEGER NOT NULL,
    response_status_code INTEGER NOT NULL,
    response TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    trigger_type INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    fallback_for TEXT
);
CREATE INDEX attempts_msg ON attempts (msg_id, id);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, id);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    app_id TEXT,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    name TEXT,
    capabilities TEXT,
    session_id TEXT,
    configured INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER,
    allowed_networks TEXT
);

CREATE INDEX tokens_app ON tokens (app_id);

CREATE TABLE server_keys (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER,
    body BLOB,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_created ON idempotency_keys (created_at);

-- Workers announce themselves here; a worker whose heartbeat is old is presumed dead and
-- the deliveries it leased are handed to others before their lease would run out.
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);

-- Open circuit breakers, shared by every worker (docs/delivery.md); times in ms.
CREATE TABLE circuits (
    endpoint_id TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    open_until INTEGER NOT NULL,
    cooldown_ms INTEGER NOT NULL,
    opened_at INTEGER NOT NULL DEFAULT 0,
    failure_ratio REAL,
    reason TEXT NOT NULL DEFAULT 'consecutiveFailures',
    probe_until INTEGER,
    probe_owner TEXT
);

-- Endpoints failing without a success, and the auto-disable step reached (docs/delivery.md);
-- times in ms.
CREATE TABLE endpoint_failures (
    endpoint_id TEXT PRIMARY KEY,
    failing_since INTEGER NOT NULL,
    step INTEGER NOT NULL DEFAULT 0
);

-- Background tasks: each a row any process's runner leases (lease_until) and walks in
-- batches from its cursor, committing the cursor with each batch's writes.
CREATE TABLE background_tasks (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    endpoint_id TEXT,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    filter TEXT NOT NULL,
    cursor TEXT NOT NULL,
    scanned INTEGER NOT NULL DEFAULT 0,
    queued INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    lease_token TEXT,
    lease_until INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    result TEXT
);
CREATE INDEX background_tasks_app ON background_tasks (app_id, id);
CREATE INDEX background_tasks_due ON background_tasks (lease_until) WHERE status = 'running';
CREATE INDEX deliveries_dead ON deliveries (app_id, id) WHERE status = 2;

-- Each rate-limited endpoint's send timeline, shared by every worker, and the slowdown a
-- receiver's Retry-After asked for (domain/ratelimit.py); next_slot in µs, slowed_at in ms.
CREATE TABLE rate_slots (
    endpoint_id TEXT PRIMARY KEY,
    next_slot INTEGER NOT NULL,
    granted INTEGER NOT NULL,
    slow_rate REAL,
    slowed_at INTEGER
);
CREATE TRIGGER application_rate_changed AFTER UPDATE OF throttle_rate ON applications
WHEN OLD.throttle_rate IS NOT NEW.throttle_rate
BEGIN
    UPDATE endpoint_changes SET version = version + 1;
END;

-- The audit log (docs/security.md, "Audit log"): append-only; entries outlive their
-- application; retention removes the oldest.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    actor_app_id TEXT,
    address TEXT,
    action TEXT NOT NULL,
    app_id TEXT,
    target_id TEXT,
    summary TEXT NOT NULL
);
CREATE INDEX audit_log_app ON audit_log (app_id, id);
CREATE INDEX audit_log_created ON audit_log (created_at);

CREATE TABLE endpoint_rollups (
    endpoint_id TEXT NOT NULL,
    period INTEGER NOT NULL,
    start_at INTEGER NOT NULL,
    app_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    success INTEGER NOT NULL DEFAULT 0,
    status_3xx INTEGER NOT NULL DEFAULT 0,
    status_4xx INTEGER NOT NULL DEFAULT 0,
    status_5xx INTEGER NOT NULL DEFAULT 0,
    timeout INTEGER NOT NULL DEFAULT 0,
    connection INTEGER NOT NULL DEFAULT 0,
    dns INTEGER NOT NULL DEFAULT 0,
    tls INTEGER NOT NULL DEFAULT 0,
    ssrf_blocked INTEGER NOT NULL DEFAULT 0,
    other INTEGER NOT NULL DEFAULT 0,
    latency_0 INTEGER NOT NULL DEFAULT 0,
    latency_1 INTEGER NOT NULL DEFAULT 0,
    latency_2 INTEGER NOT NULL DEFAULT 0,
    latency_3 INTEGER NOT NULL DEFAULT 0,
    latency_4 INTEGER NOT NULL DEFAULT 0,
    latency_5 INTEGER NOT NULL DEFAULT 0,
    latency_6 INTEGER NOT NULL DEFAULT 0,
    latency_7 INTEGER NOT NULL DEFAULT 0,
    latency_8 INTEGER NOT NULL DEFAULT 0,
    latency_9 INTEGER NOT NULL DEFAULT 0,
    latency_10 INTEGER NOT NULL DEFAULT 0,
    latency_11 INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    payload_bytes INTEGER NOT NULL DEFAULT 0,
    payloads INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, period, start_at)
);
CREATE INDEX endpoint_rollups_period ON endpoint_rollups (period, start_at);

CREATE TABLE anomalies (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    endpoint_id TEXT,
    detected_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    resolved_at INTEGER,
    observed REAL NOT NULL,
    expected REAL NOT NULL,
    basis TEXT NOT NULL
);
CREATE UNIQUE INDEX anomalies_open ON anomalies (subject_id, kind) WHERE resolved_at IS NULL;
CREATE INDEX anomalies_resolved ON anomalies (resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX anomalies_app ON anomalies (app_id, id);

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    held_until INTEGER NOT NULL
);

CREATE TABLE failure_groups (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    status TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL,
    opened_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    sample TEXT NOT NULL,
    acknowledged_at INTEGER,
    resolved_at INTEGER,
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
    name TEXT PRIMARY KEY,
    scanned_until INTEGER NOT NULL
);

CREATE TABLE portal_branding (
    app_id TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Payload search (migration 0022; docs/search.md): a contentless FTS5
-- index of each payload's JSON text, keyed by message_search_docs (an explicit integer key,
-- which VACUUM keeps), kept in step by triggers on messages.
CREATE TABLE message_search_docs (
    doc INTEGER PRIMARY KEY,
    msg_id TEXT NOT NULL UNIQUE
);
CREATE VIRTUAL TABLE message_search USING fts5(body, content = '');
CREATE TRIGGER message_search_added AFTER INSERT ON messages WHEN new.payload IS NOT NULL
BEGIN
    INSERT INTO message_search_docs (msg_id) VALUES (new.id);
    INSERT INTO message_search (rowid, body)
    VALUES (last_insert_rowid(), substr(CAST(new.payload AS TEXT), 1, 100000));
END;
CREATE TRIGGER message_search_removed AFTER DELETE ON messages WHEN old.payload IS NOT NULL
BEGIN
    INSERT INTO message_search (message_search, rowid, body)
    SELECT 'delete', doc, substr(CAST(old.payload AS TEXT), 1, 100000)
    FROM message_search_docs WHERE msg_id = old.id;
    DELETE FROM message_search_docs WHERE msg_id = old.id;
END;
CREATE TRIGGER message_search_expunged AFTER UPDATE OF payload ON messages
WHEN old.payload IS NOT NULL AND new.payload IS NULL
BEGIN
    INSERT INTO message_search (message_search, rowid, body)
    SELECT 'delete', doc, substr(CAST(old.payload AS TEXT), 1, 100000)
    FROM message_search_docs WHERE msg_id = old.id;
    DELETE FROM message_search_docs WHERE msg_id = old.id;
END;
