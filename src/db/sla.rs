//! The supervisors' SLA queries: breaches, clocks at risk, and on-time statistics.
//!
//! These read `clocks`, which the SLA engine and its worker write, and the statistics' rollups
//! ([`super::rollups`]), which the transactions that stop clocks and store ratings keep. Every
//! query starts from an index, so none of them reads all requests or all clocks:
//!
//! | query | index |
//! |---|---|
//! | breaches (and their total) | `clocks_unit_breached (unit, breached_at)` with a unit, else `clocks_breached (breached_at)` |
//! | clocks at risk, open clocks overdue but not yet marked | `clocks_open_due (due_at) WHERE stopped_at IS NULL AND state = 'running'` |
//! | statistics: whole Shanghai days | the rollups' primary keys, day first ([`super::rollups`]) |
//! | statistics: parts of a day at the period's ends | `clocks_stopped (stopped_at, …)`, covering the columns read |
//!
//! A planner uses a partial index only when the query's `WHERE` implies the index's, and a
//! bound parameter (`state = $1`) implies nothing (SQLite never looks inside it; PostgreSQL
//! not in a generic plan). So the state of `clocks_open_due` is written as a literal here,
//! never bound. A request's number is read afterwards for the rows of the page only.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Text};

use super::schema::{
    clock_rollup_months, clock_rollups, clocks, rating_rollup_months, rating_rollups, ratings,
    requests,
};
use super::{DbConnection, rollups};
use crate::domain::handling_time::Histogram;
use crate::domain::request::ClockKind;

type Backend = <DbConnection as Connection>::Backend;

/// Most request ids looked up in one `IN (…)` list.
const NUMBER_BATCH: usize = 500;

/// The state predicate of `clocks_open_due`, as a literal (see the module documentation).
fn running() -> diesel::expression::SqlLiteral<Bool> {
    sql::<Bool>("clocks.state = 'running'")
}

/// The columns of a clock that the supervisors' lists show.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = clocks)]
pub struct SlaClock {
    /// Clock id.
    pub id: String,
    /// The request.
    pub request_id: String,
    /// Clock kind.
    pub kind: String,
    /// The unit it counts against.
    pub unit: String,
    /// Matter or bundle code.
    pub matter: String,
    /// Target as published.
    pub target: String,
    /// State.
    pub state: String,
    /// Due (UTC).
    pub due_at: Option<NaiveDateTime>,
    /// Marked breached (UTC).
    pub breached_at: Option<NaiveDateTime>,
    /// Stopped (UTC); `None` while open.
    pub stopped_at: Option<NaiveDateTime>,
    /// Unit charged with a return's lost time.
    pub lost_to_unit: Option<String>,
    /// Working minutes lost to a return.
    pub lost_minutes: i64,
}

/// A listed clock with its request's number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The clock.
    pub clock: SlaClock,
    /// The request's human number.
    pub number: String,
}

/// Where a page starts: strictly after this (instant, clock id) in the list's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    /// `breached_at` (breaches) or `due_at` (at risk) of the last row of the previous page.
    pub at: NaiveDateTime,
    /// Its clock id.
    pub id: String,
}

/// Filters shared by the lists; all optional and combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClockFilters {
    /// Unit the clock counts against (a unit supervisor's own unit is always set here).
    pub unit: Option<String>,
    /// Matter or bundle code.
    pub matter: Option<String>,
    /// Clock kind.
    pub kind: Option<String>,
}

/// The clocks the statistics count: [`filtered`], but a deferred material's clock (容缺) runs
/// on the enterprise's time, not the unit's, so it counts only when asked for by kind.
fn counted<'a>(f: &'a ClockFilters) -> clocks::BoxedQuery<'a, Backend> {
    let query = filtered(f);
    if f.kind.is_some() {
        query
    } else {
        query.filter(clocks::kind.ne(ClockKind::Material.as_str()))
    }
}

