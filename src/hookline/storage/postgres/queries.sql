-- PostgreSQL's own queries, over storage/queries.sql: list parameters are arrays, a
-- batch is one statement over unnest arrays, and the claim is one statement.

-- name: existing_event_types
SELECT name FROM event_types WHERE name = ANY(:names)

-- name: insert_messages
-- A whole group commit in one statement: one array per column.
INSERT INTO messages (id, app_id, event_type, event_id, payload, channels, tags,
                      created_at, expires_at, deliver_at, ordering_key, trace_context)
SELECT * FROM unnest(:id::text[], :app_id::text[], :event_type::text[], :event_id::text[],
                     :payload::bytea[], :channels::text[], :tags::text[],
                     :created_at::bigint[], :expires_at::bigint[], :deliver_at::bigint[],
                     :ordering_key::text[], :trace_context::text[])

-- name: insert_deliveries
-- Pending rows, rows leased to the publishing process's worker (with a lease_token), and
-- pending rows in an ordered endpoint's sequence (with an ordering_key). A pending row of a
-- scheduled message (deliverAt) is due at :due, others at once.
INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempt_count,
                        next_attempt_at, lease_token, worker_id, updated_at, ordering_key)
SELECT id, app_id, msg_id, endpoint_id, CASE WHEN lease_token IS NULL THEN 1 ELSE 3 END, 0,
       coalesce(lease_until, due, written), lease_token, worker_id, written, ordering_key
FROM unnest(:id::text[], :app_id::text[], :msg_id::text[], :endpoint_id::text[],
            :lease_until::bigint[], :lease_token::text[], :worker_id::text[], :now::bigint[],
            :due::bigint[], :ordering_key::text[])
     AS u (id, app_id, msg_id, endpoint_id, lease_until, lease_token, worker_id, written, due,
           ordering_key)

-- name: claim_due
-- Fair across endpoints and across applications: each enabled endpoint that is not busy
-- offers its oldest due deliveries (at most :per_endpoint, or its entry in :caps for an
-- endpoint in :capped, through the endpoint_due index, skipping rows other workers hold).
-- Of those, each application's turn-th is its endpoints' first offers, oldest first, then
-- their second offers, and so on; the claim takes every application's first turn, then
-- every application's second, each turn oldest first. So one application's burst, over any
-- number of endpoints, takes no more of a claim than another application's single message.
-- Ordered delivery (docs/delivery.md) is the separate `heads` part: a delivery in a sequence
-- (ordering_key set, never in the endpoint_due index) is offered only while it heads its
-- sequence. The recursive scan steps from one sequence to the next through the
-- deliveries_sequence index, whose first row of each sequence is its head: one probe per
-- sequence with work, and none when there is none. A head another claim holds is skipped,
-- never exchanged for the row after it; a head changed since this statement's snapshot is
-- rechecked when it is locked. Heads take their turns with the other offers.
WITH RECURSIVE sequences AS (
    (SELECT id, endpoint_id, ordering_key, next_attempt_at FROM deliveries
     WHERE status IN (1, 3) AND ordering_key IS NOT NULL
     ORDER BY endpoint_id, ordering_key, msg_id
     LIMIT 1)
    UNION ALL
    SELECT n.id, n.endpoint_id, n.ordering_key, n.next_attempt_at FROM sequences AS s
    CROSS JOIN LATERAL (
        SELECT y.id, y.endpoint_id, y.ordering_key, y.next_attempt_at FROM deliveries AS y
        WHERE y.status IN (1, 3) AND y.ordering_key IS NOT NULL
          AND (y.endpoint_id, y.ordering_key) > (s.endpoint_id, s.ordering_key)
        ORDER BY y.endpoint_id, y.ordering_key, y.msg_id
        LIMIT 1
    ) AS n
),
heads AS (
    SELECT h.id, h.app_id, h.nth FROM (
        SELECT s.id, e.app_id, row_number() OVER (
            PARTITION BY s.endpoint_id ORDER BY s.next_attempt_at
        ) AS nth,
        coalesce((:caps::int[])[array_position(:capped::text[], e.id)], :per_endpoint) AS cap
        FROM sequences AS s JOIN endpoints AS e ON e.id = s.endpoint_id
        WHERE s.next_attempt_at <= :now AND e.disabled = 0 AND NOT e.id = ANY(:busy)
    ) AS h
    WHERE h.nth <= h.cap
)
UPDATE deliveries
SET status = 3, lease_token = :lease_token, next_attempt_at = :lease_until,
    worker_id = :worker_id
