-- 0018: maintenance finds the payloads past their expiry through an index of the messages
-- that still hold one, a bounded batch at a time, instead of reading the whole table each
-- minute under the write lock (docs/delivery.md#retention). Building it reads the table
-- once, in the upgrade's transaction.
CREATE INDEX messages_payload_expiry ON messages (expires_at) WHERE payload IS NOT NULL;