fn filtered<'a>(f: &'a ClockFilters) -> clocks::BoxedQuery<'a, Backend> {
    let mut query = clocks::table.into_boxed();
    if let Some(unit) = &f.unit {
        query = query.filter(clocks::unit.eq(unit));
    }
    if let Some(matter) = &f.matter {
        query = query.filter(clocks::matter.eq(matter));
    }
    if let Some(kind) = &f.kind {
        query = query.filter(clocks::kind.eq(kind));
    }
    query
}

/// Filters of the breach list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreachFilters {
    /// Unit, matter, kind.
    pub clocks: ClockFilters,
    /// Breached at or after (UTC).
    pub from: Option<NaiveDateTime>,
    /// Breached before (UTC).
    pub to: Option<NaiveDateTime>,
    /// `Some(true)`: still open (not stopped); `Some(false)`: stopped.
    pub open: Option<bool>,
}

fn breach_query<'a>(f: &'a BreachFilters) -> clocks::BoxedQuery<'a, Backend> {
    let mut query = filtered(&f.clocks).filter(clocks::breached_at.is_not_null());
    if let Some(from) = f.from {
        query = query.filter(clocks::breached_at.ge(from));
    }
    if let Some(to) = f.to {
        query = query.filter(clocks::breached_at.lt(to));
    }
    match f.open {
        Some(true) => query = query.filter(clocks::stopped_at.is_null()),
        Some(false) => query = query.filter(clocks::stopped_at.is_not_null()),
        None => {}
    }
    query
}

/// Breached clocks (`breached_at` set), newest breach first, after `after`, at most `limit`;
/// and how many match the filters in all, counted up to `cap` ([`super::count_up_to`]).
pub fn breaches(
    conn: &mut DbConnection,
    filters: &BreachFilters,
    after: Option<&After>,
    limit: i64,
    cap: i64,
) -> QueryResult<(Vec<Listed>, super::Total)> {
    let total = super::count_up_to(conn, breach_query(filters).select(clocks::id), cap)?;
    let mut page = breach_query(filters);
    if let Some(after) = after {
        // The first term bounds the index range, so the scan starts at the cursor.
        page = page.filter(clocks::breached_at.le(after.at)).filter(
            clocks::breached_at
                .lt(after.at)
                .or(clocks::id.lt(after.id.clone())),
        );
    }
    let rows: Vec<SlaClock> = page
        .order((clocks::breached_at.desc(), clocks::id.desc()))
        .limit(limit)
        .select(SlaClock::as_select())
        .load(conn)?;
    Ok((with_numbers(conn, rows)?, total))
}

fn at_risk_query<'a>(
    f: &'a ClockFilters,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> clocks::BoxedQuery<'a, Backend> {
    filtered(f)
        .filter(clocks::stopped_at.is_null())
        .filter(running())
        .filter(clocks::due_at.ge(now))
        .filter(clocks::due_at.le(until))
}

/// Open running clocks due from `now` to `until` (both included), soonest due first, after
/// `after`, at most `limit`; and how many there are in all, counted up to `cap`.
pub fn at_risk(
    conn: &mut DbConnection,
    filters: &ClockFilters,
    now: NaiveDateTime,
    until: NaiveDateTime,
    after: Option<&After>,
    limit: i64,
    cap: i64,
) -> QueryResult<(Vec<Listed>, super::Total)> {
    let total = super::count_up_to(
        conn,
        at_risk_query(filters, now, until).select(clocks::id),
        cap,
    )?;
    let mut page = at_risk_query(filters, now, until);
    if let Some(after) = after {
        page = page.filter(clocks::due_at.ge(after.at)).filter(
            clocks::due_at
                .gt(after.at)
                .or(clocks::id.gt(after.id.clone())),
        );
    }
    let rows: Vec<SlaClock> = page
        .order((clocks::due_at.asc(), clocks::id.asc()))
        .limit(limit)
        .select(SlaClock::as_select())
        .load(conn)?;
    Ok((with_numbers(conn, rows)?, total))
}

