//! `motofinai.keys_indexed_twice(index, keys)`: the keys a hash index holds
//! two entries under, read from the index alone. The duplicate lookups of a
//! set of payments (dup_one.sql) look up only those: almost every reference
//! is unique, and a probe of the index's bucket page costs a fraction of a
//! lookup that reads the heap and runs through the executor (at 14,500
//! payments, about 26 of the incremental statement's 114 ms were those
//! lookups; with this prefilter the statement takes 106 ms).

use crate::catalog::Regclass;
use crate::errors::{finish, spi_error, sqlstate, DbError, Result};
use pgrx::prelude::*;

/// The keys of `keys` under whose hash code the hash index `index` holds two
/// entries or more (live, dead or uncommitted rows, or another key of the
/// same hash code): a superset of the keys two rows the caller can see
/// share, and no key beyond `keys`. NULL keys are left out. It reads only
/// the index, so it needs SELECT on the indexed column; where row security
/// applies to the caller, it returns every key (the index would tell of
/// rows the caller may not see).
#[pg_extern(stable, parallel_safe, security_invoker)]
#[search_path(pg_catalog, pg_temp)]
fn keys_indexed_twice(index: Regclass, keys: Array<&str>) -> Vec<String> {
    finish(move || {
        let heap = usable_hash_index(index)?;
        let keys = keys.iter().flatten();
        let twice = match heap {
            Some(heap) => crate::pg::index::hash_keys_held_twice(heap, index.0, keys),
            None => keys.collect(),
        };
        Ok(twice.into_iter().map(String::from).collect())
    })
}

