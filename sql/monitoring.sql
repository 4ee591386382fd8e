-- Monitoring views over the versioned tables: high versions, deadlocks and
-- lock waits. Identifiers go through regclass output and %I, never through
-- string concatenation of user text.

-- The rows of a versioned table with the highest versions (above 1: changed
-- at least once) modified in the last `hours`: the seed's high_version_objects.
-- detect_version_conflicts adds each one's measured modifications (hot rows,
-- which cover the last hour) and the table's conflict statistics.
CREATE FUNCTION motofinai.high_version_objects(tbl regclass, hours integer DEFAULT 1, max_rows integer DEFAULT 20)
    RETURNS TABLE (id text, version bigint, last_modified timestamptz)
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cfg motofinai.versioning_config;
    pk text;
BEGIN
    IF tbl IS NULL OR hours IS NULL OR max_rows IS NULL THEN
        RAISE EXCEPTION 'tbl, hours and max_rows must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF hours < 0 OR max_rows < 0 THEN
        RAISE EXCEPTION 'hours and max_rows must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO cfg FROM motofinai.versioning_config c WHERE c.tbl = high_version_objects.tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table "%" is not versioned', tbl USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = format('Run SELECT motofinai.enable_versioning(%L) first.', tbl::text);
    END IF;
    SELECT a.attname INTO pk FROM pg_index i
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
     WHERE i.indrelid = tbl AND i.indisprimary AND i.indnkeyatts = 1;
    RETURN QUERY EXECUTE format(
        'SELECT %s::text, %I::bigint, %I FROM %s WHERE %I >= now() - make_interval(hours => $1) AND %I > 1 '
        'ORDER BY %I DESC, %I DESC LIMIT $2',
        CASE WHEN pk IS NULL THEN 'ctid' ELSE quote_ident(pk) END,
        cfg.version_column, cfg.modified_column, tbl, cfg.modified_column, cfg.version_column,
        cfg.version_column, cfg.modified_column)
    USING hours, max_rows;
END $$;

CREATE FUNCTION motofinai.detect_version_conflicts(tbl regclass, hours integer DEFAULT 1) RETURNS jsonb
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'detected_at', now(),
        'table', tbl::text,
        'time_window_hours', hours,
        'high_version_objects', coalesce((
            SELECT jsonb_agg(jsonb_build_object('id', o.id, 'version', o.version, 'last_modified', o.last_modified)
                             || CASE WHEN motofinai.conflict_stats_enabled()
                                     THEN jsonb_build_object('modifications_in_window', coalesce(h.modifications, 0))
                                     ELSE '{}'::jsonb END
                             ORDER BY o.version DESC, o.last_modified DESC, o.id)
              FROM motofinai.high_version_objects(tbl, hours) o
              LEFT JOIN motofinai.hot_rows(tbl, least(hours, 1) * 60) h ON h.id::text = o.id), '[]'::jsonb),
        'conflict_stats', CASE WHEN motofinai.conflict_stats_enabled() THEN (
            SELECT jsonb_build_object('updates_checked', coalesce(max(s.updates_checked), 0),
                                      'conflicts', coalesce(max(s.conflicts), 0),
                                      'strict_rejections', coalesce(max(s.strict_rejections), 0),
                                      'last_conflict_at', max(s.last_conflict_at))
              FROM motofinai.conflict_stats s WHERE s.table_name = tbl)
            ELSE jsonb_build_object('statistics', 'off') END)
$$;

-- The same as rows, one per high-version object.
CREATE FUNCTION motofinai.version_conflicts(tbl regclass, hours integer DEFAULT 1)
    RETURNS TABLE (id text, version bigint, last_modified timestamptz)
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM motofinai.high_version_objects(tbl, hours)
$$;

-- What indicates deadlock risk now: the database's deadlock count, the
-- sessions waiting for a lock while holding one on a versioned table (and
-- who blocks them), the row helpers' lock-timeout failures, and the rows
-- with the highest versions. A wait longer than motofinai.lock_wait_alert_ms
-- is also sent as an alert on motofinai_alerts.
CREATE FUNCTION motofinai.detect_deadlocks(tbl regclass DEFAULT NULL) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    waits jsonb;
    w jsonb;
    threshold_ms integer := (SELECT setting::integer FROM pg_settings WHERE name = 'motofinai.lock_wait_alert_ms');
BEGIN
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'waiting_pid', o.pid,
               'blocking_pids', to_jsonb(pg_blocking_pids(o.pid)),
               'relations', to_jsonb(o.tables),
               'waiting_seconds', round(extract(epoch FROM clock_timestamp() - o.waitstart)::numeric, 3),
               'query', a.query,
               'blocking_queries', (SELECT coalesce(jsonb_agg(b.query), '[]') FROM pg_stat_activity b
                                     WHERE b.pid = ANY (pg_blocking_pids(o.pid))))
               ORDER BY o.waitstart), '[]'::jsonb)
      INTO waits
      FROM (SELECT w.pid, w.waitstart, array_agg(DISTINCT c.tbl::text ORDER BY c.tbl::text) AS tables
              FROM (SELECT l.pid, min(l.waitstart) AS waitstart FROM pg_locks l
                     WHERE NOT l.granted GROUP BY l.pid) w
              JOIN pg_locks h ON h.pid = w.pid AND h.locktype = 'relation'
              JOIN motofinai.versioning_config c ON c.tbl::oid = h.relation
             WHERE detect_deadlocks.tbl IS NULL OR c.tbl = detect_deadlocks.tbl
             GROUP BY w.pid, w.waitstart) o
      JOIN pg_stat_activity a ON a.pid = o.pid;
    PERFORM motofinai.send_pending_alerts();
    FOR w IN SELECT * FROM jsonb_array_elements(waits) LOOP
        IF (w ->> 'waiting_seconds')::numeric * 1000 >= threshold_ms THEN
            PERFORM pg_notify('motofinai_alerts', (jsonb_build_object('alert', 'lock_wait', 'at', clock_timestamp())
                || (w - 'query' - 'blocking_queries'))::text);
        END IF;
    END LOOP;
    RETURN jsonb_build_object(
        'detected_at', now(),
        'deadlocks_total', (SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()),
        'lock_waits', waits,
        'lock_timeouts', motofinai.lock_timeouts(),
        'objects_with_high_versions', coalesce((
            SELECT jsonb_agg(jsonb_build_object('table', c.tbl::text, 'id', o.id, 'version', o.version,
                                                'last_modified', o.last_modified)
                             ORDER BY o.version DESC, o.last_modified DESC, c.tbl::text, o.id)
              FROM motofinai.versioning_config c
             CROSS JOIN LATERAL motofinai.high_version_objects(c.tbl, 24 * 365, 10) o
             WHERE detect_deadlocks.tbl IS NULL OR c.tbl = detect_deadlocks.tbl), '[]'::jsonb));
END $$;
