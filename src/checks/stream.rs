//! Findings from a list of queries, one query at a time: a single-entity
//! statement through a kept generic plan and an SPI cursor, an all-rows
//! statement run whole so that it can use parallel workers.

use super::finding::Finding;
use crate::errors::{spi_error, sqlstate, DbError, Result};
use pgrx::prelude::*;
use pgrx::JsonB;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_char, c_int, CStr, CString};

/// A query producing finding rows, with its one optional bigint argument
/// (`id`: a single entity) or bigint[] argument (`ids`: a set of loans).
pub struct Query {
    pub sql: String,
    pub id: Option<i64>,
    pub ids: Option<Vec<i64>>,
    /// Planner settings for this statement alone, where measurement showed
    /// the planner's choice to be the slower one.
    pub settings: &'static [(&'static CStr, &'static CStr)],
    /// Findings already computed (by a statement that served several
    /// sections), given in this query's place.
    pub rows: Option<Vec<Finding>>,
}

impl Query {
    pub fn all(sql: String) -> Query {
        Query { sql, id: None, ids: None, settings: &[], rows: None }
    }

    pub fn ready(rows: Vec<Finding>) -> Query {
        Query { rows: Some(rows), ..Query::all(String::new()) }
    }
}

const BATCH: i64 = 500;

thread_local! {
    /// Plans kept for the backend, by query text (which names the schema):
    /// planning a family's statement costs ten times more than running it for
    /// one id. They are generic plans (the id is a parameter the indexes
    /// serve), so no execution re-plans; PostgreSQL's plan cache revalidates
    /// them after DDL. Never freed: a handful per schema.
    static PLANS: RefCell<HashMap<String, usize>> = RefCell::new(HashMap::new());
}