/// Adds each clock's request number, reading only the requests of these rows.
fn with_numbers(conn: &mut DbConnection, rows: Vec<SlaClock>) -> QueryResult<Vec<Listed>> {
    let mut ids: Vec<&str> = rows.iter().map(|c| c.request_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut numbers = std::collections::HashMap::with_capacity(ids.len());
    for batch in ids.chunks(NUMBER_BATCH) {
        let found: Vec<(String, String)> = requests::table
            .filter(requests::id.eq_any(batch))
            .select((requests::id, requests::number))
            .load(conn)?;
        numbers.extend(found);
    }
    Ok(rows
        .into_iter()
        .map(|clock| Listed {
            number: numbers.get(&clock.request_id).cloned().unwrap_or_default(),
            clock,
        })
        .collect())
}

/// What the statistics are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The unit a clock counts against.
    Unit,
    /// The matter (or bundle) it counts for.
    Matter,
}

/// The clocks the statistics count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    /// Grouping.
    pub group_by: GroupBy,
    /// Only this unit (a unit supervisor's own).
    pub unit: Option<String>,
    /// Only this clock kind.
    pub kind: Option<String>,
    /// Period start (UTC, included).
    pub from: NaiveDateTime,
    /// Period end (UTC, excluded).
    pub to: NaiveDateTime,
    /// The present (UTC): a running clock due before it is overdue.
    pub now: NaiveDateTime,
}

/// The figures of one group (or of all of them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Clocks counted: stopped in the period, plus open ones that became overdue in it.
    pub counted: i64,
    /// Stopped in the period in time (state `met`, never breached).
    pub met: i64,
    /// Breached: `breached_at` set, plus open running clocks already past due but not yet
    /// marked.
    pub breached: i64,
    /// Of the breached, those still open.
    pub open_overdue: i64,
    /// Counted but neither met nor breached (cancelled).
    pub cancelled: i64,
    /// `met ÷ (met + breached)`; `None` when both are 0.
    pub on_time_rate: Option<f64>,
    /// Median handling time (working minutes) of the clocks stopped in the period.
    pub median_worked_minutes: Option<i64>,
    /// 95th percentile of the same.
    pub p95_worked_minutes: Option<i64>,
    /// Working minutes lost to returns, over the counted clocks.
    pub lost_minutes: i64,
    /// Ratings (好差评) given in the period.
    pub satisfaction: Satisfaction,
}

/// Ratings given in the period (docs/ratings.md).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Satisfaction {
    /// How many.
    pub ratings: i64,
    /// Of them, level 3 (基本满意) or better.
    pub satisfied: i64,
    /// Of them, level 1 or 2 (差评): each opened a rectification case.
    pub bad: i64,
    /// `satisfied ÷ ratings`; `None` without ratings.
    pub satisfaction_rate: Option<f64>,
    /// Mean level; `None` without ratings.
    pub average_level: Option<f64>,
}

/// Sums of levels while reading ratings.
#[derive(Debug, Default, Clone, Copy)]
struct Levels {
    count: i64,
    satisfied: i64,
    bad: i64,
    sum: i64,
}

impl Levels {
    fn add(&mut self, level: i32, ratings: i64) {
        self.count += ratings;
        self.sum += i64::from(level) * ratings;
        if level >= 3 {
            self.satisfied += ratings;
        } else {
            self.bad += ratings;
        }
    }

    fn merge(&mut self, other: Levels) {
        self.count += other.count;
        self.satisfied += other.satisfied;
        self.bad += other.bad;
        self.sum += other.sum;
    }

    fn satisfaction(self) -> Satisfaction {
        let rated = self.count > 0;
        Satisfaction {
            ratings: self.count,
            satisfied: self.satisfied,
            bad: self.bad,
            satisfaction_rate: rated.then(|| self.satisfied as f64 / self.count as f64),
            average_level: rated.then(|| self.sum as f64 / self.count as f64),
        }
    }
}

