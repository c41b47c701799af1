//! The rollups the supervisors' statistics read (docs/sla.md, "How the statistics are
//! computed"): per Shanghai calendar day, unit, matter and clock kind, the figures of the clocks
//! that stopped that day with their handling times as a histogram (`clock_rollups`); the same
//! per calendar month (`clock_rollup_months`); per day and per month, unit, matter and level,
//! the ratings given (`rating_rollups`, `rating_rollup_months`).
//!
//! A stopped clock never changes again (`domain::clock`: every operation leaves a clock with a
//! stop time alone, and the detector's updates require `stopped_at IS NULL`), and a rating is
//! never changed or removed. So each is added exactly once, in the transaction that stops the
//! clock ([`count_stopped`], from `db::clocks`) or stores the rating ([`count_rating`], from
//! `db::ratings`). The migrations `2026-12-05-000016_sla_rollups` and
//! `2026-12-07-000020_rollup_histograms` fill them from the rows already there; [`rebuild`]
//! runs the latter's SQL again for a database filled behind the server's back.
//!
//! MultiConnection has no `ON CONFLICT`. A rating's row is updated (`ratings + 1`), and
//! inserted when it is not there. A clock's row is read, changed and written back, since its
//! histogram is text: on PostgreSQL the read takes the row's lock (`FOR UPDATE`), on SQLite the
//! write transaction already holds the database's. On PostgreSQL another transaction may insert
//! the same key between the read and the insert; the insert runs in a savepoint, so its unique
//! violation undoes only the insert, and the row is read and written again (it then sees the
//! other row, committed: the insert waited for it).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::ratings::RatingRow;
use super::requests::ClockRow;
use super::schema::{clock_rollup_months, clock_rollups, rating_rollup_months, rating_rollups};
use super::{DbConnection, write_transaction};
use crate::domain::handling_time::Histogram;

/// Shanghai's offset from UTC: eight hours all year (China keeps no summer time).
const SHANGHAI_OFFSET: TimeDelta = TimeDelta::hours(8);

/// The Shanghai calendar day of a stored (UTC) instant.
pub fn day_of(at: NaiveDateTime) -> NaiveDate {
    (at + SHANGHAI_OFFSET).date()
}

/// The instant (UTC) a Shanghai calendar day starts.
pub fn day_start(day: NaiveDate) -> NaiveDateTime {
    day.and_time(NaiveTime::MIN) - SHANGHAI_OFFSET
}

/// A day as the rollups store it: `YYYY-MM-DD`.
pub fn day_key(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// The month of a day as the month rollups store it: `YYYY-MM`.
pub fn month_key(day: NaiveDate) -> String {
    day.format("%Y-%m").to_string()
}

const SQLITE_UP: &str =
    include_str!("../../migrations/sqlite/2026-12-07-000020_rollup_histograms/up.sql");
const POSTGRES_UP: &str =
    include_str!("../../migrations/postgres/2026-12-07-000020_rollup_histograms/up.sql");
/// Where the migration's backfill starts: the rest of `up.sql` is [`rebuild`]'s SQL.
const BACKFILL: &str = "-- backfill:";

/// The migration's backfill statements for `conn`'s backend.
fn backfill_sql(conn: &DbConnection) -> &'static str {
    let up = match conn {
        DbConnection::Sqlite(_) => SQLITE_UP,
        DbConnection::Pg(_) => POSTGRES_UP,
    };
    let start = up
        .find(BACKFILL)
        .expect("the rollup migration marks its backfill");
    &up[start..]
}

/// Empties the rollups and fills them again from every stopped clock and every rating, with
/// the migration's own SQL, in one write transaction. For a database whose clocks or ratings
/// were written behind the server's back (a benchmark's seeding, a test shaping rows).
pub fn rebuild(conn: &mut DbConnection) -> QueryResult<()> {
    write_transaction(conn, |conn| {
        diesel::delete(clock_rollups::table).execute(conn)?;
        diesel::delete(clock_rollup_months::table).execute(conn)?;
        diesel::delete(rating_rollups::table).execute(conn)?;
        diesel::delete(rating_rollup_months::table).execute(conn)?;
        let sql = backfill_sql(conn);
        conn.batch_execute(sql)
    })
}

/// The figures of one rollup row of stopped clocks (a day's or a month's).
#[derive(Debug, Default, Queryable)]
struct StoppedFigures {
    counted: i64,
    met: i64,
    breached: i64,
    cancelled: i64,
    lost_minutes: i64,
    worked: String,
}

impl StoppedFigures {
    /// The figures with the stopped clock `row` added.
    fn with(mut self, row: &ClockRow) -> QueryResult<Self> {
        let breached = row.breached_at.is_some();
        let met = !breached && row.state == "met";
        self.counted += 1;
        self.met += i64::from(met);
        self.breached += i64::from(breached);
        self.cancelled += i64::from(!met && !breached);
        self.lost_minutes += row.lost_minutes;
        if let Some(minutes) = row.worked_minutes {
            let mut histogram = Histogram::default();
            histogram
                .add_text(&self.worked)
                .map_err(|e| DieselError::DeserializationError(Box::new(e)))?;
            histogram.add(minutes, 1);
            self.worked = histogram.to_text();
        }
        Ok(self)
    }
}

/// Whether an insert lost the race for its key to another transaction's.
fn lost_race(result: &QueryResult<usize>) -> bool {
    matches!(
        result,
        Err(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _
        ))
    )
}

