-- SQLite's own queries, over storage/queries.sql: list parameters are JSON text read
-- with json_each, and the claim's per-endpoint probes (sqlite/claimer.py).

-- name: existing_event_types
SELECT name FROM event_types WHERE name IN (SELECT value FROM json_each(:names))

-- name: enabled_endpoint_ids
SELECT id, app_id FROM endpoints WHERE disabled = 0

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
RETURNING id, msg_id, endpoint_id, attempt_count, manual, fallback_for

-- name: messages_by_ids
SELECT * FROM messages WHERE id IN (SELECT value FROM json_each(:ids))

-- name: endpoints_by_ids
-- With their application's rate limit, which applies where theirs is not set.
SELECT e.*, a.throttle_rate AS app_throttle_rate
FROM endpoints AS e JOIN applications AS a ON a.id = e.app_id
WHERE e.id IN (SELECT value FROM json_each(:ids))

-- name: schema_initialised
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'

-- name: renew_leases
-- Only the leases the worker still works on: a lease it took in a claim whose outcome it
-- never learned (the connection dropped at the commit) must run out, not be renewed.
UPDATE deliveries SET next_attempt_at = :lease_until
WHERE worker_id = :worker_id AND status = 3 AND lease_token IN (SELECT value FROM json_each(:tokens))

-- name: release_leases
-- Leases taken by a claim or a hand-over whose outcome the worker never learned: the rows
-- may be leased to it, but it does not know them, so they go back to the queue now.
UPDATE deliveries SET next_attempt_at = :now, lease_token = NULL, worker_id = NULL
WHERE worker_id = :worker_id AND status = 3 AND lease_token IN (SELECT value FROM json_each(:tokens))

-- name: endpoint_states
SELECT id, version, disabled FROM endpoints WHERE id IN (SELECT value FROM json_each(:ids))

-- name: mark_endpoints_failing
-- The first failure after a success starts a failing period; later ones leave it.
INSERT INTO endpoint_failures (endpoint_id, failing_since, step)
SELECT value, :since, 0 FROM json_each(:ids) WHERE true
ON CONFLICT (endpoint_id) DO NOTHING

-- name: mark_endpoints_healthy
-- A success ends the failing period (and whatever warnings it had); the periods it ended,
-- each returned to the one writer that ended it (automatic recovery starts from them).
DELETE FROM endpoint_failures WHERE endpoint_id IN (SELECT value FROM json_each(:ids))
RETURNING endpoint_id, failing_since

-- name: task_checkpoint
-- One batch of a background task, in one transaction: the task's row moves first, and only
-- while this runner still holds it at the cursor it read from (not canceled, not taken over
-- after its lease ran out), and the writes that follow happen only if it moved.
UPDATE background_tasks
SET cursor = :new_cursor, scanned = scanned + :scanned, queued = queued + :queued,
    status = :status, lease_until = :lease_until, updated_at = :now
WHERE id = :task_id AND lease_token = :lease_token AND status = 'running'
  AND cursor = :old_cursor;
UPDATE deliveries
SET status = 1, next_attempt_at = :now, manual = 1, attempt_count = 0, lease_token = NULL,
    worker_id = NULL, updated_at = :now
WHERE id IN (SELECT value FROM json_each(:requeue)) AND app_id = :app_id
  AND (status IN (0, 2) OR (status = 1 AND next_attempt_at IS NULL))
  AND EXISTS (SELECT 1 FROM background_tasks
              WHERE id = :task_id AND lease_token = :lease_token AND cursor = :new_cursor);
INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempt_count,
                        next_attempt_at, manual, updated_at)
SELECT d.value, :app_id, m.value, :endpoint_id, 1, 0, :now, 1, :now
FROM json_each(:new_ids) AS d JOIN json_each(:new_msgs) AS m ON m.key = d.key
WHERE EXISTS (SELECT 1 FROM messages WHERE id = m.value AND app_id = :app_id)
  AND EXISTS (SELECT 1 FROM background_tasks
              WHERE id = :task_id AND lease_token = :lease_token AND cursor = :new_cursor)
ON CONFLICT (msg_id, endpoint_id) DO NOTHING;
UPDATE messages SET payload = NULL
WHERE id IN (SELECT value FROM json_each(:expunge)) AND app_id = :app_id
  AND EXISTS (SELECT 1 FROM background_tasks
              WHERE id = :task_id AND lease_token = :lease_token AND cursor = :new_cursor)

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