/// One group's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The unit or matter code.
    pub key: String,
    /// Its figures.
    pub figures: Figures,
}

/// The statistics: per group, and over all groups together.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Groups in code order.
    pub groups: Vec<Group>,
    /// Every counted clock together.
    pub overall: Figures,
}

/// What the statistics need of one clock.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = clocks)]
struct Outcome {
    unit: String,
    matter: String,
    state: String,
    breached_at: Option<NaiveDateTime>,
    worked_minutes: Option<i64>,
    lost_minutes: i64,
}

/// Counts kept while reading one group's clocks and rollups. Handling times are kept as a
/// histogram of bucketed values (`domain::handling_time`), so memory is bounded whatever the
/// number of clocks.
#[derive(Debug, Default)]
struct Tally {
    counted: i64,
    met: i64,
    breached: i64,
    open_overdue: i64,
    lost_minutes: i64,
    worked: Histogram,
}

impl Tally {
    fn add(&mut self, clock: &Outcome, open: bool) {
        self.counted += 1;
        self.lost_minutes += clock.lost_minutes;
        if open {
            // Only open clocks that are overdue are read at all.
            self.breached += 1;
            self.open_overdue += 1;
            return;
        }
        if clock.breached_at.is_some() {
            self.breached += 1;
        } else if clock.state == "met" {
            self.met += 1;
        }
        if let Some(minutes) = clock.worked_minutes {
            self.worked.add(minutes, 1);
        }
    }

    /// Adds a rollup row of stopped clocks (a day's or a month's).
    fn add_stopped(&mut self, row: &StoppedRow) -> QueryResult<()> {
        self.counted += row.counted;
        self.met += row.met;
        self.breached += row.breached;
        self.lost_minutes += row.lost_minutes;
        self.worked
            .add_text(&row.worked)
            .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))
    }

    fn merge(&mut self, other: &Tally) {
        self.counted += other.counted;
        self.met += other.met;
        self.breached += other.breached;
        self.open_overdue += other.open_overdue;
        self.lost_minutes += other.lost_minutes;
        self.worked.merge(&other.worked);
    }

    fn figures(&self) -> Figures {
        let decided = self.met + self.breached;
        Figures {
            counted: self.counted,
            met: self.met,
            breached: self.breached,
            open_overdue: self.open_overdue,
            cancelled: self.counted - self.met - self.breached,
            on_time_rate: (decided > 0).then(|| self.met as f64 / decided as f64),
            median_worked_minutes: self.worked.percentile(50),
            p95_worked_minutes: self.worked.percentile(95),
            lost_minutes: self.lost_minutes,
            satisfaction: Satisfaction::default(),
        }
    }
}

/// The nearest-rank `p`-th percentile of `sorted` (ascending): the value at rank
/// ⌈p · n / 100⌉, counting from 1. Always one of the values; `None` for no values.
pub fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// One rollup row of stopped clocks (a day's or a month's), keyed by its group.
#[derive(Debug, Queryable)]
struct StoppedRow {
    key: String,
    counted: i64,
    met: i64,
    breached: i64,
    lost_minutes: i64,
    worked: String,
}

/// The column a statistics group is keyed by, as SQL (one of two fixed names, never input).
fn key_column(group_by: GroupBy) -> &'static str {
    match group_by {
        GroupBy::Unit => "unit",
        GroupBy::Matter => "matter",
    }
}

/// `CAST(SUM(column) AS BIGINT)`: PostgreSQL sums a `BIGINT` as `NUMERIC`.
fn sum(column: &str) -> diesel::expression::SqlLiteral<BigInt> {
    sql::<BigInt>(&format!("CAST(SUM({column}) AS BIGINT)"))
}

/// A filter on a rollup table, built up by parts.
type Condition<T> = Box<dyn BoxableExpression<T, Backend, SqlType = Bool>>;

