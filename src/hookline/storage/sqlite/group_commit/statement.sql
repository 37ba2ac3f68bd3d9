-- The SQLite group commit as one statement. Positions are written {row.field} (or
-- {alias.row.field} for the element alias.value) and rendered from layout.py when the
-- package is imported: {attempt.status} becomes substr(value, 126, 1).

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
-- Each kind of row is its own JSON array, bound as its own column (NULL when the commit
-- has none): json_each parses the whole text it is given, so one document holding every
-- kind was parsed once per statement below, eleven times per commit, though most kinds
-- are empty in most commits (docs/performance.md, decision log). Messages, idempotency
-- completions and disabled endpoints are arrays read by position: SQLite finds an array
-- element faster than an object member. Deliveries,
-- attempt records and the deliveries they finish are strings with fields at fixed
-- positions, read with substr() (fixed_width.py): reading a JSON element costs about half
-- a microsecond per field and row. layout.py declares every row. What every delivery of
-- the commit shares (the time, the lease of the publishing process's worker) rides beside
-- the document, as do two BLOBs that rows point into: the payloads and idempotent
-- responses, and the attempts' URLs and response bodies, so SQLite never parses or
-- unescapes them as JSON.
CREATE TEMP VIEW IF NOT EXISTS group_commit (version, messages, pending, scheduled, leased,
                                             ordered, completions, attempts, finished,
                                             disabled, fallbacks, stood_in, rollups, payloads,
                                             texts, now, lease_token, lease_until, worker_id)
AS SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
          NULL, NULL, NULL, NULL, NULL;
CREATE TEMP TRIGGER IF NOT EXISTS group_commit_write INSTEAD OF INSERT ON group_commit
BEGIN
    SELECT RAISE(ABORT, 'hookline: endpoints changed')
    WHERE NEW.version IS NOT NULL
      AND (SELECT version FROM endpoint_changes) IS NOT NEW.version;
    INSERT INTO messages (id, app_id, event_type, event_id, payload, channels, tags,
                          created_at, expires_at, deliver_at, ordering_key, trace_context)
    SELECT {message.id}, {message.app_id}, {message.event_type}, {message.event_id},
           substr(NEW.payloads, {message.payload_at}, {message.payload_size}),
           {message.channels}, {message.tags}, {message.created_at}, {message.expires_at},
           {message.deliver_at}, {message.ordering_key}, {message.trace_context}
    FROM json_each(NEW.messages);
    -- Deliveries, pending and leased to the publishing process's worker.
    INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempt_count,
                            next_attempt_at, lease_token, worker_id, updated_at)
    SELECT {delivery.id}, {delivery.app_id}, {delivery.msg_id},
           {delivery.endpoint_id}, 1, 0, NEW.now, NULL, NULL, NEW.now
    FROM json_each(NEW.pending);
    -- Deliveries of messages whose deliverAt is ahead: pending, due then.
    INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempt_count,
                            next_attempt_at, lease_token, worker_id, updated_at)
    SELECT {scheduled.id}, {scheduled.app_id}, {scheduled.msg_id},
           {scheduled.endpoint_id}, 1, 0, CAST({scheduled.due} AS INTEGER), NULL, NULL, NEW.now
    FROM json_each(NEW.scheduled);
    INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempt_count,
                            next_attempt_at, lease_token, worker_id, updated_at)
    SELECT {delivery.id}, {delivery.app_id}, {delivery.msg_id},
           {delivery.endpoint_id}, 3, 0, NEW.lease_until, NEW.lease_token, NEW.worker_id, NEW.now
    FROM json_each(NEW.leased);
    -- Deliveries in an ordered endpoint's sequence: pending (due now, or at the message's
    -- deliverAt), never handed over.
    INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempt_count,
                            next_attempt_at, lease_token, worker_id, updated_at, ordering_key)
    SELECT {ordered.id}, {ordered.app_id}, {ordered.msg_id}, {ordered.endpoint_id}, 1, 0,
           CAST({ordered.due} AS INTEGER), NULL, NULL, NEW.now, {ordered.ordering_key}
    FROM json_each(NEW.ordered);
    UPDATE idempotency_keys
    SET status = {c.completion.status},
        body = substr(NEW.payloads, {c.completion.body_at}, {c.completion.body_size})
    FROM json_each(NEW.completions) AS c
    WHERE idempotency_keys.scope = {c.completion.scope}
      AND idempotency_keys.key = {c.completion.key};
    -- url and response are texts in NEW.texts, each row holding their offset and length.
    INSERT INTO attempts (id, app_id, msg_id, endpoint_id, url, status, response_status_code,
                          response, duration_ms, trigger_type, created_at)
    SELECT {attempt.id}, {attempt.app_id}, {attempt.msg_id},
           {attempt.endpoint_id},
           CAST({attempt.url} AS TEXT),
           CAST({attempt.status} AS INTEGER), CAST({attempt.response_status_code} AS INTEGER),
           CAST({attempt.response} AS TEXT),
           CAST({attempt.duration_ms} AS INTEGER), CAST({attempt.trigger_type} AS INTEGER),
           CAST({attempt.created_at} AS INTEGER)
    FROM json_each(NEW.attempts) WHERE true
    ON CONFLICT (id) DO NOTHING;
    -- The deliveries those attempts finish (next_attempt_at is NULL for none). An outcome
    -- moves its delivery only while the lease it was attempted under holds.
    UPDATE deliveries
    SET status = u.status, attempt_count = u.attempt_count,
        next_attempt_at = u.next_attempt_at, lease_token = NULL, worker_id = NULL,
        manual = 0, updated_at = u.now
    FROM (
        SELECT {finished.id} AS id, CAST({finished.status} AS INTEGER) AS status,
               CAST({finished.attempt_count} AS INTEGER) AS attempt_count,
               CAST({finished.now} AS INTEGER) AS now,
               CAST({finished.next_attempt_at} AS INTEGER) AS next_attempt_at,
               {finished.lease_token} AS lease_token
        FROM json_each(NEW.finished)
    ) AS u
    WHERE deliveries.id = u.id AND deliveries.lease_token = u.lease_token;
    -- Moves the row version, so that an update read before the disable is refused
    -- (update_endpoint) instead of enabling the endpoint again.
    UPDATE endpoints
    SET disabled = 1, updated_at = {d.disabled.now}, version = endpoints.version + 1
    FROM json_each(NEW.disabled) AS d
    WHERE endpoints.id = {d.disabled.endpoint_id};
    -- The attempts' rollups (domain/rollups.py): one row per endpoint and minute and per
    -- endpoint and hour, added to.
    INSERT INTO endpoint_rollups (
        endpoint_id, period, start_at, app_id, attempts, success, status_3xx, status_4xx,
        status_5xx, timeout, connection, dns, tls, ssrf_blocked, other, latency_0, latency_1,
        latency_2, latency_3, latency_4, latency_5, latency_6, latency_7, latency_8, latency_9,
        latency_10, latency_11, duration_ms, payload_bytes, payloads
    )
    SELECT {r.rollup.endpoint_id}, {r.rollup.period}, {r.rollup.start_at},
           {r.rollup.app_id}, {r.rollup.attempts}, {r.rollup.success},
           {r.rollup.status_3xx}, {r.rollup.status_4xx}, {r.rollup.status_5xx},
           {r.rollup.timeout}, {r.rollup.connection}, {r.rollup.dns}, {r.rollup.tls},
           {r.rollup.ssrf_blocked}, {r.rollup.other}, {r.rollup.latency_0},
           {r.rollup.latency_1}, {r.rollup.latency_2}, {r.rollup.latency_3},
           {r.rollup.latency_4}, {r.rollup.latency_5}, {r.rollup.latency_6},
           {r.rollup.latency_7}, {r.rollup.latency_8}, {r.rollup.latency_9},
           {r.rollup.latency_10}, {r.rollup.latency_11}, {r.rollup.duration_ms},
           {r.rollup.payload_bytes}, {r.rollup.payloads}
    FROM json_each(NEW.rollups) AS r WHERE true
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
        endpoint_rollups.payloads + excluded.payloads;
    -- Fallback destinations (docs/delivery.md, storage/queries.sql insert_fallback): an
    -- exhausted delivery's stand-in, if its destination exists in the application and is
    -- enabled; and the attempts made at a destination standing in for another endpoint.
    INSERT INTO deliveries (id, app_id, msg_id, endpoint_id, status, attempt_count,
                            next_attempt_at, updated_at, fallback_for)
    SELECT {f.fallback.id}, e.app_id, {f.fallback.msg_id}, e.id, 1, 0,
           {f.fallback.now}, {f.fallback.now}, {f.fallback.fallback_for}
    FROM json_each(NEW.fallbacks) AS f
    JOIN endpoints AS e ON e.id = {f.fallback.endpoint_id}
    WHERE e.app_id = {f.fallback.app_id} AND e.disabled = 0
    ON CONFLICT (msg_id, endpoint_id) DO NOTHING;
    UPDATE attempts SET fallback_for = {s.stood_in.fallback_for}
    FROM json_each(NEW.stood_in) AS s
    WHERE attempts.id = {s.stood_in.id};
END

-- name: group_commit
INSERT INTO temp.group_commit (version, messages, pending, scheduled, leased, ordered,
                               completions, attempts, finished, disabled, fallbacks, stood_in,
                               rollups, payloads, texts, now, lease_token, lease_until,
                               worker_id)
VALUES (:version, :messages, :pending, :scheduled, :leased, :ordered, :completions, :attempts,
        :finished, :disabled, :fallbacks, :stood_in, :rollups, :payloads, :texts, :now,
        :lease_token, :lease_until, :worker_id)

-- name: endpoint_version
-- The counter every endpoint change moves (migration 0003): routes read at one version
-- hold while it has not moved.
SELECT version FROM endpoint_changes
