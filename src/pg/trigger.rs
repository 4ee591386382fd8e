//! The trigger manager's calling convention (commands/trigger.h): C-language
//! trigger functions, the `TriggerData` they are handed, and what a trigger
//! resolves once and keeps for the backend.

use super::tuple::{self, find_column, IntKind};
use crate::errors::{sqlstate, DbError};
use pgrx::pg_sys;
use std::cell::RefCell;
use std::ffi::c_int;
use std::ffi::CStr;
use std::thread::LocalKey;

/// When a row trigger must fire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    Before,
    After,
}

/// Why a trigger function's call is not one it can serve.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Misfire {
    /// Not called by the trigger manager at all.
    NotATrigger,
    /// A trigger, but not a row event at the right time of the right kind.
    WrongEvent,
}

/// The trigger data of a call that the trigger manager made for a row
/// event at `timing` (`CALLED_AS_TRIGGER`, `TRIGGER_FIRED_FOR_ROW`,
/// `TRIGGER_FIRED_BEFORE`/`AFTER`) whose operation (`TRIGGER_EVENT_INSERT`,
/// ...) is one of `ops`, with that operation.
///
/// # Safety
/// `fcinfo` is the call's valid `FunctionCallInfo`; the returned reference
/// lives as long as the call.
pub unsafe fn row_trigger_data<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    timing: Timing,
    ops: &[u32],
) -> Result<(&'a pg_sys::TriggerData, u32), Misfire> {
    // SAFETY: the caller's fcinfo; its context is NULL or a Node.
    let context = unsafe { (*fcinfo).context };
    // SAFETY: a non-NULL context is a Node, whose tag says what it is.
    if context.is_null() || unsafe { (*context).type_ } != pg_sys::NodeTag::T_TriggerData {
        return Err(Misfire::NotATrigger);
    }
    // SAFETY: tagged T_TriggerData, so it is one.
    let td = unsafe { &*(context as *const pg_sys::TriggerData) };
    let ev = td.tg_event;
    let when = match timing {
        Timing::Before => pg_sys::TRIGGER_EVENT_BEFORE,
        Timing::After => pg_sys::TRIGGER_EVENT_AFTER,
    };
    let op = ev & pg_sys::TRIGGER_EVENT_OPMASK;
    if ev & pg_sys::TRIGGER_EVENT_ROW != 0 && ev & pg_sys::TRIGGER_EVENT_TIMINGMASK == when && ops.contains(&op) {
        Ok((td, op))
    } else {
        Err(Misfire::WrongEvent)
    }
}

/// The trigger itself (`tg_trigger`).
pub fn trigger(td: &pg_sys::TriggerData) -> &pg_sys::Trigger {
    // SAFETY: the trigger manager always sets tg_trigger.
    unsafe { &*td.tg_trigger }
}

/// A trigger's arguments (`tgargs`, `tgnargs` C strings).
pub fn arguments(trigger: &pg_sys::Trigger) -> Vec<String> {
    (0..trigger.tgnargs as usize)
        // SAFETY: tgargs holds tgnargs NUL-terminated strings.
        .map(|i| unsafe { CStr::from_ptr(*trigger.tgargs.add(i)) }.to_string_lossy().into_owned())
        .collect()
}

/// What a row trigger resolved once for one trigger (by trigger OID), kept
/// for the backend and dropped when its table's relcache entry is
/// invalidated (ALTER TABLE, CREATE OR REPLACE TRIGGER, ...). A handful of
/// tables carry our triggers, so a short vector beats a hash map.
pub type Entries<T> = RefCell<Vec<(pg_sys::Oid, pg_sys::Oid, T)>>;

pub struct TriggerCache<T: Copy + 'static>(&'static LocalKey<Entries<T>>);

