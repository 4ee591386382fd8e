//! Hot rows: per table, the rows updated most often over the last hour. For
//! each 5-minute bucket a fixed-size Space-Saving summary (exact while a
//! bucket sees no more distinct rows than it has entries; never
//! under-counting), kept in the table's shared-memory slot.

use super::store;
use crate::catalog::{Regclass, Table};
use crate::errors::{finish, sqlstate, DbError, Result};
use crate::gucs::{HOT_ROWS, MAX_HOT_ROWS};
use pgrx::prelude::*;
use std::collections::BTreeMap;

pub const BUCKETS: usize = 12;
pub const BUCKET_SECONDS: i64 = 300;

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct HotEntry {
    key: i64,
    count: u32,
    /// Space-Saving's over-count bound for this entry.
    error: u32,
    /// The query id of the statement that last modified the row: what a
    /// later stale write collided with.
    last_query: u64,
    /// Conflicts and observed would-be conflicts on the row while tracked.
    conflicts: u32,
    observed: u32,
}

#[derive(Clone, Copy, Default)]
#[repr(C)]
pub struct Bucket {
    /// Which 5-minute period (Unix time / 300) the bucket holds.
    epoch: i64,
    used: u32,
    entries: [HotEntry; MAX_HOT_ROWS],
}

/// A table's buckets, a ring over the last hour.
pub type Buckets = [Bucket; BUCKETS];

/// Count one modification of row `key` at Unix time `now` by statement `query`.
pub fn count(buckets: &mut Buckets, key: i64, query: u64, now: i64) {
    let epoch = now / BUCKET_SECONDS;
    let bucket = &mut buckets[(epoch as usize) % BUCKETS];
    if bucket.epoch != epoch {
        *bucket = Bucket { epoch, ..Bucket::default() };
    }
    bucket.add(key, query, HOT_ROWS.get().clamp(1, MAX_HOT_ROWS as i32) as usize);
}

/// Note a (real or observed) conflict on row `key`, if the summary tracks
/// it; the query id of the statement that last modified it (0: unknown).
pub fn conflict(buckets: &mut Buckets, key: i64, observed: bool, now: i64) -> u64 {
    let epoch = now / BUCKET_SECONDS;
    // The latest bucket that tracks the row knows its last writer.
    let mut recent: Vec<&mut Bucket> =
        buckets.iter_mut().filter(|b| b.epoch > epoch - BUCKETS as i64 && b.epoch <= epoch).collect();
    recent.sort_by_key(|b| std::cmp::Reverse(b.epoch));
    for bucket in recent {
        let used = bucket.used as usize;
        if let Some(e) = bucket.entries[..used].iter_mut().find(|e| e.key == key) {
            if observed {
                e.observed += 1;
            } else {
                e.conflicts += 1;
            }
            return e.last_query;
        }
    }
    0
}

impl Bucket {
    /// Space-Saving: count a known key, else take a free entry, else replace
    /// the least counted one, inheriting its count as the error bound.
    fn add(&mut self, key: i64, query: u64, capacity: usize) {
        let used = self.used as usize;
        if let Some(e) = self.entries[..used].iter_mut().find(|e| e.key == key) {
            e.count += 1;
            e.last_query = query;
        } else if used < capacity {
            self.entries[used] = HotEntry { key, count: 1, last_query: query, ..HotEntry::default() };
            self.used += 1;
        } else if let Some(min) = self.entries[..used].iter_mut().min_by_key(|e| e.count) {
            *min = HotEntry { key, count: min.count + 1, error: min.count, last_query: query, ..HotEntry::default() };
        }
    }
}

/// The rows of a table modified most often in the last `minutes` (rounded
/// up to whole 5-minute buckets, at most 60): measured counts, and the bound
/// by which a count may be too high (0: exact).
#[pg_extern(volatile, parallel_restricted)]
#[allow(clippy::type_complexity)] // pgrx reads the column names from the signature
pub fn hot_rows(
    tbl: Regclass,
    minutes: default!(i32, 60),
) -> TableIterator<
    'static,
    (
        name!(id, i64),
        name!(modifications, i64),
        name!(max_overcount, i64),
        name!(conflicts, i64),
        name!(observed_conflicts, i64),
    ),
> {
    TableIterator::new(finish(|| rows(tbl, minutes)))
}

/// (id, modifications, max_overcount, conflicts, observed_conflicts)
type HotRow = (i64, i64, i64, i64, i64);

fn rows(tbl: Regclass, minutes: i32) -> Result<Vec<HotRow>> {
    require_select(tbl)?;
    let now = store::unix_seconds() / BUCKET_SECONDS;
    let span = ((minutes.max(0) as i64 + BUCKET_SECONDS / 60 - 1) / (BUCKET_SECONDS / 60)).min(BUCKETS as i64);
    let mut counts: BTreeMap<i64, [i64; 4]> = BTreeMap::new();
    store::with_slot(tbl.0, |slot| {
        for b in slot.hot.iter().filter(|b| b.epoch > now - span && b.epoch <= now) {
            for e in &b.entries[..b.used as usize] {
                let c = counts.entry(e.key).or_default();
                c[0] += e.count as i64;
                c[1] += e.error as i64;
                c[2] += e.conflicts as i64;
                c[3] += e.observed as i64;
            }
        }
    });
    let mut rows: Vec<HotRow> = counts.into_iter().map(|(k, [c, e, x, o])| (k, c, e, x, o)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(rows)
}

/// Row ids are data: only for those who may read the table.
fn require_select(tbl: Regclass) -> Result<()> {
    // SAFETY: an ACL check by OID for the current user; a missing relation
    // raises PostgreSQL's own error.
    let allowed =
        unsafe { pg_sys::pg_class_aclcheck(tbl.0, pg_sys::GetUserId(), pg_sys::ACL_SELECT as pg_sys::AclMode) };
    if allowed == pg_sys::AclResult::ACLCHECK_OK {
        return Ok(());
    }
    let table = Table::open(Some(tbl), "tbl")?;
    Err(DbError::new(sqlstate::INSUFFICIENT_PRIVILEGE, format!("permission denied for table {}", table.name))
        .table(&table.schema, &table.name))
}
