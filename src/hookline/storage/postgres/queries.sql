-- PostgreSQL's own queries, over storage/queries.sql: list parameters are arrays, a
-- batch is one statement over unnest arrays, and the claim is one statement.

-- name: existing_event_types
SELECT name FROM event_types WHERE name = ANY(:names)

-- name: insert_messages
-- A whole group commit in one statement: one array per column.
INSERT INTO messages (id, app_id, event_type, event_id, payload, channels, tags,
                      created_at, expires_at)
SELECT * FROM unnest(:id::text[], :app_id::text[], :event_type::text[], :event_id::text[],
                     :payload::bytea[], :channels::text[], :tags::text[],
                     :created_at::bigint[], :expires_at::bigint[])

-- name: insert_deliveries
-- Pending rows, and rows leased to the publishing process's worker (with a lease_token).
INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempt_count,
                        next_attempt_at, lease_token, worker_id, updated_at)
SELECT id, app_id, msg_id, endpoint_id, CASE WHEN lease_token IS NULL THEN 1 ELSE 3 END, 0,
       coalesce(lease_until, written), lease_token, worker_id, written
FROM unnest(:id::text[], :app_id::text[], :msg_id::text[], :endpoint_id::text[],
            :lease_until::bigint[], :lease_token::text[], :worker_id::text[], :now::bigint[])
     AS u (id, app_id, msg_id, endpoint_id, lease_until, lease_token, worker_id, written)

-- name: claim_due
-- Fair across endpoints: each enabled endpoint that is not busy offers its oldest due
-- deliveries (at most :per_endpoint, through the endpoint_due index, skipping rows other
-- workers hold), and the oldest of those are taken.
UPDATE deliveries
SET status = 3, lease_token = :lease_token, next_attempt_at = :lease_until,
    worker_id = :worker_id
WHERE id IN (
    SELECT c.id FROM endpoints AS e
    CROSS JOIN LATERAL (
        SELECT x.id, x.next_attempt_at FROM deliveries AS x
        WHERE x.endpoint_id = e.id AND x.status IN (1, 3) AND x.next_attempt_at <= :now
        ORDER BY x.next_attempt_at
        LIMIT :per_endpoint
        FOR UPDATE SKIP LOCKED
    ) AS c
    WHERE e.disabled = 0 AND NOT e.id = ANY(:busy)
    ORDER BY c.next_attempt_at
    LIMIT :limit
)
RETURNING id, msg_id, endpoint_id, attempt_count, manual

-- name: messages_by_ids
SELECT * FROM messages WHERE id = ANY(:ids)

-- name: endpoints_by_ids
SELECT * FROM endpoints WHERE id = ANY(:ids)

-- name: insert_attempts
-- A worker's batch of attempt records in one statement: one array per column.
INSERT INTO attempts (id, app_id, msg_id, endpoint_id, url, status, response_status_code,
                      response, duration_ms, trigger_type, created_at)
SELECT * FROM unnest(:id::text[], :app_id::text[], :msg_id::text[], :endpoint_id::text[],
                     :url::text[], :status::int[], :response_status_code::int[],
                     :response::text[], :duration_ms::int[], :trigger_type::int[],
                     :created_at::bigint[])
ON CONFLICT (id) DO NOTHING

-- name: finish_deliveries
-- The same batch's deliveries, each only while its lease holds.
UPDATE deliveries AS d
SET status = u.status, attempt_count = u.attempt_count, next_attempt_at = u.next_attempt_at,
    lease_token = NULL, worker_id = NULL, manual = 0, updated_at = u.now
FROM unnest(:id::text[], :lease_token::text[], :status::int[], :attempt_count::int[],
            :next_attempt_at::bigint[], :now::bigint[])
     AS u (id, lease_token, status, attempt_count, next_attempt_at, now)
WHERE d.id = u.id AND d.lease_token = u.lease_token

-- name: disable_endpoint
-- Moves the version, so that an update read before it is refused (update_endpoint).
UPDATE endpoints SET disabled = 1, updated_at = :now, version = version + 1
WHERE id = :endpoint_id

-- name: schema_initialised
SELECT 1 WHERE to_regclass('schema_version') IS NOT NULL

-- name: lock_migrations
-- Serialises concurrent `hookline migrate` runs until the transaction ends.
SELECT pg_advisory_xact_lock(:key)

-- name: set_schema_version
DELETE FROM schema_version;
INSERT INTO schema_version (version) VALUES (:version)

-- name: lock_pruning
-- Pruners in several processes take turns, one batch each, until the transaction ends:
-- two deleting overlapping rows at once could deadlock.
SELECT pg_advisory_xact_lock(:key)

-- name: prune_deliveries
-- Retention: the finished deliveries (0 success, 2 fail) of messages the scan found
-- removable, by their (msg_id, endpoint_id) key.
DELETE FROM deliveries WHERE msg_id = ANY(:ids) AND status IN (0, 2)

-- name: prune_messages
-- Only messages left without deliveries: one sent again since the scan stays.
DELETE FROM messages
WHERE id = ANY(:ids) AND NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.msg_id = messages.id)
RETURNING id

-- name: prune_attempts
DELETE FROM attempts WHERE msg_id = ANY(:ids)

-- name: prunable_deliveries
SELECT count(*) FROM deliveries WHERE msg_id = ANY(:ids)

-- name: prunable_attempts
SELECT count(*) FROM attempts WHERE msg_id = ANY(:ids)

-- name: vacuum_retained
-- What autovacuum does after pruning, by hand (hookline prune --vacuum): one statement,
-- outside a transaction as VACUUM must be; not FULL, so reads and writes go on meanwhile.
VACUUM (ANALYZE) messages, deliveries, attempts
