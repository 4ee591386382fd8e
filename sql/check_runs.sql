-- Check history: every run_check() leaves a row; pg_dump keeps them.
CREATE TABLE motofinai.check_runs (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    scope       text        NOT NULL,
    errors      integer     NOT NULL,
    warnings    integer     NOT NULL,
    findings    jsonb       NOT NULL,
    -- Against the previous runs of its scope (history below): findings that
    -- appeared, and findings that went away; accepted ones count nowhere.
    new_errors   integer    NOT NULL DEFAULT 0,
    new_warnings integer    NOT NULL DEFAULT 0,
    resolved     integer    NOT NULL DEFAULT 0,
    -- The loans an incremental run ('changed') checked.
    loans       bigint[]
);
COMMENT ON TABLE motofinai.check_runs IS 'History of motofinai.run_check(): counts and findings of each run';
SELECT pg_catalog.pg_extension_config_dump('motofinai.check_runs', '');
GRANT SELECT ON motofinai.check_runs TO PUBLIC;

-- Each finding's life, compactly: one row from the run that first found it
-- to the run that found it gone, per history scope ('system' is fed by full
-- and incremental runs, 'quick' by quick ones). A finding is identified by
-- code, entity, id, and for table-level ones the relation, constraint or
-- table it names (`subject`).
CREATE TABLE motofinai.finding_history (
    scope        text    NOT NULL,
    code         text    NOT NULL,
    entity       text    NOT NULL,
    entity_id    bigint,
    subject      text    NOT NULL DEFAULT '',
    loan_id      bigint,  -- the loan a loan- or payment-family finding belongs to
    severity     text    NOT NULL,
    message      text    NOT NULL,
    details      jsonb,   -- as the last run that saw it reported it (acceptance left out)
    first_run    bigint  NOT NULL,
    last_run     bigint  NOT NULL,
    resolved_run bigint
-- Every run rewrites its open findings' last_run, severity, message and
-- details, none of them indexed: with room on the page the new versions are
-- heap-only, with no index entries (7,432 persisting findings: 91 -> 45 ms).
) WITH (fillfactor = 50);
CREATE UNIQUE INDEX finding_history_open ON motofinai.finding_history
    (scope, code, entity, coalesce(entity_id, -1), subject) WHERE resolved_run IS NULL;
CREATE INDEX finding_history_runs ON motofinai.finding_history (first_run);
-- The open findings of the loans an incremental run checked.
CREATE INDEX finding_history_loans ON motofinai.finding_history (loan_id) WHERE resolved_run IS NULL;
CREATE INDEX finding_history_resolved ON motofinai.finding_history (resolved_run) WHERE resolved_run IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('motofinai.finding_history', '');
GRANT SELECT ON motofinai.finding_history TO PUBLIC;

-- Findings people have looked at and accepted (a known data-entry quirk, a
-- loan under legal review): the report, the command, the alerts and
-- enforcement leave them out until `until`; the check functions still
-- return them, with details.accepted saying by whom and why. Accepting
-- needs INSERT (and UPDATE, DELETE to change or withdraw) on this table:
-- GRANT them to the roles that may.
CREATE TABLE motofinai.accepted_findings (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text        NOT NULL,
    entity      text        NOT NULL,
    entity_id   bigint,     -- NULL: every entity of this kind with this code
    reason      text        NOT NULL CHECK (pg_catalog.btrim(reason) <> ''),
    accepted_by name        NOT NULL DEFAULT current_user,
    accepted_at timestamptz NOT NULL DEFAULT now(),
    until       timestamptz,
    UNIQUE NULLS NOT DISTINCT (code, entity, entity_id)
);
COMMENT ON TABLE motofinai.accepted_findings IS
    'Accepted findings: left out of reports, the command, alerts and enforcement until they expire';
SELECT pg_catalog.pg_extension_config_dump('motofinai.accepted_findings', '');
GRANT SELECT ON motofinai.accepted_findings TO PUBLIC;

