-- 0024: a placeholder on the failure-groups branch only: version 0024 belongs to another
-- branch (migrations are numbered 1..n without gaps). Delete this file when merging.
SELECT 1;