/// Run `f` with `jit = off` and the query's own settings, as a function's
/// `SET` clauses would. The
/// checks are joins and aggregates, not expression-heavy scans: for one
/// entity, compiling the generic plan would cost far more than running it
/// (80 ms against 0.6 ms); over every row of 100,000 loans JIT cost the
/// inventory family 1.0 of its 1.2 s and the loan family 1.9 of its 5.1 s.
fn with_settings<T>(q: &Query, f: impl FnOnce() -> T) -> T {
    // SAFETY: guc.c's protocol for function-level SET (fmgr_security_definer
    // does the same): a new nest level, settings saved into it, and the level
    // popped after; an error in `f` aborts the (sub)transaction, which pops it.
    // The names and values are static C strings.
    unsafe {
        let level = pg_sys::NewGUCNestLevel();
        for (name, value) in [(c"jit", c"off")].iter().chain(q.settings) {
            pg_sys::set_config_option(
                name.as_ptr(),
                value.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
        }
        let out = f();
        pg_sys::AtEOXact_GUC(true, level);
        out
    }
}

/// Open a cursor for the query (under an SPI connection) and name it.
fn open_cursor(q: &Query) -> Result<String> {
    with_settings(q, || open_plan(q))
}

fn open_plan(q: &Query) -> Result<String> {
    let kept = PLANS.with_borrow(|plans| plans.get(&q.sql).copied());
    let plan = match kept {
        Some(p) => p as pg_sys::SPIPlanPtr,
        None => {
            let sql =
                CString::new(q.sql.as_str()).map_err(|e| DbError::new(sqlstate::INTERNAL_ERROR, e.to_string()))?;
            let mut types = [pg_sys::INT8OID];
            let nargs = q.id.map_or(0, |_| 1);
            // SAFETY: called under an SPI connection (open_cursor's caller);
            // `sql` and `types` outlive the call.
            let plan = unsafe {
                pg_sys::SPI_prepare_cursor(
                    sql.as_ptr(),
                    nargs,
                    types.as_mut_ptr(),
                    pg_sys::CURSOR_OPT_GENERIC_PLAN as c_int,
                )
            };
            // SAFETY: a plan SPI_prepare_cursor just returned.
            if plan.is_null() || unsafe { pg_sys::SPI_keepplan(plan) } != 0 {
                return Err(DbError::new(sqlstate::INTERNAL_ERROR, "could not prepare a consistency check"));
            }
            PLANS.with_borrow_mut(|plans| plans.insert(q.sql.clone(), plan as usize));
            plan
        }
    };
    let mut values = [pg_sys::Datum::from(q.id.unwrap_or_default())];
    let nulls = [b' ' as c_char];
    // As pgrx does: read-only until the transaction has written.
    // SAFETY: reads the transaction state; cannot fail.
    let read_only = unsafe { pg_sys::GetCurrentTransactionIdIfAny() } == pg_sys::InvalidTransactionId;
    // SAFETY: a kept plan with `nargs` int8 parameters, values and nulls to
    // match, under the caller's SPI connection.
    let portal =
        unsafe { pg_sys::SPI_cursor_open(std::ptr::null(), plan, values.as_mut_ptr(), nulls.as_ptr(), read_only) };
    // SAFETY: SPI_cursor_open returns an open portal (or raises), whose name is a C string.
    Ok(unsafe { CStr::from_ptr((*portal).name) }.to_string_lossy().into_owned())
}

/// An all-rows statement runs to completion in one call, which lets the
/// planner use parallel workers (a cursor fetched in batches cannot): on
/// 100,000 loans the hash joins and aggregates share the cores. Its findings
/// are few next to the rows it reads, so holding them is cheap.
pub fn run_whole(q: &Query) -> Result<Vec<Finding>> {
    let args: Vec<pgrx::datum::DatumWithOid> = q.ids.iter().map(|ids| ids.clone().into()).collect();
    with_settings(q, || {
        Spi::connect(|client| {
            client.select(&q.sql, None, &args)?.map(|row| to_finding(&row)).collect::<std::result::Result<Vec<_>, _>>()
        })
        .map_err(spi_error)
    })
}

pub struct Stream {
    queries: VecDeque<Query>,
    cursor: Option<String>,
    batch: VecDeque<Finding>,
    /// The accepted findings, read at the first finding.
    accepted: Option<Vec<Acceptance>>,
}

/// An accepted finding (`motofinai.accepted_findings`, unexpired): a code
/// on an entity, or on every entity of that kind when `entity_id` is None.
struct Acceptance {
    code: String,
    entity: String,
    entity_id: Option<i64>,
    note: serde_json::Value,
}

fn acceptances() -> Result<Vec<Acceptance>> {
    Spi::connect(|c| {
        c.select(
            "SELECT code, entity, entity_id, \
                    jsonb_build_object('reason', reason, 'by', accepted_by, 'at', accepted_at, 'until', until) \
               FROM motofinai.accepted_findings WHERE until IS NULL OR until > pg_catalog.now()",
            None,
            &[],
        )?
        .map(|r| {
            Ok(Acceptance {
                code: r.get::<String>(1)?.unwrap_or_default(),
                entity: r.get::<String>(2)?.unwrap_or_default(),
                entity_id: r.get::<i64>(3)?,
                note: r.get::<JsonB>(4)?.map(|j| j.0).unwrap_or_default(),
            })
        })
        .collect::<std::result::Result<Vec<_>, pgrx::spi::Error>>()
    })
    .map_err(spi_error)
}

/// Mark a finding that is accepted: `details.accepted` says by whom, why and until when.
fn mark(accepted: &[Acceptance], f: &mut Finding) {
    let hit = accepted
        .iter()
        .find(|a| a.code == f.code && a.entity == f.entity && (a.entity_id.is_none() || a.entity_id == f.entity_id));
    if let (Some(a), serde_json::Value::Object(details)) = (hit, &mut f.details.0) {
        details.insert("accepted".into(), a.note.clone());
    }
}

impl Stream {
    pub fn new(queries: Vec<Query>) -> Stream {
        Stream { queries: queries.into(), cursor: None, batch: VecDeque::new(), accepted: None }
    }

    /// Findings already at hand and marked ([`Stream::collect_all`]'s: a
    /// single entity's, a set of loans'): the acceptances are not read again.
    pub fn from_findings(findings: Vec<Finding>) -> Stream {
        Stream { queries: VecDeque::new(), cursor: None, batch: findings.into(), accepted: Some(Vec::new()) }
    }

    /// Open the next query's cursor, or fetch the next batch from the open one.
    fn advance(&mut self) -> Result<bool> {
        match self.cursor.take() {
            Some(name) => {
                let (rows, name) = Spi::connect(|client| {
                    let mut cursor = client.find_cursor(&name)?;
                    let rows =
                        cursor.fetch(BATCH)?.map(|row| to_finding(&row)).collect::<std::result::Result<Vec<_>, _>>()?;
                    // An exhausted cursor is closed when dropped here.
                    let keep = (!rows.is_empty()).then(|| cursor.detach_into_name());
                    Ok::<_, pgrx::spi::Error>((rows, keep))
                })
                .map_err(spi_error)?;
                self.batch.extend(rows);
                self.cursor = name;
                Ok(true)
            }
            None => match self.queries.pop_front() {
                None => Ok(false),
                Some(Query { rows: Some(rows), .. }) => {
                    self.batch.extend(rows);
                    Ok(true)
                }
                Some(q) if q.id.is_none() => {
                    self.batch.extend(run_whole(&q)?);
                    Ok(true)
                }
                Some(q) => {
                    self.cursor = Some(Spi::connect(|_| open_cursor(&q))?);
                    Ok(true)
                }
            },
        }
    }

    /// Everything at once (for reports and small single-entity checks).
    pub fn collect_all(mut self) -> Result<Vec<Finding>> {
        let mut out = Vec::new();
        while let Some(f) = self.next_finding()? {
            out.push(f);
        }
        Ok(out)
    }

    pub fn next_finding(&mut self) -> Result<Option<Finding>> {
        loop {
            if let Some(mut f) = self.batch.pop_front() {
                if self.accepted.is_none() {
                    self.accepted = Some(acceptances()?);
                }
                mark(self.accepted.as_deref().unwrap_or_default(), &mut f);
                return Ok(Some(f));
            }
            if !self.advance()? {
                return Ok(None);
            }
        }
    }
}

impl Iterator for Stream {
    type Item = Finding;
    fn next(&mut self) -> Option<Finding> {
        // Not the top of the call: unwind through pgrx rather than jump.
        self.next_finding().unwrap_or_else(|e| e.unwind())
    }
}

fn to_finding(row: &pgrx::spi::SpiHeapTupleData) -> std::result::Result<Finding, pgrx::spi::Error> {
    Ok(Finding {
        severity: row.get::<String>(1)?.unwrap_or_default(),
        code: row.get::<String>(2)?.unwrap_or_default(),
        entity: row.get::<String>(3)?.unwrap_or_default(),
        entity_id: row.get::<i64>(4)?,
        message: row.get::<String>(5)?.unwrap_or_default(),
        details: row.get::<JsonB>(6)?.unwrap_or(JsonB(serde_json::Value::Null)),
    })
}
