-- 0017: endpoint authentication (docs/security.md, "Endpoint authentication"): an endpoint's
-- HTTP Basic, OAuth2 client-credentials and mutual-TLS settings, as one JSON document sealed
-- by the row codec (storage/codec.py SECRET_COLUMNS) like keys and headers. NULL, as every
-- existing row gets, is an endpoint without credentials.
ALTER TABLE endpoints ADD COLUMN auth TEXT;
