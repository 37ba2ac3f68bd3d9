-- Named SQL that is the same in both dialects. A dialect's own queries.sql holds only
-- what differs or exists only there, and wins over a block of the same name here
-- (storage/queries.py). Parameters are :name (PostgreSQL's become $n when loaded).

-- name: insert_application
INSERT INTO applications (id, uid, name, throttle_rate, metadata, policy, created_at,
                          updated_at, version)
VALUES (:id, :uid, :name, :throttle_rate, :metadata, :policy, :created_at, :updated_at, 1)

-- name: get_application
SELECT * FROM applications WHERE id = :key OR uid = :key ORDER BY id = :key DESC LIMIT 1

-- name: update_application
-- Only the version it was read at (optimistic concurrency): no row changed means someone
-- else wrote it first, or it is gone.
UPDATE applications
SET uid = :uid, name = :name, throttle_rate = :throttle_rate, metadata = :metadata,
    policy = :policy, updated_at = :updated_at, version = version + 1
WHERE id = :id AND version = :version

-- name: delete_application
DELETE FROM applications WHERE id = :app_id;
DELETE FROM endpoint_failures
WHERE endpoint_id IN (SELECT id FROM endpoints WHERE app_id = :app_id);
DELETE FROM circuits WHERE endpoint_id IN (SELECT id FROM endpoints WHERE app_id = :app_id);
DELETE FROM endpoints WHERE app_id = :app_id;
DELETE FROM messages WHERE app_id = :app_id;
DELETE FROM deliveries WHERE app_id = :app_id;
DELETE FROM attempts WHERE app_id = :app_id;
DELETE FROM tokens WHERE app_id = :app_id;
DELETE FROM portal_branding WHERE app_id = :app_id

-- name: insert_event_type
INSERT INTO event_types (name, description, archived, deprecated, schemas, group_name,
                         feature_flags, created_at, updated_at, version)
VALUES (:name, :description, :archived, :deprecated, :schemas, :group_name,
        :feature_flags, :created_at, :updated_at, 1)

-- name: get_event_type
SELECT * FROM event_types WHERE name = :name

-- name: update_event_type
-- Only the version it was read at, as update_application.
UPDATE event_types
SET description = :description, archived = :archived, deprecated = :deprecated,
    schemas = :schemas, group_name = :group_name, feature_flags = :feature_flags,
    updated_at = :updated_at, version = version + 1
WHERE name = :name AND version = :version

-- name: delete_event_type
DELETE FROM event_types WHERE name = :name

-- name: insert_endpoint
INSERT INTO endpoints (id, app_id, uid, url, description, throttle_rate, disabled,
                       event_types, channels, metadata, headers, keys, policy, created_at,
                       updated_at, version, auth)
VALUES (:id, :app_id, :uid, :url, :description, :throttle_rate, :disabled,
        :event_types, :channels, :metadata, :headers, :keys, :policy, :created_at,
        :updated_at, 1, :auth)

-- name: get_endpoint
-- With since when it has failed (auto-disable), a read-only field of the endpoint.
SELECT e.*, f.failing_since AS failing_since
FROM endpoints AS e LEFT JOIN endpoint_failures AS f ON f.endpoint_id = e.id
WHERE app_id = :app_id AND (id = :key OR uid = :key)
ORDER BY id = :key DESC LIMIT 1

-- name: update_endpoint
-- Only the version it was read at, as update_application: a PATCH that read the endpoint
-- before the worker disabled it (410 Gone) cannot write it back enabled.
UPDATE endpoints
SET uid = :uid, url = :url, description = :description, throttle_rate = :throttle_rate,
    disabled = :disabled, event_types = :event_types, channels = :channels,
    metadata = :metadata, headers = :headers, keys = :keys, policy = :policy,
    auth = :auth, updated_at = :updated_at, version = version + 1
WHERE id = :id AND app_id = :app_id AND version = :version

-- name: count_endpoints
SELECT count(*) AS n FROM endpoints WHERE app_id = :app_id

-- name: delete_endpoint
DELETE FROM endpoint_failures
WHERE endpoint_id IN (SELECT id FROM endpoints WHERE id = :endpoint_id AND app_id = :app_id);
DELETE FROM circuits WHERE endpoint_id = :endpoint_id;
DELETE FROM endpoints WHERE id = :endpoint_id AND app_id = :app_id;
DELETE FROM deliveries WHERE endpoint_id = :endpoint_id AND app_id = :app_id

-- name: endpoint_stats
SELECT status, count(*) AS n FROM deliveries
WHERE endpoint_id = :endpoint_id AND app_id = :app_id
GROUP BY status

-- name: endpoint_stats_between
-- Deliveries of messages created in [since, until); either bound may be NULL (open).
SELECT d.status, count(*) AS n FROM deliveries AS d JOIN messages AS m ON m.id = d.msg_id
WHERE d.endpoint_id = :endpoint_id AND d.app_id = :app_id
    AND (CAST(:since AS BIGINT) IS NULL OR m.created_at >= :since)
    AND (CAST(:until AS BIGINT) IS NULL OR m.created_at < :until)
GROUP BY d.status

-- name: endpoint_rollups
-- An endpoint's rollup rows of one period (60 or 3600 seconds) starting in [start, end);
-- either bound may be NULL (open). The primary key serves it.
SELECT start_at, attempts, success, status_3xx, status_4xx, status_5xx, timeout, connection,
       dns, tls, ssrf_blocked, other, latency_0, latency_1, latency_2, latency_3, latency_4,
       latency_5, latency_6, latency_7, latency_8, latency_9, latency_10, latency_11,
       duration_ms, payload_bytes, payloads
FROM endpoint_rollups
WHERE endpoint_id = :endpoint_id AND period = :period
    AND (CAST(:start AS BIGINT) IS NULL OR start_at >= :start)
    AND (CAST(:end AS BIGINT) IS NULL OR start_at < :end)
ORDER BY start_at

-- name: endpoint_rollup_sums
-- The same rows added up in the database: one row back whatever the window, for the
-- statistics API (a chart reads the rows themselves).
SELECT coalesce(sum(attempts), 0) AS attempts, coalesce(sum(success), 0) AS success,
       coalesce(sum(status_3xx), 0) AS status_3xx, coalesce(sum(status_4xx), 0) AS
       status_4xx, coalesce(sum(status_5xx), 0) AS status_5xx, coalesce(sum(timeout), 0) AS
       timeout, coalesce(sum(connection), 0) AS connection, coalesce(sum(dns), 0) AS dns,
       coalesce(sum(tls), 0) AS tls, coalesce(sum(ssrf_blocked), 0) AS ssrf_blocked,
       coalesce(sum(other), 0) AS other, coalesce(sum(latency_0), 0) AS latency_0,
       coalesce(sum(latency_1), 0) AS latency_1, coalesce(sum(latency_2), 0) AS latency_2,
       coalesce(sum(latency_3), 0) AS latency_3, coalesce(sum(latency_4), 0) AS latency_4,
       coalesce(sum(latency_5), 0) AS latency_5, coalesce(sum(latency_6), 0) AS latency_6,
       coalesce(sum(latency_7), 0) AS latency_7, coalesce(sum(latency_8), 0) AS latency_8,
       coalesce(sum(latency_9), 0) AS latency_9, coalesce(sum(latency_10), 0) AS latency_10,
       coalesce(sum(latency_11), 0) AS latency_11, coalesce(sum(duration_ms), 0) AS
       duration_ms, coalesce(sum(payload_bytes), 0) AS payload_bytes,
       coalesce(sum(payloads), 0) AS payloads
FROM endpoint_rollups
WHERE endpoint_id = :endpoint_id AND period = :period
    AND (CAST(:start AS BIGINT) IS NULL OR start_at >= :start)
    AND (CAST(:end AS BIGINT) IS NULL OR start_at < :end)

-- name: app_rollup_sums
-- Attempts per application in one period's rows starting in [start, end), for the
-- application-statistics task (Svix's messageDestinations); the period index serves it.
SELECT app_id, sum(attempts) AS attempts FROM endpoint_rollups
WHERE period = :period AND start_at >= :start AND start_at < :end
GROUP BY app_id

-- name: prune_rollups
-- Retention: the oldest rollup rows of one period that started before the horizon, a batch
-- at a time (minute rows have a shorter horizon than hour rows).
DELETE FROM endpoint_rollups WHERE (endpoint_id, period, start_at) IN (
    SELECT endpoint_id, period, start_at FROM endpoint_rollups
    WHERE period = :period AND start_at < :before ORDER BY start_at LIMIT :limit
)

-- name: prunable_rollups
SELECT count(*) FROM (
    SELECT start_at FROM endpoint_rollups
    WHERE period = :period AND start_at < :before ORDER BY start_at LIMIT :limit
) AS due

-- name: active_endpoints
-- With their application's rate limit, which applies where theirs is not set.
SELECT e.*, a.throttle_rate AS app_throttle_rate
FROM endpoints AS e JOIN applications AS a ON a.id = e.app_id
WHERE e.app_id = :app_id AND e.disabled = 0

-- name: get_message
SELECT * FROM messages
WHERE app_id = :app_id AND (id = :key OR event_id = :key)
ORDER BY id = :key DESC LIMIT 1

-- name: expunge_message
UPDATE messages SET payload = NULL WHERE app_id = :app_id AND id = :msg_id

-- name: defer_delivery
UPDATE deliveries
SET status = 1, next_attempt_at = :until, lease_token = NULL, worker_id = NULL,
    updated_at = :now
WHERE id = :id AND lease_token = :lease_token

-- name: divert_delivery
-- A delivery held by a circuit open too long goes to the fallback destination instead: it
-- fails unattempted (while its lease holds), and its stand-in is written.
UPDATE deliveries
SET status = 2, lease_token = NULL, worker_id = NULL, manual = 0, updated_at = :now
WHERE id = :delivery_id AND lease_token = :lease_token
  AND EXISTS (SELECT 1 FROM endpoints
              WHERE id = :endpoint_id AND app_id = :app_id AND disabled = 0);
INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempt_count,
                        next_attempt_at, updated_at, fallback_for)
SELECT :id, e.app_id, :msg_id, e.id, 1, 0, CAST(:now AS BIGINT), CAST(:now AS BIGINT),
       :fallback_for
FROM endpoints AS e JOIN deliveries AS d ON d.id = :delivery_id
WHERE e.id = :endpoint_id AND e.app_id = :app_id AND e.disabled = 0
  AND d.status = 2 AND d.lease_token IS NULL
ON CONFLICT (msg_id, endpoint_id) DO NOTHING;
-- Still leased: the fallback could not take it (disabled or deleted), so put it back.
UPDATE deliveries
SET status = 1, next_attempt_at = :until, lease_token = NULL, worker_id = NULL,
    updated_at = :now
WHERE id = :delivery_id AND lease_token = :lease_token

-- name: resend
UPDATE deliveries
SET status = 1, next_attempt_at = :now, manual = 1, lease_token = NULL, updated_at = :now
WHERE app_id = :app_id AND msg_id = :msg_id AND endpoint_id = :endpoint_id

-- name: skip_held
-- A held delivery (pending with no next attempt) becomes failed, a dead letter, and its
-- ordered endpoint's line moves on.
UPDATE deliveries SET status = 2, manual = 0, updated_at = :now
WHERE app_id = :app_id AND msg_id = :msg_id AND endpoint_id = :endpoint_id
  AND status = 1 AND next_attempt_at IS NULL

-- name: get_delivery
SELECT * FROM deliveries WHERE msg_id = :msg_id AND endpoint_id = :endpoint_id

-- name: get_attempt
SELECT * FROM attempts WHERE app_id = :app_id AND id = :attempt_id

-- name: insert_token
INSERT INTO tokens (id, token_hash, app_id, expires_at, created_at, name, capabilities,
                    session_id, configured, last_used_at, allowed_networks)
VALUES (:id, :token_hash, :app_id, :expires_at, :created_at, :name, :capabilities,
        :session_id, :configured, :last_used_at, :allowed_networks)

-- name: find_token
SELECT * FROM tokens WHERE token_hash = :token_hash

-- name: get_token
SELECT * FROM tokens WHERE id = :id

-- name: list_tokens
-- Every token, or one application's (app_id given); admin tokens have none.
SELECT * FROM tokens
WHERE CAST(:app_id AS TEXT) IS NULL OR app_id = :app_id
ORDER BY id

-- name: delete_token
DELETE FROM tokens WHERE id = :id

-- name: expire_token
-- Brings the expiry forward, never back: an expired token stays expired.
UPDATE tokens SET expires_at = :until
WHERE id = :id AND (expires_at IS NULL OR expires_at > :until)

-- name: touch_token
UPDATE tokens SET last_used_at = :now WHERE id = :id

-- name: set_token_networks
-- A token's client networks (NULL: any address), replaced whole.
UPDATE tokens SET allowed_networks = :allowed_networks WHERE id = :id

-- name: mark_configured_token
UPDATE tokens SET configured = 1 WHERE id = :id

-- name: delete_configured_tokens
-- The configured admin token is replaced when the setting changes: every configured token
-- whose hash is not one of the current setting's (its keyed hash, and its plain SHA-256 from
-- before keyed hashes, kept while processes of the previous version may still run).
DELETE FROM tokens WHERE configured = 1 AND token_hash <> :token_hash AND token_hash <> :legacy_hash