CREATE FUNCTION motofinai.accept_finding(code text, entity text, entity_id bigint, reason text,
                                         until timestamptz DEFAULT NULL)
    RETURNS motofinai.accepted_findings
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    accepted motofinai.accepted_findings;
BEGIN
    IF code IS NULL OR entity IS NULL OR reason IS NULL THEN
        RAISE EXCEPTION 'code, entity and reason must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM motofinai.finding_codes() c WHERE c.code = accept_finding.code
                                                          AND c.entity = accept_finding.entity) THEN
        RAISE EXCEPTION 'no finding code "%" on entity "%"', code, entity USING ERRCODE = 'invalid_parameter_value',
            HINT = 'SELECT code, entity FROM motofinai.finding_codes() lists them.';
    END IF;
    IF btrim(reason) = '' THEN
        RAISE EXCEPTION 'reason must not be blank' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Say why the finding is accepted: the people after you will read it.';
    END IF;
    IF until IS NOT NULL AND until <= now() THEN
        RAISE EXCEPTION 'until (%) is not in the future', until USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO motofinai.accepted_findings AS a (code, entity, entity_id, reason, until)
    VALUES (accept_finding.code, accept_finding.entity, accept_finding.entity_id, accept_finding.reason,
            accept_finding.until)
    ON CONFLICT (code, entity, entity_id) DO UPDATE
       SET reason = excluded.reason, until = excluded.until, accepted_by = current_user, accepted_at = now()
    RETURNING * INTO accepted;
    RETURN accepted;
END $$;

CREATE FUNCTION motofinai.unaccept_finding(code text, entity text, entity_id bigint) RETURNS boolean
    LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (DELETE FROM motofinai.accepted_findings a
                   WHERE a.code = unaccept_finding.code AND a.entity = unaccept_finding.entity
                     AND a.entity_id IS NOT DISTINCT FROM unaccept_finding.entity_id RETURNING 1)
    SELECT count(*) > 0 FROM gone
$$;

