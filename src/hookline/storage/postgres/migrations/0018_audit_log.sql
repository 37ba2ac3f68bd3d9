-- 0018: the audit log (docs/security.md, "Audit log"): every change made through the API or
-- the CLI, append-only. No foreign key: the entries about an application outlive it. The
-- store has no statement that changes an entry; retention removes the oldest.
CREATE TABLE audit_log (
    id TEXT COLLATE "C" PRIMARY KEY,
    created_at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    actor_app_id TEXT COLLATE "C",
    address TEXT,
    action TEXT NOT NULL,
    app_id TEXT COLLATE "C",
    target_id TEXT COLLATE "C",
    summary TEXT NOT NULL
);
CREATE INDEX audit_log_app ON audit_log (app_id, id);
CREATE INDEX audit_log_created ON audit_log (created_at);