-- name: count_admin_tokens
SELECT count(*) FROM tokens WHERE app_id IS NULL

-- name: insert_server_key
-- First writer wins: replicas starting together all read the same key afterwards.
INSERT INTO server_keys (name, value, created_at) VALUES (:name, :value, :now)
ON CONFLICT (name) DO NOTHING

-- name: get_server_key
SELECT value FROM server_keys WHERE name = :name

-- name: idempotency_reserve
-- A new key, or one whose request never finished and went stale (its process died before
-- finishing or abandoning it): either way this request holds it now, and one row changes.
-- A key in use or finished is left as it is, and no row changes.
INSERT INTO idempotency_keys (scope, key, request_hash, created_at)
VALUES (:scope, :key, :request_hash, :now)
ON CONFLICT (scope, key) DO UPDATE
SET request_hash = excluded.request_hash, created_at = excluded.created_at
WHERE idempotency_keys.status IS NULL AND idempotency_keys.created_at < :stale_before

-- name: idempotency_get
SELECT request_hash, status, body FROM idempotency_keys WHERE scope = :scope AND key = :key

-- name: idempotency_renew
-- A running request keeps its reservation: created_at is when it was last renewed.
UPDATE idempotency_keys SET created_at = :now
WHERE scope = :scope AND key = :key AND request_hash = :request_hash AND status IS NULL

