//! `motofinai.cents_sum(numeric)`: `sum` of amounts that are whole cents,
//! added in an `int8` of cents. numeric's own `sum` keeps a palloc'd state
//! per group, which a parallel aggregate serializes and deserializes: at
//! 100,000 loans, about 0.35 s of the system check per summed column. The
//! checks use it only for `numeric(p, 2)` columns with p <= 18, where every
//! value is whole cents and fits (see `Schema::holds_cents`); its result is
//! `sum`'s, scale 2 included, NaN included.

use crate::errors::{sqlstate, DbError, Result};
use crate::pg::fmgr::v1_function;
use crate::pg::numeric::{self, Cents};
use pgrx::fcinfo::{pg_getarg_datum, pg_return_null};
use pgrx::pg_sys;

/// The state of a sum that met a NaN (never a sum of cents: see `add`).
const NAN: i64 = i64::MIN;

/// Two states added: NaN stays NaN; more than an `int8` of cents is an error.
pub(super) fn add(a: i64, b: i64) -> Result<i64> {
    if a == NAN || b == NAN {
        return Ok(NAN);
    }
    a.checked_add(b).filter(|&s| s != NAN).ok_or_else(out_of_range)
}

fn out_of_range() -> DbError {
    DbError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "cents_sum() out of range: more than 2^63 cents")
}

/// The state after adding `cents` to `state` (NULL: nothing added yet).
pub(super) fn accum(state: Option<i64>, cents: Cents) -> Result<i64> {
    let state = state.unwrap_or(0);
    match cents {
        _ if state == NAN => Ok(NAN),
        Cents::Whole(c) => add(state, c),
        Cents::NaN => Ok(NAN),
        Cents::Fractional => Err(DbError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            "cents_sum() adds whole cents: a value has a fraction of a cent",
        )
        .hint("Use sum(), or a numeric(p, 2) column.")),
        Cents::OutOfRange => Err(out_of_range()),
    }
}

v1_function!(
    /// `motofinai.cents_accum(bigint, numeric)`: the transition (not strict:
    /// the state starts NULL, like `sum`'s).
    motofinai_cents_accum,
    pg_finfo_motofinai_cents_accum,
    |fcinfo| {
        // SAFETY: the fmgr's fcinfo, with its two arguments.
        let (state, amount) = unsafe { (pg_getarg_datum(fcinfo, 0), pg_getarg_datum(fcinfo, 1)) };
        let state = state.map(|d| d.value() as i64);
        match amount {
            // SAFETY: a non-NULL numeric argument.
            Some(a) => Ok(pg_sys::Datum::from(accum(state, unsafe { numeric::cents(a) })?)),
            // SAFETY: the fmgr's fcinfo; a NULL state stays NULL.
            None => Ok(state.map_or_else(|| unsafe { pg_return_null(fcinfo) }, pg_sys::Datum::from)),
        }
    }
);

v1_function!(
    /// `motofinai.cents_combine(bigint, bigint)`: two workers' sums (strict).
    motofinai_cents_combine,
    pg_finfo_motofinai_cents_combine,
    |fcinfo| {
        // SAFETY: the fmgr's fcinfo; strict, so both arguments are set.
        let (a, b) = unsafe { (pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0), pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 1)) };
        Ok(pg_sys::Datum::from(add(a.value() as i64, b.value() as i64)?))
    }
);

v1_function!(
    /// `motofinai.cents_final(bigint)`: the sum as a numeric of scale 2 (strict).
    motofinai_cents_final,
    pg_finfo_motofinai_cents_final,
    |fcinfo| {
        // SAFETY: the fmgr's fcinfo; strict, so the argument is set.
        let cents = unsafe { pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0) }.value() as i64;
        Ok(numeric_of(cents))
    }
);

/// A sum's state as the numeric it stands for.
pub(super) fn numeric_of(cents: i64) -> pg_sys::Datum {
    if cents == NAN {
        numeric::nan()
    } else {
        numeric::from_cents(cents)
    }
}

pgrx::extension_sql!(
    r#"
CREATE FUNCTION motofinai.cents_accum(bigint, numeric) RETURNS bigint
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'motofinai_cents_accum';
CREATE FUNCTION motofinai.cents_combine(bigint, bigint) RETURNS bigint
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'motofinai_cents_combine';
CREATE FUNCTION motofinai.cents_final(bigint) RETURNS numeric
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'motofinai_cents_final';
CREATE AGGREGATE motofinai.cents_sum(numeric) (
    SFUNC = motofinai.cents_accum, STYPE = bigint,
    COMBINEFUNC = motofinai.cents_combine, FINALFUNC = motofinai.cents_final, PARALLEL = SAFE);
COMMENT ON AGGREGATE motofinai.cents_sum(numeric) IS
    'sum() of amounts in whole cents (numeric(p, 2), p <= 18), added as bigint cents; the checks'' own';
"#,
    name = "cents_sum",
    requires = ["config"]
);