-- name: circuits_by_ids
SELECT * FROM circuits WHERE endpoint_id IN (SELECT value FROM json_each(:ids))

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
-- First merges the payload word index into one segment: FTS5 keeps a deleted row's words
-- in older segments, under a delete marker, until a merge: an expunged payload's words
-- leave the file here (docs/search.md).
INSERT INTO message_search (message_search) VALUES ('optimize');
PRAGMA auto_vacuum = INCREMENTAL;
VACUUM

-- name: forget_replaced_secrets
-- After hookline rekey: secure_delete zeroed the replaced cells in the pages, and this moves
-- every page into the file and truncates the WAL, where the old page images still were.
PRAGMA wal_checkpoint(TRUNCATE)

-- name: rollup_points
-- Anomaly detection's baselines (domain/anomaly.py): some endpoints' rows of one period that
-- start at any of the given starts; each (endpoint, start) is a probe of the primary key.
SELECT r.endpoint_id, r.app_id, r.start_at, r.attempts, r.success, r.latency_0,
       r.latency_1, r.latency_2, r.latency_3, r.latency_4, r.latency_5, r.latency_6,
       r.latency_7, r.latency_8, r.latency_9, r.latency_10, r.latency_11
FROM endpoint_rollups AS r
WHERE r.endpoint_id IN (SELECT value FROM json_each(:endpoint_ids)) AND r.period = :period
  AND r.start_at IN (SELECT value FROM json_each(:starts))

-- name: rollup_totals
-- Anomaly detection's window: some endpoints' rows of one period in [start, end), added up
-- per endpoint in the database (a range of the primary key per endpoint).
SELECT r.endpoint_id, sum(r.attempts) AS attempts, sum(r.success) AS success, sum(r.latency_0) AS
       latency_0, sum(r.latency_1) AS latency_1, sum(r.latency_2) AS latency_2,
       sum(r.latency_3) AS latency_3, sum(r.latency_4) AS latency_4, sum(r.latency_5) AS
       latency_5, sum(r.latency_6) AS latency_6, sum(r.latency_7) AS latency_7,
       sum(r.latency_8) AS latency_8, sum(r.latency_9) AS latency_9, sum(r.latency_10) AS
       latency_10, sum(r.latency_11) AS latency_11
FROM endpoint_rollups AS r
WHERE r.endpoint_id IN (SELECT value FROM json_each(:endpoint_ids)) AND r.period = :period
  AND r.start_at >= :start AND r.start_at < :end
GROUP BY r.endpoint_id

-- name: search_probe
-- At most :probe messages whose payload holds the words {match} asks for (an FTS5 query),
-- streamed from the index (domain/search.py; storage/search.py picks the plan by it).
SELECT s.msg_id FROM message_search JOIN message_search_docs AS s ON s.doc = message_search.rowid
WHERE message_search MATCH {match} LIMIT :probe

-- name: search_text_holds
-- Read through the delivery, not the joined m (storage/search.py, _OF_MESSAGE).
(SELECT instr(lower(CAST(mm.payload AS TEXT)), :{word}) FROM messages AS mm
 WHERE mm.id = d.msg_id) > 0

-- name: search_path_is
(SELECT CAST(json_extract(CAST(mm.payload AS TEXT), :{path}) AS TEXT) FROM messages AS mm
 WHERE mm.id = d.msg_id) = :{value}

-- name: search_latest_attempts
SELECT a.msg_id, a.endpoint_id, a.response_status_code FROM attempts AS a
WHERE a.msg_id IN (SELECT value FROM json_each(:ids)) ORDER BY a.id

-- name: merge_search_index
-- Some merge work on the payload word index (a negative rank: pages of work, started even
-- with few segments), which drops the words of deleted messages (SqlitePruner._reclaim).
INSERT INTO message_search (message_search, rank) VALUES ('merge', :pages)

-- name: search_words_in_window
-- The many-matches plan's words (storage/search.py, Window): one MATCH over the window's
-- range of the index instead of a probe per message.
d.msg_id IN (SELECT s.msg_id FROM message_search
             JOIN message_search_docs AS s ON s.doc = message_search.rowid
             WHERE message_search MATCH {match}
               AND message_search.rowid BETWEEN :doc_low AND :doc_high)

-- name: search_window
-- The next :size messages below :high (at :high too when :inclusive), newest first: the
-- oldest of them and the range of their keys in the word index.
SELECT count(*) AS found, min(msg_id) AS low, min(doc) AS doc_low, max(doc) AS doc_high
FROM (SELECT msg_id, doc FROM message_search_docs
      WHERE msg_id < :high OR (:inclusive = 1 AND msg_id = :high)
      ORDER BY msg_id DESC LIMIT :size)
