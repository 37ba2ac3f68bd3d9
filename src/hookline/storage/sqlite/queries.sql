-- SQLite's own queries, over storage/queries.sql: list parameters are JSON text read
-- with json_each, and the claim's per-endpoint probes (sqlite/claimer.py).

-- name: existing_event_types
SELECT name FROM event_types WHERE name IN (SELECT value FROM json_each(:names))

-- name: enabled_endpoint_ids
SELECT id FROM endpoints WHERE disabled = 0

-- name: due_of_endpoint
-- Deliveries in no sequence; an ordered endpoint's are offered by next_sequence_head.
SELECT id, next_attempt_at FROM deliveries
WHERE endpoint_id = :endpoint_id AND status IN (1, 3) AND next_attempt_at <= :now
  AND ordering_key IS NULL
ORDER BY next_attempt_at
LIMIT :per_endpoint

-- name: next_sequence_head
-- Ordered delivery: the head of the first sequence (endpoint and ordering key) after the
-- given one, its first pending or sending row in deliveries_sequence. Stepping from one to
-- the next costs one index probe per sequence with work.
SELECT id, endpoint_id, ordering_key, next_attempt_at FROM deliveries
WHERE status IN (1, 3) AND ordering_key IS NOT NULL
  AND (endpoint_id, ordering_key) > (:endpoint_id, :ordering_key)
ORDER BY endpoint_id, ordering_key, msg_id
LIMIT 1

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
