-- Claims read due deliveries per endpoint (deliveries_endpoint_due); the index on due time
-- alone was no longer read, and every delivery insert and status change paid for it.
DROP INDEX deliveries_due;
