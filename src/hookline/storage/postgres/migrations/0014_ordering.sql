-- 0014: ordered delivery (docs/delivery.md, "Ordered delivery"). A message may carry an
-- ordering key. A delivery to an endpoint that was ordered when it was written records its
-- sequence: the message's key, or '' for none; NULL (every existing row) is in no sequence.
-- A claim finds each sequence's head through deliveries_sequence (its first row per
-- sequence), and everything else through deliveries_endpoint_due, which now leaves
-- sequences' rows out: a long sequence never lengthens an unordered claim's probe, and an
-- unordered delivery is still in exactly one of the two.
ALTER TABLE messages ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
DROP INDEX deliveries_endpoint_due;
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, next_attempt_at)
    WHERE status IN (1, 3) AND ordering_key IS NULL;
CREATE INDEX deliveries_sequence ON deliveries (endpoint_id, ordering_key, msg_id)
    WHERE status IN (1, 3) AND ordering_key IS NOT NULL;