WHERE id IN (
    SELECT o.id FROM (
        SELECT c.id, c.next_attempt_at, e.app_id,
               row_number() OVER (PARTITION BY e.id ORDER BY c.next_attempt_at) AS endpoint_turn
        FROM endpoints AS e
        CROSS JOIN LATERAL (
            SELECT x.id, x.next_attempt_at FROM deliveries AS x
            WHERE x.endpoint_id = e.id AND x.status IN (1, 3) AND x.next_attempt_at <= :now
              AND x.ordering_key IS NULL
            ORDER BY x.next_attempt_at
            LIMIT coalesce((:caps::int[])[array_position(:capped::text[], e.id)], :per_endpoint)
            FOR UPDATE SKIP LOCKED
        ) AS c
        WHERE e.disabled = 0 AND NOT e.id = ANY(:busy)
        UNION ALL
        SELECT z.id, z.next_attempt_at, z.app_id, z.nth FROM (
            SELECT d.id, d.next_attempt_at, h.app_id, h.nth FROM deliveries AS d
            JOIN heads AS h ON h.id = d.id
            WHERE d.status IN (1, 3) AND d.next_attempt_at <= :now
            FOR UPDATE OF d SKIP LOCKED
        ) AS z
    ) AS o
    ORDER BY row_number() OVER (PARTITION BY o.app_id ORDER BY o.endpoint_turn, o.next_attempt_at),
             o.next_attempt_at
    LIMIT :limit
)
RETURNING id, msg_id, endpoint_id, attempt_count, manual, fallback_for

