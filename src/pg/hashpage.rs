//! Reading a hash index's bucket pages directly (access/hash.h,
//! hashpage.c, hashsearch.c): how many entries it holds under hash codes,
//! many codes at a time. An index scan per code spent 40% of its time in
//! _hash_binsearch and most of the rest waiting for memory, one page at a
//! time; here the pages of the next buckets are pinned and asked into the
//! CPU's cache while the current one is searched, and each page is
//! searched from a guess (the codes on a page are spread evenly).

use pgrx::pg_sys;
use std::collections::VecDeque;
use std::ffi::c_int;
use std::ops::Range;
use std::ptr::null_mut;

// hash.h (not among pgrx's bindings), the same in PostgreSQL 15 to 18.
#[repr(C)]
struct HashPageOpaqueData {
    hasho_prevblkno: pg_sys::BlockNumber,
    hasho_nextblkno: pg_sys::BlockNumber,
    hasho_bucket: u32,
    hasho_flag: u16,
    hasho_page_id: u16,
}
const HASH_MAX_SPLITPOINTS: usize = 98;
#[repr(C)]
struct HashMetaPageData {
    hashm_magic: u32,
    hashm_version: u32,
    hashm_ntuples: f64,
    hashm_ffactor: u16,
    hashm_bsize: u16,
    hashm_bmsize: u16,
    hashm_bmshift: u16,
    hashm_maxbucket: u32,
    hashm_highmask: u32,
    hashm_lowmask: u32,
    hashm_ovflpoint: u32,
    hashm_firstfree: u32,
    hashm_nmaps: u32,
    hashm_procid: pg_sys::Oid,
    hashm_spares: [u32; HASH_MAX_SPLITPOINTS],
    // hashm_mapp follows; never read here.
}
const HASH_READ: c_int = pg_sys::BUFFER_LOCK_SHARE as c_int;
const LH_OVERFLOW_PAGE: u16 = 1 << 0;
const LH_BUCKET_PAGE: u16 = 1 << 1;
const LH_PAGE_TYPE: u16 = 0b1111;
const LH_BUCKET_BEING_POPULATED: u16 = 1 << 4;
const HASHO_PAGE_ID: u16 = 0xFF80;
extern "C" {
    fn _hash_getcachedmetap(
        rel: pg_sys::Relation,
        metabuf: *mut pg_sys::Buffer,
        force_refresh: bool,
    ) -> *mut HashMetaPageData;
    fn _hash_hashkey2bucket(hashkey: u32, maxbucket: u32, highmask: u32, lowmask: u32) -> u32;
    fn _hash_spareindex(num_bucket: u32) -> u32;
    fn _hash_getbucketbuf_from_hashkey(
        rel: pg_sys::Relation,
        hashkey: u32,
        access: c_int,
        cachedmetap: *mut *mut HashMetaPageData,
    ) -> pg_sys::Buffer;
    fn _hash_getbuf(rel: pg_sys::Relation, blkno: pg_sys::BlockNumber, access: c_int, flags: c_int) -> pg_sys::Buffer;
    fn _hash_relbuf(rel: pg_sys::Relation, buf: pg_sys::Buffer);
    fn _hash_get_indextuple_hashkey(itup: pg_sys::IndexTuple) -> u32;
}

/// How many pages ahead are pinned and asked into the CPU's cache (2 to
/// 12 measure alike: 14,800 keys of 14.3 ms by index scans in 9.0-9.3).
const AHEAD: usize = 4;

