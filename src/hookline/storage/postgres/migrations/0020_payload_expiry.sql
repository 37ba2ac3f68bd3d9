-- 0020: maintenance finds the payloads past their expiry through an index of the messages
-- that still hold one, a bounded batch at a time, instead of a sequential scan of the whole
-- table each minute (docs/delivery.md#retention). Building it reads the table once and
-- holds off writes to messages meanwhile; an operator may build it first with CREATE INDEX
-- CONCURRENTLY under this name, and the migration keeps it (docs/upgrading.md).
CREATE INDEX IF NOT EXISTS messages_payload_expiry ON messages (expires_at) WHERE payload IS NOT NULL;
