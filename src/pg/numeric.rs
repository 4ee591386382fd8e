//! A numeric's stored form (utils/adt/numeric.c, `NumericData`) read as
//! whole cents, and numerics made from cents: what `motofinai.cents_sum`
//! needs to add amounts in an `int8` instead of numeric's own aggregate state.

use pgrx::pg_sys;

/// A numeric value as cents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cents {
    Whole(i64),
    NaN,
    /// A fraction of a cent (more than two decimal digits that are not 0).
    Fractional,
    /// Beyond an `int8` of cents (or an infinity).
    OutOfRange,
}

// numeric.c's header bits.
const SIGN_MASK: u16 = 0xC000;
const NEG: u16 = 0x4000;
const SHORT: u16 = 0x8000;
const SPECIAL: u16 = 0xC000;
const NAN: u16 = 0xC000;
const SPECIAL_MASK: u16 = 0xF000;
const SHORT_SIGN_MASK: u16 = 0x2000;
const SHORT_WEIGHT_SIGN_MASK: u16 = 0x0040;
const SHORT_WEIGHT_MASK: u16 = 0x003F;
/// Digits are base 10000 (`NBASE`); cents are two decimal digits of one.
const NBASE: i64 = 10_000;

/// The cents of a numeric Datum.
///
/// # Safety
/// `datum` is a valid, non-NULL `numeric` Datum.
pub unsafe fn cents(datum: pg_sys::Datum) -> Cents {
    // SAFETY: a numeric is a varlena; the packed form keeps a short header
    // in place (no copy), and a copy (toasted value) lives in the current context.
    let v = unsafe { pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr()) };
    // SAFETY: v is a valid varlena, its data `len` bytes long.
    let (data, len) = unsafe { (pgrx::varlena::vardata_any(v).cast::<u8>(), pgrx::varlena::varsize_any_exhdr(v)) };
    // SAFETY: every numeric has its 2-byte header; bytes may be unaligned
    // after a short varlena header, hence the unaligned reads.
    let read = |at: usize| unsafe { data.add(at).cast::<u16>().read_unaligned() };
    let header = read(0);
    if header & SIGN_MASK == SPECIAL {
        return if header & SPECIAL_MASK == NAN { Cents::NaN } else { Cents::OutOfRange };
    }
    let (negative, weight, start) = if header & SHORT != 0 {
        let w = (header & SHORT_WEIGHT_MASK) as i32;
        (header & SHORT_SIGN_MASK != 0, if header & SHORT_WEIGHT_SIGN_MASK != 0 { w - 64 } else { w }, 2)
    } else {
        (header & SIGN_MASK == NEG, read(2) as i16 as i32, 4)
    };
    let digits = (len.saturating_sub(start) / 2) as i32;
    // The whole part from the digits of weight `weight` down to 0 (zeros
    // where the stored digits end first), the cents from the digit of
    // weight -1 (hundredths of a cent below them), nothing but zeros below.
    // In i64: this runs per installment of a system check, where i128
    // division was a tenth of the aggregate's time.
    let (mut whole, mut hundredths) = (0i64, 0i64);
    for i in 0..digits.max(weight + 1) {
        let d = if i < digits { read(start + 2 * i as usize) as i64 } else { 0 };
        match weight - i {
            w if w >= 0 => match whole.checked_mul(NBASE).and_then(|v| v.checked_add(d)) {
                Some(v) => whole = v,
                None => return Cents::OutOfRange,
            },
            -1 if d % 100 != 0 => return Cents::Fractional,
            -1 => hundredths = d / 100,
            _ if d != 0 => return Cents::Fractional,
            _ => {}
        }
    }
    match whole.checked_mul(100).and_then(|v| v.checked_add(hundredths)) {
        Some(c) => Cents::Whole(if negative { -c } else { c }),
        None => Cents::OutOfRange,
    }
}

/// `cents` / 100 as a numeric of scale 2 (what `sum` of a `numeric(p, 2)` gives).
pub fn from_cents(cents: i64) -> pg_sys::Datum {
    // SAFETY: a plain constructor; it allocates in the current context.
    pg_sys::Datum::from(unsafe { pg_sys::int64_div_fast_to_numeric(cents, 2) })
}

/// numeric 'NaN' (numeric.c's make_result of `const_nan`: a short header alone).
pub fn nan() -> pg_sys::Datum {
    const SIZE: usize = pg_sys::VARHDRSZ + 2;
    // SAFETY: palloc'd SIZE bytes in the current context, sized and headed
    // as numeric.c makes its NaN.
    unsafe {
        let v = pg_sys::palloc(SIZE).cast::<pg_sys::varlena>();
        pgrx::varlena::set_varsize_4b(v, SIZE as i32);
        v.cast::<u8>().add(pg_sys::VARHDRSZ).cast::<u16>().write_unaligned(NAN);
        pg_sys::Datum::from(v)
    }
}