/// For each hash code of `keys`, how many entries (up to `cap`) the hash index holds under each: live,
/// dead or uncommitted rows alike (items a scan marked dead aside, as scans
/// skip them). None where the bucket's pages could not say: a bucket being
/// split into (its old bucket holds some of its entries), for an index
/// scan to answer.
///
/// The codes are read in bucket order (each bucket read once for all its
/// codes, in block order) and within a bucket in the page's own order, the
/// hash code's. As hashsearch.c reads a bucket: its primary page pinned throughout,
/// which keeps VACUUM and splits out of it, one page locked at a time; the
/// bucket found from the cached metapage, checked on the page as
/// _hash_getbucketbuf_from_hashkey checks it (a bucket split since the
/// metapage was cached is looked up afresh).
///
/// # Safety
/// `index_rel` an open, locked hash index.
pub unsafe fn entries_under(index_rel: pg_sys::Relation, keys: &[u32], cap: usize) -> Vec<Option<usize>> {
    let mut metabuf = pg_sys::InvalidBuffer as pg_sys::Buffer;
    let metap = &*_hash_getcachedmetap(index_rel, &mut metabuf, false);
    if metabuf != pg_sys::InvalidBuffer as pg_sys::Buffer {
        pg_sys::ReleaseBuffer(metabuf);
    }
    // Copied: a fallback below may refresh the cache in place.
    let (maxbucket, highmask, lowmask, spares) =
        (metap.hashm_maxbucket, metap.hashm_highmask, metap.hashm_lowmask, metap.hashm_spares);
    let bucket_of = |code| _hash_hashkey2bucket(code, maxbucket, highmask, lowmask);
    // hash.h's BUCKET_TO_BLKNO.
    let block_of = |b: u32| b + if b == 0 { 0 } else { spares[_hash_spareindex(b + 1) as usize - 1] } + 1;
    let mut order: Vec<(u32, u32, usize)> = keys.iter().enumerate().map(|(i, &c)| (bucket_of(c), c, i)).collect();
    order.sort_unstable();
    let codes: Vec<u32> = order.iter().map(|&(_, code, _)| code).collect();
    let mut buckets: Vec<(u32, Range<usize>)> = Vec::new();
    for (i, &(b, ..)) in order.iter().enumerate() {
        match buckets.last_mut() {
            Some((last, range)) if *last == b => range.end = i + 1,
            _ => buckets.push((b, i..i + 1)),
        }
    }
    let mut found = vec![None; codes.len()];
    let mut pinned = VecDeque::with_capacity(AHEAD);
    let mut items_seen = 256;
    for (n, (bucket, range)) in buckets.iter().enumerate() {
        while pinned.len() < AHEAD && n + pinned.len() < buckets.len() {
            let (b, ref r) = buckets[n + pinned.len()];
            let buf = pg_sys::ReadBufferExtended(
                index_rel,
                pg_sys::ForkNumber::MAIN_FORKNUM,
                block_of(b),
                pg_sys::ReadBufferMode::RBM_NORMAL,
                null_mut(),
            );
            prefetch_page(pg_sys::BufferGetPage(buf), codes[r.start], items_seen);
            pinned.push_back(buf);
        }
        let buf = pinned.pop_front().expect("pinned ahead");
        // Halfway along the queue, the page's header and line pointers have
        // come in: the tuples near each code's guess are asked for too.
        if let (Some(&b), Some((_, r))) = (pinned.get(pinned.len() / 2), buckets.get(n + 1 + pinned.len() / 2)) {
            prefetch_tuples(pg_sys::BufferGetPage(b), &codes[r.clone()]);
        }
        pgrx::check_for_interrupts!();
        pg_sys::LockBuffer(buf, HASH_READ);
        let page = pg_sys::BufferGetPage(buf);
        let Some(opaque) = bucket_page(page, *bucket, maxbucket) else {
            pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_UNLOCK as c_int);
            pg_sys::ReleaseBuffer(buf);
            for i in range.clone() {
                found[i] = one_bucket(index_rel, codes[i], cap);
            }
            continue;
        };
        items_seen = usize::from(pg_sys::PageGetMaxOffsetNumber(page));
        for i in range.clone() {
            found[i] = Some(on_page(page, codes[i], cap));
        }
        let next = opaque.hasho_nextblkno;
        pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_UNLOCK as c_int);
        overflow_pages(index_rel, next, &codes[range.clone()], &mut found[range.clone()], cap);
        pg_sys::ReleaseBuffer(buf);
    }
    let mut by_key = vec![None; keys.len()];
    for (&(.., i), f) in order.iter().zip(found) {
        by_key[i] = f;
    }
    by_key
}