/// The table of `index`, a valid hash index on one text column whose column
/// the caller may read; None where row security applies to the caller.
fn usable_hash_index(index: Regclass) -> Result<Option<pg_sys::Oid>> {
    let row = Spi::connect(|c| {
        c.select(
            "SELECT i.indrelid, c.oid::pg_catalog.regclass::pg_catalog.text, \
                    CASE WHEN i.indexrelid IS NULL THEN 'table' \
                         WHEN NOT (c.relkind = 'i' AND a.amname = 'hash' AND i.indnkeyatts = 1 AND i.indkey[0] <> 0 \
                                   AND o.opcintype = 'pg_catalog.text'::pg_catalog.regtype) THEN 'kind' \
                         WHEN NOT (i.indisvalid AND i.indisready) THEN 'invalid' \
                         WHEN NOT pg_catalog.has_column_privilege(i.indrelid, i.indkey[0], 'SELECT') THEN 'denied' \
                         WHEN pg_catalog.row_security_active(i.indrelid) THEN 'rls' ELSE 'ok' END \
               FROM pg_catalog.pg_class c \
               LEFT JOIN pg_catalog.pg_am a ON a.oid = c.relam \
               LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid \
               LEFT JOIN pg_catalog.pg_opclass o ON o.oid = i.indclass[0] \
              WHERE c.oid = $1",
            Some(1),
            &[index.0.into()],
        )?
        .map(|r| Ok((r.get::<pg_sys::Oid>(1)?, r.get::<String>(2)?, r.get::<String>(3)?)))
        .next()
        .transpose()
    })
    .map_err(spi_error)?;
    let Some((heap, Some(name), Some(state))) = row else {
        return Err(DbError::new(
            sqlstate::UNDEFINED_TABLE,
            format!("relation with OID {} does not exist", index.0.to_u32()),
        ));
    };
    match state.as_str() {
        "ok" => Ok(heap),
        "rls" => Ok(None),
        "denied" => Err(DbError::new(
            sqlstate::INSUFFICIENT_PRIVILEGE,
            format!("permission denied to read the column that index {name} holds"),
        )),
        "invalid" => {
            Err(DbError::new(sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE, format!("index {name} is not valid"))
                .hint("Rebuild it with REINDEX, or wait for CREATE INDEX CONCURRENTLY to finish."))
        }
        "table" => Err(DbError::new(sqlstate::WRONG_OBJECT_TYPE, format!("relation {name} is not an index"))),
        _ => Err(DbError::new(
            sqlstate::WRONG_OBJECT_TYPE,
            format!("index {name} is not a hash index on one text column"),
        )),
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn twice(keys: &str) -> Vec<String> {
        Spi::get_one::<Vec<String>>(&format!(
            "SELECT ARRAY(SELECT k FROM unnest(motofinai.keys_indexed_twice('kt.r_hash', {keys})) k ORDER BY 1)"
        ))
        .unwrap()
        .unwrap()
    }

    #[pg_test]
    fn finds_the_keys_held_twice() {
        Spi::run(
            "CREATE SCHEMA kt; CREATE TABLE kt.r (id int PRIMARY KEY, ref varchar(20)) WITH (fillfactor = 50); \
             INSERT INTO kt.r SELECT g, 'R' || g FROM generate_series(1, 2000) g; \
             INSERT INTO kt.r VALUES (3001, 'R7'), (3002, 'R7'), (3003, 'R9'); \
             CREATE INDEX r_hash ON kt.r USING hash (ref)",
        )
        .unwrap();
        assert_eq!(twice("ARRAY['R1', 'R7', 'R9', NULL, 'nope', 'R7']"), ["R7", "R7", "R9"]);
        // A deleted row's entry stays until VACUUM: still a candidate.
        Spi::run("DELETE FROM kt.r WHERE id = 3003").unwrap();
        assert_eq!(twice("ARRAY['R9']"), ["R9"]);
        // A HOT update (ref unchanged, room on the page) adds no entry.
        Spi::run("UPDATE kt.r SET id = id WHERE id = 5").unwrap();
        assert!(twice("ARRAY['R5']").is_empty());
        assert!(twice("'{}'::text[]").is_empty());
    }

    /// A bucket longer than a page: one key's entries on its primary page
    /// and on an overflow page, counted together.
    #[pg_test]
    fn counts_across_a_bucket_s_pages() {
        Spi::run(
            "CREATE SCHEMA kt; CREATE TABLE kt.r (id serial, ref text); CREATE INDEX r_hash ON kt.r USING hash (ref); \
             CREATE TABLE kt.y AS SELECT 'Y' || g AS ref FROM generate_series(1, 1000000) g \
              WHERE hashtext('Y' || g) & 4095 = hashtext('X') & 4095 LIMIT 1; \
             INSERT INTO kt.r (ref) SELECT ref FROM kt.y; \
             INSERT INTO kt.r (ref) SELECT 'X' FROM generate_series(1, 1500); \
             INSERT INTO kt.r (ref) SELECT ref FROM kt.y",
        )
        .unwrap();
        let y = Spi::get_one::<String>("SELECT ref FROM kt.y").unwrap().unwrap();
        assert_eq!(twice(&format!("ARRAY['X', '{y}', 'Z']")), ["X", y.as_str()]);
        // Deleted rows' entries stay until VACUUM: still candidates.
        Spi::run("DELETE FROM kt.r WHERE ref = 'X'").unwrap();
        assert_eq!(twice(&format!("ARRAY['{y}', 'X']")), ["X", y.as_str()]);
    }

    #[pg_test(error = "index kt.r_btree is not a hash index on one text column")]
    fn refuses_other_indexes() {
        Spi::run("CREATE SCHEMA kt; CREATE TABLE kt.r (ref text); CREATE INDEX r_btree ON kt.r (ref)").unwrap();
        Spi::run("SELECT motofinai.keys_indexed_twice('kt.r_btree', ARRAY['a'])").unwrap();
    }

    #[pg_test(error = "relation kt.r is not an index")]
    fn refuses_tables() {
        Spi::run("CREATE SCHEMA kt; CREATE TABLE kt.r (ref text)").unwrap();
        Spi::run("SELECT motofinai.keys_indexed_twice('kt.r', ARRAY['a'])").unwrap();
    }
}
