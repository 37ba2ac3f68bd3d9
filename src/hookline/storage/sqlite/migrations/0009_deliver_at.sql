-- 0009: a message's deliverAt (Svix MessageIn.deliverAt), in milliseconds; NULL for a
-- message delivered at once. Its deliveries are written pending with this due time
-- (docs/delivery.md, "Scheduling and retry policy").
ALTER TABLE messages ADD COLUMN deliver_at INTEGER;
