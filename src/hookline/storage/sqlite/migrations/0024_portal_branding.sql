-- An application's portal branding defaults (PUT /api/v1/app/{app_id}/portal-branding):
-- the branding parameters as JSON, which a portal link's own parameters override.
CREATE TABLE portal_branding (
    app_id TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
