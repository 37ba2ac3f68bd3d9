-- 0012: fallback destinations (docs/delivery.md, "Fallback destinations"): a delivery made
-- to an endpoint's fallback, and each attempt of it, names the endpoint it stood in for.
-- NULL, as every existing row gets, is an ordinary delivery.
ALTER TABLE deliveries ADD COLUMN fallback_for TEXT;
ALTER TABLE attempts ADD COLUMN fallback_for TEXT;
