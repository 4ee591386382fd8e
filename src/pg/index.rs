//! How many entries a hash index holds under each of many keys, without
//! the heap: its bucket pages read directly (super::hashpage), an index
//! scan (access/genam.h, indexam.c) where those cannot say.

use super::hashpage;
use pgrx::pg_sys;
use pgrx::{IntoDatum, PgMemoryContexts};
use std::ptr::null_mut;

/// hash.h's standard hash support function number (hash.h is not among
/// pgrx's bindings).
const HASHSTANDARD_PROC: u16 = 1;

/// The keys under whose hash code the hash index `index` of table `heap`
/// holds two entries or more: live, dead or uncommitted rows alike, and
/// other keys of the same hash code. Two rows a snapshot sees under one
/// key are two entries (each row's, or its HOT chain's, own), so no other
/// key can be shared by two visible rows. The caller has checked that
/// `index` is a valid hash index of `heap` on one text column, and the
/// caller's right to read that column.
pub fn hash_keys_held_twice<'a>(
    heap: pg_sys::Oid,
    index: pg_sys::Oid,
    keys: impl Iterator<Item = &'a str>,
) -> Vec<&'a str> {
    let mut twice = Vec::new();
    // Each key's text is palloc'd and hashed by the index's own support
    // function (as _hash_datum2hashkey does); the bucket pages are read
    // directly (crate::pg::hashpage), an index scan only where a bucket is
    // being split into (its old bucket holds some of its entries).
    // SAFETY: pgrx guards each call (an error unwinds through here; the
    // transaction's abort releases the locks, pins and scan memory). The
    // relations are open and locked for the whole scan.
    unsafe {
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let heap_rel = pg_sys::table_open(heap, lock);
        let index_rel = pg_sys::index_open(index, lock);
        let collation = *(*index_rel).rd_indcollation;
        let hash = pg_sys::index_getprocinfo(index_rel, 1, HASHSTANDARD_PROC);
        // The texts in a context of their own, freed at once at the end.
        let mut texts_cx = PgMemoryContexts::new("keys_indexed_twice");
        let texts: Vec<(u32, &str, pg_sys::Datum)> = texts_cx.switch_to(|_| {
            keys.filter_map(|k| {
                let text = k.into_datum()?;
                Some((pg_sys::FunctionCall1Coll(hash, collation, text).value() as u32, k, text))
            })
            .collect()
        });
        let codes: Vec<u32> = texts.iter().map(|&(code, ..)| code).collect();
        let entries = hashpage::entries_under(index_rel, &codes, 2);
        let mut scan = None;
        for ((_, k, text), entries) in texts.into_iter().zip(entries) {
            let entries = entries.unwrap_or_else(|| {
                scan_entries(*scan.get_or_insert_with(|| begin_scan(heap_rel, index_rel, collation)), text, 2)
            });
            if entries >= 2 {
                twice.push(k);
            }
        }
        drop(texts_cx);
        if let Some((scan, _)) = scan {
            pg_sys::index_endscan(scan);
        }
        pg_sys::index_close(index_rel, lock);
        pg_sys::table_close(heap_rel, lock);
    }
    twice
}

/// An index scan of `index_rel` for one key's equality, its key to set.
///
/// # Safety
/// Both relations open and locked, `index_rel` a hash index of `heap_rel`.
unsafe fn begin_scan(
    heap_rel: pg_sys::Relation,
    index_rel: pg_sys::Relation,
    collation: pg_sys::Oid,
) -> (pg_sys::IndexScanDesc, pg_sys::ScanKeyData) {
    #[cfg(not(feature = "pg18"))]
    let scan = pg_sys::index_beginscan(heap_rel, index_rel, pg_sys::GetActiveSnapshot(), 1, 0);
    #[cfg(feature = "pg18")]
    let scan = pg_sys::index_beginscan(heap_rel, index_rel, pg_sys::GetActiveSnapshot(), null_mut(), 1, 0);
    // The hash AM hashes sk_argument with the index's own support function
    // and collation; sk_func (texteq) is only a recheck's, which nothing
    // here does.
    let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
    pg_sys::ScanKeyEntryInitialize(
        &mut key,
        0,
        1,
        pg_sys::HTEqualStrategyNumber as pg_sys::StrategyNumber,
        pg_sys::InvalidOid,
        collation,
        pg_sys::Oid::from(pg_sys::F_TEXTEQ),
        pg_sys::Datum::from(0),
    );
    (scan, key)
}

