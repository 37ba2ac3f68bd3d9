-- SQLite's own queries, over storage/queries.sql: list parameters are JSON text read
-- with json_each, and the claim's per-endpoint probes (sqlite/claimer.py).

-- name: existing_event_types
SELECT name FROM event_types WHERE name IN (SELECT value FROM json_each(:names))

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

-- name: schema_initialised
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'

-- name: prune_deliveries
-- Retention: the finished deliveries (0 success, 2 fail) of messages the scan found
-- removable, by their (msg_id, endpoint_id) key.
DELETE FROM deliveries WHERE msg_id IN (SELECT value FROM json_each(:ids)) AND status IN (0, 2)

-- name: prune_messages
-- Only messages left without deliveries: one sent again since the scan stays.
DELETE FROM messages
WHERE id IN (SELECT value FROM json_each(:ids))
  AND NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.msg_id = messages.id)
RETURNING id

-- name: prune_attempts
DELETE FROM attempts WHERE msg_id IN (SELECT value FROM json_each(:ids))

-- name: prunable_deliveries
SELECT count(*) FROM deliveries WHERE msg_id IN (SELECT value FROM json_each(:ids))

-- name: prunable_attempts
SELECT count(*) FROM attempts WHERE msg_id IN (SELECT value FROM json_each(:ids))

-- name: free_pages
PRAGMA freelist_count

-- name: incremental_vacuum
-- PRAGMA arguments cannot be bound: {pages} is an int formatted in by sqlite/pruner.py.
PRAGMA incremental_vacuum({pages})

-- name: page_count
PRAGMA page_count

-- name: auto_vacuum
PRAGMA auto_vacuum

-- name: compact
-- Rebuilds the file, and with it switches an older database to incremental auto-vacuum.
PRAGMA auto_vacuum = INCREMENTAL;
VACUUM
