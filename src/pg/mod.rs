//! Everything that re-implements a piece of PostgreSQL's C or calls it
//! without pgrx's guard lives here, one file per part of PostgreSQL (as
//! pgvectorscale keeps its ports in `util/ports.rs`). Each port names the C
//! it mirrors, and every `unsafe` says why it holds. The rest of the
//! extension calls these, not `pg_sys` directly, wherever it touches
//! tuples, triggers, raw error reporting or subtransactions.

/// Aggregates' internal states and composite results (nodeAgg.c, funcapi.c).
pub mod agg;
/// The current backend and session: database, user, query id (miscadmin.h, backend_status.h).
pub mod backend;
/// Raising an ERROR with all its fields (elog.h / elog.c).
pub mod ereport;
/// C-language functions (fmgr.h).
pub mod fmgr;
/// A hash index's bucket pages read directly (access/hash.h, hashpage.c, hashsearch.c).
pub mod hashpage;
/// Scans that read an index alone (genam.h / indexam.c).
pub mod index;
/// Numerics as cents (utils/adt/numeric.c).
pub mod numeric;
/// Internal subtransactions (xact.c, as pl_exec.c uses them).
pub mod subxact;
/// C-language trigger functions and their cache (commands/trigger.h).
pub mod trigger;
/// Heap tuples, descriptors, bitmapsets and relations (htup_details.h, rel.h).
pub mod tuple;
