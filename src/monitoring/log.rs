//! The conflict log: the last conflicts and observed would-be conflicts,
//! with who and which statement caused them, and the same counted per
//! statement. In the statistics' shared memory (fixed size, so the log
//! survives the rollback each real conflict causes); written under the
//! same lock as the counts, one entry per conflict, never with SPI.

use super::store;
use crate::gucs::CONFLICT_LOG_SIZE;
use pgrx::prelude::*;

/// The most entries the log can hold (`motofinai.conflict_log_size` keeps fewer).
pub const LOG_MAX: usize = 1000;
/// Statements tracked per cluster; past that, the one idle longest is dropped.
pub const STATEMENTS: usize = 256;
const APP_LEN: usize = 64;

/// What collided: a stale stated version, or a blind write under strict.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    StaleVersion,
    NotStated,
}

/// One conflict as the trigger saw it.
pub struct Event {
    pub relid: u32,
    pub key: Option<i64>,
    pub expected: i64,
    pub found: i64,
    pub kind: Kind,
    pub observed: bool,
}

#[derive(Clone, Copy)]
#[repr(C)]
pub struct Entry {
    at: i64,
    dbid: u32,
    relid: u32,
    key: i64,
    has_key: bool,
    stale: bool,
    observed: bool,
    expected: i64,
    found: i64,
    userid: u32,
    pid: i32,
    query_id: u64,
    winner_query_id: u64,
    application: [u8; APP_LEN],
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            at: 0,
            dbid: 0,
            relid: 0,
            key: 0,
            has_key: false,
            stale: false,
            observed: false,
            expected: 0,
            found: 0,
            userid: 0,
            pid: 0,
            query_id: 0,
            winner_query_id: 0,
            application: [0; APP_LEN],
        }
    }
}

#[derive(Clone, Copy, Default)]
#[repr(C)]
pub struct Statement {
    dbid: u32,
    relid: u32,
    query_id: u64,
    conflicts: u64,
    observed: u64,
    last_at: i64,
}

/// The log ring and the per-statement counts.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Log {
    entries: [Entry; LOG_MAX],
    /// Entries ever written; the next goes to `written % capacity`.
    written: u64,
    statements: [Statement; STATEMENTS],
}

impl Default for Log {
    fn default() -> Self {
        Log { entries: [Entry::default(); LOG_MAX], written: 0, statements: [Statement::default(); STATEMENTS] }
    }
}

/// Who is writing: read once per conflict, outside the lock.
pub struct Writer {
    dbid: u32,
    userid: u32,
    pid: i32,
    query_id: u64,
    application: [u8; APP_LEN],
}

impl Writer {
    pub fn current() -> Writer {
        let mut application = [0; APP_LEN];
        let name = crate::pg::backend::application_name();
        let n = name.len().min(APP_LEN - 1);
        application[..n].copy_from_slice(&name.as_bytes()[..n]);
        Writer {
            dbid: crate::pg::backend::database(),
            userid: crate::pg::backend::user(),
            pid: crate::pg::backend::pid(),
            query_id: crate::pg::backend::query_id(),
            application,
        }
    }
}

fn capacity() -> usize {
    (CONFLICT_LOG_SIZE.get().max(1) as usize).min(LOG_MAX)
}

impl Log {
    /// Append one conflict, and count it for its statement.
    pub fn append(&mut self, w: &Writer, e: &Event, winner_query_id: u64, at: i64) {
        let i = (self.written % capacity() as u64) as usize;
        self.entries[i] = Entry {
            at,
            dbid: w.dbid,
            relid: e.relid,
            key: e.key.unwrap_or(0),
            has_key: e.key.is_some(),
            stale: e.kind == Kind::StaleVersion,
            observed: e.observed,
            expected: e.expected,
            found: e.found,
            userid: w.userid,
            pid: w.pid,
            query_id: w.query_id,
            winner_query_id,
            application: w.application,
        };
        self.written += 1;
        let s = self.statement(w.dbid, e.relid, w.query_id);
        if e.observed {
            s.observed += 1;
        } else {
            s.conflicts += 1;
        }
        s.last_at = at;
    }

