-- 0006: an endpoint's and an application's delivery policy (retry schedule and maximum age,
-- circuit-breaker settings, ordering, fallback), one JSON document each
-- (domain/policy.py, docs/delivery.md). NULL, as every existing row gets, inherits the
-- server's settings.
ALTER TABLE applications ADD COLUMN policy TEXT;
ALTER TABLE endpoints ADD COLUMN policy TEXT;
