-- The check functions under the seed's names, callable without a schema
-- prefix: thin wrappers in public (on every default search_path). Their
-- bodies name everything schema-qualified, so they need no pinned
-- search_path, and being plain SQL they are inlined and keep streaming.
CREATE FUNCTION public.check_loan_consistency(loan_id bigint)
    RETURNS TABLE (severity text, code text, entity text, entity_id bigint, message text, details jsonb)
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
    AS $$ SELECT * FROM motofinai.check_loan_consistency(loan_id) $$;
CREATE FUNCTION public.check_loan_consistency()
    RETURNS TABLE (severity text, code text, entity text, entity_id bigint, message text, details jsonb)
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
    AS $$ SELECT * FROM motofinai.check_loan_consistency() $$;
CREATE FUNCTION public.check_payment_consistency(payment_id bigint)
    RETURNS TABLE (severity text, code text, entity text, entity_id bigint, message text, details jsonb)
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
    AS $$ SELECT * FROM motofinai.check_payment_consistency(payment_id) $$;
CREATE FUNCTION public.check_payment_consistency()
    RETURNS TABLE (severity text, code text, entity text, entity_id bigint, message text, details jsonb)
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
    AS $$ SELECT * FROM motofinai.check_payment_consistency() $$;
CREATE FUNCTION public.check_inventory_consistency(motor_id bigint)
    RETURNS TABLE (severity text, code text, entity text, entity_id bigint, message text, details jsonb)
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
    AS $$ SELECT * FROM motofinai.check_inventory_consistency(motor_id) $$;
CREATE FUNCTION public.check_inventory_consistency()
    RETURNS TABLE (severity text, code text, entity text, entity_id bigint, message text, details jsonb)
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
    AS $$ SELECT * FROM motofinai.check_inventory_consistency() $$;
CREATE FUNCTION public.check_system_consistency()
    RETURNS TABLE (severity text, code text, entity text, entity_id bigint, message text, details jsonb)
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
    AS $$ SELECT * FROM motofinai.check_system_consistency() $$;
CREATE FUNCTION public.check_quick_consistency()
    RETURNS TABLE (severity text, code text, entity text, entity_id bigint, message text, details jsonb)
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
    AS $$ SELECT * FROM motofinai.check_quick_consistency() $$;
CREATE FUNCTION public.consistency_report(scope text, id bigint DEFAULT NULL) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE SECURITY INVOKER
    AS $$ SELECT motofinai.consistency_report(scope, id) $$;