/// [`entries_under`] for one code, its bucket looked up afresh.
///
/// # Safety
/// As [`entries_under`].
unsafe fn one_bucket(index_rel: pg_sys::Relation, code: u32, cap: usize) -> Option<usize> {
    let buf = _hash_getbucketbuf_from_hashkey(index_rel, code, HASH_READ, null_mut());
    let page = pg_sys::BufferGetPage(buf);
    let opaque = &*(pg_sys::PageGetSpecialPointer(page) as *const HashPageOpaqueData);
    if opaque.hasho_flag & LH_BUCKET_BEING_POPULATED != 0 {
        _hash_relbuf(index_rel, buf);
        return None;
    }
    let mut found = [Some(on_page(page, code, cap))];
    let next = opaque.hasho_nextblkno;
    pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_UNLOCK as c_int);
    overflow_pages(index_rel, next, &[code], &mut found, cap);
    pg_sys::ReleaseBuffer(buf);
    found[0]
}

/// The entries of a bucket's overflow pages from block `next` on, added
/// to `found` (each Some) for `codes` until each reaches `cap`.
///
/// # Safety
/// `index_rel` an open, locked hash index whose bucket's primary page the
/// caller holds pinned (not locked).
unsafe fn overflow_pages(
    index_rel: pg_sys::Relation,
    mut next: pg_sys::BlockNumber,
    codes: &[u32],
    found: &mut [Option<usize>],
    cap: usize,
) {
    while next != pg_sys::InvalidBlockNumber && found.iter().any(|f| f.is_some_and(|n| n < cap)) {
        let buf = _hash_getbuf(index_rel, next, HASH_READ, c_int::from(LH_OVERFLOW_PAGE));
        let page = pg_sys::BufferGetPage(buf);
        for (code, f) in codes.iter().zip(found.iter_mut()) {
            if let Some(n) = f.as_mut().filter(|n| **n < cap) {
                *n += on_page(page, *code, cap - *n);
            }
        }
        next = (*(pg_sys::PageGetSpecialPointer(page) as *const HashPageOpaqueData)).hasho_nextblkno;
        _hash_relbuf(index_rel, buf);
    }
}

/// The special space of a locked page if it is bucket `bucket`'s primary
/// page, not split since `maxbucket` (the cached metapage's) and not being
/// filled by a split.
///
/// # Safety
/// `page` a locked page of a hash index.
unsafe fn bucket_page<'p>(page: pg_sys::Page, bucket: u32, maxbucket: u32) -> Option<&'p HashPageOpaqueData> {
    if pg_sys::PageIsNew(page) || usize::from(pg_sys::PageGetSpecialSize(page)) != size_of::<HashPageOpaqueData>() {
        return None;
    }
    let opaque = &*(pg_sys::PageGetSpecialPointer(page) as *const HashPageOpaqueData);
    (opaque.hasho_page_id == HASHO_PAGE_ID
        && opaque.hasho_flag & LH_PAGE_TYPE == LH_BUCKET_PAGE
        && opaque.hasho_flag & LH_BUCKET_BEING_POPULATED == 0
        && opaque.hasho_bucket == bucket
        && opaque.hasho_prevblkno <= maxbucket)
        .then_some(opaque)
}

