//! PostgreSQL's transaction-level advisory locks, for the few writes that must queue across
//! instances (the audit chain's append, a calendar change). On SQLite the write transaction is
//! already exclusive, so these take nothing there.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::DbConnection;

diesel::define_sql_function! {
    /// `pg_advisory_xact_lock(key)`: held until the transaction ends.
    fn pg_advisory_xact_lock(key: BigInt);
}

/// Takes the transaction-level advisory lock `key` on PostgreSQL (released at commit or
/// rollback); nothing on SQLite. Built with the query builder rather than as SQL text, so it
/// is a prepared statement the connection keeps, like the rest of the transaction.
pub fn hold_until_commit(conn: &mut DbConnection, key: i64) -> QueryResult<()> {
    if let DbConnection::Pg(pg) = conn {
        diesel::select(pg_advisory_xact_lock(key)).execute(pg)?;
    }
    Ok(())
}
