-- One read-modify-write increment, the way an ORM does it: read the row,
-- think, write back the new value together with the version that was read.
BEGIN;
SELECT val, version FROM :table WHERE id = 1 \gset
\sleep 1 ms
UPDATE :table SET val = :val + 1, version = :version WHERE id = 1;
END;
