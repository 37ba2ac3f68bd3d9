-- SQLite's own queries, over storage/queries.sql: list parameters are JSON text read
-- with json_each, and the claim's per-endpoint probes (sqlite/claimer.py).

-- name: existing_event_types
SELECT name FROM event_types WHERE name IN (SELECT value FROM json_each(:names))

-- name: enabled_endpoint_ids
SELECT id FROM endpoints WHERE disabled = 0

-- name: due_of_endpoint
-- Ordered delivery: a delivery in a sequence (ordering_key set) is offered only while it
-- heads it, no delivery of an earlier message in its sequence being pending or sending
-- (deliveries_sequence).
SELECT x.id, x.next_attempt_at FROM deliveries AS x
WHERE x.endpoint_id = :endpoint_id AND x.status IN (1, 3) AND x.next_attempt_at <= :now
  AND (x.ordering_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM deliveries AS y
      WHERE y.endpoint_id = x.endpoint_id AND y.ordering_key = x.ordering_key
        AND y.status IN (1, 3) AND y.msg_id < x.msg_id
  ))
ORDER BY x.next_attempt_at
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