-- name: idempotency_finish
UPDATE idempotency_keys SET status = :status, body = :body WHERE scope = :scope AND key = :key

-- name: idempotency_abandon
DELETE FROM idempotency_keys WHERE scope = :scope AND key = :key AND status IS NULL

-- name: purge_expired
DELETE FROM idempotency_keys WHERE created_at < :before;
DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at < :now;
-- A circuit outlives its endpoint only if the endpoint was deleted while it was open, and
-- a rate timeline only if it was deleted while rate-limited.
DELETE FROM circuits WHERE endpoint_id NOT IN (SELECT id FROM endpoints);
DELETE FROM rate_slots WHERE endpoint_id NOT IN (SELECT id FROM endpoints)

-- name: expire_payloads
-- The next :limit payloads past their message's expiry, soonest first, through the partial
-- index messages_payload_expiry: an expunged row leaves the index, so the next batch starts
-- at the first payload still held, and no batch reads more than it clears.
UPDATE messages SET payload = NULL
WHERE id IN (
    SELECT id FROM messages
    WHERE payload IS NOT NULL AND expires_at < :now
    ORDER BY expires_at
    LIMIT :limit
)

-- name: register_worker
INSERT INTO workers (id, host, pid, started_at, heartbeat_at)
VALUES (:worker_id, :host, :pid, :now, :now)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = :now

