//! Findings streamed from a list of queries through SPI cursors, a batch at a
//! time, so an all-rows check holds one batch in memory, not every finding.

use crate::backend::BackendLocal;
use crate::catalog::spi_error;
use crate::errors::Result;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient};
use pgrx::JsonB;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// One row of a check: the shape every check function returns.
pub type Finding = (
    name!(severity, String),
    name!(code, String),
    name!(entity, String),
    name!(entity_id, Option<i64>),
    name!(message, String),
    name!(details, JsonB),
);

/// A query producing finding rows, with its one optional bigint argument.
pub struct Query {
    pub sql: String,
    pub id: Option<i64>,
}

const BATCH: i64 = 500;

/// Plans kept for the backend, by query text (which names the schema):
/// planning a family's statement costs more than running it for one id.
/// PostgreSQL's plan cache revalidates them after DDL.
static PLANS: BackendLocal<HashMap<String, Rc<OwnedPreparedStatement>>> = BackendLocal::new();

fn plan(client: &SpiClient<'_>, q: &Query) -> std::result::Result<Rc<OwnedPreparedStatement>, pgrx::spi::Error> {
    let plans = PLANS.get(HashMap::new);
    if let Some(p) = plans.get(&q.sql) {
        return Ok(p.clone());
    }
    let types: Vec<PgOid> = q.id.iter().map(|_| PgOid::BuiltIn(PgBuiltInOids::INT8OID)).collect();
    let kept = Rc::new(client.prepare(q.sql.as_str(), &types)?.keep());
    plans.insert(q.sql.clone(), kept.clone());
    Ok(kept)
}

pub struct Stream {
    queries: VecDeque<Query>,
    cursor: Option<String>,
    batch: VecDeque<Finding>,
}

impl Stream {
    pub fn new(queries: Vec<Query>) -> Stream {
        Stream { queries: queries.into(), cursor: None, batch: VecDeque::new() }
    }

    /// Open the next query's cursor, or fetch the next batch from the open one.
    fn advance(&mut self) -> Result<bool> {
        match self.cursor.take() {
            Some(name) => {
                let (rows, name) = Spi::connect(|client| {
                    let mut cursor = client.find_cursor(&name)?;
                    let rows = cursor.fetch(BATCH)?.map(|row| to_finding(&row)).collect::<std::result::Result<Vec<_>, _>>()?;
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
                Some(q) => {
                    let args: Vec<pgrx::datum::DatumWithOid> = q.id.into_iter().map(Into::into).collect();
                    let name = Spi::connect(|client| {
                        let stmt = plan(&client, &q)?;
                        client.try_open_cursor(&*stmt, &args).map(|c| c.detach_into_name())
                    })
                    .map_err(spi_error)?;
                    self.cursor = Some(name);
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
            if let Some(f) = self.batch.pop_front() {
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
        self.next_finding().unwrap_or_else(|e| panic!("{}", e.message))
    }
}

fn to_finding(row: &pgrx::spi::SpiHeapTupleData) -> std::result::Result<Finding, pgrx::spi::Error> {
    Ok((
        row.get::<String>(1)?.unwrap_or_default(),
        row.get::<String>(2)?.unwrap_or_default(),
        row.get::<String>(3)?.unwrap_or_default(),
        row.get::<i64>(4)?,
        row.get::<String>(5)?.unwrap_or_default(),
        row.get::<JsonB>(6)?.unwrap_or(JsonB(serde_json::Value::Null)),
    ))
}
