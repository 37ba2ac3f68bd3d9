-- 0025: failure groups (docs/console.md, "Failure groups"): failed attempts grouped by
-- (endpoint, outcome class, status code), kept by a background pass over the attempt log.
-- failure_groups_key holds one row per key: a failure after a resolve reopens that row.
-- failure_groups_status lists one status newest first (the console's open groups);
-- failure_groups_quiet finds the unresolved groups that may resolve on their own,
-- failure_groups_resolved the ones retention removes. scan_cursors holds where a periodic
-- pass over the attempt log ended (advanced by compare-and-set, so two passes never both
-- count one range).
CREATE TABLE failure_groups (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT COLLATE "C" NOT NULL,
    outcome TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    status TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    opened_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    sample TEXT NOT NULL,
    acknowledged_at BIGINT,
    resolved_at BIGINT,
    resolved_by TEXT,
    reopened INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX failure_groups_key ON failure_groups (endpoint_id, outcome, status_code);
CREATE INDEX failure_groups_app ON failure_groups (app_id, id);
CREATE INDEX failure_groups_status ON failure_groups (status, id);
CREATE INDEX failure_groups_quiet ON failure_groups (last_seen_at, id)
    WHERE resolved_at IS NULL;
CREATE INDEX failure_groups_resolved ON failure_groups (resolved_at)
    WHERE resolved_at IS NOT NULL;

CREATE TABLE scan_cursors (
    name TEXT COLLATE "C" PRIMARY KEY,
    scanned_until BIGINT NOT NULL
);
