-- 0011: what the API shows of an open circuit, and the one half-open probe shared by every
-- worker (docs/delivery.md, "Endpoints that are down"): when the episode began, the failure
-- ratio and the rule that opened it, and the probe lease of the worker whose probe is out.
ALTER TABLE circuits ADD COLUMN opened_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE circuits ADD COLUMN failure_ratio REAL;
ALTER TABLE circuits ADD COLUMN reason TEXT NOT NULL DEFAULT 'consecutiveFailures';
ALTER TABLE circuits ADD COLUMN probe_until INTEGER;
ALTER TABLE circuits ADD COLUMN probe_owner TEXT;