-- name: queue_health
-- As the shared query, with the step from one sequence head to the next as a LATERAL probe
-- (as claim_due's): joined on a correlated subquery, PostgreSQL hashes every delivery.
WITH RECURSIVE heads (endpoint_id, ordering_key, next_attempt_at) AS (
    (SELECT endpoint_id, ordering_key, next_attempt_at FROM deliveries
     WHERE status IN (1, 3) AND ordering_key IS NOT NULL
     ORDER BY endpoint_id, ordering_key, msg_id
     LIMIT 1)
    UNION ALL
    SELECT n.endpoint_id, n.ordering_key, n.next_attempt_at FROM heads AS h
    CROSS JOIN LATERAL (
        SELECT y.endpoint_id, y.ordering_key, y.next_attempt_at FROM deliveries AS y
        WHERE y.status IN (1, 3) AND y.ordering_key IS NOT NULL
          AND (y.endpoint_id, y.ordering_key) > (h.endpoint_id, h.ordering_key)
        ORDER BY y.endpoint_id, y.ordering_key, y.msg_id
        LIMIT 1
    ) AS n
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

-- name: messages_by_ids
SELECT * FROM messages WHERE id = ANY(:ids)

-- name: endpoints_by_ids
-- With their application's rate limit, which applies where theirs is not set.
SELECT e.*, a.throttle_rate AS app_throttle_rate
FROM endpoints AS e JOIN applications AS a ON a.id = e.app_id
WHERE e.id = ANY(:ids)

-- name: insert_attempts
-- A worker's batch of attempt records in one statement: one array per column.
INSERT INTO attempts (id, app_id, msg_id, endpoint_id, url, status, response_status_code,
                      response, duration_ms, trigger_type, created_at)
SELECT * FROM unnest(:id::text[], :app_id::text[], :msg_id::text[], :endpoint_id::text[],
                     :url::text[], :status::int[], :response_status_code::int[],
                     :response::text[], :duration_ms::int[], :trigger_type::int[],
                     :created_at::bigint[])
ON CONFLICT (id) DO NOTHING

-- name: upsert_rollups
-- A worker's batch of attempts added to their rollups (domain/rollups.py), in the
-- transaction that inserts them: one row per endpoint and minute and per endpoint and hour.
INSERT INTO endpoint_rollups (
    endpoint_id, period, start_at, app_id, attempts, success, status_3xx, status_4xx,
    status_5xx, timeout, connection, dns, tls, ssrf_blocked, other, latency_0, latency_1,
    latency_2, latency_3, latency_4, latency_5, latency_6, latency_7, latency_8, latency_9,
    latency_10, latency_11, duration_ms, payload_bytes, payloads
)
SELECT * FROM unnest(
    :endpoint_id::text[], :period::int[], :start_at::bigint[], :app_id::text[],
    :attempts::bigint[], :success::bigint[], :status_3xx::bigint[], :status_4xx::bigint[],
    :status_5xx::bigint[], :timeout::bigint[], :connection::bigint[], :dns::bigint[],
    :tls::bigint[], :ssrf_blocked::bigint[], :other::bigint[], :latency_0::bigint[],
    :latency_1::bigint[], :latency_2::bigint[], :latency_3::bigint[], :latency_4::bigint[],
    :latency_5::bigint[], :latency_6::bigint[], :latency_7::bigint[], :latency_8::bigint[],
    :latency_9::bigint[], :latency_10::bigint[], :latency_11::bigint[],
    :duration_ms::bigint[], :payload_bytes::bigint[], :payloads::bigint[]
)
ON CONFLICT (endpoint_id, period, start_at) DO UPDATE SET
    attempts = endpoint_rollups.attempts + excluded.attempts, success =
    endpoint_rollups.success + excluded.success, status_3xx = endpoint_rollups.status_3xx +
    excluded.status_3xx, status_4xx = endpoint_rollups.status_4xx + excluded.status_4xx,
    status_5xx = endpoint_rollups.status_5xx + excluded.status_5xx, timeout =
    endpoint_rollups.timeout + excluded.timeout, connection = endpoint_rollups.connection +
    excluded.connection, dns = endpoint_rollups.dns + excluded.dns, tls =
    endpoint_rollups.tls + excluded.tls, ssrf_blocked = endpoint_rollups.ssrf_blocked +
    excluded.ssrf_blocked, other = endpoint_rollups.other + excluded.other, latency_0 =
    endpoint_rollups.latency_0 + excluded.latency_0, latency_1 = endpoint_rollups.latency_1
    + excluded.latency_1, latency_2 = endpoint_rollups.latency_2 + excluded.latency_2,
    latency_3 = endpoint_rollups.latency_3 + excluded.latency_3, latency_4 =
    endpoint_rollups.latency_4 + excluded.latency_4, latency_5 = endpoint_rollups.latency_5
    + excluded.latency_5, latency_6 = endpoint_rollups.latency_6 + excluded.latency_6,
    latency_7 = endpoint_rollups.latency_7 + excluded.latency_7, latency_8 =
    endpoint_rollups.latency_8 + excluded.latency_8, latency_9 = endpoint_rollups.latency_9
    + excluded.latency_9, latency_10 = endpoint_rollups.latency_10 + excluded.latency_10,
    latency_11 = endpoint_rollups.latency_11 + excluded.latency_11, duration_ms =
    endpoint_rollups.duration_ms + excluded.duration_ms, payload_bytes =
    endpoint_rollups.payload_bytes + excluded.payload_bytes, payloads =
    endpoint_rollups.payloads + excluded.payloads

-- name: finish_deliveries
-- The same batch's deliveries, each only while its lease holds.
UPDATE deliveries AS d
SET status = u.status, attempt_count = u.attempt_count, next_attempt_at = u.next_attempt_at,
    lease_token = NULL, worker_id = NULL, manual = 0, updated_at = u.now
FROM unnest(:id::text[], :lease_token::text[], :status::int[], :attempt_count::int[],
            :next_attempt_at::bigint[], :now::bigint[])
     AS u (id, lease_token, status, attempt_count, next_attempt_at, now)
WHERE d.id = u.id AND d.lease_token = u.lease_token

-- name: insert_fallback
-- An exhausted delivery's stand-in at the endpoint's fallback destination: only if that
-- destination exists in the same application and is enabled, and has no delivery of the
-- message yet. (SQLite writes these in its group commit: group_commit/statement.sql.)
INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempt_count,
                        next_attempt_at, updated_at, fallback_for)
SELECT :id, e.app_id, :msg_id, e.id, 1, 0, CAST(:now AS BIGINT), CAST(:now AS BIGINT),
       :fallback_for
FROM endpoints AS e
WHERE e.id = :endpoint_id AND e.app_id = :app_id AND e.disabled = 0
ON CONFLICT (msg_id, endpoint_id) DO NOTHING

-- name: mark_stood_in
UPDATE attempts SET fallback_for = :fallback_for WHERE id = :id

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

-- name: renew_leases
-- Only the leases the worker still works on: a lease it took in a claim whose outcome it
-- never learned (the connection dropped at the commit) must run out, not be renewed.
UPDATE deliveries SET next_attempt_at = :lease_until
WHERE worker_id = :worker_id AND status = 3 AND lease_token = ANY(:tokens)

-- name: release_leases
-- Leases taken by a claim or a hand-over whose outcome the worker never learned: the rows
-- may be leased to it, but it does not know them, so they go back to the queue now.
UPDATE deliveries SET next_attempt_at = :now, lease_token = NULL, worker_id = NULL
WHERE worker_id = :worker_id AND status = 3 AND lease_token = ANY(:tokens)

-- name: endpoint_states
SELECT id, version, disabled FROM endpoints WHERE id = ANY(:ids)

-- name: mark_endpoints_failing
-- The first failure after a success starts a failing period; later ones leave it.
INSERT INTO endpoint_failures (endpoint_id, failing_since, step)
SELECT unnest(:ids::text[]), :since, 0
ON CONFLICT (endpoint_id) DO NOTHING

-- name: mark_endpoints_healthy
-- A success ends the failing period (and whatever warnings it had); the periods it ended,
-- each returned to the one writer that ended it (automatic recovery starts from them).
DELETE FROM endpoint_failures WHERE endpoint_id = ANY(:ids)
RETURNING endpoint_id, failing_since

-- name: task_checkpoint
-- One batch of a background task, in one transaction: the task's row moves first (and stays
-- locked until the commit, so a cancel waits for it), and only while this runner still holds
-- it at the cursor it read from, and the writes that follow happen only if it moved.
UPDATE background_tasks
SET cursor = :new_cursor, scanned = scanned + :scanned, queued = queued + :queued,
    status = :status, lease_until = :lease_until, updated_at = :now
