-- 0019: a message keeps the W3C trace context it was published in (docs/observability.md,
-- "Traces"): the producer's traceparent, or the publish span's when hookline records traces,
-- and its tracestate, so every attempt, in any process and however late, joins that trace or
-- forwards it. NULL for a message published without one (every existing row).
ALTER TABLE messages ADD COLUMN trace_context TEXT;