/// A stretch of whole Shanghai days read from the rollups: whole calendar months from the
/// month rollups, the days before and after them from the day rollups.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spans {
    /// Day keys: `[first, end)` ranges of `YYYY-MM-DD`.
    days: Vec<(String, String)>,
    /// Month keys: a `[first, end)` range of `YYYY-MM`, if any month is whole.
    months: Option<(String, String)>,
}

/// The first day of the month after `day`'s.
fn next_month(day: NaiveDate) -> NaiveDate {
    let first = day.with_day(1).unwrap_or(day);
    first
        .checked_add_months(Months::new(1))
        .unwrap_or(NaiveDate::MAX)
}

/// Splits the whole days `[first, end)` into the whole months inside and the days around them.
fn spans(first: NaiveDate, end: NaiveDate) -> Spans {
    let month_start = if first.day() == 1 {
        first
    } else {
        next_month(first)
    };
    let mut month_end = month_start;
    while next_month(month_end) <= end {
        month_end = next_month(month_end);
    }
    if month_end == month_start {
        return Spans {
            days: vec![(rollups::day_key(first), rollups::day_key(end))],
            months: None,
        };
    }
    let days = [(first, month_start), (month_end, end)]
        .into_iter()
        .filter(|(a, b)| a < b)
        .map(|(a, b)| (rollups::day_key(a), rollups::day_key(b)))
        .collect();
    Spans {
        days,
        months: Some((
            rollups::month_key(month_start),
            rollups::month_key(month_end),
        )),
    }
}

/// Loads the rollup rows of stopped clocks of `$table` whose `$period` is in `[$from, $to)`,
/// in the scope of `$query` (unit, kind), keyed by its grouping.
macro_rules! stopped_rows {
    ($conn:expr, $table:ident, $period:ident, $query:expr, ($from:expr, $to:expr)) => {{
        let query: &StatsQuery = $query;
        let mut rows = $table::table
            .filter($table::$period.ge($from))
            .filter($table::$period.lt($to))
            .into_boxed();
        if let Some(unit) = &query.unit {
            rows = rows.filter($table::unit.eq(unit.clone()));
        }
        rows = match &query.kind {
            Some(kind) => rows.filter($table::kind.eq(kind.clone())),
            None => rows.filter($table::kind.ne(ClockKind::Material.as_str())),
        };
        rows.select((
            sql::<Text>(key_column(query.group_by)),
            $table::counted,
            $table::met,
            $table::breached,
            $table::lost_minutes,
            $table::worked,
        ))
        .load::<StoppedRow>($conn)
    }};
}

/// Loads the ratings of `$table` whose `$period` is in `[$from, $to)`, summed per group and
/// level, in the scope of `$query` (unit).
macro_rules! rated_rows {
    ($conn:expr, $table:ident, $period:ident, $query:expr, ($from:expr, $to:expr)) => {{
        let query: &StatsQuery = $query;
        let key = key_column(query.group_by);
        let mut rows: Condition<$table::table> = Box::new(
            $table::$period
                .ge($from.clone())
                .and($table::$period.lt($to.clone())),
        );
        if let Some(unit) = &query.unit {
            rows = Box::new(rows.and($table::unit.eq(unit.clone())));
        }
        $table::table
            .filter(rows)
            .group_by((sql::<Text>(key), sql::<Integer>("level")))
            .select((sql::<Text>(key), sql::<Integer>("level"), sum("ratings")))
            .load::<(String, i32, i64)>($conn)
    }};
}