WHERE id = :task_id AND lease_token = :lease_token AND status = 'running'
  AND cursor = :old_cursor;
UPDATE deliveries
SET status = 1, next_attempt_at = :now, manual = 1, attempt_count = 0, lease_token = NULL,
    worker_id = NULL, updated_at = :now
WHERE id = ANY(:requeue::text[]) AND app_id = :app_id
  AND (status IN (0, 2) OR (status = 1 AND next_attempt_at IS NULL))
  AND EXISTS (SELECT 1 FROM background_tasks
              WHERE id = :task_id AND lease_token = :lease_token AND cursor = :new_cursor);
INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempt_count,
                        next_attempt_at, manual, updated_at)
SELECT u.id, CAST(:app_id AS TEXT), u.msg_id, CAST(:endpoint_id AS TEXT), 1, 0,
       CAST(:now AS BIGINT), 1, CAST(:now AS BIGINT)
FROM unnest(:new_ids::text[], :new_msgs::text[]) AS u (id, msg_id)
WHERE EXISTS (SELECT 1 FROM messages WHERE id = u.msg_id AND app_id = CAST(:app_id AS TEXT))
  AND EXISTS (SELECT 1 FROM background_tasks
              WHERE id = :task_id AND lease_token = :lease_token AND cursor = :new_cursor)
ON CONFLICT (msg_id, endpoint_id) DO NOTHING;
UPDATE messages SET payload = NULL
WHERE id = ANY(:expunge::text[]) AND app_id = :app_id
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
SET granted = LEAST(:wanted,
        GREATEST(0, :reach - GREATEST(rate_slots.next_slot, :now) + :interval) / :interval),
    next_slot = GREATEST(rate_slots.next_slot, :now) + :interval * LEAST(:wanted,
        GREATEST(0, :reach - GREATEST(rate_slots.next_slot, :now) + :interval) / :interval)
RETURNING next_slot, granted, slow_rate, slowed_at

-- name: circuits_by_ids
SELECT * FROM circuits WHERE endpoint_id = ANY(:ids)

-- name: lock_pruning
-- Pruners in several processes take turns, one batch each, until the transaction ends:
-- two deleting overlapping rows at once could deadlock.
SELECT pg_advisory_xact_lock(:key)

-- name: prune_scan
-- Retention, as storage/queries.sql's prune_scan, with the held test written as one range
-- of deliveries' (msg_id, endpoint_id) key over the scanned ids (one index descent, found
-- whatever the planner knows of the table): as a correlated EXISTS, a planner that thought
-- deliveries small hashed the whole table's pending rows for every batch.
WITH scanned AS (
    SELECT id, created_at FROM messages
    WHERE id > :after_id AND id < :before_id
    ORDER BY id
    LIMIT :limit
), held AS (
    SELECT DISTINCT d.msg_id FROM deliveries AS d
    WHERE d.msg_id >= (SELECT min(id) FROM scanned) AND d.msg_id <= (SELECT max(id) FROM scanned)
      AND d.status IN (1, 3)
)
SELECT s.id, s.created_at < :before AS expired, h.msg_id IS NOT NULL AS held
FROM scanned AS s LEFT JOIN held AS h ON h.msg_id = s.id
ORDER BY s.id

