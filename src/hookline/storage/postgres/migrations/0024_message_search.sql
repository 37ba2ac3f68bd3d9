-- 0024: payload search (docs/search.md). A GIN index of the words
-- of the first 100,000 characters of each payload's JSON text (keys and values), over an
-- expression, so PostgreSQL keeps it in step with the row by itself: a publish adds the
-- words, an expunge or payload expiry (payload set NULL) leaves the partial index, a prune
-- deletes the row. convert_from is only STABLE (it depends on the server's encoding, which
-- a database cannot change), so an IMMUTABLE wrapper names the expression. Every run of
-- characters other than letters and digits separates words, as SQLite's unicode61 tokenizer
-- splits them (the default parser would keep an email or a URL as one word, so a part of
-- one would not be found); the 'simple' configuration folds case and keeps every word (no
-- stemming, no stop words); the length cap keeps the tsvector under its 1 MB limit, so a
-- large payload is never refused.
CREATE FUNCTION hookline_payload_words(payload BYTEA) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT to_tsvector('simple'::regconfig, regexp_replace(
        left(convert_from(payload, 'UTF8'), 100000), '(\W|_)+', ' ', 'g')) $$;
CREATE INDEX messages_words ON messages USING gin (hookline_payload_words(payload))
    WHERE payload IS NOT NULL;
