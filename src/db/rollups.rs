//! The rollups the supervisors' statistics read (docs/sla.md, "How the statistics are
//! computed"): per Shanghai calendar day, unit, matter and clock kind, the figures of the clocks
//! that stopped that day (`clock_rollups`) and their handling times as a histogram
//! (`clock_worked`); per day, unit, matter and level, the ratings given (`rating_rollups`).
//!
//! A stopped clock never changes again (`domain::clock`: every operation leaves a clock with a
//! stop time alone, and the detector's updates require `stopped_at IS NULL`), and a rating is
//! never changed or removed. So each is added exactly once, in the transaction that stops the
//! clock ([`count_stopped`], from `db::clocks`) or stores the rating ([`count_rating`], from
//! `db::ratings`). The migration `2026-12-05-000016_sla_rollups` fills them from the rows already
//! there; [`rebuild`] runs the same SQL again for a database filled behind the server's back.
//!
//! MultiConnection has no `ON CONFLICT`: a key is updated, and inserted when it is not there.
//! On PostgreSQL another transaction may insert the same key between the two; the insert runs
//! in a savepoint, so its unique violation undoes only the insert, and the update is tried
//! again (it then sees the other row, committed: the insert waited for it).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::ratings::RatingRow;
use super::requests::ClockRow;
use super::schema::{clock_rollups, clock_worked, rating_rollups};
use super::{DbConnection, write_transaction};

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

const SQLITE_UP: &str =
    include_str!("../../migrations/sqlite/2026-12-05-000016_sla_rollups/up.sql");
const POSTGRES_UP: &str =
    include_str!("../../migrations/postgres/2026-12-05-000016_sla_rollups/up.sql");
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
        diesel::delete(clock_worked::table).execute(conn)?;
        diesel::delete(rating_rollups::table).execute(conn)?;
        let sql = backfill_sql(conn);
        conn.batch_execute(sql)
    })
}

#[derive(Insertable)]
#[diesel(table_name = clock_rollups)]
struct ClockRollup<'a> {
    day: &'a str,
    unit: &'a str,
    matter: &'a str,
    kind: &'a str,
    counted: i64,
    met: i64,
    breached: i64,
    cancelled: i64,
    lost_minutes: i64,
}

#[derive(Insertable)]
#[diesel(table_name = clock_worked)]
struct ClockWorked<'a> {
    day: &'a str,
    unit: &'a str,
    matter: &'a str,
    kind: &'a str,
    worked_minutes: i64,
    clocks: i64,
}

#[derive(Insertable)]
#[diesel(table_name = rating_rollups)]
struct RatingRollup<'a> {
    day: &'a str,
    unit: &'a str,
    matter: &'a str,
    level: i32,
    ratings: i64,
}

/// Adds to a key's row: `update` it, else `insert` it (in a savepoint); when another
/// transaction inserted the key meanwhile, `update` again.
fn add(
    conn: &mut DbConnection,
    update: impl Fn(&mut DbConnection) -> QueryResult<usize>,
    insert: impl FnOnce(&mut DbConnection) -> QueryResult<usize>,
) -> QueryResult<()> {
    if update(conn)? > 0 {
        return Ok(());
    }
    match write_transaction(conn, insert) {
        Ok(_) => Ok(()),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            match update(conn)? {
                0 => Err(DieselError::NotFound),
                _ => Ok(()),
            }
        }
        Err(other) => Err(other),
    }
}

/// Adds a clock that has just stopped (`row` as stored, `stopped_at` set) to the rollups of
/// its day; nothing for a clock that has not stopped. Call it once per clock, in the
/// transaction that stops it.
pub fn count_stopped(conn: &mut DbConnection, row: &ClockRow) -> QueryResult<()> {
    let Some(stopped_at) = row.stopped_at else {
        return Ok(());
    };
    let day = day_key(day_of(stopped_at));
    let breached = i64::from(row.breached_at.is_some());
    let met = i64::from(row.breached_at.is_none() && row.state == "met");
    let figures = ClockRollup {
        day: &day,
        unit: &row.unit,
        matter: &row.matter,
        kind: &row.kind,
        counted: 1,
        met,
        breached,
        cancelled: 1 - met - breached,
        lost_minutes: row.lost_minutes,
    };
    add(
        conn,
        |conn| {
            use clock_rollups::dsl as r;
            diesel::update(r::clock_rollups.find((&day, &row.unit, &row.matter, &row.kind)))
                .set((
                    r::counted.eq(r::counted + figures.counted),
                    r::met.eq(r::met + figures.met),
                    r::breached.eq(r::breached + figures.breached),
                    r::cancelled.eq(r::cancelled + figures.cancelled),
                    r::lost_minutes.eq(r::lost_minutes + figures.lost_minutes),
                ))
                .execute(conn)
        },
        |conn| {
            diesel::insert_into(clock_rollups::table)
                .values(&figures)
                .execute(conn)
        },
    )?;
    let Some(minutes) = row.worked_minutes else {
        return Ok(());
    };
    add(
        conn,
        |conn| {
            use clock_worked::dsl as w;
            diesel::update(w::clock_worked.find((&day, &row.unit, &row.matter, &row.kind, minutes)))
                .set(w::clocks.eq(w::clocks + 1))
                .execute(conn)
        },
        |conn| {
            diesel::insert_into(clock_worked::table)
                .values(&ClockWorked {
                    day: &day,
                    unit: &row.unit,
                    matter: &row.matter,
                    kind: &row.kind,
                    worked_minutes: minutes,
                    clocks: 1,
                })
                .execute(conn)
        },
    )
}

/// Adds a rating just stored to the rollups of its day, in the rating's transaction.
pub fn count_rating(conn: &mut DbConnection, rating: &RatingRow) -> QueryResult<()> {
    let day = day_key(day_of(rating.created_at));
    add(
        conn,
        |conn| {
            use rating_rollups::dsl as r;
            diesel::update(r::rating_rollups.find((
                &day,
                &rating.unit,
                &rating.matter,
                rating.level,
            )))
            .set(r::ratings.eq(r::ratings + 1))
            .execute(conn)
        },
        |conn| {
            diesel::insert_into(rating_rollups::table)
                .values(&RatingRollup {
                    day: &day,
                    unit: &rating.unit,
                    matter: &rating.matter,
                    level: rating.level,
                    ratings: 1,
                })
                .execute(conn)
        },
    )
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
    }

    #[test]
    fn both_migrations_mark_their_backfill() {
        for up in [SQLITE_UP, POSTGRES_UP] {
            let backfill = &up[up.find(BACKFILL).unwrap()..];
            assert_eq!(backfill.matches("INSERT INTO").count(), 3);
            assert!(!backfill.contains("CREATE TABLE"));
        }
    }
}
