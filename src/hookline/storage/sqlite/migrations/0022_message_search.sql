-- 0022: payload search (docs/search.md). message_search is a
-- contentless FTS5 index of the first 100,000 characters of each payload's JSON text (keys
-- and values), so the words cost an index and never a second copy of the payload.
-- message_search_docs gives each indexed message an explicit integer key: FTS5 rows are
-- found by an integer, and messages' own rowid is renumbered by VACUUM (Store.compact).
-- The triggers keep the index in step with the payload column in the writer's own
-- transaction: a publish adds the words, an expunge or payload expiry (payload set NULL)
-- and a prune (the row deleted) take them out. A contentless table forgets a row only when
-- told its words again, hence the same substr(...) in each.
CREATE TABLE message_search_docs (
    doc INTEGER PRIMARY KEY,
    msg_id TEXT NOT NULL UNIQUE
);
CREATE VIRTUAL TABLE message_search USING fts5(body, content = '');
CREATE TRIGGER message_search_added AFTER INSERT ON messages WHEN new.payload IS NOT NULL
BEGIN
    INSERT INTO message_search_docs (msg_id) VALUES (new.id);
    INSERT INTO message_search (rowid, body)
    VALUES (last_insert_rowid(), substr(CAST(new.payload AS TEXT), 1, 100000));
END;
CREATE TRIGGER message_search_removed AFTER DELETE ON messages WHEN old.payload IS NOT NULL
BEGIN
    INSERT INTO message_search (message_search, rowid, body)
    SELECT 'delete', doc, substr(CAST(old.payload AS TEXT), 1, 100000)
    FROM message_search_docs WHERE msg_id = old.id;
    DELETE FROM message_search_docs WHERE msg_id = old.id;
END;
CREATE TRIGGER message_search_expunged AFTER UPDATE OF payload ON messages
WHEN old.payload IS NOT NULL AND new.payload IS NULL
BEGIN
    INSERT INTO message_search (message_search, rowid, body)
    SELECT 'delete', doc, substr(CAST(old.payload AS TEXT), 1, 100000)
    FROM message_search_docs WHERE msg_id = old.id;
    DELETE FROM message_search_docs WHERE msg_id = old.id;
END;
INSERT INTO message_search_docs (msg_id)
SELECT id FROM messages WHERE payload IS NOT NULL ORDER BY id;
INSERT INTO message_search (rowid, body)
SELECT d.doc, substr(CAST(m.payload AS TEXT), 1, 100000)
FROM message_search_docs AS d JOIN messages AS m ON m.id = d.msg_id;