-- name: queue_health
-- Readiness (docs/observability.md, "Health"): how many workers heartbeated since
-- :alive_since, and the earliest next_attempt_at among what a claim looks at first: each
-- enabled endpoint's first row in deliveries_endpoint_due (one index probe per endpoint),
-- and the head of each ordered sequence, stepped through deliveries_sequence as claim_due
-- steps (one probe per sequence with work). It never scans deliveries.
WITH RECURSIVE heads (endpoint_id, ordering_key, next_attempt_at) AS (
    SELECT endpoint_id, ordering_key, next_attempt_at FROM (
        SELECT endpoint_id, ordering_key, next_attempt_at FROM deliveries
        WHERE status IN (1, 3) AND ordering_key IS NOT NULL
        ORDER BY endpoint_id, ordering_key, msg_id
        LIMIT 1
    ) AS first_head
    UNION ALL
    SELECT y.endpoint_id, y.ordering_key, y.next_attempt_at
    FROM heads AS h JOIN deliveries AS y ON y.id = (
        SELECT z.id FROM deliveries AS z
        WHERE z.status IN (1, 3) AND z.ordering_key IS NOT NULL
          AND (z.endpoint_id, z.ordering_key) > (h.endpoint_id, h.ordering_key)
        ORDER BY z.endpoint_id, z.ordering_key, z.msg_id
        LIMIT 1
    )
)
SELECT
    (SELECT count(*) FROM workers WHERE heartbeat_at >= :alive_since) AS live_workers,
    (SELECT min(due) FROM (
        SELECT (SELECT d.next_attempt_at FROM deliveries AS d
                WHERE d.endpoint_id = e.id AND d.status IN (1, 3) AND d.ordering_key IS NULL
                ORDER BY d.next_attempt_at
                LIMIT 1) AS due
        FROM endpoints AS e WHERE e.disabled = 0
        UNION ALL
        SELECT h.next_attempt_at FROM heads AS h JOIN endpoints AS e ON e.id = h.endpoint_id
        WHERE e.disabled = 0
    ) AS firsts) AS first_due

-- name: backlog_sample
-- The backlog gauges (docs/observability.md, "Metrics"), which worker processes sample in the
-- background and never at scrape time: the due rows of enabled endpoints, read per endpoint
-- through deliveries_endpoint_due (unordered rows) and deliveries_sequence (ordered ones);
-- then the workers heard from, the disabled endpoints and the breakers not closed. CROSS JOIN
-- makes SQLite probe the index per endpoint, as said: with a plain join it walked the whole
-- index and looked each row's endpoint up, about 2.5 times slower at 1,000,000 due rows
-- (docs/performance-decisions.md); PostgreSQL plans both spellings alike.
SELECT due.due, due.oldest,
    (SELECT count(*) FROM workers WHERE heartbeat_at >= :alive_since) AS live_workers,
    (SELECT count(*) FROM endpoints WHERE disabled = 1) AS disabled,
    (SELECT count(*) FROM circuits) AS open_breakers
FROM (
    SELECT coalesce(sum(rows_due), 0) AS due, min(oldest) AS oldest FROM (
        SELECT count(*) AS rows_due, min(d.next_attempt_at) AS oldest
        FROM endpoints AS e CROSS JOIN deliveries AS d
        WHERE d.endpoint_id = e.id AND e.disabled = 0 AND d.status IN (1, 3)
          AND d.ordering_key IS NULL AND d.next_attempt_at <= :now
        UNION ALL
        SELECT count(*), min(d.next_attempt_at)
        FROM endpoints AS e CROSS JOIN deliveries AS d
        WHERE d.endpoint_id = e.id AND e.disabled = 0 AND d.status IN (1, 3)
          AND d.ordering_key IS NOT NULL AND d.next_attempt_at <= :now
    ) AS parts
) AS due

-- name: unregister_worker
DELETE FROM workers WHERE id = :worker_id

-- name: release_stalled
UPDATE deliveries SET next_attempt_at = :now, lease_token = NULL, worker_id = NULL
WHERE status = 3 AND worker_id IN (SELECT id FROM workers WHERE heartbeat_at < :stalled_before);
DELETE FROM workers WHERE heartbeat_at < :stalled_before