    fn statement(&mut self, dbid: u32, relid: u32, query_id: u64) -> &mut Statement {
        let found = self.statements.iter().position(|s| s.dbid == dbid && s.relid == relid && s.query_id == query_id);
        let i = found.unwrap_or_else(|| {
            let i = (0..STATEMENTS)
                .min_by_key(|&i| (self.statements[i].relid != 0, self.statements[i].last_at))
                .unwrap_or(0);
            self.statements[i] = Statement { dbid, relid, query_id, ..Statement::default() };
            i
        });
        &mut self.statements[i]
    }

    /// Forget a database's entries and statements that match a table.
    pub fn forget(&mut self, dbid: u32, matches: impl Fn(u32) -> bool) {
        for e in self.entries.iter_mut().filter(|e| e.dbid == dbid && matches(e.relid)) {
            *e = Entry::default();
        }
        for s in self.statements.iter_mut().filter(|s| s.dbid == dbid && matches(s.relid)) {
            *s = Statement::default();
        }
    }

    /// This database's entries, newest first.
    fn recent(&self, dbid: u32) -> Vec<Entry> {
        let n = capacity().min(self.written as usize);
        let mut out: Vec<Entry> = (1..=n)
            .map(|back| self.entries[((self.written - back as u64) % capacity() as u64) as usize])
            .filter(|e| e.dbid == dbid && e.relid != 0)
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.at));
        out
    }

    fn statements(&self, dbid: u32) -> Vec<Statement> {
        self.statements.iter().filter(|s| s.dbid == dbid && s.relid != 0).copied().collect()
    }
}

/// The log of this database, newest first; a row's key only for roles
/// that may read its table (keys are data).
#[pg_extern(volatile, parallel_restricted)]
#[allow(clippy::type_complexity)] // pgrx reads the column names from the signature
fn recent_conflicts_raw() -> TableIterator<
    'static,
    (
        name!(at, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(relid, pg_sys::Oid),
        name!(key, Option<i64>),
        name!(kind, String),
        name!(mode, String),
        name!(expected_version, i64),
        name!(found_version, i64),
        name!(application_name, String),
        name!(userid, pg_sys::Oid),
        name!(pid, i32),
        name!(query_id, i64),
        name!(winner_query_id, Option<i64>),
    ),
> {
    let entries = store::with_log(|log| log.recent(crate::pg::backend::database())).unwrap_or_default();
    TableIterator::new(entries.into_iter().map(|e| {
        let relid = pg_sys::Oid::from(e.relid);
        let app_len = e.application.iter().position(|b| *b == 0).unwrap_or(APP_LEN);
        (
            crate::pg::backend::timestamptz(e.at),
            relid,
            (e.has_key && crate::pg::backend::may_select(relid)).then_some(e.key),
            if e.stale { "stale_version" } else { "version_not_stated" }.to_string(),
            if e.observed { "observe" } else { "enforce" }.to_string(),
            e.expected,
            e.found,
            String::from_utf8_lossy(&e.application[..app_len]).into_owned(),
            pg_sys::Oid::from(e.userid),
            e.pid,
            e.query_id as i64,
            (e.winner_query_id != 0).then_some(e.winner_query_id as i64),
        )
    }))
}

/// Conflicts and observed would-be conflicts per statement (query id) and
/// table of this database. No keys.
#[pg_extern(volatile, parallel_restricted)]
#[allow(clippy::type_complexity)] // pgrx reads the column names from the signature
fn conflicts_by_statement_raw() -> TableIterator<
    'static,
    (
        name!(relid, pg_sys::Oid),
        name!(query_id, i64),
        name!(conflicts, i64),
        name!(observed_conflicts, i64),
        name!(last_conflict_at, Option<pgrx::datum::TimestampWithTimeZone>),
    ),
> {
    let statements = store::with_log(|log| log.statements(crate::pg::backend::database())).unwrap_or_default();
    TableIterator::new(statements.into_iter().map(|s| {
        (
            pg_sys::Oid::from(s.relid),
            s.query_id as i64,
            s.conflicts as i64,
            s.observed as i64,
            crate::pg::backend::timestamptz(s.last_at),
        )
    }))
}
