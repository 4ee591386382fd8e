//! Making a repair: the only place that writes to the Motofinai tables,
//! through the row helpers when the table is versioned.

use super::plan::Repair;
use crate::catalog::{quote_ident, quote_literal, select_one, RawJsonb, Regclass, Table};
use crate::checks::tables::Schema;
use crate::errors::{spi_error, sqlstate, DbError, Result};
use crate::versioning::registered_options;
use crate::versioning::rows::{lock_row, update_row};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{Map, Value};

impl Repair {
    fn oid(&self, schema: &Schema) -> Result<pg_sys::Oid> {
        schema.table(self.table).ok_or_else(|| {
            DbError::new(sqlstate::UNDEFINED_TABLE, format!("Motofinai table \"{}\" does not exist", self.table))
        })
    }

    /// The columns' current values (NULLs when the row is gone).
    pub fn before(&self, schema: &Schema) -> Result<Map<String, Value>> {
        let row = select_one::<JsonB>(
            &format!("SELECT to_jsonb(t.*) FROM {}.{} t WHERE t.id = $1", schema.quoted, quote_ident(self.table)),
            &[self.id.into()],
        )?;
        let row = row.map(|r| r.0).unwrap_or(Value::Null);
        Ok(self.set.keys().map(|k| (k.clone(), row.get(k).cloned().unwrap_or(Value::Null))).collect())
    }

    /// Change the row: through the row helpers (stating the version) when
    /// the table is versioned, else only if the row still has the values read.
    pub fn apply(&self, schema: &Schema, before: &Map<String, Value>) -> Result<()> {
        let tbl = Some(Regclass(self.oid(schema)?));
        let table = Table::open(tbl, "table")?;
        match registered_options(&table) {
            Ok(_) => {
                let (_, version) = lock_row(tbl, Some(self.id), None, Some(false))?;
                let set = RawJsonb::from_text(&Value::Object(self.set.clone()).to_string())?;
                update_row(tbl, Some(self.id), version, Some(set))?;
                return Ok(());
            }
            // Not versioned: a compare-and-set on the values read.
            Err(e) if e.sqlstate == sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE => {}
            Err(e) => return Err(e),
        }
        let t = format!("{}.{}", schema.quoted, quote_ident(self.table));
        let sets: Vec<String> = self.set.keys().map(|c| format!("{0} = f.{0}", quote_ident(c))).collect();
        let guard: Vec<String> = before
            .keys()
            .map(|c| {
                format!("coalesce(to_jsonb(r.{0}), 'null') = ($3::jsonb -> {1})", quote_ident(c), quote_literal(c))
            })
            .collect();
        let changed = Spi::get_one_with_args::<i64>(
            &format!(
                "WITH u AS (UPDATE {t} AS r SET {} FROM jsonb_populate_record(NULL::{t}, $1) AS f \
                 WHERE r.id = $2 AND {} RETURNING 1) SELECT count(*) FROM u",
                sets.join(", "),
                guard.join(" AND ")
            ),
            &[
                JsonB(Value::Object(self.set.clone())).into(),
                self.id.into(),
                JsonB(Value::Object(before.clone())).into(),
            ],
        )
        .map_err(spi_error)?;
        if changed != Some(1) {
            return Err(DbError::new(
                sqlstate::SERIALIZATION_FAILURE,
                format!("{} row {} changed while it was being repaired", self.table, self.id),
            )
            .hint("Run the check again."));
        }
        Ok(())
    }
}
