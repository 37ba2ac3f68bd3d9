-- 0007: ordered delivery (docs/delivery.md, "Ordered delivery"). A message may carry an
-- ordering key. A delivery to an endpoint that was ordered when it was written records its
-- sequence: the message's key, or '' for none; NULL (every existing row) is in no sequence.
-- deliveries_sequence holds the pending and sending deliveries of sequences only, so that a
-- claim can tell whether an earlier one of the same endpoint and key is still waiting, and
-- an unordered endpoint's deliveries cost it nothing.
ALTER TABLE messages ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
CREATE INDEX deliveries_sequence ON deliveries (endpoint_id, ordering_key, msg_id)
    WHERE status IN (1, 3) AND ordering_key IS NOT NULL;
