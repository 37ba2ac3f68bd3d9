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

-- name: existing_event_types
SELECT name FROM event_types WHERE name IN (SELECT value FROM json_each(:names))

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

-- name: enabled_endpoint_ids
SELECT id FROM endpoints WHERE disabled = 0

-- name: due_of_endpoint
SELECT id, next_attempt_at FROM deliveries
WHERE endpoint_id = :endpoint_id AND status IN (1, 3) AND next_attempt_at <= :now
ORDER BY next_attempt_at
LIMIT :per_endpoint

-- name: lease_ids
UPDATE deliveries
SET status = 3, lease_token = :lease_token, next_attempt_at = :lease_until,
    worker_id = :worker_id
WHERE id IN (SELECT value FROM json_each(:ids))
RETURNING id, msg_id, endpoint_id, attempt_count, manual

-- name: messages_by_ids
SELECT * FROM messages WHERE id IN (SELECT value FROM json_each(:ids))

-- name: endpoints_by_ids
SELECT * FROM endpoints WHERE id IN (SELECT value FROM json_each(:ids))

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

-- name: idempotency_insert
INSERT INTO idempotency_keys (scope, key, request_hash, created_at)
VALUES (:scope, :key, :request_hash, :now)
ON CONFLICT (scope, key) DO NOTHING

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

-- name: idempotency_takeover
UPDATE idempotency_keys SET request_hash = :request_hash, created_at = :now
WHERE scope = :scope AND key = :key AND status IS NULL AND created_at < :stale_before

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

-- name: endpoint_version
SELECT version FROM endpoint_changes