/// Defines `$name(conn, period, row)`: adds the stopped clock `row` to its row of `$table`
/// (keyed by `$period`, a day or a month), read locked, changed and written back.
macro_rules! add_stopped_to {
    ($name:ident, $table:ident, $period:ident) => {
        fn $name(conn: &mut DbConnection, period: &str, row: &ClockRow) -> QueryResult<()> {
            use $table::dsl as t;
            let key = (
                period,
                row.unit.as_str(),
                row.matter.as_str(),
                row.kind.as_str(),
            );
            for _ in 0..2 {
                let query = t::$table.find(key).select((
                    t::counted,
                    t::met,
                    t::breached,
                    t::cancelled,
                    t::lost_minutes,
                    t::worked,
                ));
                let current: Option<StoppedFigures> = match conn {
                    DbConnection::Pg(pg) => query.for_update().first(pg).optional()?,
                    DbConnection::Sqlite(lite) => query.first(lite).optional()?,
                };
                let exists = current.is_some();
                let f = current.unwrap_or_default().with(row)?;
                let values = (
                    t::counted.eq(f.counted),
                    t::met.eq(f.met),
                    t::breached.eq(f.breached),
                    t::cancelled.eq(f.cancelled),
                    t::lost_minutes.eq(f.lost_minutes),
                    t::worked.eq(&f.worked),
                );
                if exists {
                    diesel::update(t::$table.find(key))
                        .set(values)
                        .execute(conn)?;
                    return Ok(());
                }
                let inserted = write_transaction(conn, |conn| {
                    diesel::insert_into(t::$table)
                        .values((
                            t::$period.eq(period),
                            t::unit.eq(&row.unit),
                            t::matter.eq(&row.matter),
                            t::kind.eq(&row.kind),
                            values,
                        ))
                        .execute(conn)
                });
                if !lost_race(&inserted) {
                    return inserted.map(|_| ());
                }
            }
            Err(DieselError::NotFound)
        }
    };
}

add_stopped_to!(add_stopped_to_day, clock_rollups, day);
add_stopped_to!(add_stopped_to_month, clock_rollup_months, month);

/// Defines `$name(conn, period, rating)`: adds one rating to its row of `$table` (keyed by
/// `$period`): `ratings + 1`, else an insert in a savepoint, else (the race lost) the update.
macro_rules! add_rating_to {
    ($name:ident, $table:ident, $period:ident) => {
        fn $name(conn: &mut DbConnection, period: &str, rating: &RatingRow) -> QueryResult<()> {
            use $table::dsl as t;
            let key = (
                period,
                rating.unit.as_str(),
                rating.matter.as_str(),
                rating.level,
            );
            let update = |conn: &mut DbConnection| {
                diesel::update(t::$table.find(key))
                    .set(t::ratings.eq(t::ratings + 1))
                    .execute(conn)
            };
            if update(conn)? > 0 {
                return Ok(());
            }
            let inserted = write_transaction(conn, |conn| {
                diesel::insert_into(t::$table)
                    .values((
                        t::$period.eq(period),
                        t::unit.eq(&rating.unit),
                        t::matter.eq(&rating.matter),
                        t::level.eq(rating.level),
                        t::ratings.eq(1),
                    ))
                    .execute(conn)
            });
            if !lost_race(&inserted) {
                return inserted.map(|_| ());
            }
            match update(conn)? {
                0 => Err(DieselError::NotFound),
                _ => Ok(()),
            }
        }
    };
}

add_rating_to!(add_rating_to_day, rating_rollups, day);
add_rating_to!(add_rating_to_month, rating_rollup_months, month);

/// Adds a clock that has just stopped (`row` as stored, `stopped_at` set) to the rollups of
/// its day and its month; nothing for a clock that has not stopped. Call it once per clock, in
/// the transaction that stops it.
pub fn count_stopped(conn: &mut DbConnection, row: &ClockRow) -> QueryResult<()> {
    let Some(stopped_at) = row.stopped_at else {
        return Ok(());
    };
    let day = day_of(stopped_at);
    add_stopped_to_day(conn, &day_key(day), row)?;
    add_stopped_to_month(conn, &month_key(day), row)
}

/// Adds a rating just stored to the rollups of its day and its month, in the rating's
/// transaction.
pub fn count_rating(conn: &mut DbConnection, rating: &RatingRow) -> QueryResult<()> {
    let day = day_of(rating.created_at);
    add_rating_to_day(conn, &day_key(day), rating)?;
    add_rating_to_month(conn, &month_key(day), rating)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn a_shanghai_day_starts_at_16_utc_the_day_before() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        assert_eq!(day_start(day), at("2026-12-04 16:00:00"));
        assert_eq!(day_of(at("2026-12-04 15:59:59")), day.pred_opt().unwrap());
        assert_eq!(day_of(at("2026-12-04 16:00:00")), day);
        assert_eq!(day_of(at("2026-12-05 15:59:59")), day);
        assert_eq!(day_key(day), "2026-12-05");
        assert_eq!(month_key(day), "2026-12");
    }

    #[test]
    fn both_migrations_mark_their_backfill() {
        for up in [SQLITE_UP, POSTGRES_UP] {
            let backfill = &up[up.find(BACKFILL).unwrap()..];
            assert_eq!(backfill.matches("INSERT INTO").count(), 4);
            assert!(!backfill.contains("DELETE"));
            assert!(!backfill.contains("CREATE TABLE"));
        }
    }
}
