-- The check functions under the seed's names, callable without a schema
-- prefix: thin wrappers in public (on every default search_path). Their
-- bodies name everything schema-qualified, so they need no pinned
-- search_path, and being plain SQL they are inlined and keep streaming.
-- (Created by EXECUTE, they still belong to the extension.)
DO $$
DECLARE
    f record;
BEGIN
    FOR f IN SELECT * FROM (VALUES
        ('check_loan_consistency', 'loan_id bigint', 'loan_id'),
        ('check_loan_consistency', '', ''),
        ('check_payment_consistency', 'payment_id bigint', 'payment_id'),
        ('check_payment_consistency', '', ''),
        ('check_inventory_consistency', 'motor_id bigint', 'motor_id'),
        ('check_inventory_consistency', '', ''),
        ('check_system_consistency', '', ''),
        ('check_quick_consistency', '', '')) AS v(name, params, args)
    LOOP
        EXECUTE format(
            'CREATE FUNCTION public.%I(%s) RETURNS TABLE (severity text, code text, entity text, entity_id bigint, '
            'message text, details jsonb) LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER '
            'AS %L', f.name, f.params, format('SELECT * FROM motofinai.%I(%s)', f.name, f.args));
    END LOOP;
END $$;
CREATE FUNCTION public.consistency_report(scope text, id bigint DEFAULT NULL) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
    AS $$ SELECT motofinai.consistency_report(scope, id) $$;