-- name: create_group_commit
-- A group commit as one statement: an INSERT of one JSON document into this view, whose
-- trigger writes the messages, their deliveries and idempotency results, and the attempt
-- records that queued meanwhile. A statement step hands the GIL to the event loop and waits
-- to get it back; one step per commit, instead of one per table, keeps the write lock short.
-- Outside an explicit transaction the statement commits itself. When the document carries
-- the endpoint version its routing was read at, and the version has moved since, nothing
-- is written and the publish routes again under the lock. TEMP: it belongs to the
-- connection, not to the schema.
--
-- Messages and idempotency completions are JSON arrays read by position (each statement
-- names the order; store.py builds them): SQLite finds an array element faster than an
-- object member. Deliveries, attempt records and the deliveries they finish are strings
-- with fields at fixed positions, read with substr() (storage/sqlite/fixed_width.py, whose
-- layouts these statements repeat): reading a JSON element costs about half a microsecond
-- per field and row. What every delivery of the commit shares (the time, the lease of the
-- publishing process's worker) rides beside the document, as do two BLOBs that rows point
-- into: the payloads and idempotent responses, and the attempts' URLs and response bodies,
-- so SQLite never parses or unescapes them as JSON.
CREATE TEMP VIEW IF NOT EXISTS group_commit (doc, payloads, texts, now, lease_token,
                                             lease_until, worker_id)
AS SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL;
CREATE TEMP TRIGGER IF NOT EXISTS group_commit_write INSTEAD OF INSERT ON group_commit
BEGIN
    SELECT RAISE(ABORT, 'hookline: endpoints changed')
    WHERE NEW.doc ->> '$.version' IS NOT NULL
      AND (SELECT version FROM endpoint_changes) IS NOT NEW.doc ->> '$.version';
    -- [id, app_id, event_type, event_id, payload_at, payload_size, channels, tags,
    --  created_at, expires_at]
    INSERT INTO messages (id, app_id, event_type, event_id, payload, channels, tags,
                          created_at, expires_at)
    SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3,
           substr(NEW.payloads, value ->> 4, value ->> 5),
           value ->> 6, value ->> 7, value ->> 8, value ->> 9
    FROM json_each(NEW.doc, '$.messages');
    -- Deliveries, pending and leased to the publishing process's worker:
    -- id 1-31, app_id 32-62, msg_id 63-93, endpoint_id from 94.
    INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempt_count,
                            next_attempt_at, lease_token, worker_id, updated_at)
    SELECT substr(value, 1, 31), substr(value, 32, 31), substr(value, 63, 31),
           substr(value, 94), 1, 0, NEW.now, NULL, NULL, NEW.now
    FROM json_each(NEW.doc, '$.pending');
    INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempt_count,
                            next_attempt_at, lease_token, worker_id, updated_at)
    SELECT substr(value, 1, 31), substr(value, 32, 31), substr(value, 63, 31),
           substr(value, 94), 3, 0, NEW.lease_until, NEW.lease_token, NEW.worker_id, NEW.now
    FROM json_each(NEW.doc, '$.leased');
    -- [scope, key, status, body_at, body_size]
    UPDATE idempotency_keys
    SET status = c.value ->> 2, body = substr(NEW.payloads, c.value ->> 3, c.value ->> 4)
    FROM json_each(NEW.doc, '$.completions') AS c
    WHERE idempotency_keys.scope = c.value ->> 0 AND idempotency_keys.key = c.value ->> 1;
    -- Attempts: id 1-33, app_id 34-64, msg_id 65-95, endpoint_id 96-125, status 126,
    -- response_status_code 127-129, trigger_type 130, created_at 131-143, duration_ms
    -- 144-153, url 154-173 and response 174-193 (offset and length in texts, 10 digits each).
    INSERT INTO attempts (id, app_id, msg_id, endpoint_id, url, status, response_status_code,
                          response, duration_ms, trigger_type, created_at)
    SELECT substr(value, 1, 33), substr(value, 34, 31), substr(value, 65, 31),
           substr(value, 96, 30),
           CAST(substr(NEW.texts, substr(value, 154, 10), substr(value, 164, 10)) AS TEXT),
           CAST(substr(value, 126, 1) AS INTEGER), CAST(substr(value, 127, 3) AS INTEGER),
           CAST(substr(NEW.texts, substr(value, 174, 10), substr(value, 184, 10)) AS TEXT),
           CAST(substr(value, 144, 10) AS INTEGER), CAST(substr(value, 130, 1) AS INTEGER),
           CAST(substr(value, 131, 13) AS INTEGER)
    FROM json_each(NEW.doc, '$.attempts') WHERE true
    ON CONFLICT (id) DO NOTHING;
    -- The deliveries those attempts finish: id 1-31, status 32, attempt_count 33-42, now
    -- 43-55, next_attempt_at 56-68 (zeros for none), lease_token from 69. An outcome moves
    -- its delivery only while the lease it was attempted under holds.
    UPDATE deliveries
    SET status = u.status, attempt_count = u.attempt_count,
        next_attempt_at = u.next_attempt_at, lease_token = NULL, worker_id = NULL,
        manual = 0, updated_at = u.now
    FROM (
        SELECT substr(value, 1, 31) AS id, CAST(substr(value, 32, 1) AS INTEGER) AS status,
               CAST(substr(value, 33, 10) AS INTEGER) AS attempt_count,
               CAST(substr(value, 43, 13) AS INTEGER) AS now,
               CAST(nullif(substr(value, 56, 13), '0000000000000') AS INTEGER)
                   AS next_attempt_at,
               substr(value, 69) AS lease_token
        FROM json_each(NEW.doc, '$.finished')
    ) AS u
    WHERE deliveries.id = u.id AND deliveries.lease_token = u.lease_token;
    -- [endpoint_id, now]. Moves the version, so that an update read before it is refused
    -- (update_endpoint).
    UPDATE endpoints
    SET disabled = 1, updated_at = d.value ->> 1, version = endpoints.version + 1
    FROM json_each(NEW.doc, '$.disabled') AS d
    WHERE endpoints.id = d.value ->> 0;
END

-- name: group_commit
INSERT INTO temp.group_commit (doc, payloads, texts, now, lease_token, lease_until, worker_id)
VALUES (:doc, :payloads, :texts, :now, :lease_token, :lease_until, :worker_id)

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