-- name: prune_deliveries
-- The finished deliveries (0 success, 2 fail) of the scanned range [:first_id, :last_id]
-- but those of the messages it keeps: a range of the (msg_id, endpoint_id) key, which the
-- planner estimates as the small share of the table it is, so the plan is an index range
-- scan (a list of 250 ids, estimated without statistics, reads as most of the table, and a
-- range from the start of the table as all it held before the last passes: both were
-- planned as sequential scans).
DELETE FROM deliveries
WHERE msg_id >= :first_id AND msg_id <= :last_id AND msg_id <> ALL(:kept) AND status IN (0, 2)

-- name: prune_messages
-- Only messages left without deliveries (one sent again since the scan stays), and created
-- before the horizon (:before) even if one was written into the range since the scan.
DELETE FROM messages AS m
WHERE m.id >= :first_id AND m.id <= :last_id AND m.id <> ALL(:kept) AND m.created_at < :before
  AND NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.msg_id = m.id)
RETURNING m.id

-- name: prune_attempts
-- The attempts of the range's messages that are gone: all but those of the messages kept.
DELETE FROM attempts WHERE msg_id >= :first_id AND msg_id <= :last_id AND msg_id <> ALL(:kept)

-- name: prunable_deliveries
SELECT count(*) FROM deliveries WHERE msg_id = ANY(:ids)

-- name: prunable_attempts
SELECT count(*) FROM attempts WHERE msg_id = ANY(:ids)

-- name: vacuum_retained
-- What autovacuum does after pruning, by hand (hookline prune --vacuum): one statement,
-- outside a transaction as VACUUM must be; not FULL, so reads and writes go on meanwhile.
VACUUM (ANALYZE) messages, deliveries, attempts

-- name: forget_replaced_secrets
-- After hookline rekey: reclaim the dead row versions that held the replaced text (outside
-- a transaction, as VACUUM must run; not FULL, so reads and writes go on).
VACUUM endpoints

-- name: rollup_points
-- Anomaly detection's baselines (domain/anomaly.py): some endpoints' rows of one period that
-- start at any of the given starts; each (endpoint, start) is a probe of the primary key.
SELECT r.endpoint_id, r.app_id, r.start_at, r.attempts, r.success, r.latency_0,
       r.latency_1, r.latency_2, r.latency_3, r.latency_4, r.latency_5, r.latency_6,
       r.latency_7, r.latency_8, r.latency_9, r.latency_10, r.latency_11
FROM endpoint_rollups AS r
WHERE r.endpoint_id = ANY(:endpoint_ids) AND r.period = :period
  AND r.start_at = ANY(:starts)

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
WHERE r.endpoint_id = ANY(:endpoint_ids) AND r.period = :period
  AND r.start_at >= :start AND r.start_at < :end
GROUP BY r.endpoint_id

-- name: search_probe
-- At most :probe messages whose payload holds the words {match} asks for (a tsquery),
-- through the messages_words index (domain/search.py; storage/search.py picks the plan by it).
SELECT m.id AS msg_id FROM messages AS m
WHERE m.payload IS NOT NULL AND hookline_payload_words(m.payload) @@ ({match}) LIMIT :probe

-- name: search_words_in_window
-- The many-matches plan's words, asked of one window of messages (storage/search.py).
(m.payload IS NOT NULL AND hookline_payload_words(m.payload) @@ ({match}))

-- name: search_window
-- The next :size messages holding a payload below :high (at :high too when :inclusive),
-- newest first: how many and the oldest of them (doc_low, doc_high: SQLite's only).
SELECT count(*) AS found, min(id) AS low, 0 AS doc_low, 0 AS doc_high
FROM (SELECT id FROM messages
      WHERE payload IS NOT NULL AND (id < :high OR (:inclusive = 1 AND id = :high))
      ORDER BY id DESC LIMIT :size) AS w

-- name: search_text_holds
strpos(lower(convert_from(m.payload, 'UTF8')), :{word}) > 0

-- name: search_path_is
-- A payload with an escaped NUL (\u0000) anywhere cannot be read as json text: no match.
(CASE WHEN strpos(convert_from(m.payload, 'UTF8'), '\u0000') = 0
      THEN convert_from(m.payload, 'UTF8')::json #>> :{path} END) = :{value}

-- name: search_latest_attempts
SELECT a.msg_id, a.endpoint_id, a.response_status_code FROM attempts AS a
WHERE a.msg_id = ANY(:ids) ORDER BY a.id
