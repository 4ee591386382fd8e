-- Objects every other part of the extension builds on. Loaded first.

-- Tables under optimistic locking. pg_dump keeps its rows, so a restored
-- database still knows which tables are versioned and how.
CREATE TABLE motofinai.versioning_config (
    tbl             regclass    PRIMARY KEY,
    version_column  name        NOT NULL,
    modified_column name        NOT NULL,
    protocol        text        NOT NULL CHECK (protocol IN ('expected', 'increment')),
    strict          boolean     NOT NULL DEFAULT false,
    -- 'observe': stale and blind writes are counted and logged, not rejected.
    mode            text        NOT NULL DEFAULT 'enforce' CHECK (mode IN ('enforce', 'observe')),
    enabled_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE motofinai.versioning_config IS
    'Tables registered by motofinai.enable_versioning(); kept by pg_dump';
SELECT pg_catalog.pg_extension_config_dump('motofinai.versioning_config', '');
-- Everyone may read it (the row helpers run as their caller); only its owner writes.
GRANT SELECT ON motofinai.versioning_config TO PUBLIC;

-- A dropped table leaves no dangling registration behind. SECURITY DEFINER
-- because whoever drops a versioned table may not write the configuration;
-- it takes no input but the dropped objects' OIDs.
CREATE FUNCTION motofinai.forget_dropped_tables() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dropped oid[] := ARRAY(SELECT d.objid FROM pg_catalog.pg_event_trigger_dropped_objects() d
                            WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0);
BEGIN
    DELETE FROM motofinai.versioning_config c WHERE c.tbl::oid = ANY (dropped);
    -- Their conflict-statistics slots are free for other tables.
    PERFORM motofinai.conflict_stats_forget(dropped);
END $$;
CREATE EVENT TRIGGER motofinai_forget_dropped_tables ON sql_drop
    EXECUTE FUNCTION motofinai.forget_dropped_tables();
