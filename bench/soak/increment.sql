-- A versioned read-modify-write of one of 16 counters, as an ORM does it.
\set c random(1, 16)
BEGIN;
SELECT val, version FROM soak_counter WHERE id = :c \gset
UPDATE soak_counter SET val = :val + 1, version = :version WHERE id = :c;
INSERT INTO soak_committed VALUES (:c);
END;
