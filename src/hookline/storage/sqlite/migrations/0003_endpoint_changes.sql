-- 0003: a counter that every change to an endpoint row moves, whichever process makes it.
-- A publish routes its messages against endpoints it read before taking the write lock, and
-- its statement checks inside the lock that the counter has not moved since that read.
CREATE TABLE endpoint_changes (
    version INTEGER NOT NULL
);
INSERT INTO endpoint_changes (version) VALUES (0);
CREATE TRIGGER endpoint_inserted AFTER INSERT ON endpoints
BEGIN
    UPDATE endpoint_changes SET version = version + 1;
END;
CREATE TRIGGER endpoint_updated AFTER UPDATE ON endpoints
BEGIN
    UPDATE endpoint_changes SET version = version + 1;
END;
CREATE TRIGGER endpoint_deleted AFTER DELETE ON endpoints
BEGIN
    UPDATE endpoint_changes SET version = version + 1;
END;
