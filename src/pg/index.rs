//! Index scans that read only the index (access/genam.h, indexam.c): how
//! many entries a hash index holds under a key, without the heap.

use pgrx::pg_sys;
use pgrx::IntoDatum;
use std::ptr::null_mut;

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
    // SAFETY: pgrx guards each call (an error unwinds through here; the
    // transaction's abort releases the locks, pins and scan memory). The
    // relations are open and locked for the whole scan; the key's text is
    // palloc'd, alive until index_rescan has copied the key and the scan has
    // hashed it, then freed. A hash scan reads only the bucket pages.
    unsafe {
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let heap_rel = pg_sys::table_open(heap, lock);
        let index_rel = pg_sys::index_open(index, lock);
        #[cfg(not(feature = "pg18"))]
        let scan = pg_sys::index_beginscan(heap_rel, index_rel, pg_sys::GetActiveSnapshot(), 1, 0);
        #[cfg(feature = "pg18")]
        let scan = pg_sys::index_beginscan(heap_rel, index_rel, pg_sys::GetActiveSnapshot(), null_mut(), 1, 0);
        // The hash AM hashes sk_argument with the index's own support
        // function and collation; sk_func (texteq) is only a recheck's,
        // which nothing here does.
        let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
        pg_sys::ScanKeyEntryInitialize(
            &mut key,
            0,
            1,
            pg_sys::HTEqualStrategyNumber as pg_sys::StrategyNumber,
            pg_sys::InvalidOid,
            *(*index_rel).rd_indcollation,
            pg_sys::Oid::from(pg_sys::F_TEXTEQ),
            pg_sys::Datum::from(0),
        );
        for k in keys {
            pgrx::check_for_interrupts!();
            let Some(text) = k.into_datum() else { continue };
            key.sk_argument = text;
            pg_sys::index_rescan(scan, &mut key, 1, null_mut(), 0);
            let mut entries = 0;
            while entries < 2 && !pg_sys::index_getnext_tid(scan, pg_sys::ScanDirection::ForwardScanDirection).is_null()
            {
                entries += 1;
            }
            if entries == 2 {
                twice.push(k);
            }
            pg_sys::pfree(text.cast_mut_ptr());
        }
        pg_sys::index_endscan(scan);
        pg_sys::index_close(index_rel, lock);
        pg_sys::table_close(heap_rel, lock);
    }
    twice
}
