-- Check history: every run_check() leaves a row; pg_dump keeps them.
CREATE TABLE motofinai.check_runs (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    scope       text        NOT NULL,
    errors      integer     NOT NULL,
    warnings    integer     NOT NULL,
    findings    jsonb       NOT NULL
);
COMMENT ON TABLE motofinai.check_runs IS 'History of motofinai.run_check(): counts and findings of each run';
SELECT pg_catalog.pg_extension_config_dump('motofinai.check_runs', '');
GRANT SELECT ON motofinai.check_runs TO PUBLIC;

-- Run a check, record it, and alert (NOTIFY motofinai_alerts) when it found errors.
CREATE FUNCTION motofinai.run_check(scope text DEFAULT 'quick') RETURNS motofinai.check_runs
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    found jsonb;
    run motofinai.check_runs;
BEGIN
    SELECT coalesce(jsonb_agg(to_jsonb(f)), '[]'::jsonb) INTO found FROM motofinai.check_findings(scope) f;
    INSERT INTO motofinai.check_runs (started_at, finished_at, scope, errors, warnings, findings)
    SELECT started, clock_timestamp(), scope,
           (SELECT count(*) FROM jsonb_array_elements(found) e WHERE e ->> 'severity' = 'error'),
           (SELECT count(*) FROM jsonb_array_elements(found) e WHERE e ->> 'severity' = 'warning'),
           found
    RETURNING * INTO run;
    IF run.errors > 0 THEN
        PERFORM pg_notify('motofinai_alerts', jsonb_build_object(
            'alert', 'check_errors', 'run_id', run.id, 'scope', run.scope,
            'errors', run.errors, 'warnings', run.warnings,
            'codes', (SELECT jsonb_object_agg(code, n) FROM (
                SELECT e ->> 'code' AS code, count(*) AS n FROM jsonb_array_elements(found) e
                 WHERE e ->> 'severity' = 'error' GROUP BY 1) c),
            'at', run.finished_at)::text);
    END IF;
    PERFORM motofinai.send_pending_alerts();
    RETURN run;
END $$;
