-- SQLite's own queries, over storage/queries.sql: list parameters are JSON text read
-- with json_each, and the claim's per-endpoint probes (sqlite/claimer.py).

-- name: existing_event_types
SELECT name FROM event_types WHERE name IN (SELECT value FROM json_each(:names))

-- name: enabled_endpoint_ids
SELECT id, app_id FROM endpoints WHERE disabled = 0

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
-- With their application's rate limit, which applies where theirs is not set.
SELECT e.*, a.throttle_rate AS app_throttle_rate
FROM endpoints AS e JOIN applications AS a ON a.id = e.app_id
WHERE e.id IN (SELECT value FROM json_each(:ids))

-- name: schema_initialised
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'

-- name: take_rate_slots
-- Up to :wanted send slots of one endpoint, :interval µs apart on its shared timeline, none
-- later than :reach (domain/ratelimit.py: slots_within); a first grant is computed by the
-- caller. The timeline moves past what was granted; the row lock of the upsert serializes
-- workers. Returns where the timeline now stands, the count granted and any slowdown.
INSERT INTO rate_slots (endpoint_id, next_slot, granted)
VALUES (:endpoint_id, :fresh_next, :fresh_granted)
ON CONFLICT (endpoint_id) DO UPDATE
SET granted = min(:wanted,
        max(0, :reach - max(rate_slots.next_slot, :now) + :interval) / :interval),
    next_slot = max(rate_slots.next_slot, :now) + :interval * min(:wanted,
        max(0, :reach - max(rate_slots.next_slot, :now) + :interval) / :interval)
RETURNING next_slot, granted, slow_rate, slowed_at
