//! The supervisors' SLA queries: breaches, clocks at risk, and on-time statistics.
//!
//! These only read `clocks`, which the SLA engine and its worker write. Every query starts
//! from one of the partial indexes of the `2026-11-28-000005_sla` migration, so none of them
//! reads all requests or all clocks:
//!
//! | query | index |
//! |---|---|
//! | breaches (and their total) | `clocks_unit_breached (unit, breached_at)` with a unit, else `clocks_breached (breached_at)` |
//! | clocks at risk, open clocks overdue but not yet marked | `clocks_open_due (due_at) WHERE stopped_at IS NULL AND state = 'running'` |
//! | clocks stopped in a period | `clocks_stopped (stopped_at)` |
//!
//! A planner uses a partial index only when the query's `WHERE` implies the index's, and a
//! bound parameter (`state = $1`) implies nothing (SQLite never looks inside it; PostgreSQL
//! not in a generic plan). So the state of `clocks_open_due` is written as a literal here,
//! never bound. A request's number is read afterwards for the rows of the page only.

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::Bool;

use super::DbConnection;
use super::schema::{clocks, ratings, requests};
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
/// and how many match the filters in all.
pub fn breaches(
    conn: &mut DbConnection,
    filters: &BreachFilters,
    after: Option<&After>,
    limit: i64,
) -> QueryResult<(Vec<Listed>, i64)> {
    let total: i64 = breach_query(filters).count().get_result(conn)?;
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
/// `after`, at most `limit`; and how many there are in all.
pub fn at_risk(
    conn: &mut DbConnection,
    filters: &ClockFilters,
    now: NaiveDateTime,
    until: NaiveDateTime,
    after: Option<&After>,
    limit: i64,
) -> QueryResult<(Vec<Listed>, i64)> {
    let total: i64 = at_risk_query(filters, now, until)
        .count()
        .get_result(conn)?;
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
    fn add(&mut self, level: i32) {
        self.count += 1;
        self.sum += i64::from(level);
        if level >= 3 {
            self.satisfied += 1;
        } else {
            self.bad += 1;
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

/// Counts kept while reading one group's clocks.
#[derive(Debug, Default)]
struct Tally {
    counted: i64,
    met: i64,
    breached: i64,
    open_overdue: i64,
    lost_minutes: i64,
    worked: Vec<i64>,
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
            self.worked.push(minutes);
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.counted += other.counted;
        self.met += other.met;
        self.breached += other.breached;
        self.open_overdue += other.open_overdue;
        self.lost_minutes += other.lost_minutes;
        self.worked.extend_from_slice(&other.worked);
    }

    fn figures(mut self) -> Figures {
        self.worked.sort_unstable();
        let decided = self.met + self.breached;
        Figures {
            counted: self.counted,
            met: self.met,
            breached: self.breached,
            open_overdue: self.open_overdue,
            cancelled: self.counted - self.met - self.breached,
            on_time_rate: (decided > 0).then(|| self.met as f64 / decided as f64),
            median_worked_minutes: percentile(&self.worked, 50),
            p95_worked_minutes: percentile(&self.worked, 95),
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

/// The on-time statistics of `query` (definitions in `docs/sla.md`).
pub fn stats(conn: &mut DbConnection, query: &StatsQuery) -> QueryResult<Stats> {
    let scope = ClockFilters {
        unit: query.unit.clone(),
        matter: None,
        kind: query.kind.clone(),
    };
    // Stopped in the period: clocks_stopped.
    let stopped: Vec<Outcome> = counted(&scope)
        .filter(clocks::stopped_at.is_not_null())
        .filter(clocks::stopped_at.ge(query.from))
        .filter(clocks::stopped_at.lt(query.to))
        .select(Outcome::as_select())
        .load(conn)?;
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

    let mut tallies: std::collections::BTreeMap<String, Tally> = Default::default();
    let key = |clock: &Outcome| match query.group_by {
        GroupBy::Unit => clock.unit.clone(),
        GroupBy::Matter => clock.matter.clone(),
    };
    for clock in &stopped {
        tallies.entry(key(clock)).or_default().add(clock, false);
    }
    for clock in open_marked.iter().chain(&open_unmarked) {
        tallies.entry(key(clock)).or_default().add(clock, true);
    }
    // Ratings given in the period, by the same key (the clock kind plays no part).
    let mut rated = ratings::table
        .filter(ratings::created_at.ge(query.from))
        .filter(ratings::created_at.lt(query.to))
        .into_boxed();
    if let Some(unit) = &query.unit {
        rated = rated.filter(ratings::unit.eq(unit));
    }
    let rated: Vec<(String, String, i32)> = rated
        .select((ratings::unit, ratings::matter, ratings::level))
        .load(conn)?;
    let mut levels: std::collections::BTreeMap<String, Levels> = Default::default();
    for (unit, matter, level) in rated {
        let key = match query.group_by {
            GroupBy::Unit => unit,
            GroupBy::Matter => matter,
        };
        levels.entry(key.clone()).or_default().add(level);
        tallies.entry(key).or_default();
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
