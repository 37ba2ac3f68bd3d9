-- 0014: tokens that can be listed, named, revoked and limited (docs/security.md, "Tokens and
-- capabilities"). A token keeps its capabilities (NULL: every one, as tokens stored before
-- this migration could do everything in their application), the portal session it was issued
-- for, whether it is the configured HOOKLINE_ADMIN_TOKEN (a changed setting deletes the old
-- one), and when it was last used (written at most once a minute per token and process).
-- token_hash is now a keyed hash (HMAC-SHA256, prefixed "h1:") under a random key kept in
-- server_keys; rows from before keep their plain SHA-256 until their token is next used.
ALTER TABLE tokens ADD COLUMN name TEXT;
ALTER TABLE tokens ADD COLUMN capabilities TEXT;
ALTER TABLE tokens ADD COLUMN session_id TEXT;
ALTER TABLE tokens ADD COLUMN configured INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;
CREATE INDEX tokens_app ON tokens (app_id);
CREATE TABLE server_keys (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