/// Adds the whole Shanghai days `[first, end)` from the rollups: the whole calendar months
/// from the month rows, the other days from the day rows; each row of stopped clocks read as
/// it is (its handling times are merged here), the ratings summed by the database.
fn add_whole_days(
    conn: &mut DbConnection,
    query: &StatsQuery,
    (first, end): (NaiveDate, NaiveDate),
    tallies: &mut BTreeMap<String, Tally>,
    levels: &mut BTreeMap<String, Levels>,
) -> QueryResult<()> {
    let spans = spans(first, end);
    let mut stopped = Vec::new();
    let mut rated = Vec::new();
    for (from, to) in &spans.days {
        stopped.extend(stopped_rows!(conn, clock_rollups, day, query, (from, to))?);
        rated.extend(rated_rows!(conn, rating_rollups, day, query, (from, to))?);
    }
    if let Some((from, to)) = &spans.months {
        stopped.extend(stopped_rows!(
            conn,
            clock_rollup_months,
            month,
            query,
            (from, to)
        )?);
        rated.extend(rated_rows!(
            conn,
            rating_rollup_months,
            month,
            query,
            (from, to)
        )?);
    }
    for row in &stopped {
        tallies
            .entry(row.key.clone())
            .or_default()
            .add_stopped(row)?;
    }
    for (group, level, ratings) in rated {
        levels.entry(group.clone()).or_default().add(level, ratings);
        tallies.entry(group).or_default();
    }
    Ok(())
}

/// Adds the clocks stopped and the ratings given in `[from, to)`, a part of one day, from
/// the rows themselves (`clocks_stopped`; ratings by `created_at`).
fn add_rows(
    conn: &mut DbConnection,
    query: &StatsQuery,
    (from, to): (NaiveDateTime, NaiveDateTime),
    tallies: &mut BTreeMap<String, Tally>,
    levels: &mut BTreeMap<String, Levels>,
) -> QueryResult<()> {
    if from >= to {
        return Ok(());
    }
    let scope = ClockFilters {
        unit: query.unit.clone(),
        matter: None,
        kind: query.kind.clone(),
    };
    let key = |unit: &str, matter: &str| match query.group_by {
        GroupBy::Unit => unit.to_string(),
        GroupBy::Matter => matter.to_string(),
    };
    let stopped: Vec<Outcome> = counted(&scope)
        .filter(clocks::stopped_at.is_not_null())
        .filter(clocks::stopped_at.ge(from))
        .filter(clocks::stopped_at.lt(to))
        .select(Outcome::as_select())
        .load(conn)?;
    for clock in &stopped {
        tallies
            .entry(key(&clock.unit, &clock.matter))
            .or_default()
            .add(clock, false);
    }
    // Ratings given in the part, by the same key (the clock kind plays no part).
    let mut rated = ratings::table
        .filter(ratings::created_at.ge(from))
        .filter(ratings::created_at.lt(to))
        .into_boxed();
    if let Some(unit) = &query.unit {
        rated = rated.filter(ratings::unit.eq(unit));
    }
    let rated: Vec<(String, String, i32)> = rated
        .select((ratings::unit, ratings::matter, ratings::level))
        .load(conn)?;
    for (unit, matter, level) in rated {
        let group = key(&unit, &matter);
        levels.entry(group.clone()).or_default().add(level, 1);
        tallies.entry(group).or_default();
    }
    Ok(())
}

/// The whole Shanghai days inside `[from, to)`, as the first day and the day after the last;
/// `None` when not one whole day fits.
fn whole_days(from: NaiveDateTime, to: NaiveDateTime) -> Option<(NaiveDate, NaiveDate)> {
    let mut first = rollups::day_of(from);
    if rollups::day_start(first) < from {
        first = first.succ_opt()?;
    }
    // The day `to` falls in is whole only up to `to`, which is excluded: it is not inside.
    let end = rollups::day_of(to);
    (first < end).then_some((first, end))
}

