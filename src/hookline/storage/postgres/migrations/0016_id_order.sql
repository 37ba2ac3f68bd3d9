-- 0016: ids compare byte by byte, whatever the database's collation. hookline's ids sort by
-- time only in byte order (base62: 0-9, A-Z, a-z), and list order, cursors, the retention
-- scan's bound and ordered delivery's sequences rely on it. A database created with a
-- language collation (en_US.UTF-8, the default on many servers and managed services) puts
-- 'a' before 'Z', so there every text column holding ids is given the "C" collation; a
-- database whose collation already orders them byte by byte (C, C.UTF-8, POSIX) is left as
-- it is, as changing it would only rebuild indexes (docs/upgrading.md).
DO $$
DECLARE
    col record;
BEGIN
    IF (SELECT array_agg(c ORDER BY c) FROM unnest(ARRAY['a0', 'Az', '_', 'Z', '9', 'A']) AS c)
        = ARRAY['9', 'A', 'Az', 'Z', '_', 'a0'] THEN
        RETURN;
    END IF;
    FOR col IN
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = current_schema() AND data_type = 'text'
          AND (column_name = 'id' OR column_name LIKE '%\_id')
        ORDER BY table_name, column_name
    LOOP
        EXECUTE format('ALTER TABLE %I ALTER COLUMN %I TYPE text COLLATE "C"',
                       col.table_name, col.column_name);
    END LOOP;
END;
$$;