/// Asks the CPU for the lines of a pinned page that searching it for
/// `code` reads first: its header, its special space, and near the guess
/// (from `items`, the last page's count) its line pointer and, where the
/// page was filled in hash order (CREATE INDEX sorts), its tuple.
///
/// # Safety
/// `page` a pinned buffer's page.
unsafe fn prefetch_page(page: pg_sys::Page, code: u32, items: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let base = page as *const i8;
        let size = pg_sys::BLCKSZ as usize;
        let guess = ((u64::from(code) * items as u64) >> 32) as usize;
        let header = size_of::<pg_sys::PageHeaderData>();
        let special = size - size_of::<HashPageOpaqueData>();
        for offset in [0, special, header + 4 * guess.saturating_sub(WINDOW), header + 4 * (guess + WINDOW)] {
            _mm_prefetch(base.add(offset.min(size - 1)), _MM_HINT_T0);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (page, code, items);
}

/// Asks the CPU for the tuples near each code's guess on a pinned page
/// whose header and line pointers [`prefetch_page`] asked for. The page is
/// not locked: what it reads are hints, each address kept on the page.
///
/// # Safety
/// `page` a pinned buffer's page.
unsafe fn prefetch_tuples(page: pg_sys::Page, codes: &[u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let base = page as *const i8;
        let size = pg_sys::BLCKSZ as usize;
        let header = size_of::<pg_sys::PageHeaderData>();
        let lower = usize::from(std::ptr::read_volatile(&(*(page as *const pg_sys::PageHeaderData)).pd_lower));
        let items = lower.saturating_sub(header) / 4;
        for &code in codes {
            let guess = ((u64::from(code) * items as u64) >> 32) as usize;
            for i in guess.saturating_sub(WINDOW)..(guess + WINDOW + 1).min(items) {
                let lp = std::ptr::read_volatile(base.add(header + 4 * i) as *const u32);
                _mm_prefetch(base.add((lp as usize & 0x7fff) % size), _MM_HINT_T0);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (page, codes);
}
/// How many line pointers each side of a code's guess are read ahead.
const WINDOW: usize = 6;

/// How many entries (up to `cap`) a locked hash page holds under `code`,
/// items a scan marked dead (LP_DEAD) aside, as scans skip them.
///
/// # Safety
/// `page` a hash bucket or overflow page, locked.
unsafe fn on_page(page: pg_sys::Page, code: u32, cap: usize) -> usize {
    let items = usize::from(pg_sys::PageGetMaxOffsetNumber(page));
    let item = |i: usize| pg_sys::PageGetItemId(page, (i + 1) as pg_sys::OffsetNumber);
    let key = |i: usize| _hash_get_indextuple_hashkey(pg_sys::PageGetItem(page, item(i)).cast());
    let first = first_at_or_above(items, key, code);
    (first..items)
        .take_while(|&i| key(i) == code)
        .filter(|&i| (*item(i)).lp_flags() != pg_sys::LP_DEAD)
        .take(cap)
        .count()
}

/// The first of `n` ascending keys (`key(i)`, 0-based) at or above `code`,
/// or `n`. The hash codes on a page are spread evenly (their high bits), so
/// a guess in proportion to the code lands a few keys away, walked from
/// there: neighbours, whose line pointers share a cache line and whose
/// tuples mostly do (a binary search reads 8 keys of a full page, each a
/// cache miss). A walk past 8 keys halves instead, whatever the spread.
fn first_at_or_above(n: usize, key: impl Fn(usize) -> u32, code: u32) -> usize {
    if n == 0 {
        return 0;
    }
    let guess = ((u64::from(code) * n as u64) >> 32) as usize;
    // Keys below lo are below code; keys from hi on are at or above it.
    let (mut lo, mut hi) = (0, n);
    if key(guess) < code {
        lo = guess + 1;
        while lo < hi && lo <= guess + 8 {
            if key(lo) >= code {
                return lo;
            }
            lo += 1;
        }
    } else {
        hi = guess;
        while lo < hi && hi + 8 >= guess {
            if key(hi - 1) < code {
                return hi;
            }
            hi -= 1;
        }
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if key(mid) < code {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::first_at_or_above;

    /// Against a binary search, on keys spread evenly, bunched, repeated,
    /// at the ends of the range, and every code between and around them.
    #[pgrx::pg_test]
    fn finds_the_first_key_at_or_above() {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 32) as u32
        };
        for n in [0usize, 1, 2, 3, 5, 17, 260, 400] {
            for shape in 0..4 {
                let mut keys: Vec<u32> = (0..n)
                    .map(|_| match shape {
                        0 => next(),
                        1 => next() % 64,
                        2 => [0, 5, u32::MAX][next() as usize % 3],
                        _ => next() | 0xffff_0000,
                    })
                    .collect();
                keys.sort_unstable();
                let codes =
                    keys.iter().flat_map(|&k| [k, k.wrapping_sub(1), k.wrapping_add(1)]).chain([0, u32::MAX, next()]);
                for code in codes {
                    let want = keys.partition_point(|&k| k < code);
                    assert_eq!(first_at_or_above(n, |i| keys[i], code), want, "n {n}, shape {shape}, code {code}");
                }
            }
        }
    }
}