/// The on-time statistics of `query` (definitions in `docs/sla.md`).
///
/// Clocks stopped and ratings given on the whole Shanghai days of the period come from the
/// rollups ([`super::rollups`]), summed by the database; the parts of a day at either end of
/// the period from the rows themselves (two days at most); open overdue clocks live from
/// `clocks`. Nothing read grows with the number of clocks in the period: handling times are
/// merged as histograms.
pub fn stats(conn: &mut DbConnection, query: &StatsQuery) -> QueryResult<Stats> {
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut levels: BTreeMap<String, Levels> = BTreeMap::new();
    match whole_days(query.from, query.to) {
        Some((first, end)) => {
            add_whole_days(conn, query, (first, end), &mut tallies, &mut levels)?;
            let (start, finish) = (rollups::day_start(first), rollups::day_start(end));
            add_rows(conn, query, (query.from, start), &mut tallies, &mut levels)?;
            add_rows(conn, query, (finish, query.to), &mut tallies, &mut levels)?;
        }
        None => add_rows(
            conn,
            query,
            (query.from, query.to),
            &mut tallies,
            &mut levels,
        )?,
    }

    let scope = ClockFilters {
        unit: query.unit.clone(),
        matter: None,
        kind: query.kind.clone(),
    };
    // Open, marked breached in the period: clocks_breached / clocks_unit_breached.
    let open_marked: Vec<Outcome> = counted(&scope)
        .filter(clocks::breached_at.is_not_null())
        .filter(clocks::breached_at.ge(query.from))
        .filter(clocks::breached_at.lt(query.to))
        .filter(clocks::stopped_at.is_null())
        .select(Outcome::as_select())
        .load(conn)?;
    // Open, running, fell due in the period (and before now), not marked yet: clocks_open_due.
    let due_before = query.to.min(query.now);
    let open_unmarked: Vec<Outcome> = if query.from < due_before {
        counted(&scope)
            .filter(clocks::stopped_at.is_null())
            .filter(running())
            .filter(clocks::due_at.ge(query.from))
            .filter(clocks::due_at.lt(due_before))
            .filter(clocks::breached_at.is_null())
            .select(Outcome::as_select())
            .load(conn)?
    } else {
        Vec::new()
    };
    for clock in open_marked.iter().chain(&open_unmarked) {
        let key = match query.group_by {
            GroupBy::Unit => clock.unit.clone(),
            GroupBy::Matter => clock.matter.clone(),
        };
        tallies.entry(key).or_default().add(clock, true);
    }

    let mut all = Tally::default();
    let mut all_levels = Levels::default();
    let groups = tallies
        .into_iter()
        .map(|(key, tally)| {
            all.merge(&tally);
            let group_levels = levels.get(&key).copied().unwrap_or_default();
            all_levels.merge(group_levels);
            let mut figures = tally.figures();
            figures.satisfaction = group_levels.satisfaction();
            Group { key, figures }
        })
        .collect();
    let mut overall = all.figures();
    overall.satisfaction = all_levels.satisfaction();
    Ok(Stats { groups, overall })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[10, 20], 50), Some(10));
        assert_eq!(percentile(&[10, 20, 30], 50), Some(20));
        assert_eq!(percentile(&[10, 20, 30, 40], 50), Some(20));
        assert_eq!(percentile(&[10, 20, 30, 40], 95), Some(40));
        let hundred: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 50), Some(50));
        assert_eq!(percentile(&hundred, 95), Some(95));
        let twenty: Vec<i64> = (1..=20).collect();
        assert_eq!(percentile(&twenty, 95), Some(19));
    }

    #[test]
    fn a_histogram_gives_the_percentiles_of_its_values() {
        // A small seeded generator (SplitMix64): many lengths and repetitions of values.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        for _ in 0..500 {
            let n = (next() % 60) as usize;
            let spread = 1 + next() % 40;
            let mut values: Vec<i64> = (0..n).map(|_| (next() % spread) as i64).collect();
            let mut histogram = Histogram::default();
            for &v in &values {
                histogram.add(v, 1); // below 64: kept exactly
            }
            values.sort_unstable();
            for p in [1, 50, 95, 99, 100] {
                assert_eq!(
                    histogram.percentile(p),
                    percentile(&values, p),
                    "{values:?} p{p}"
                );
            }
        }
        assert_eq!(Histogram::default().percentile(50), None);
    }

    #[test]
    fn whole_months_come_from_the_month_rollups_the_days_around_them_from_the_day_rollups() {
        let spans_of = |first, end| spans(day(first), day(end));
        let days = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        // No whole month inside: days only.
        let within = spans_of("2026-10-30", "2026-11-29");
        assert_eq!(within.days, days(&[("2026-10-30", "2026-11-29")]));
        assert_eq!(within.months, None);
        assert_eq!(spans_of("2026-11-02", "2026-11-30").months, None);
        // Exactly one month.
        let november = spans_of("2026-11-01", "2026-12-01");
        assert!(november.days.is_empty());
        assert_eq!(november.months, Some(("2026-11".into(), "2026-12".into())));
        // A year: days, months, days; across the new year.
        let year = spans_of("2025-11-29", "2026-11-29");
        assert_eq!(
            year.days,
            days(&[("2025-11-29", "2025-12-01"), ("2026-11-01", "2026-11-29")])
        );
        assert_eq!(year.months, Some(("2025-12".into(), "2026-11".into())));
        // Whole months from the first, days after.
        let from_first = spans_of("2026-01-01", "2026-03-15");
        assert_eq!(from_first.days, days(&[("2026-03-01", "2026-03-15")]));
        assert_eq!(
            from_first.months,
            Some(("2026-01".into(), "2026-03".into()))
        );
    }

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn whole_shanghai_days_of_a_period() {
        // Shanghai midnight is 16:00 UTC the day before.
        let whole = |from, to| whole_days(at(from), at(to));
        assert_eq!(
            whole("2026-11-30 16:00:00", "2026-12-02 16:00:00"),
            Some((day("2026-12-01"), day("2026-12-03")))
        );
        assert_eq!(whole("2026-11-30 16:00:01", "2026-12-02 15:59:59"), None);
        assert_eq!(
            whole("2026-11-30 15:59:59", "2026-12-02 16:00:01"),
            Some((day("2026-12-01"), day("2026-12-03")))
        );
        assert_eq!(
            whole("2026-11-30 16:00:01", "2026-12-03 12:00:00"),
            Some((day("2026-12-02"), day("2026-12-03")))
        );
        assert_eq!(whole("2026-12-01 00:00:00", "2026-12-01 12:00:00"), None);
        assert_eq!(whole("2026-12-01 12:00:00", "2026-12-01 00:00:00"), None);
    }

    fn outcome(state: &str, breached: bool, worked: Option<i64>, lost: i64) -> Outcome {
        Outcome {
            unit: "tax".into(),
            matter: "tax.registration".into(),
            state: state.into(),
            breached_at: breached.then(|| chrono::DateTime::UNIX_EPOCH.naive_utc()),
            worked_minutes: worked,
            lost_minutes: lost,
        }
    }

    #[test]
    fn a_tally_counts_open_overdue_clocks_as_breached() {
        let mut tally = Tally::default();
        tally.add(&outcome("met", false, Some(30), 0), false);
        tally.add(&outcome("met", false, Some(10), 5), false);
        tally.add(&outcome("breached", true, Some(90), 0), false);
        tally.add(&outcome("cancelled", false, None, 0), false);
        tally.add(&outcome("running", false, None, 7), true);
        let figures = tally.figures();
        assert_eq!(figures.counted, 5);
        assert_eq!(figures.met, 2);
        assert_eq!(figures.breached, 2);
        assert_eq!(figures.open_overdue, 1);
        assert_eq!(figures.cancelled, 1);
        assert_eq!(figures.on_time_rate, Some(0.5));
        assert_eq!(figures.median_worked_minutes, Some(30));
        assert_eq!(figures.p95_worked_minutes, Some(90));
        assert_eq!(figures.lost_minutes, 12);
        assert_eq!(Tally::default().figures().on_time_rate, None);
    }
}