-- The loans committed transactions changed (motofinai.track_changes()), not
-- yet checked by an incremental run. Not dumped: after a restore, run a full
-- check.
CREATE TABLE motofinai.changed_loans (
    loan_id    bigint      NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON motofinai.changed_loans TO PUBLIC;

-- The loans of installments (those payments a transaction changed name)
-- that are not among `known`: a payment on another loan's installment
-- changes that loan too. Change tracking and enforcement each ask once per
-- transaction.
CREATE FUNCTION motofinai.installment_loans(installments bigint[], known bigint[]) RETURNS bigint[]
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s text := quote_ident(coalesce(nullif(current_setting('motofinai.tables_schema', true), ''), 'public'));
    loans bigint[];
BEGIN
    EXECUTE format('SELECT coalesce(array_agg(DISTINCT s.loan_application_id), ''{}'') FROM %s.loans_paymentschedule s'
                   ' WHERE s.id = ANY ($1) AND s.loan_application_id <> ALL ($2)', s)
       INTO loans USING installments, known;
    RETURN loans;
END $$;

-- Appends what a transaction changed, from the tracking trigger at COMMIT:
-- the loans, and those of the motors, users and installments (named by
-- payments) it changed. SECURITY DEFINER: whoever writes the Motofinai
-- tables may not write this queue (or read the tables that map them to
-- loans); it only appends loan ids, so a caller can at most cause extra
-- checking.
CREATE FUNCTION motofinai.note_changed_loans(loans bigint[], motors bigint[], users bigint[],
                                             installments bigint[]) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s text := quote_ident(coalesce(nullif(current_setting('motofinai.tables_schema', true), ''), 'public'));
BEGIN
    INSERT INTO motofinai.changed_loans (loan_id) SELECT DISTINCT l FROM unnest(loans) l WHERE l IS NOT NULL;
    IF cardinality(motors) > 0 OR cardinality(users) > 0 THEN
        EXECUTE format('INSERT INTO motofinai.changed_loans (loan_id) SELECT id FROM %s.loans_loanapplication '
                       'WHERE motor_id = ANY ($1) OR submitted_by_id = ANY ($2)', s) USING motors, users;
    END IF;
    -- An installment's loan that the transaction did not note already (a
    -- payment on its own loan's installment, the usual case, adds nothing).
    IF cardinality(installments) > 0 THEN
        INSERT INTO motofinai.changed_loans (loan_id) SELECT unnest(motofinai.installment_loans(installments, loans));
    END IF;
END $$;

-- The loans an incremental run checks: those changed since the last run,
-- consumed from the queue (the caller's transaction: a run that fails gives
-- them back), and those the calendar changed since `since`: installments
-- that fell due and payments whose date arrived (create_check_indexes()
-- makes both an index lookup).
CREATE FUNCTION motofinai.loans_to_check(since date) RETURNS bigint[]
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s text := quote_ident(coalesce(nullif(current_setting('motofinai.tables_schema', true), ''), 'public'));
    calendar bigint[];
    changed bigint[];
BEGIN
    WITH consumed AS (DELETE FROM motofinai.changed_loans RETURNING loan_id)
    SELECT array_agg(DISTINCT loan_id) INTO changed FROM consumed;
    EXECUTE format('SELECT array_agg(DISTINCT loan_id) FROM ('
                   '  SELECT loan_application_id AS loan_id FROM %1$s.loans_paymentschedule'
                   '   WHERE due_date >= $1 AND due_date < CURRENT_DATE AND status <> ''paid'''
                   '  UNION ALL'
                   '  SELECT loan_application_id FROM %1$s.payments_payment'
                   '   WHERE payment_date > $1 AND payment_date <= CURRENT_DATE) x', s)
      INTO calendar USING since;
    RETURN ARRAY(SELECT DISTINCT unnest(coalesce(changed, '{}') || coalesce(calendar, '{}')) ORDER BY 1);
END $$;

-- Record a run's findings in the history: what is new, what persists, and
-- what went away among the findings this run could see (`loans`: the loans
-- an incremental run checked; NULL: everything of its scope). Two
-- statements, no temporary table (creating, indexing, analyzing and
-- dropping one cost 11 ms of an incremental run's 200): the findings are
-- upserted, each by a probe of the open rows' unique index, whatever the
-- statistics say; then the open rows this run could see and did not
-- update (last_run) went away. Nothing joins the findings with the open
-- rows on estimates: plans made on stale ones compared thousands of rows
-- with thousands one by one (5 s).
CREATE FUNCTION motofinai.record_history(run_id bigint, history text, run_findings jsonb, run_loans bigint[])
    RETURNS TABLE (new_errors integer, new_warnings integer, resolved integer)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s text := quote_ident(coalesce(nullif(current_setting('motofinai.tables_schema', true), ''), 'public'));
    -- A payment finding's loan, looked up only where the run found payment
    -- findings: a run that read no payment (a motor's check) needs neither
    -- the payments table nor the right to read it.
    payment_loan text := 'NULL::bigint';
    -- Whether a finding was open before: for a full run, an EXISTS, which
    -- the planner may hash (one pass over the open rows); for an
    -- incremental run, whose findings are few, a probe of the open rows'
    -- unique index each, a scalar subquery it cannot hash: its cost follows
    -- the changes, not the history (89 findings against 7,432 open rows
    -- hashed without statistics: 3.6 → 0.9 ms).
    known text := CASE WHEN run_loans IS NULL THEN 'EXISTS (SELECT FROM motofinai.finding_history h WHERE %s)'
                       ELSE '(SELECT true FROM motofinai.finding_history h WHERE %s LIMIT 1) IS NOT NULL' END;
    errors integer;
    warnings integer;
    gone integer;
BEGIN
    IF jsonb_path_exists(run_findings, '$[*] ? (@.entity == "payment")') THEN
        payment_loan := format('(SELECT p.loan_application_id FROM %s.payments_payment p'
                               ' WHERE p.id = (f ->> ''entity_id'')::bigint)', s);
    END IF;
    -- Persisting (an open row: updated) and new (none: inserted). A
    -- finding's loan: the one its details name, the loan itself, or a
    -- payment's loan as it is now (a probe each), which an incremental run
    -- that checks the loan can resolve. The new ones are counted against
    -- the open rows as they were before this statement (its snapshot).
    EXECUTE format($q$
    WITH found AS MATERIALIZED (
        SELECT DISTINCT ON (f ->> 'code', f ->> 'entity', (f ->> 'entity_id')::bigint, subj)
               f ->> 'code' AS code, f ->> 'entity' AS entity, (f ->> 'entity_id')::bigint AS entity_id,
               subj AS subject,
               coalesce((f -> 'details' ->> 'loan_id')::bigint,
                        CASE f ->> 'entity'
                          WHEN 'loan' THEN (f ->> 'entity_id')::bigint
                          WHEN 'payment' THEN %s
                        END) AS loan_id,
               f ->> 'severity' AS severity, f ->> 'message' AS message,
               CASE jsonb_typeof(f -> 'details') WHEN 'object' THEN (f -> 'details') - 'accepted'
                    ELSE f -> 'details' END AS details,
               (f -> 'details') ? 'accepted' AS accepted
          FROM jsonb_array_elements($3) f
         CROSS JOIN LATERAL (SELECT coalesce((f -> 'details' ->> 'relation') || '.' || (f -> 'details' ->> 'column'),
                                             f -> 'details' ->> 'constraint', f -> 'details' ->> 'table', '') AS subj) x
    ), upsert AS (
        INSERT INTO motofinai.finding_history
               (scope, code, entity, entity_id, subject, loan_id, severity, message, details, first_run, last_run)
        SELECT $2, c.code, c.entity, c.entity_id, c.subject, c.loan_id, c.severity, c.message, c.details, $1, $1
          FROM found c
            ON CONFLICT (scope, code, entity, (coalesce(entity_id, -1)), subject) WHERE resolved_run IS NULL
            DO UPDATE SET last_run = $1, loan_id = excluded.loan_id, severity = excluded.severity,
                          message = excluded.message, details = excluded.details
    )
    -- (The test of the open rows sits in the select list, a subplan. As a
    -- WHERE clause an EXISTS becomes an anti-join, which finding_history's
    -- estimates can plan as a nested loop over every open row: 3.7 s for
    -- 7,432 findings.)
    SELECT count(*) FILTER (WHERE n.severity = 'error'), count(*) FILTER (WHERE n.severity = 'warning')
      FROM (SELECT c.severity, %s AS known FROM found c WHERE NOT c.accepted) n
     WHERE NOT n.known
    $q$, payment_loan, format(known, 'h.scope = $2 AND h.resolved_run IS NULL AND h.code = c.code AND h.entity = c.entity'
                                     ' AND coalesce(h.entity_id, -1) = coalesce(c.entity_id, -1) AND h.subject = c.subject'))
    INTO errors, warnings USING run_id, history, run_findings;
    -- Gone: the open rows this run could see and did not find (last_run <
    -- run_id, not <>: a later run that saw a row, concurrently, keeps it).
    IF run_loans IS NULL THEN
        UPDATE motofinai.finding_history h SET resolved_run = run_id
         WHERE h.scope = history AND h.resolved_run IS NULL AND h.last_run < run_id;
    ELSE
        -- An incremental run sees the loan and payment rules of its loans:
        -- their open rows, found through finding_history_loans, a probe per
        -- loan (OFFSET 0: never a pass over every open row, which the
        -- planner chose with or without statistics, 3 ms at 7,432 open rows
        -- and growing with the history), then updated by their ctid.
        UPDATE motofinai.finding_history h SET resolved_run = run_id
         WHERE h.ctid = ANY (ARRAY(
                   SELECT x.ctid FROM unnest(run_loans) l(id)
                    CROSS JOIN LATERAL (SELECT x.ctid FROM motofinai.finding_history x
                                         WHERE x.loan_id = l.id AND x.resolved_run IS NULL OFFSET 0) x))
           AND h.scope = history AND h.resolved_run IS NULL AND h.last_run < run_id
           AND (h.code, h.entity) IN (SELECT c.code, c.entity FROM motofinai.finding_codes() c
                                       WHERE c.family IN ('loan', 'payment'));
    END IF;
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN QUERY SELECT errors, warnings, gone;
END $$;

-- Run a check, record it and its history, and alert (NOTIFY
-- motofinai_alerts) when it found errors: new ones only, unless
-- motofinai.alert_on_errors = 'all'. Accepted findings are recorded but
-- neither counted nor alerted on. Scopes: those of check_findings, and
-- 'changed' (an incremental run: only the loans changed or fallen due since
-- the last full or incremental run; the first one is a full run).
CREATE FUNCTION motofinai.run_check(scope text DEFAULT 'quick') RETURNS motofinai.check_runs
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    state text := CASE scope WHEN 'changed' THEN 'system' ELSE scope END;
    since date;
    loans bigint[];
    found jsonb;
    counts record;
    run motofinai.check_runs;
BEGIN
    IF scope = 'changed' THEN
        IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgname = 'motofinai_track') THEN
            RAISE EXCEPTION 'changes are not tracked' USING ERRCODE = 'object_not_in_prerequisite_state',
                HINT = 'Run SELECT motofinai.track_changes(); once, then a full run_check(''system'').';
        END IF;
        since := (SELECT max(r.started_at)::date FROM motofinai.check_runs r WHERE r.scope IN ('system', 'changed'));
        IF since IS NULL THEN
            scope := 'system';   -- nothing to compare with yet: a full run
        END IF;
    END IF;
    IF scope = 'changed' THEN
        loans := motofinai.loans_to_check(since);
        SELECT coalesce(jsonb_agg(to_jsonb(f)), '[]'::jsonb) INTO found FROM motofinai.check_loans(loans) f;
    ELSE
        IF scope = 'system' THEN
            -- A full run covers whatever changed before it started.
            DELETE FROM motofinai.changed_loans;
        END IF;
        SELECT coalesce(jsonb_agg(to_jsonb(f)), '[]'::jsonb) INTO found FROM motofinai.check_findings(scope) f;
    END IF;
    INSERT INTO motofinai.check_runs (started_at, finished_at, scope, errors, warnings, findings, loans)
    SELECT started, clock_timestamp(), scope,
           count(*) FILTER (WHERE e ->> 'severity' = 'error' AND NOT (e -> 'details') ? 'accepted'),
           count(*) FILTER (WHERE e ->> 'severity' = 'warning' AND NOT (e -> 'details') ? 'accepted'),
           found, loans
      FROM jsonb_array_elements(found) e   -- one row, zero findings or many
    RETURNING * INTO run;
    SELECT * INTO counts FROM motofinai.record_history(run.id, state, found, loans);
    UPDATE motofinai.check_runs r
       SET new_errors = counts.new_errors, new_warnings = counts.new_warnings, resolved = counts.resolved
     WHERE r.id = run.id
    RETURNING * INTO run;
    IF (CASE current_setting('motofinai.alert_on_errors', true) WHEN 'all' THEN run.errors
        ELSE run.new_errors END) > 0 THEN
        PERFORM pg_notify('motofinai_alerts', jsonb_build_object(
            'alert', 'check_errors', 'run_id', run.id, 'scope', run.scope,
            'errors', run.errors, 'warnings', run.warnings, 'new_errors', run.new_errors,
            'codes', (SELECT jsonb_object_agg(code, n) FROM (
                SELECT e ->> 'code' AS code, count(*) AS n FROM jsonb_array_elements(found) e
                 WHERE e ->> 'severity' = 'error' AND NOT (e -> 'details') ? 'accepted' GROUP BY 1) c),
            'at', run.finished_at)::text);
    END IF;
    PERFORM motofinai.send_pending_alerts();
    RETURN run;
END $$;

-- The findings of the latest runs as they stand: open in the history, new
-- since the run before, accepted or not.
CREATE VIEW motofinai.current_findings AS
SELECT h.scope, h.severity, h.code, h.entity, h.entity_id, h.subject, h.message,
       r.started_at AS first_seen_at, h.first_run,
       h.first_run = (SELECT max(id) FROM motofinai.check_runs x
                       WHERE CASE x.scope WHEN 'changed' THEN 'system' ELSE x.scope END = h.scope) AS new,
       EXISTS (SELECT FROM motofinai.accepted_findings a
                WHERE a.code = h.code AND a.entity = h.entity
                  AND (a.entity_id IS NULL OR a.entity_id = h.entity_id)
                  AND (a.until IS NULL OR a.until > now())) AS accepted,
       h.loan_id, h.details
  FROM motofinai.finding_history h
  JOIN motofinai.check_runs r ON r.id = h.first_run
 WHERE h.resolved_run IS NULL;
GRANT SELECT ON motofinai.current_findings TO PUBLIC;

-- Findings per code per day: at the day's last run of each scope, how many
-- there were; over the day's runs, how many appeared and went away.
CREATE VIEW motofinai.finding_trends AS
WITH runs AS (
    SELECT r.id, r.finished_at::date AS day, CASE r.scope WHEN 'changed' THEN 'system' ELSE r.scope END AS scope,
           row_number() OVER (PARTITION BY r.finished_at::date, CASE r.scope WHEN 'changed' THEN 'system'
                                                                  ELSE r.scope END ORDER BY r.id DESC) AS latest
      FROM motofinai.check_runs r
), open_at AS (
    SELECT u.day, u.scope, h.code, h.severity, count(*) AS findings
      FROM runs u JOIN motofinai.finding_history h
        ON h.scope = u.scope AND h.first_run <= u.id AND (h.resolved_run IS NULL OR h.resolved_run > u.id)
     WHERE u.latest = 1
     GROUP BY 1, 2, 3, 4
), moved AS (
    SELECT u.day, u.scope, h.code, h.severity,
           count(*) FILTER (WHERE h.first_run = u.id) AS new,
           count(*) FILTER (WHERE h.resolved_run = u.id) AS resolved
      FROM runs u JOIN motofinai.finding_history h
        ON h.scope = u.scope AND (h.first_run = u.id OR h.resolved_run = u.id)
     GROUP BY 1, 2, 3, 4
)
SELECT coalesce(o.day, m.day) AS day, coalesce(o.scope, m.scope) AS scope, coalesce(o.code, m.code) AS code,
       coalesce(o.severity, m.severity) AS severity, coalesce(o.findings, 0) AS findings,
       coalesce(m.new, 0) AS new, coalesce(m.resolved, 0) AS resolved
  FROM open_at o FULL JOIN moved m USING (day, scope, code, severity);
GRANT SELECT ON motofinai.finding_trends TO PUBLIC;
