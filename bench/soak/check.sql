-- Single-entity checks on random ids while the others write.
\set l random(1, :loans)
\set p random(1, :payments)
SELECT count(*) FROM check_loan_consistency(:l);
SELECT count(*) FROM check_payment_consistency(:p);
