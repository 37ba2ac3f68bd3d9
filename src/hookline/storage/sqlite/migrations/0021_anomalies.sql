-- 0021: anomalies (docs/observability.md, "Anomaly detection"): what the detector found in
-- an endpoint's or an application's traffic, open until resolved_at. subject_id is the
-- endpoint's id, or the application's for an application-wide anomaly. The partial unique
-- index keeps one open anomaly per subject and kind, so several workers judging the same
-- rollups open it once. observed and expected are in the kind's unit (a ratio, ms, or
-- attempts a minute). An application's anomalies are listed by anomalies_app.
CREATE TABLE anomalies (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    endpoint_id TEXT,
    detected_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    resolved_at INTEGER,
    observed REAL NOT NULL,
    expected REAL NOT NULL,
    basis TEXT NOT NULL
);
CREATE UNIQUE INDEX anomalies_open ON anomalies (subject_id, kind) WHERE resolved_at IS NULL;
CREATE INDEX anomalies_resolved ON anomalies (resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX anomalies_app ON anomalies (app_id, id);

-- One process of a deployment does a periodic job at a time (anomaly detection): it holds
-- the job's lease until held_until, renews it each pass, and another takes it over once it
-- runs out.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    held_until INTEGER NOT NULL
);