/// How many entries (up to `cap`) the scan finds under `text`.
///
/// # Safety
/// `scan` from [`begin_scan`], not ended; `text` a live text datum.
unsafe fn scan_entries(scan: (pg_sys::IndexScanDesc, pg_sys::ScanKeyData), text: pg_sys::Datum, cap: usize) -> usize {
    let (scan, mut key) = scan;
    // index_rescan copies the key, and the scan hashes it there.
    key.sk_argument = text;
    pg_sys::index_rescan(scan, &mut key, 1, null_mut(), 0);
    let mut entries = 0;
    while entries < cap && !pg_sys::index_getnext_tid(scan, pg_sys::ScanDirection::ForwardScanDirection).is_null() {
        entries += 1;
    }
    entries
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::{begin_scan, hashpage, scan_entries, HASHSTANDARD_PROC};
    use pgrx::prelude::*;
    use pgrx::IntoDatum;

    /// The bucket pages read directly count what an index scan counts, key
    /// by key: on an index grown by splits from empty, with keys held once
    /// to three times, one held 1,200 times (overflow pages), rows deleted
    /// and updated, and keys it does not hold.
    #[pg_test]
    fn bucket_pages_count_as_an_index_scan() {
        Spi::run(
            "CREATE SCHEMA kt; CREATE TABLE kt.r (id serial, ref text); \
             CREATE INDEX r_hash ON kt.r USING hash (ref); \
             INSERT INTO kt.r (ref) SELECT 'K' || g FROM generate_series(1, 6000) g, generate_series(1, 3) n \
              WHERE n <= g % 4; \
             INSERT INTO kt.r (ref) SELECT 'BIG' FROM generate_series(1, 1200); \
             DELETE FROM kt.r WHERE id % 7 = 0; UPDATE kt.r SET ref = ref || 'u' WHERE id % 11 = 0",
        )
        .unwrap();
        let keys: Vec<String> = Spi::get_one::<Vec<String>>(
            "SELECT array_agg(k) FROM (SELECT DISTINCT ref AS k FROM kt.r UNION SELECT 'none' || g FROM generate_series(1, 500) g) x",
        )
        .unwrap()
        .unwrap();
        let index = Spi::get_one::<pg_sys::Oid>("SELECT 'kt.r_hash'::regclass::oid").unwrap().unwrap();
        let heap = Spi::get_one::<pg_sys::Oid>("SELECT 'kt.r'::regclass::oid").unwrap().unwrap();
        // SAFETY: the relations are opened and locked here, the texts alive
        // until the end of the transaction.
        unsafe {
            let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
            let (heap_rel, index_rel) = (pg_sys::table_open(heap, lock), pg_sys::index_open(index, lock));
            let collation = *(*index_rel).rd_indcollation;
            let hash = pg_sys::index_getprocinfo(index_rel, 1, HASHSTANDARD_PROC);
            let texts: Vec<(u32, pg_sys::Datum)> = keys
                .iter()
                .map(|k| {
                    let text = k.as_str().into_datum().unwrap();
                    (pg_sys::FunctionCall1Coll(hash, collation, text).value() as u32, text)
                })
                .collect();
            let codes: Vec<u32> = texts.iter().map(|&(code, _)| code).collect();
            let direct = hashpage::entries_under(index_rel, &codes, 3);
            let scan = begin_scan(heap_rel, index_rel, collation);
            let mut held = [0; 4];
            for ((_, text), direct) in texts.iter().zip(direct) {
                let scanned = scan_entries(scan, *text, 3);
                assert_eq!(direct, Some(scanned));
                held[scanned] += 1;
            }
            // Every count was met.
            assert!(held.iter().all(|&n| n > 0), "{held:?}");
            pg_sys::index_endscan(scan.0);
            pg_sys::index_close(index_rel, lock);
            pg_sys::table_close(heap_rel, lock);
        }
    }
}
