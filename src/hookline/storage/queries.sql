-- Named SQL that is the same in both dialects. A dialect's own queries.sql holds only
-- what differs or exists only there, and wins over a block of the same name here
-- (storage/queries.py). Parameters are :name (PostgreSQL's become $n when loaded).

-- name: insert_application
INSERT INTO applications (id, uid, name, throttle_rate, metadata, created_at, updated_at,
                          version)
VALUES (:id, :uid, :name, :throttle_rate, :metadata, :created_at, :updated_at, 1)

-- name: get_application
SELECT * FROM applications WHERE id = :key OR uid = :key ORDER BY id = :key DESC LIMIT 1

-- name: update_application
-- Only the version it was read at (optimistic concurrency): no row changed means someone
-- else wrote it first, or it is gone.
UPDATE applications
SET uid = :uid, name = :name, throttle_rate = :throttle_rate, metadata = :metadata,
    updated_at = :updated_at, version = version + 1
WHERE id = :id AND version = :version

-- name: delete_application
DELETE FROM applications WHERE id = :app_id;
DELETE FROM endpoints WHERE app_id = :app_id;
DELETE FROM messages WHERE app_id = :app_id;
DELETE FROM deliveries WHERE app_id = :app_id;
DELETE FROM attempts WHERE app_id = :app_id;
DELETE FROM tokens WHERE app_id = :app_id

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
                       event_types, channels, metadata, headers, keys, created_at, updated_at,
                       version)
VALUES (:id, :app_id, :uid, :url, :description, :throttle_rate, :disabled,
        :event_types, :channels, :metadata, :headers, :keys, :created_at, :updated_at, 1)

-- name: get_endpoint
SELECT * FROM endpoints
WHERE app_id = :app_id AND (id = :key OR uid = :key)
ORDER BY id = :key DESC LIMIT 1

-- name: update_endpoint
-- Only the version it was read at, as update_application: a PATCH that read the endpoint
-- before the worker disabled it (410 Gone) cannot write it back enabled.
UPDATE endpoints
SET uid = :uid, url = :url, description = :description, throttle_rate = :throttle_rate,
    disabled = :disabled, event_types = :event_types, channels = :channels,
    metadata = :metadata, headers = :headers, keys = :keys, updated_at = :updated_at,
    version = version + 1
WHERE id = :id AND app_id = :app_id AND version = :version

-- name: delete_endpoint
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

-- name: active_endpoints
SELECT * FROM endpoints WHERE app_id = :app_id AND disabled = 0

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

-- name: resend
UPDATE deliveries
SET status = 1, next_attempt_at = :now, manual = 1, lease_token = NULL, updated_at = :now
WHERE app_id = :app_id AND msg_id = :msg_id AND endpoint_id = :endpoint_id

-- name: recover
UPDATE deliveries
SET status = 1, next_attempt_at = :now, manual = 1, attempt_count = 0, updated_at = :now
WHERE app_id = :app_id AND endpoint_id = :endpoint_id AND status = 2
  AND msg_id IN (
      SELECT id FROM messages
      WHERE app_id = :app_id AND created_at >= :since AND created_at <= :until
  )

-- name: get_delivery
SELECT * FROM deliveries WHERE msg_id = :msg_id AND endpoint_id = :endpoint_id

-- name: get_attempt
SELECT * FROM attempts WHERE app_id = :app_id AND id = :attempt_id

-- name: insert_token
INSERT INTO tokens (id, token_hash, app_id, expires_at, created_at)
VALUES (:id, :token_hash, :app_id, :expires_at, :created_at)

-- name: find_token
SELECT * FROM tokens WHERE token_hash = :token_hash

-- name: count_admin_tokens
SELECT count(*) FROM tokens WHERE app_id IS NULL

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

-- name: idempotency_finish
UPDATE idempotency_keys SET status = :status, body = :body WHERE scope = :scope AND key = :key

-- name: idempotency_abandon
DELETE FROM idempotency_keys WHERE scope = :scope AND key = :key AND status IS NULL

-- name: purge_expired
DELETE FROM idempotency_keys WHERE created_at < :before;
UPDATE messages SET payload = NULL
WHERE expires_at IS NOT NULL AND expires_at < :now AND payload IS NOT NULL;
DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at < :now;
DELETE FROM circuits WHERE open_until < :now

-- name: register_worker
INSERT INTO workers (id, host, pid, started_at, heartbeat_at)
VALUES (:worker_id, :host, :pid, :now, :now)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = :now

-- name: renew_leases
UPDATE deliveries SET next_attempt_at = :lease_until
WHERE worker_id = :worker_id AND status = 3

-- name: unregister_worker
DELETE FROM workers WHERE id = :worker_id

-- name: release_stalled
UPDATE deliveries SET next_attempt_at = :now, lease_token = NULL, worker_id = NULL
WHERE status = 3 AND worker_id IN (SELECT id FROM workers WHERE heartbeat_at < :stalled_before);
DELETE FROM workers WHERE heartbeat_at < :stalled_before

-- name: open_circuit
-- Of two openings of one endpoint's breaker, the one that holds it longer is the newer.
INSERT INTO circuits (endpoint_id, failures, open_until, cooldown_ms)
VALUES (:endpoint_id, :failures, :open_until, :cooldown_ms)
ON CONFLICT (endpoint_id) DO UPDATE
SET failures = excluded.failures, open_until = excluded.open_until,
    cooldown_ms = excluded.cooldown_ms
WHERE circuits.open_until < excluded.open_until

-- name: close_circuit
DELETE FROM circuits WHERE endpoint_id = :endpoint_id

-- name: open_circuits
SELECT endpoint_id, failures, open_until, cooldown_ms FROM circuits WHERE open_until > :now

-- name: schema_version
SELECT coalesce(max(version), 0) FROM schema_version

-- name: ping
SELECT 1

-- name: page_applications
-- The head of a list page, as every page_* query: sql.page_sql adds WHERE, ORDER BY, LIMIT.
SELECT * FROM applications AS a

-- name: page_event_types
SELECT * FROM event_types

-- name: page_endpoints
SELECT * FROM endpoints

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