impl<T: Copy + 'static> TriggerCache<T> {
    pub const fn new(entries: &'static LocalKey<Entries<T>>) -> Self {
        TriggerCache(entries)
    }

    /// The entry for a trigger of a relation, resolving it on a miss. No
    /// borrow is held while `resolve` runs: it may reach catalog code that
    /// processes invalidations, which call [`TriggerCache::invalidate`].
    pub fn get<E>(
        &self,
        tgoid: pg_sys::Oid,
        relid: pg_sys::Oid,
        resolve: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let hit = self.0.with_borrow(|v| v.iter().find(|(t, _, _)| *t == tgoid).map(|(_, _, e)| *e));
        if let Some(e) = hit {
            return Ok(e);
        }
        let entry = resolve()?;
        self.0.with_borrow_mut(|v| v.push((tgoid, relid, entry)));
        Ok(entry)
    }

    /// Forget a relation's entries (all of them for InvalidOid).
    pub fn invalidate(&self, relid: pg_sys::Oid) {
        self.0.with_borrow_mut(|v| {
            if relid == pg_sys::InvalidOid {
                v.clear();
            } else {
                v.retain(|(_, r, _)| *r != relid);
            }
        })
    }
}

/// An integer column a row trigger names in its argument number `.1` (the
/// loan id of an installment, say), resolved once per trigger. The first
/// argument is required; a trigger without a later one names no column there.
pub struct IntColumn(pub TriggerCache<Option<(c_int, IntKind)>>, pub usize);

impl IntColumn {
    /// The column's values in the row a change removes and the row it
    /// leaves: the old row for UPDATE and DELETE, the new one for INSERT and
    /// UPDATE (none where the trigger names no column). `install` names the
    /// function that installs the trigger, for the hint when the column is gone.
    pub fn values(&self, td: &pg_sys::TriggerData, op: u32, install: &str) -> Result<[Option<i64>; 2], DbError> {
        let trig = trigger(td);
        let desc = tuple::descriptor(td.tg_relation);
        let column = self.0.get(trig.tgoid, tuple::relid(td.tg_relation), || {
            // Past the first, an argument may be missing or empty: no column.
            let column = arguments(trig).into_iter().nth(self.1).unwrap_or_default();
            if column.is_empty() && self.1 > 0 {
                return Ok(None);
            }
            let (att, ty) = find_column(desc, &column).ok_or_else(|| {
                DbError::new(sqlstate::UNDEFINED_COLUMN, format!("trigger column \"{column}\" not found"))
                    .hint(format!("Run {install} again."))
            })?;
            let kind = IntKind::of(ty).ok_or_else(|| {
                DbError::new(sqlstate::DATATYPE_MISMATCH, format!("trigger column \"{column}\" is not an integer"))
            })?;
            Ok::<_, DbError>(Some((att, kind)))
        })?;
        let Some((att, kind)) = column else { return Ok([None, None]) };
        let read =
            |t: pg_sys::HeapTuple| (!t.is_null()).then(|| tuple::attr(t, att, desc).map(|d| kind.read(d))).flatten();
        // trigtuple is the new row for INSERT, the old one for UPDATE and DELETE.
        let new = if op == pg_sys::TRIGGER_EVENT_UPDATE { read(td.tg_newtuple) } else { None };
        Ok([read(td.tg_trigtuple), new])
    }
}

/// The trigger data of an AFTER row trigger, or the protocol error naming
/// the function and what installs it.
///
/// # Safety
/// `fcinfo` is the call's.
pub unsafe fn after_row<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    name: &str,
    install: &str,
) -> Result<(&'a pg_sys::TriggerData, u32), DbError> {
    let ops = [pg_sys::TRIGGER_EVENT_INSERT, pg_sys::TRIGGER_EVENT_UPDATE, pg_sys::TRIGGER_EVENT_DELETE];
    // SAFETY: the caller's fcinfo.
    unsafe { row_trigger_data(fcinfo, Timing::After, &ops) }.map_err(|_| {
        DbError::new(
            sqlstate::TRIGGER_PROTOCOL_VIOLATED,
            format!("{name}() must be fired AFTER INSERT, UPDATE or DELETE FOR EACH ROW"),
        )
        .hint(format!("Use {install} to install it."))
    })
}
