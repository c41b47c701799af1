//! Rate-limit counters in the database, so every instance on one database counts together.
//!
//! One row per bucket holds a fixed window (its start, Unix seconds) and the requests counted
//! in it. [`hit`] is one statement: an upsert that either adds one to the current window or
//! moves the row to a newer window with a count of one, and returns the count. It is atomic on
//! both backends (a row lock on PostgreSQL, the write lock on SQLite), so concurrent requests
//! on several instances never lose a count. An instance whose clock lags never moves a row back
//! to an older window: it counts in the newer one. MultiConnection has no upsert, so the SQL is
//! written per backend (only `GREATEST` / `MAX` and the placeholders differ).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::DbConnection;
use super::schema::rate_limits;

/// The count of a bucket's window after one more request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct Hit {
    /// Start of the window counted in, Unix seconds.
    #[diesel(sql_type = BigInt)]
    pub window_start: i64,
    /// Requests in that window, this one included.
    #[diesel(sql_type = BigInt)]
    pub hits: i64,
}

const PG_HIT: &str = "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1) \
     ON CONFLICT (bucket) DO UPDATE SET \
     hits = CASE WHEN rate_limits.window_start >= excluded.window_start \
                 THEN rate_limits.hits + 1 ELSE 1 END, \
     window_start = GREATEST(rate_limits.window_start, excluded.window_start) \
     RETURNING window_start, hits";

const SQLITE_HIT: &str = "INSERT INTO rate_limits (bucket, window_start, hits) VALUES (?, ?, 1) \
     ON CONFLICT (bucket) DO UPDATE SET \
     hits = CASE WHEN rate_limits.window_start >= excluded.window_start \
                 THEN rate_limits.hits + 1 ELSE 1 END, \
     window_start = MAX(rate_limits.window_start, excluded.window_start) \
     RETURNING window_start, hits";

/// Counts one request of `bucket` in the window starting at `window_start`.
pub fn hit(conn: &mut DbConnection, bucket: &str, window_start: i64) -> QueryResult<Hit> {
    match conn {
        DbConnection::Pg(c) => diesel::sql_query(PG_HIT)
            .bind::<Text, _>(bucket)
            .bind::<BigInt, _>(window_start)
            .get_result(c),
        DbConnection::Sqlite(c) => diesel::sql_query(SQLITE_HIT)
            .bind::<Text, _>(bucket)
            .bind::<BigInt, _>(window_start)
            .get_result(c),
    }
}

/// Deletes the rows of windows that started before `before`; answers how many.
pub fn sweep(conn: &mut DbConnection, before: i64) -> QueryResult<usize> {
    diesel::delete(rate_limits::table.filter(rate_limits::window_start.lt(before))).execute(conn)
}
