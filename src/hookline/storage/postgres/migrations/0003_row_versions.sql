-- 0003: a version on every row a request can change (applications, event types, endpoints).
-- An update writes a row only while it is still at the version it was read at, and moves it
-- by one, as does every other writer of the row (the worker disabling an endpoint on 410):
-- two requests, or a request and the worker, can no longer overwrite each other's change.
-- Existing rows start at 1; adding a column with a constant default rewrites no row
-- (PostgreSQL 11 and later).
ALTER TABLE applications ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE event_types ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE endpoints ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
