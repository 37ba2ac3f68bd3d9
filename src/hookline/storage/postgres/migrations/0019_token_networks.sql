-- 0019: a token may carry the client networks it can be used from (docs/security.md,
-- "Address allowlists"): comma-separated CIDRs in canonical form; NULL, as every token
-- stored before this migration has, means any address.
ALTER TABLE tokens ADD COLUMN allowed_networks TEXT;
