-- Inventory family. Placeholders (written @name@ in the SQL) filled in by checks/mod.rs:
--   <s>      the quoted schema of the Motofinai tables
--   <motor>  a condition on a motor id: "= $1" for one motor, "IS NOT NULL" for all
--   <loans_of> a condition on a loan's motor id: for one motor, it and its
--            stock's other motors, as a UNION (an OR of the two would make a
--            generic plan for one motor scan every loan); "IS NOT NULL" for all
-- Stock batches are checked for the motors checked.
WITH motor AS (
    SELECT m.* FROM @s@.inventory_motor m WHERE m.id @motor@
), vin AS (
    -- VINs compared trimmed and case-insensitively; only shared ones are kept.
    SELECT upper(btrim(m.chassis_number)) AS vin, count(*) AS n
      FROM @s@.inventory_motor m
     WHERE btrim(m.chassis_number) <> ''
       AND upper(btrim(m.chassis_number)) IN (SELECT upper(btrim(chassis_number)) FROM motor)
     GROUP BY 1 HAVING count(*) > 1
), loans AS (
    SELECT l.motor_id,
           count(*) FILTER (WHERE l.status IN ('pending', 'approved', 'active')) AS open,
           count(*) FILTER (WHERE l.status IN ('active', 'completed')) AS financed
      FROM @s@.loans_loanapplication l
     WHERE l.motor_id @loans_of@
     GROUP BY l.motor_id
), stock AS (
    SELECT st.id, st.quantity_sold, st.quantity_repossessed, sum(coalesce(lo.financed, 0)) AS financed
      FROM @s@.inventory_stock st
      JOIN @s@.inventory_motor m ON m.stock_id = st.id
      LEFT JOIN loans lo ON lo.motor_id = m.id
     WHERE st.id IN (SELECT stock_id FROM motor)
     GROUP BY st.id, st.quantity_sold, st.quantity_repossessed
), finding AS (
    -- The details only for the rules that fire.
    SELECT m.id AS motor_id, f.ord, f.severity, f.code, 'motor'::text AS entity, m.id AS entity_id,
           f.message,
           CASE f.code
             WHEN 'duplicate_vin' THEN jsonb_build_object('vin', btrim(m.chassis_number), 'others', v.n - 1)
             WHEN 'invalid_vin' THEN jsonb_build_object('vin', m.chassis_number)
             WHEN 'over_assigned' THEN jsonb_build_object('open_loans', coalesce(lo.open, 0), 'quantity', m.quantity)
             WHEN 'unapproved_motor_financed'
               THEN jsonb_build_object('approval_status', m.approval_status, 'financed_loans', coalesce(lo.financed, 0))
           END AS details
      FROM motor m
      LEFT JOIN vin v ON v.vin = upper(btrim(m.chassis_number))
      LEFT JOIN loans lo ON lo.motor_id = m.id
     CROSS JOIN LATERAL (VALUES
        (1, 'error', 'duplicate_vin',
         CASE WHEN v.n IS NOT NULL
              THEN format('VIN %s is duplicated in %s other record(s)', btrim(m.chassis_number), v.n - 1) END),
        (2, 'warning', 'invalid_vin',
         CASE WHEN btrim(m.chassis_number) <> ''
                   AND upper(btrim(m.chassis_number)) !~ '^[A-HJ-NPR-Z0-9]{17}$'
              THEN format('VIN %s is not a valid 17-character VIN', btrim(m.chassis_number)) END),
        (3, 'error', 'over_assigned',
         CASE WHEN coalesce(lo.open, 0) > m.quantity
              THEN format('Motor is assigned to %s active loans but has %s unit(s)', lo.open, m.quantity) END),
        (4, 'error', 'unapproved_motor_financed',
         CASE WHEN m.approval_status <> 'approved' AND coalesce(lo.financed, 0) > 0
              THEN format('Motor is %s but finances %s loan(s)', m.approval_status, lo.financed) END)
     ) AS f(ord, severity, code, message)
     WHERE f.message IS NOT NULL
    UNION ALL
    SELECT NULL, 5, 'warning', 'stock_sold_mismatch', 'stock', st.id,
           format('Stock %s counts %s sold but %s loans were activated on its motors',
                  st.id, st.quantity_sold, st.financed),
           jsonb_build_object('quantity_sold', st.quantity_sold, 'quantity_repossessed', st.quantity_repossessed,
                              'activated_loans', st.financed)
      FROM stock st
     WHERE st.quantity_sold + st.quantity_repossessed < st.financed
)
SELECT severity, code, entity, entity_id, message, details
  FROM finding
 ORDER BY entity = 'stock', entity_id, severity, ord