-- name: open_circuit
-- Of two openings of one endpoint's breaker, the one that holds it longer is the newer; an
-- opening ends any probe (it is the probe's failure, or news the probe has not heard), and
-- the episode keeps the time it began.
INSERT INTO circuits (endpoint_id, failures, open_until, cooldown_ms, opened_at, failure_ratio,
                      reason, probe_until, probe_owner)
VALUES (:endpoint_id, :failures, :open_until, :cooldown_ms, :opened_at, :failure_ratio,
        :reason, NULL, NULL)
ON CONFLICT (endpoint_id) DO UPDATE
SET failures = excluded.failures, open_until = excluded.open_until,
    cooldown_ms = excluded.cooldown_ms, failure_ratio = excluded.failure_ratio,
    opened_at = CASE WHEN circuits.opened_at < excluded.opened_at
                     THEN circuits.opened_at ELSE excluded.opened_at END,
    probe_until = NULL, probe_owner = NULL
WHERE circuits.open_until < excluded.open_until

-- name: close_circuit
DELETE FROM circuits WHERE endpoint_id = :endpoint_id

-- name: open_circuits
-- Every circuit not closed: open, or half-open (its cooldown over) with or without a probe.
SELECT * FROM circuits

-- name: claim_probe
-- The half-open probe, once across all workers: only a circuit whose cooldown is over and
-- whose last probe lease (if any) ran out can be claimed, by one worker at a time.
UPDATE circuits SET probe_until = :probe_until, probe_owner = :worker_id
WHERE endpoint_id = :endpoint_id AND open_until <= :now
  AND (probe_until IS NULL OR probe_until <= :now)

-- name: get_circuit
SELECT * FROM circuits WHERE endpoint_id = :endpoint_id

-- name: failing_endpoints
-- Enabled endpoints failing since :before or earlier whose auto-disable is not done.
SELECT f.endpoint_id, f.failing_since, f.step, e.app_id, e.uid
FROM endpoint_failures AS f JOIN endpoints AS e ON e.id = f.endpoint_id
WHERE e.disabled = 0 AND f.failing_since <= :before AND f.step < 3

-- name: advance_failure_step
-- Take an auto-disable step once per failing period: of several workers checking, the one
-- whose update changes the row takes it; a success in between (a new period) stops it.
UPDATE endpoint_failures SET step = :step
WHERE endpoint_id = :endpoint_id AND failing_since = :since AND step < :step

-- name: application_policies
-- Only the applications that set a policy: an empty one is stored as NULL.
SELECT id, policy FROM applications WHERE policy IS NOT NULL

-- name: slow_rate_slots
-- A receiver asked an endpoint to slow down (domain/ratelimit.py): the latest request wins.
INSERT INTO rate_slots (endpoint_id, next_slot, granted, slow_rate, slowed_at)
VALUES (:endpoint_id, 0, 0, :slow_rate, :now)
ON CONFLICT (endpoint_id) DO UPDATE
SET slow_rate = excluded.slow_rate, slowed_at = excluded.slowed_at

-- name: slowdown_of_endpoint
SELECT endpoint_id, slow_rate, slowed_at FROM rate_slots
WHERE endpoint_id = :endpoint_id AND slow_rate IS NOT NULL

-- name: slowed_endpoints
SELECT endpoint_id, slow_rate, slowed_at FROM rate_slots
WHERE slow_rate IS NOT NULL AND slowed_at > :since

-- name: schema_version
SELECT coalesce(max(version), 0) FROM schema_version

-- name: page_applications
-- The head of a list page, as every page_* query: sql.page_sql adds WHERE, ORDER BY, LIMIT.
SELECT * FROM applications AS a

-- name: page_event_types
SELECT * FROM event_types

-- name: page_endpoints
SELECT e.*, f.failing_since AS failing_since
FROM endpoints AS e LEFT JOIN endpoint_failures AS f ON f.endpoint_id = e.id

-- name: page_messages
SELECT m.* FROM messages AS m

-- name: page_attempts
SELECT a.* FROM attempts AS a

-- name: page_attempts_with_messages
SELECT a.* FROM attempts AS a JOIN messages AS m ON m.id = a.msg_id

-- name: page_attempted_messages
-- Messages sent to :endpoint_id, each with its delivery there.
SELECT m.*, d.id AS d_id, d.status AS d_status, d.attempt_count AS d_attempts,
       d.next_attempt_at AS d_next, d.updated_at AS d_updated, d.endpoint_id AS d_ep
FROM messages AS m JOIN deliveries AS d ON d.msg_id = m.id AND d.endpoint_id = :endpoint_id

-- name: page_attempted_destinations
-- Endpoints :msg_id was sent to, each with its delivery of it.
SELECT e.*, d.id AS d_id, d.status AS d_status, d.attempt_count AS d_attempts,
       d.next_attempt_at AS d_next, d.updated_at AS d_updated, d.msg_id AS d_msg
FROM endpoints AS e JOIN deliveries AS d ON d.endpoint_id = e.id AND d.msg_id = :msg_id

-- name: insert_background_task
INSERT INTO background_tasks (id, app_id, endpoint_id, task, status, filter, cursor, scanned,
                              queued, error, lease_token, lease_until, created_at, updated_at)
VALUES (:id, :app_id, :endpoint_id, :task, :status, :filter, :cursor, 0, 0, NULL, NULL,
        :created_at, :created_at, :created_at)

-- name: get_background_task
SELECT * FROM background_tasks WHERE id = :task_id

-- name: due_background_task
-- The oldest running task whose lease ran out (or that nobody leased yet), through the
-- background_tasks_due index.
SELECT id FROM background_tasks
WHERE status = 'running' AND lease_until <= :now
ORDER BY lease_until LIMIT 1

-- name: lease_background_task
-- Only while the lease is still free: of two runners that read the same task, one wins.
UPDATE background_tasks SET lease_token = :lease_token, lease_until = :lease_until
WHERE id = :task_id AND status = 'running' AND lease_until <= :now

-- name: release_background_task
-- A runner that stops (SIGTERM) hands its task back at once instead of letting the lease
-- run out.
UPDATE background_tasks SET lease_token = NULL, lease_until = :now
WHERE id = :task_id AND lease_token = :lease_token AND status = 'running'

-- name: cancel_background_task
UPDATE background_tasks SET status = 'canceled', updated_at = :now
WHERE id = :task_id AND status = 'running'

-- name: fail_background_task
UPDATE background_tasks SET status = 'failed', error = :error, updated_at = :now
WHERE id = :task_id AND status = 'running' AND lease_token = :lease_token

-- name: finish_background_task
-- A statistics task's one step: its result, written only while the runner's lease holds.
UPDATE background_tasks SET status = 'finished', result = :result, updated_at = :now
WHERE id = :task_id AND status = 'running' AND lease_token = :lease_token

-- name: prune_tasks
-- Retention: background tasks that ended before the horizon (a running one stays).
DELETE FROM background_tasks WHERE status <> 'running' AND updated_at < :before

-- name: prunable_tasks
SELECT count(*) FROM background_tasks WHERE status <> 'running' AND updated_at < :before

-- name: insert_audit_entry
-- The audit log is append-only: this is its one write; only retention deletes.
INSERT INTO audit_log (id, created_at, actor, actor_app_id, address, action, app_id,
                       target_id, summary)
VALUES (:id, :created_at, :actor, :actor_app_id, :address, :action, :app_id, :target_id,
        :summary)

-- name: page_audit_log
SELECT * FROM audit_log AS al

-- name: prune_audit_log
-- Retention: the oldest entries recorded before the horizon, a batch at a time.
DELETE FROM audit_log WHERE id IN (
    SELECT id FROM audit_log WHERE created_at < :before ORDER BY created_at, id LIMIT :limit
)

-- name: prunable_audit_log
SELECT count(*) FROM (
    SELECT id FROM audit_log WHERE created_at < :before ORDER BY created_at, id LIMIT :limit
) AS due

-- name: page_background_tasks
SELECT * FROM background_tasks

-- name: task_message_rows
-- The next messages of an application after :cursor (messages_app index), each with its
-- delivery to :endpoint_id if it has one: a batch of replay-missing reads at most :limit
-- rows, whatever the filters then keep.
SELECT m.id AS row_key, m.id AS msg_id, m.event_type, m.channels, m.tags, m.created_at,
       d.endpoint_id, d.id AS delivery_id, d.status, coalesce(d.attempt_count, 0) AS attempts,
       d.updated_at, NULL AS last_code
FROM messages AS m
LEFT JOIN deliveries AS d ON d.msg_id = m.id AND d.endpoint_id = :endpoint_id
WHERE m.app_id = :app_id AND m.id > :cursor AND m.id < :upper
ORDER BY m.id LIMIT :limit

-- name: task_content_rows
-- The next messages of an application after :cursor (messages_app index) for a content
-- purge, each saying whether its payload is still stored (content 1) or was expunged (0).
SELECT m.id AS msg_id, m.event_type, m.channels, m.tags, m.created_at,
       NULL AS endpoint_id, NULL AS delivery_id, NULL AS status, 0 AS attempts,
       NULL AS updated_at, NULL AS last_code,
       CASE WHEN m.payload IS NULL THEN 0 ELSE 1 END AS content
FROM messages AS m
WHERE m.app_id = :app_id AND m.id > :cursor AND m.id < :upper
ORDER BY m.id LIMIT :limit

-- name: page_delivery_rows
-- Deliveries with what the filters read: their message's type, channels, tags and time,
-- and the status code of their last attempt. Listed and walked through deliveries_endpoint
-- (one endpoint, by message) or deliveries_dead (an application's failures, by delivery
-- id). The last attempt is read through attempts_msg, a message's few attempts: the
-- "|| ''" keeps both planners off attempts_endpoint, which also serves the ORDER BY and
-- would walk all of the endpoint's attempts back to this message's.
SELECT * FROM (
    SELECT d.id AS delivery_id, d.app_id, d.msg_id, d.endpoint_id, d.status,
           d.attempt_count AS attempts, d.updated_at, m.event_type, m.channels, m.tags,
           m.created_at, d.status = 1 AND d.next_attempt_at IS NULL AS held,
           (SELECT a.response_status_code FROM attempts AS a
            WHERE a.msg_id = d.msg_id AND a.endpoint_id || '' = d.endpoint_id
            ORDER BY a.id DESC LIMIT 1) AS last_code
    FROM deliveries AS d JOIN messages AS m ON m.id = d.msg_id
) AS dl
-- name: prune_scan
-- Retention: the next :limit messages after :after_id below :before_id, the first id minted
-- at the horizon (ids sort by time, so this walks the primary key); each says whether it
-- was created before the horizon and whether it is held, a delivery of it still pending or
-- sending (deliveries' (msg_id, endpoint_id) key answers that).
SELECT m.id, m.created_at < :before AS expired,
       EXISTS (SELECT 1 FROM deliveries AS d WHERE d.msg_id = m.id AND d.status IN (1, 3))
           AS held
FROM messages AS m
WHERE m.id > :after_id AND m.id < :before_id
ORDER BY m.id
LIMIT :limit

-- name: rekey_page
-- hookline rekey: the next endpoints' secret columns (storage/codec.py SECRET_COLUMNS), as
-- stored, with the version they were read at.
SELECT id, version, keys, headers, auth FROM endpoints
WHERE id > :after_id ORDER BY id LIMIT :limit

-- name: rekey_write
-- Compare-and-set on the version and on the stored text that was read: a concurrent update
-- wins and the row is left to the next pass. The version does not move, since what the
-- endpoint means is unchanged: an update that read it before is not made to retry. auth is
-- NULL for an endpoint without credentials (NULL = NULL is not true).
UPDATE endpoints SET keys = :keys, headers = :headers, auth = :auth
WHERE id = :id AND version = :version AND keys = :old_keys AND headers = :old_headers
  AND (auth = :old_auth OR (auth IS NULL AND :old_auth IS NULL))
RETURNING id

-- name: anomaly_subjects
-- What anomaly detection judges: every enabled endpoint but the operational webhooks', with
-- when it began (its history before then is absence, not silence) and its policy (which
-- may mute it).
SELECT id, app_id, created_at, policy FROM endpoints
WHERE disabled = 0 AND app_id <> :reserved

-- name: open_anomalies
SELECT * FROM anomalies WHERE resolved_at IS NULL

-- name: open_anomaly
-- Opens an anomaly unless one of its subject and kind is open already (several workers
-- judge the same rollups): the id back only to the one writer that opened it.
INSERT INTO anomalies (id, kind, subject_id, app_id, endpoint_id, detected_at, last_seen_at,
    resolved_at, observed, expected, basis)
VALUES (:id, :kind, :subject_id, :app_id, :endpoint_id, :detected_at, :last_seen_at, NULL,
    :observed, :expected, :basis)
ON CONFLICT (subject_id, kind) WHERE resolved_at IS NULL DO NOTHING
RETURNING id

-- name: see_anomaly
-- An open anomaly whose rule still holds: it stays open for RESOLVE_AFTER from now.
UPDATE anomalies SET last_seen_at = :now, observed = :observed
WHERE id = :id AND resolved_at IS NULL

-- name: resolve_anomaly
-- The id back only to the one writer that ended it.
UPDATE anomalies SET resolved_at = :now WHERE id = :id AND resolved_at IS NULL
RETURNING id

-- name: page_anomalies
SELECT * FROM anomalies AS an

-- name: prune_anomalies
-- Retention: resolved anomalies that ended before the horizon, a batch at a time.
DELETE FROM anomalies WHERE id IN (
    SELECT id FROM anomalies WHERE resolved_at < :before ORDER BY resolved_at LIMIT :limit
)

-- name: prunable_anomalies
SELECT count(*) FROM (
    SELECT id FROM anomalies WHERE resolved_at < :before ORDER BY resolved_at LIMIT :limit
) AS due

-- name: take_lease
-- Take or renew a periodic job's lease: the holder's own, or one that ran out. Returns the
-- holder only when this caller now holds it.
INSERT INTO leases (name, holder, held_until) VALUES (:name, :holder, :until)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until
WHERE leases.holder = excluded.holder OR leases.held_until <= :now
RETURNING holder

-- name: endpoints_with_failures
-- Failure groups: the endpoints whose minute rollups in a range count a failed attempt, so
-- a pass reads the attempt log of those endpoints only (index endpoint_rollups_period).
SELECT endpoint_id FROM endpoint_rollups
WHERE period = :period AND start_at >= :start AND start_at < :end AND attempts > success
GROUP BY endpoint_id

-- name: failed_attempts
-- One endpoint's failed attempts minted in an id range, a page at a time (index
-- attempts_endpoint).
SELECT id, app_id, msg_id, endpoint_id, response_status_code, response, created_at
FROM attempts
WHERE endpoint_id = :endpoint_id AND id > :after_id AND id < :before_id AND status <> 0
ORDER BY id LIMIT :limit

-- name: scan_cursor
SELECT scanned_until FROM scan_cursors WHERE name = :name

-- name: advance_scan_cursor
-- Compare-and-set: the name back only when the cursor still stood where the caller read it
-- (absent for a first pass), so of two passes over one range only one counts it.
INSERT INTO scan_cursors (name, scanned_until) VALUES (:name, :until)
ON CONFLICT (name) DO UPDATE SET scanned_until = excluded.scanned_until
WHERE scan_cursors.scanned_until = :previous
RETURNING name

-- name: add_failures
-- A pass's sighting of one key: opens its group, adds to the unresolved one, or reopens a
-- resolved one with its counters started again (every right-hand side reads the old row).
INSERT INTO failure_groups (id, app_id, endpoint_id, outcome, status_code, status,
    first_seen_at, opened_at, last_seen_at, attempts, messages, sample, acknowledged_at,
    resolved_at, resolved_by, reopened)
VALUES (:id, :app_id, :endpoint_id, :outcome, :status_code, 'open', :first_at, :first_at,
    :last_at, :attempts, :messages, :sample, NULL, NULL, NULL, 0)
ON CONFLICT (endpoint_id, outcome, status_code) DO UPDATE SET
    status = CASE WHEN failure_groups.status = 'resolved' THEN 'open'
        ELSE failure_groups.status END,
    opened_at = CASE WHEN failure_groups.status = 'resolved' THEN excluded.opened_at
        ELSE failure_groups.opened_at END,
    attempts = excluded.attempts + CASE WHEN failure_groups.status = 'resolved' THEN 0
        ELSE failure_groups.attempts END,
    messages = excluded.messages + CASE WHEN failure_groups.status = 'resolved' THEN 0
        ELSE failure_groups.messages END,
    reopened = failure_groups.reopened + CASE WHEN failure_groups.status = 'resolved' THEN 1
        ELSE 0 END,
    acknowledged_at = CASE WHEN failure_groups.status = 'resolved' THEN NULL
        ELSE failure_groups.acknowledged_at END,
    last_seen_at = excluded.last_seen_at,
    sample = excluded.sample,
    resolved_at = NULL,
    resolved_by = NULL

-- name: failure_group
SELECT * FROM failure_groups WHERE id = :id

-- name: page_failure_groups
SELECT * FROM failure_groups AS fg

-- name: quiet_failure_groups
-- Unresolved groups without a failure since :before, the quietest first, a page after
-- (:after_seen, :after_id) at a time (index failure_groups_quiet).
SELECT * FROM failure_groups
WHERE resolved_at IS NULL AND last_seen_at < :before
  AND (last_seen_at > :after_seen OR (last_seen_at = :after_seen AND id > :after_id))
ORDER BY last_seen_at, id LIMIT :limit

-- name: acknowledge_failure_group
UPDATE failure_groups SET status = 'acknowledged', acknowledged_at = :now
WHERE id = :id AND status = 'open'
RETURNING id

-- name: resolve_failure_group
-- The id back only to the one writer that resolved it; an automatic resolve also requires
-- that no failure was added since the pass read the group (last_seen_at unchanged).
UPDATE failure_groups SET status = 'resolved', resolved_at = :now, resolved_by = :by
WHERE id = :id AND resolved_at IS NULL AND last_seen_at <= :seen_until
RETURNING id

-- name: prune_failure_groups
-- Retention: groups resolved before the horizon, a batch at a time.
DELETE FROM failure_groups WHERE id IN (
    SELECT id FROM failure_groups WHERE resolved_at < :before ORDER BY resolved_at LIMIT :limit
)

-- name: prunable_failure_groups
SELECT count(*) FROM (
    SELECT id FROM failure_groups WHERE resolved_at < :before ORDER BY resolved_at LIMIT :limit
) AS due

-- name: get_portal_branding
SELECT settings FROM portal_branding WHERE app_id = :app_id

-- name: put_portal_branding
INSERT INTO portal_branding (app_id, settings, updated_at) VALUES (:app_id, :settings, :now)
ON CONFLICT (app_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at

-- name: delete_portal_branding
DELETE FROM portal_branding WHERE app_id = :app_id

-- name: tail_attempts
-- The console's live tail: attempts of every application (or one) after a cursor, oldest
-- first. Attempt ids sort by time (domain/ids.py), so the primary key serves it.
SELECT * FROM attempts
WHERE id > :after_id AND (CAST(:app_id AS TEXT) IS NULL OR app_id = :app_id)
ORDER BY id LIMIT :limit

-- name: deployment_rollup_series
-- Every endpoint's rollup rows of one period starting in [start, end), added up per start:
-- the console's overview chart; the period index serves it.
SELECT start_at, sum(attempts) AS attempts, sum(success) AS success,
       sum(status_3xx) AS status_3xx, sum(status_4xx) AS status_4xx,
       sum(status_5xx) AS status_5xx, sum(timeout) AS timeout, sum(connection) AS connection,
       sum(dns) AS dns, sum(tls) AS tls, sum(ssrf_blocked) AS ssrf_blocked,
       sum(other) AS other, sum(latency_0) AS latency_0, sum(latency_1) AS latency_1,
       sum(latency_2) AS latency_2, sum(latency_3) AS latency_3, sum(latency_4) AS latency_4,
       sum(latency_5) AS latency_5, sum(latency_6) AS latency_6, sum(latency_7) AS latency_7,
       sum(latency_8) AS latency_8, sum(latency_9) AS latency_9,
       sum(latency_10) AS latency_10, sum(latency_11) AS latency_11,
       sum(duration_ms) AS duration_ms, sum(payload_bytes) AS payload_bytes,
       sum(payloads) AS payloads
FROM endpoint_rollups
WHERE period = :period AND start_at >= :start AND start_at < :end
GROUP BY start_at
ORDER BY start_at

-- name: worst_endpoints
-- The endpoints with the most failed attempts in one period's rows starting in
-- [start, end), among those with at least :min_attempts: the console's "hurting now".
SELECT endpoint_id, app_id, sum(attempts) AS attempts, sum(success) AS success
FROM endpoint_rollups
WHERE period = :period AND start_at >= :start AND start_at < :end
GROUP BY endpoint_id, app_id
HAVING sum(attempts) >= :min_attempts AND sum(attempts) > sum(success)
ORDER BY sum(attempts) - sum(success) DESC, sum(success) * 1.0 / sum(attempts), endpoint_id
LIMIT :limit

-- name: search_deliveries
-- The deliveries search's page (storage/search.py adds its WHERE, ORDER BY and LIMIT).
SELECT d.id, d.app_id, d.msg_id, d.endpoint_id, d.status, d.attempt_count,
       d.next_attempt_at, d.updated_at, m.event_type, m.created_at
FROM deliveries AS d JOIN messages AS m ON m.id = d.msg_id
