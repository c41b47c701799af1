//! The SLA engine at scale (issue 5, "Benchmark"): the supervisors' breach and at-risk queries
//! over a database of a million requests, and the detection worker marking 100,000 clocks that
//! fall due at the same moment. The figures go to `docs/performance.md`.
//!
//! Opens the database the server opens (`Database::open`: default settings, the given URL,
//! migrations included), then runs three phases:
//!
//! 1. **Seed** `--requests` requests (default 1,000,000) into an empty database: matter requests
//!    spread evenly over the catalog's matters (so over their lead units) and over the year
//!    before now, one lead task each, and the clocks routing gives each matter (window intake,
//!    supplement notice, promised, statutory, delivery: 2.9 a request on the built-in catalog).
//!    Each request lives through call, accept, approve and deliver as far as now allows, its
//!    clocks driven by the crate's own pure [`Clock`] on the working calendar: a step comes
//!    after 5 %–95 % of the allowance, or for 3 % of the clocks after 100 %–160 % (late); the
//!    worker marks warnings and breaches 0–250 ms after they fall due. So the database holds
//!    met clocks, breached-and-stopped ones, open breached ones, running ones due over the next
//!    weeks, and pending ones. Rows go in as multi-row `INSERT`s on the concrete connection
//!    (SQLite, under its bind limit) or `COPY … FROM STDIN BINARY` (PostgreSQL), 50,000
//!    requests per transaction. No audit events are written for this seeded history (the
//!    queries never read them). The statistics' rollups are then filled from the seeded
//!    clocks with the migration's own backfill (`db::rollups::rebuild`). PostgreSQL gets
//!    `VACUUM ANALYZE` afterwards, as autovacuum would after a bulk load; SQLite is left as
//!    the server leaves it (no `ANALYZE`).
//! 2. **Queries**, `--repetitions` times each (default 500) after 20 unmeasured ones: the
//!    statistics of the last 30 days (by unit and by matter for all units, by matter for the
//!    unit with the most breaches), through `db::sla` only; the breach list (first page of 20, newest first, with the total) of a supervisor of all units and of
//!    one unit (the one with the most breaches), and the at-risk list (`within=PT2H`, first page
//!    and total) of both, at the present and at the busiest moment of the coming week (two
//!    hours before the next working day's close, where working-day limits fall due). Each is
//!    timed through `db::sla` (our layer) and, alternating with it, as the equivalent plain SQL
//!    through `diesel::sql_query` on the same connection (raw: count, page, request numbers).
//!    The query plans are printed (`EXPLAIN QUERY PLAN`, `EXPLAIN (ANALYZE, BUFFERS)`).
//! 3. **The same moment**: the worker first catches up on whatever fell due since seeding; then
//!    `--same-moment` running clocks (default 100,000; statutory, already warned, due at the
//!    same instant `--lead-secs` seconds ahead) are added to as many of the newest requests in
//!    one transaction. The server's own worker (`mashangban::sla::detect`, default `[sla]`
//!    settings: batch 2000, tick 250 ms) runs on an actix system thread while this thread
//!    reads the audit chain's head every 10 ms (one index probe; each marked clock appends one
//!    event). Printed: the time from the due instant until the last clock was visibly marked,
//!    each marking transaction (clocks, and its `now` after the due instant), the delay per
//!    clock as recorded (`breached_at − due_at`) and as seen (committed), the audit events
//!    appended (exactly one `clock.breached` per clock is checked), the verification of the
//!    whole chain, and the supervisors' mails written to the outbox.
//!
//! ```text
//! cargo run --release --example sla_bench -- --database-url sqlite:///tmp/msb-sla/bench.db
//! createdb -h 127.0.0.1 -U postgres msb_sla
//! cargo run --release --example sla_bench -- --database-url postgres://postgres@127.0.0.1:5432/msb_sla
//! # Options: --requests N  --same-moment N (0: skip phase 3)  --repetitions N (0: skip phase 2)
//! #          --lead-secs S  --skip-seed (measure an already seeded database again)
//! ```

use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use actix_web::web;
use chrono::{DateTime, NaiveDateTime, SubsecRound, TimeDelta, TimeZone, Utc};
use diesel::connection::SimpleConnection;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel::sqlite::Sqlite;
use mashangban::config::Settings;
use mashangban::db::calendars::Calendars;
use mashangban::db::clocks::{detect_due, to_row};
use mashangban::db::requests::{ClockRow, ensure_catalog_version};
use mashangban::db::sla::{self, BreachFilters, ClockFilters, GroupBy, StatsQuery, percentile};
use mashangban::db::{
    self, Backend, Database, DatabaseUrl, DbConnection, audit, rollups, schema, write_transaction,
};
use mashangban::domain::calendar::Calendar;
use mashangban::domain::catalog::Target;
use mashangban::domain::clock::{Clock, Rules};
use mashangban::domain::request::{ClockKind, ClockState, RequestKind};
use mashangban::domain::uscc::Uscc;
use mashangban::domain::{Catalog, Channel, routing};
use mashangban::http::Metrics;

/// Requests per seeding transaction.
const REQUESTS_PER_TRANSACTION: usize = 50_000;
/// Requests generated (and sent) at a time.
const REQUESTS_PER_CHUNK: usize = 10_000;
/// Rows per multi-row `INSERT` on SQLite: 24 000 bound parameters for a clock (24 columns),
/// under the bundled SQLite's limit of 32 766.
const SQLITE_ROWS_PER_INSERT: usize = 1000;
const _: () = assert!(SQLITE_ROWS_PER_INSERT * 24 <= 32_766);
/// Share of clocks whose step comes after the due time.
const LATE_SHARE: f64 = 0.03;
/// Page size of the supervisors' lists (the routes' default).
const PAGE: i64 = 20;
/// Unmeasured repetitions before the measured ones.
const WARM_UP: usize = 20;
/// How often the marking is counted.
const POLL: Duration = Duration::from_millis(10);
/// Longest wait for the marking.
const MARKING_TIMEOUT: Duration = Duration::from_secs(900);

/// The command line.
struct Args {
    url: String,
    requests: usize,
    same_moment: usize,
    repetitions: usize,
    lead_secs: i64,
    skip_seed: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: String::new(),
        requests: 1_000_000,
        same_moment: 100_000,
        repetitions: 500,
        lead_secs: 60,
        skip_seed: false,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        if flag == "--skip-seed" {
            args.skip_seed = true;
            continue;
        }
        let value = given
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .replace('_', "")
                .parse::<usize>()
                .map_err(|_| format!("{flag} must be a whole number, not `{value}`"))
        };
        match flag.as_str() {
            "--database-url" => args.url = value.clone(),
            "--requests" => args.requests = number()?,
            "--same-moment" => args.same_moment = number()?,
            "--repetitions" => args.repetitions = number()?,
            "--lead-secs" => args.lead_secs = number()? as i64,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if args.url.is_empty() {
        return Err("--database-url is required".into());
    }
    Ok(args)
}

/// SplitMix64: a small, fast, seeded generator, so that every run seeds the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A UUID v7 for an instant, as intake would have made it then.
    fn id_at(&mut self, at: DateTime<Utc>) -> String {
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&self.next().to_le_bytes());
        random[8..].copy_from_slice(&self.next().to_le_bytes()[..2]);
        uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis() as u64, &random)
            .into_uuid()
            .to_string()
    }

    /// Share of its allowance a clock runs before the step that stops it.
    fn share(&mut self) -> f64 {
        if self.unit() < LATE_SHARE {
            1.0 + 0.6 * self.unit()
        } else {
            0.05 + 0.9 * self.unit()
        }
    }

    /// How long after a warning or due time the worker marks it (one tick at most).
    fn worker_lag(&mut self) -> TimeDelta {
        TimeDelta::microseconds(self.below(250_000) as i64)
    }

    fn minutes(&mut self, from: u64, to: u64) -> TimeDelta {
        TimeDelta::seconds((from * 60 + self.below((to - from) * 60)) as i64)
    }
}

/// A request row as seeded. `treat_none_as_default_value = false`: NULLs are bound, so SQLite
/// takes many rows in one `INSERT` and `COPY` gets every column.
#[derive(Insertable)]
#[diesel(table_name = schema::requests, treat_none_as_default_value = false)]
struct SeedRequest {
    id: String,
    number: String,
    uscc: String,
    applicant_name: String,
    kind: String,
    code: String,
    channel: String,
    intake_region: Option<String>,
    contact_email: String,
    form: String,
    commitment: bool,
    status: String,
    lead_unit: String,
    catalog_version: String,
    revision: i32,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    special_procedure: bool,
    extended: bool,
    deemed_accepted_at: Option<NaiveDateTime>,
}

/// A task row as seeded.
#[derive(Insertable)]
#[diesel(table_name = schema::tasks, treat_none_as_default_value = false)]
struct SeedTask {
    id: String,
    request_id: String,
    unit: String,
    matter_code: String,
    category: String,
    role: String,
    status: String,
    created_at: NaiveDateTime,
    claimed_by: Option<String>,
    claimed_at: Option<NaiveDateTime>,
    special_procedure: bool,
}

/// A clock row as seeded: the crate's [`ClockRow`], with NULLs bound.
#[derive(Insertable)]
#[diesel(table_name = schema::clocks, treat_none_as_default_value = false)]
struct SeedClock {
    id: String,
    request_id: String,
    task_id: Option<String>,
    kind: String,
    target: String,
    state: String,
    started_at: Option<NaiveDateTime>,
    due_at: Option<NaiveDateTime>,
    unit: String,
    matter: String,
    warn_at: Option<NaiveDateTime>,
    warned_at: Option<NaiveDateTime>,
    check_at: Option<NaiveDateTime>,
    breached_at: Option<NaiveDateTime>,
    stopped_at: Option<NaiveDateTime>,
    paused_at: Option<NaiveDateTime>,
    paused_seconds: i64,
    pauses: String,
    resumed_at: Option<NaiveDateTime>,
    remaining_seconds: Option<i64>,
    extended_days: i32,
    worked_minutes: Option<i64>,
    lost_to_unit: Option<String>,
    lost_minutes: i64,
}

impl From<ClockRow> for SeedClock {
    fn from(r: ClockRow) -> Self {
        Self {
            id: r.id,
            request_id: r.request_id,
            task_id: r.task_id,
            kind: r.kind,
            target: r.target,
            state: r.state,
            started_at: r.started_at,
            due_at: r.due_at,
            unit: r.unit,
            matter: r.matter,
            warn_at: r.warn_at,
            warned_at: r.warned_at,
            check_at: r.check_at,
            breached_at: r.breached_at,
            stopped_at: r.stopped_at,
            paused_at: r.paused_at,
            paused_seconds: r.paused_seconds,
            pauses: r.pauses,
            resumed_at: r.resumed_at,
            remaining_seconds: r.remaining_seconds,
            extended_days: r.extended_days,
            worked_minutes: r.worked_minutes,
            lost_to_unit: r.lost_to_unit,
            lost_minutes: r.lost_minutes,
        }
    }
}

/// Rows of one batch of requests.
#[derive(Default)]
struct Rows {
    requests: Vec<SeedRequest>,
    tasks: Vec<SeedTask>,
    clocks: Vec<SeedClock>,
}

/// Inserts `rows` on the concrete connection: multi-row `INSERT`s on SQLite, `COPY` on
/// PostgreSQL (MultiConnection would send one statement per row).
fn insert(conn: &mut DbConnection, rows: &Rows) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(c) => {
            for part in rows.requests.chunks(SQLITE_ROWS_PER_INSERT) {
                diesel::insert_into(schema::requests::table)
                    .values(part)
                    .execute(c)?;
            }
            for part in rows.tasks.chunks(SQLITE_ROWS_PER_INSERT) {
                diesel::insert_into(schema::tasks::table)
                    .values(part)
                    .execute(c)?;
            }
            for part in rows.clocks.chunks(SQLITE_ROWS_PER_INSERT) {
                diesel::insert_into(schema::clocks::table)
                    .values(part)
                    .execute(c)?;
            }
        }
        DbConnection::Pg(c) => {
            if !rows.requests.is_empty() {
                diesel::copy_from(schema::requests::table)
                    .from_insertable(&rows.requests)
                    .execute(c)?;
            }
            if !rows.tasks.is_empty() {
                diesel::copy_from(schema::tasks::table)
                    .from_insertable(&rows.tasks)
                    .execute(c)?;
            }
            if !rows.clocks.is_empty() {
                diesel::copy_from(schema::clocks::table)
                    .from_insertable(&rows.clocks)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}

/// What routing gives a request for one matter: its lead unit and its request clocks.
struct Plan {
    code: String,
    unit: String,
    category: String,
    window: Option<Target>,
    supplement: Option<Target>,
    promised: Option<Target>,
    statutory: Option<Target>,
    delivery: Option<Target>,
}

fn plans(catalog: &Catalog) -> Vec<Plan> {
    catalog
        .matters()
        .map(|matter| {
            let routing = routing::route(
                catalog,
                RequestKind::Matter,
                &matter.code,
                Channel::Online,
                None,
            );
            let target = |kind: ClockKind| {
                routing
                    .clocks
                    .iter()
                    .find(|c| c.kind == kind && c.task.is_none())
                    .map(|c| c.target)
            };
            Plan {
                code: matter.code.clone(),
                unit: routing.lead_unit.as_str().into(),
                category: matter.category.as_str().into(),
                window: target(ClockKind::WindowIntake),
                supplement: target(ClockKind::SupplementNotice),
                promised: target(ClockKind::Promised),
                statutory: target(ClockKind::Statutory),
                delivery: target(ClockKind::Delivery),
            }
        })
        .collect()
}

/// `start` plus `share` of the time to `due`.
fn after(start: DateTime<Utc>, due: DateTime<Utc>, share: f64) -> DateTime<Utc> {
    start + TimeDelta::milliseconds(((due - start).num_milliseconds() as f64 * share) as i64)
}

/// Runs `clock` as the engine would have: started at `start`, stopped by the step at the
/// instant `end` picks from the due time, its warning and breach marked by the worker a moment
/// after they fell due, all as far as `now`. Returns the step's instant (after `now` when it
/// has not happened yet); a clock whose start is still to come stays pending.
fn live(
    clock: &mut Clock,
    rules: Rules<'_>,
    start: DateTime<Utc>,
    end: impl FnOnce(DateTime<Utc>) -> DateTime<Utc>,
    now: DateTime<Utc>,
    rng: &mut Rng,
) -> DateTime<Utc> {
    if start > now {
        return start;
    }
    clock
        .start(rules, start)
        .expect("the calendar reaches every deadline");
    let due = clock.due_at.expect("a started clock has a due time");
    let end = end(due).max(start);
    let seen = end.min(now);
    for at in [clock.warn_at, Some(due)].into_iter().flatten() {
        let marked = at + rng.worker_lag();
        if marked <= seen {
            clock.detect(marked);
        }
    }
    if end <= now {
        clock
            .stop(rules, end)
            .expect("the calendar reaches every deadline");
    }
    end
}

/// What every seeded request shares: the present, the rules, the catalog version.
#[derive(Clone, Copy)]
struct Seeding<'a> {
    now: DateTime<Utc>,
    rules: Rules<'a>,
    catalog_version: &'a str,
}

/// One request's life up to `now`: the request, its lead task, its clocks.
fn request(
    seeding: &Seeding<'_>,
    plan: &Plan,
    created: DateTime<Utc>,
    number: String,
    rng: &mut Rng,
    rows: &mut Rows,
) {
    let Seeding {
        now,
        rules,
        catalog_version,
    } = *seeding;
    let id = rng.id_at(created);
    let call = created + rng.minutes(0, 30);
    let mut window = plan.window.map(|t| Clock::new(ClockKind::WindowIntake, t));
    let accept = match &mut window {
        Some(clock) => {
            let share = rng.share();
            live(clock, rules, call, |due| after(call, due, share), now, rng)
        }
        None => call + rng.minutes(1, 10),
    };
    let mut supplement = plan
        .supplement
        .map(|t| Clock::new(ClockKind::SupplementNotice, t));
    if let Some(clock) = &mut supplement {
        live(clock, rules, created, |_| accept, now, rng);
    }
    let mut promised = plan.promised.map(|t| Clock::new(ClockKind::Promised, t));
    let mut statutory = plan.statutory.map(|t| Clock::new(ClockKind::Statutory, t));
    let decided = accept + rng.minutes(5, 30);
    let approve = match (&mut promised, &mut statutory) {
        (Some(clock), _) => {
            let share = rng.share();
            live(
                clock,
                rules,
                created,
                |due| after(created, due, share).max(decided),
                now,
                rng,
            )
        }
        (None, Some(clock)) => {
            let share = rng.share();
            live(
                clock,
                rules,
                accept,
                |due| after(accept, due, share).max(decided),
                now,
                rng,
            )
        }
        (None, None) => decided,
    };
    if promised.is_some() {
        if let Some(clock) = &mut statutory {
            live(clock, rules, accept, |_| approve, now, rng);
        }
    }
    let mut delivery = plan.delivery.map(|t| Clock::new(ClockKind::Delivery, t));
    let deliver = match &mut delivery {
        Some(clock) => {
            let share = rng.share();
            live(
                clock,
                rules,
                approve,
                |due| after(approve, due, share),
                now,
                rng,
            )
        }
        None => approve,
    };

    let steps = [call, accept, approve, deliver];
    let done = steps.iter().filter(|&&at| at <= now).count();
    let status = match done {
        0 => "submitted",
        1 => "called",
        2 => "under_review",
        3 if delivery.is_some() => "approved",
        3 => "completed",
        _ if delivery.is_some() => "delivered",
        _ => "completed",
    };
    let updated = steps
        .iter()
        .copied()
        .filter(|&at| at <= now)
        .max()
        .unwrap_or(created);
    let naive = |t: DateTime<Utc>| t.trunc_subsecs(6).naive_utc();
    let enterprise = rng.below(50_000);
    let channel = match rng.below(10) {
        0..=5 => "online",
        6..=8 => "window",
        _ => "self_service",
    };
    let task_id = rng.id_at(created);
    let clerk = (call <= now).then(|| format!("clerk-{}-{}", plan.unit, rng.below(12)));
    rows.tasks.push(SeedTask {
        id: task_id,
        request_id: id.clone(),
        unit: plan.unit.clone(),
        matter_code: plan.code.clone(),
        category: plan.category.clone(),
        role: "lead".into(),
        status: status.into(),
        created_at: naive(created),
        claimed_at: clerk.as_ref().map(|_| naive(call)),
        claimed_by: clerk,
        special_procedure: false,
    });
    for clock in [window, supplement, promised, statutory, delivery]
        .into_iter()
        .flatten()
    {
        let row = to_row(
            &clock,
            rng.id_at(created),
            id.clone(),
            None,
            plan.unit.clone(),
            plan.code.clone(),
        );
        rows.clocks.push(row.into());
    }
    rows.requests.push(SeedRequest {
        id,
        number,
        uscc: Uscc::completing(&format!("91310107MA{enterprise:07}"))
            .expect("17 characters of the alphabet")
            .to_string(),
        applicant_name: format!("上海示例企业{enterprise}有限公司"),
        kind: "matter".into(),
        code: plan.code.clone(),
        channel: channel.into(),
        intake_region: None,
        contact_email: format!("office{enterprise}@example.com"),
        form: "{}".into(),
        commitment: false,
        status: status.into(),
        lead_unit: plan.unit.clone(),
        catalog_version: catalog_version.into(),
        revision: 1 + done as i32,
        created_at: naive(created),
        updated_at: naive(updated),
        special_procedure: false,
        extended: false,
        deemed_accepted_at: None,
    });
}

/// Seeds `count` requests created over the year before `now`, in time order.
fn seed(
    conn: &mut DbConnection,
    catalog: &Catalog,
    rules: Rules<'_>,
    count: usize,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let plans = plans(catalog);
    let version = catalog.version().to_string();
    let seeding = Seeding {
        now,
        rules,
        catalog_version: &version,
    };
    let mut rng = Rng(0x6d73_625f_736c_6100); // "msb_sla"
    let span = TimeDelta::days(365);
    let first = now - span;
    let slot = span.num_milliseconds() as f64 / count as f64;
    // Human numbers: PT<local date>-<sequence of the day>, as intake numbers them.
    let mut counters: BTreeMap<String, i32> = BTreeMap::new();
    let started = Instant::now();
    let mut made = 0;
    let mut clocks = 0;
    while made < count {
        let in_transaction = REQUESTS_PER_TRANSACTION.min(count - made);
        write_transaction(conn, |conn| {
            let mut left = in_transaction;
            while left > 0 {
                let mut rows = Rows::default();
                for _ in 0..REQUESTS_PER_CHUNK.min(left) {
                    let i = made + rows.requests.len();
                    let created =
                        first + TimeDelta::milliseconds(((i as f64 + rng.unit()) * slot) as i64);
                    let day = (created + TimeDelta::hours(8)).format("%Y%m%d").to_string();
                    let sequence = counters.entry(day.clone()).or_insert(0);
                    *sequence += 1;
                    let number = format!("PT{day}-{sequence:06}");
                    let plan = &plans[rng.below(plans.len() as u64) as usize];
                    request(&seeding, plan, created, number, &mut rng, &mut rows);
                }
                insert(conn, &rows)?;
                made += rows.requests.len();
                clocks += rows.clocks.len();
                left -= rows.requests.len();
            }
            Ok::<_, diesel::result::Error>(())
        })?;
        let seconds = started.elapsed().as_secs_f64();
        if made % 100_000 == 0 || made == count {
            println!(
                "seeded requests={made} clocks={clocks} seconds={seconds:.0} requests_per_s={:.0}",
                made as f64 / seconds
            );
        }
    }
    write_transaction(conn, |conn| {
        for (day, last) in &counters {
            diesel::insert_into(schema::request_counters::table)
                .values((
                    schema::request_counters::day.eq(day),
                    schema::request_counters::last_number.eq(*last),
                ))
                .execute(conn)?;
        }
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

/// A value bound to a placeholder of plain SQL.
enum Bind {
    Text(String),
    Time(NaiveDateTime),
}

/// `sql` (with `?` placeholders) as a boxed `sql_query` for `$backend`, `binds` bound.
macro_rules! bound {
    ($backend:ty, $sql:expr, $binds:expr) => {{
        let mut query = diesel::sql_query($sql).into_boxed::<$backend>();
        for bind in $binds {
            query = match bind {
                Bind::Text(text) => query.bind::<Text, _>(text.clone()),
                Bind::Time(at) => query.bind::<Timestamp, _>(*at),
            };
        }
        query
    }};
}

/// PostgreSQL's numbered placeholders for `?`.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// Plain SQL on the concrete connection, nothing of ours in between.
fn raw<T>(conn: &mut DbConnection, sql: &str, binds: &[Bind]) -> QueryResult<Vec<T>>
where
    T: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
{
    match conn {
        DbConnection::Sqlite(c) => bound!(Sqlite, sql, binds).load::<T>(c),
        DbConnection::Pg(c) => bound!(Pg, numbered(sql), binds).load::<T>(c),
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Group {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The columns `db::sla` lists.
#[derive(QueryableByName)]
#[diesel(table_name = schema::clocks)]
#[allow(dead_code)] // read by the database driver; the timing is what matters
struct RawClock {
    id: String,
    request_id: String,
    kind: String,
    unit: String,
    matter: String,
    target: String,
    state: String,
    due_at: Option<NaiveDateTime>,
    breached_at: Option<NaiveDateTime>,
    stopped_at: Option<NaiveDateTime>,
    lost_to_unit: Option<String>,
    lost_minutes: i64,
}

#[derive(QueryableByName)]
#[diesel(table_name = schema::requests)]
#[allow(dead_code)] // read by the database driver
struct RawNumber {
    id: String,
    number: String,
}

#[derive(QueryableByName)]
struct SqlitePlan {
    #[diesel(sql_type = Text)]
    detail: String,
}

#[derive(QueryableByName)]
struct PgPlan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

const LISTED: &str = "id, request_id, kind, unit, matter, target, state, due_at, breached_at, \
                      stopped_at, lost_to_unit, lost_minutes";

/// One supervisors' query, as plain SQL: the count, the first page, and the numbers.
struct RawQuery {
    count: String,
    page: String,
    binds: Vec<Bind>,
}

impl RawQuery {
    fn breaches(unit: Option<&str>) -> Self {
        let unit_term = if unit.is_some() { "unit = ? AND " } else { "" };
        let filter = format!("{unit_term}breached_at IS NOT NULL");
        Self {
            count: format!("SELECT COUNT(*) AS n FROM clocks WHERE {filter}"),
            page: format!(
                "SELECT {LISTED} FROM clocks WHERE {filter} \
                 ORDER BY breached_at DESC, id DESC LIMIT {PAGE}"
            ),
            binds: unit.map(|u| Bind::Text(u.into())).into_iter().collect(),
        }
    }

    fn at_risk(unit: Option<&str>, now: NaiveDateTime, until: NaiveDateTime) -> Self {
        let unit_term = if unit.is_some() { "unit = ? AND " } else { "" };
        let filter = format!(
            "{unit_term}stopped_at IS NULL AND state = 'running' AND due_at >= ? AND due_at <= ?"
        );
        let mut binds: Vec<Bind> = unit.map(|u| Bind::Text(u.into())).into_iter().collect();
        binds.push(Bind::Time(now));
        binds.push(Bind::Time(until));
        Self {
            count: format!("SELECT COUNT(*) AS n FROM clocks WHERE {filter}"),
            page: format!(
                "SELECT {LISTED} FROM clocks WHERE {filter} ORDER BY due_at ASC, id ASC LIMIT {PAGE}"
            ),
            binds,
        }
    }

    /// Runs the three statements; answers (rows, total).
    fn run(&self, conn: &mut DbConnection) -> QueryResult<(usize, i64)> {
        let total = raw::<Count>(conn, &self.count, &self.binds)?[0].n;
        let rows = raw::<RawClock>(conn, &self.page, &self.binds)?;
        let mut ids: Vec<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            let marks = vec!["?"; ids.len()].join(", ");
            let binds: Vec<Bind> = ids.iter().map(|id| Bind::Text((*id).into())).collect();
            raw::<RawNumber>(
                conn,
                &format!("SELECT id, number FROM requests WHERE id IN ({marks})"),
                &binds,
            )?;
        }
        Ok((rows.len(), total))
    }

    /// The plans of the count and the page.
    fn explain(&self, conn: &mut DbConnection) -> QueryResult<Vec<String>> {
        let mut lines = Vec::new();
        for (what, sql) in [("count", &self.count), ("page", &self.page)] {
            lines.push(format!("  -- {what}: {sql}"));
            match conn {
                DbConnection::Sqlite(_) => {
                    for p in
                        raw::<SqlitePlan>(conn, &format!("EXPLAIN QUERY PLAN {sql}"), &self.binds)?
                    {
                        lines.push(format!("     {}", p.detail));
                    }
                }
                DbConnection::Pg(_) => {
                    for p in raw::<PgPlan>(
                        conn,
                        &format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"),
                        &self.binds,
                    )? {
                        lines.push(format!("     {}", p.line));
                    }
                }
            }
        }
        Ok(lines)
    }
}

/// p50 / p99 / max of durations in microseconds, as milliseconds.
fn summary(mut micros: Vec<i64>) -> String {
    micros.sort_unstable();
    let ms = |v: Option<i64>| v.map_or(0.0, |v| v as f64 / 1000.0);
    format!(
        "p50={:.2}ms p99={:.2}ms max={:.2}ms",
        ms(percentile(&micros, 50)),
        ms(percentile(&micros, 99)),
        ms(micros.last().copied()),
    )
}

/// Times `ours` and `raw`, alternating, `repetitions` times each after a warm-up; checks that
/// both answer the same rows and total.
fn compare(
    conn: &mut DbConnection,
    name: &str,
    repetitions: usize,
    mut ours: impl FnMut(&mut DbConnection) -> QueryResult<(usize, i64)>,
    query: &RawQuery,
) -> QueryResult<()> {
    let mut ours_micros = Vec::with_capacity(repetitions);
    let mut raw_micros = Vec::with_capacity(repetitions);
    let mut answer = (0, 0);
    for round in 0..WARM_UP + repetitions {
        let started = Instant::now();
        answer = ours(conn)?;
        let ours_took = started.elapsed().as_micros() as i64;
        let started = Instant::now();
        let raw_answer = query.run(conn)?;
        let raw_took = started.elapsed().as_micros() as i64;
        assert_eq!(
            answer, raw_answer,
            "{name}: our layer and plain SQL disagree"
        );
        if round >= WARM_UP {
            ours_micros.push(ours_took);
            raw_micros.push(raw_took);
        }
    }
    println!(
        "query {name}: rows={} total={} | db::sla {} | plain SQL {}",
        answer.0,
        answer.1,
        summary(ours_micros),
        summary(raw_micros)
    );
    Ok(())
}

/// Two hours before the close of the next working day after `now`: when most working-day
/// limits are about to fall due.
fn busiest_moment(calendar: &Calendar, now: DateTime<Utc>) -> DateTime<Utc> {
    let zone = calendar.time_zone();
    let mut date = now.with_timezone(&zone).date_naive();
    loop {
        if let Some(&(_, close)) = calendar.service_periods(date).last() {
            if let Some(local) = zone.from_local_datetime(&date.and_time(close)).single() {
                let moment = local.with_timezone(&Utc) - TimeDelta::hours(2);
                if moment > now {
                    return moment;
                }
            }
        }
        date = date.succ_opt().expect("a next day");
    }
}

fn queries(conn: &mut DbConnection, calendar: &Calendar, repetitions: usize) -> QueryResult<()> {
    let by_state = raw::<Group>(
        conn,
        "SELECT state AS key, COUNT(*) AS n FROM clocks GROUP BY state ORDER BY state",
        &[],
    )?;
    let states: Vec<String> = by_state
        .iter()
        .map(|g| format!("{}={}", g.key, g.n))
        .collect();
    let total: i64 = by_state.iter().map(|g| g.n).sum();
    let breached = raw::<Count>(
        conn,
        "SELECT COUNT(*) AS n FROM clocks WHERE breached_at IS NOT NULL",
        &[],
    )?[0]
        .n;
    let open_breached = raw::<Count>(
        conn,
        "SELECT COUNT(*) AS n FROM clocks WHERE breached_at IS NOT NULL AND stopped_at IS NULL",
        &[],
    )?[0]
        .n;
    let requests = raw::<Count>(conn, "SELECT COUNT(*) AS n FROM requests", &[])?[0].n;
    println!(
        "database requests={requests} clocks={total} ({}) breached={breached} ({:.2} %) open_breached={open_breached}",
        states.join(" "),
        100.0 * breached as f64 / total.max(1) as f64
    );
    let by_unit = raw::<Group>(
        conn,
        "SELECT unit AS key, COUNT(*) AS n FROM clocks WHERE breached_at IS NOT NULL \
         GROUP BY unit ORDER BY n DESC, unit",
        &[],
    )?;
    let units: Vec<String> = by_unit
        .iter()
        .map(|g| format!("{}={}", g.key, g.n))
        .collect();
    println!("breaches by unit: {}", units.join(" "));
    let unit = by_unit
        .first()
        .map_or_else(|| "market".to_string(), |g| g.key.clone());

    let now = Utc::now().trunc_subsecs(6);
    let busy = busiest_moment(calendar, now);
    let within = TimeDelta::hours(2);
    println!(
        "at-risk instants: now={} busiest={} (within PT2H)",
        now.to_rfc3339(),
        busy.to_rfc3339()
    );

    // The statistics of the last 30 days (the API's default period), from the rollups.
    for (label, group_by, scope) in [
        ("by unit, all units", GroupBy::Unit, None),
        ("by matter, all units", GroupBy::Matter, None),
        ("by matter", GroupBy::Matter, Some(unit.clone())),
    ] {
        let query = StatsQuery {
            group_by,
            unit: scope.clone(),
            kind: None,
            from: (now - TimeDelta::days(30)).naive_utc(),
            to: now.naive_utc(),
            now: now.naive_utc(),
        };
        let mut micros = Vec::with_capacity(repetitions);
        let mut counted = 0;
        for round in 0..WARM_UP + repetitions {
            let started = Instant::now();
            counted = sla::stats(conn, &query)?.overall.counted;
            if round >= WARM_UP {
                micros.push(started.elapsed().as_micros() as i64);
            }
        }
        let scope = scope.map_or(String::new(), |u| format!(", unit {u}"));
        println!(
            "query stats 30 days ({label}{scope}): counted={counted} | db::sla {}",
            summary(micros)
        );
    }

    for scope in [None, Some(unit.as_str())] {
        let label = scope.map_or("all units".to_string(), |u| format!("unit {u}"));
        let filters = BreachFilters {
            clocks: ClockFilters {
                unit: scope.map(str::to_string),
                ..ClockFilters::default()
            },
            ..BreachFilters::default()
        };
        let query = RawQuery::breaches(scope);
        for line in query.explain(conn)? {
            println!("{line}");
        }
        compare(
            conn,
            &format!("breaches ({label}, first page, with total)"),
            repetitions,
            |conn| {
                let (rows, total) =
                    sla::breaches(conn, &filters, None, PAGE, mashangban::db::TOTAL_CAP)?;
                Ok((rows.len(), total.count))
            },
            &query,
        )?;
        // The total alone: what a page after the first still pays.
        let count = RawQuery {
            count: query.count.clone(),
            page: format!("{} LIMIT 0", query.count),
            binds: query.binds.iter().map(clone_bind).collect(),
        };
        let mut counts = Vec::with_capacity(repetitions);
        for round in 0..WARM_UP + repetitions {
            let started = Instant::now();
            raw::<Count>(conn, &count.count, &count.binds)?;
            if round >= WARM_UP {
                counts.push(started.elapsed().as_micros() as i64);
            }
        }
        println!(
            "query breaches total alone ({label}), plain SQL: {}",
            summary(counts)
        );
        for (moment, at) in [("now", now), ("busiest", busy)] {
            let filters = ClockFilters {
                unit: scope.map(str::to_string),
                ..ClockFilters::default()
            };
            let (from, until) = (at.naive_utc(), (at + within).naive_utc());
            let query = RawQuery::at_risk(scope, from, until);
            for line in query.explain(conn)? {
                println!("{line}");
            }
            compare(
                conn,
                &format!("at-risk PT2H ({label}, at {moment}, first page, with total)"),
                repetitions,
                |conn| {
                    let (rows, total) = sla::at_risk(
                        conn,
                        &filters,
                        from,
                        until,
                        None,
                        PAGE,
                        mashangban::db::TOTAL_CAP,
                    )?;
                    Ok((rows.len(), total.count))
                },
                &query,
            )?;
        }
    }
    Ok(())
}

fn clone_bind(bind: &Bind) -> Bind {
    match bind {
        Bind::Text(text) => Bind::Text(text.clone()),
        Bind::Time(at) => Bind::Time(*at),
    }
}

/// Phase 3: `count` clocks due at one instant, marked by the server's own worker.
fn same_moment(
    database: &Database,
    settings: &Settings,
    catalog: &Catalog,
    calendar: &Calendar,
    count: usize,
    lead_secs: i64,
) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| e.to_string();
    let mut conn = database.pool_get().map_err(|e| failed(&e))?;
    let conn = &mut *conn;
    let rules = Rules {
        calendar,
        warn_percent: settings.sla.warn_percent,
    };

    // What fell due since seeding, as the worker of a running server would have marked it.
    let started = Instant::now();
    let mut caught_up = 0;
    loop {
        let marked = detect_due(conn, catalog, rules, Utc::now(), settings.sla.batch)
            .map_err(|e| format!("{e:?}"))?;
        if marked.is_empty() {
            break;
        }
        caught_up += marked.len();
    }
    println!(
        "caught up: {caught_up} warnings and breaches due since seeding, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let head_before: i64 = schema::audit_events::table
        .select(diesel::dsl::max(schema::audit_events::seq))
        .first::<Option<i64>>(conn)
        .map_err(|e| failed(&e))?
        .unwrap_or(0);
    let mails_before = raw::<Count>(conn, "SELECT COUNT(*) AS n FROM notifications", &[])
        .ok()
        .map(|c| c[0].n);

    // The cohort: one more statutory clock on each of the newest requests, already warned,
    // all due at `due` (microseconds included, so no seeded clock shares the instant).
    let cohort: Vec<(String, String, String)> = schema::requests::table
        .order(schema::requests::created_at.desc())
        .limit(count as i64)
        .select((
            schema::requests::id,
            schema::requests::lead_unit,
            schema::requests::code,
        ))
        .load(conn)
        .map_err(|e| failed(&e))?;
    if cohort.len() < count {
        return Err(format!(
            "only {} requests to hang {count} clocks on",
            cohort.len()
        ));
    }
    let due = (Utc::now() + TimeDelta::seconds(lead_secs)).trunc_subsecs(6);
    let due_naive = due.naive_utc();
    let mut rng = Rng(0x5a4d_u64 << 20);
    let target: Target = "20 working_days".parse().expect("a target");
    let warn = due - TimeDelta::days(6);
    let mut rows = Rows::default();
    let mut ids = HashSet::with_capacity(count);
    for (request_id, unit, matter) in &cohort {
        let mut clock = Clock::new(ClockKind::Statutory, target);
        clock.state = ClockState::Running;
        clock.started_at = Some(due - TimeDelta::days(28));
        clock.due_at = Some(due);
        clock.warn_at = Some(warn);
        clock.warned_at = Some(warn + rng.worker_lag());
        let id = rng.id_at(due - TimeDelta::days(28));
        ids.insert(id.clone());
        let row = to_row(
            &clock,
            id,
            request_id.clone(),
            None,
            unit.clone(),
            matter.clone(),
        );
        assert_eq!(
            row.check_at,
            Some(due_naive),
            "the cohort is checked at its due time"
        );
        rows.clocks.push(row.into());
    }
    let started = Instant::now();
    write_transaction(conn, |conn| insert(conn, &rows)).map_err(|e| failed(&e))?;
    println!(
        "inserted {count} running clocks due at {}, {:.1} s",
        due.to_rfc3339(),
        started.elapsed().as_secs_f64()
    );
    let until_due = (due - Utc::now())
        .to_std()
        .map_err(|_| "the insert outlasted --lead-secs; give it more".to_string())?;
    let due_instant = Instant::now() + until_due;

    // The server's own worker, on its own actix system, as `serve` runs it.
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = Arc::clone(&stop);
        let database = database.clone();
        let calendars = web::Data::new(Calendars::new(calendar.clone()));
        let catalog = web::Data::new(catalog.clone());
        let metrics = web::Data::new(Metrics::new());
        let sla_settings = settings.sla;
        thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let detector = actix_web::rt::spawn(mashangban::sla::detect(
                    database,
                    calendars,
                    catalog,
                    metrics,
                    sla_settings,
                    mashangban::background::StopSignal::never(),
                ));
                while !stop.load(Ordering::Relaxed) {
                    actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                }
                detector.abort();
            });
        })
    };

    // Watching costs the worker nothing worth counting: the chain's head is one index probe,
    // and every marked clock appends one event.
    thread::sleep(due_instant.saturating_duration_since(Instant::now()));
    let head = |conn: &mut DbConnection| {
        schema::audit_events::table
            .select(diesel::dsl::max(schema::audit_events::seq))
            .first::<Option<i64>>(conn)
            .map(|seq| seq.unwrap_or(0))
    };
    let unmarked = |conn: &mut DbConnection| {
        schema::clocks::table
            .filter(schema::clocks::check_at.eq(due_naive))
            .count()
            .get_result::<i64>(conn)
    };
    let mut seen: Vec<i64> = Vec::with_capacity(count);
    let mut appended = head_before;
    let mut finished = None;
    while due_instant.elapsed() < MARKING_TIMEOUT {
        let now_head = head(conn).map_err(|e| failed(&e))?;
        let at = due_instant.elapsed().as_micros() as i64;
        for _ in appended..now_head {
            seen.push(at);
        }
        appended = now_head;
        if appended - head_before >= count as i64 && unmarked(conn).map_err(|e| failed(&e))? == 0 {
            finished = Some(Duration::from_micros(at as u64));
            break;
        }
        thread::sleep(POLL);
    }
    stop.store(true, Ordering::Relaxed);
    worker
        .join()
        .map_err(|_| "the worker thread panicked".to_string())?;
    let Some(finished) = finished else {
        return Err(format!(
            "clocks still unmarked after {} s",
            MARKING_TIMEOUT.as_secs()
        ));
    };
    // Events of seeded clocks that fell due meanwhile are few; keep the cohort's share.
    seen.truncate(count);

    let marked: Vec<(String, Option<NaiveDateTime>, String)> = schema::clocks::table
        .filter(schema::clocks::due_at.eq(due_naive))
        .select((
            schema::clocks::id,
            schema::clocks::breached_at,
            schema::clocks::state,
        ))
        .load(conn)
        .map_err(|e| failed(&e))?;
    if marked.len() != count {
        return Err(format!(
            "{} clocks due at the instant, not {count}",
            marked.len()
        ));
    }
    let mut recorded: Vec<i64> = Vec::with_capacity(marked.len());
    let mut looks: BTreeMap<NaiveDateTime, usize> = BTreeMap::new();
    for (id, breached_at, state) in &marked {
        assert!(
            ids.contains(id),
            "a seeded clock shares the cohort's due time"
        );
        assert_eq!(state, "breached", "clock {id} not breached");
        let at = breached_at.expect("a breached clock has breached_at");
        *looks.entry(at).or_default() += 1;
        recorded.push((at - due_naive).num_microseconds().unwrap_or(i64::MAX));
    }
    println!(
        "marked {count} clocks due at the same moment: last visible {:.2} s after the due time, {} marking transactions",
        finished.as_secs_f64(),
        looks.len()
    );
    let transactions: Vec<String> = looks
        .iter()
        .map(|(at, n)| {
            format!(
                "{n}@{:.0}ms",
                (*at - due_naive).num_microseconds().unwrap_or(0) as f64 / 1000.0
            )
        })
        .collect();
    println!(
        "marking transactions (clocks@their now - due): {}",
        transactions.join(" ")
    );
    println!(
        "delay as recorded (breached_at - due_at): {}",
        summary(recorded)
    );
    println!(
        "delay as seen (committed; the chain's head read every 10 ms): {}",
        summary(seen)
    );

    // The audit trail: one `clock.breached` per cohort clock, and a chain that still holds.
    let events: Vec<(String, String)> = schema::audit_events::table
        .filter(schema::audit_events::seq.gt(head_before))
        .select((schema::audit_events::action, schema::audit_events::payload))
        .load(conn)
        .map_err(|e| failed(&e))?;
    let mut breach_events = HashSet::with_capacity(count);
    let mut duplicates = 0;
    let mut others = 0;
    for (action, payload) in &events {
        let clock = serde_json::from_str::<serde_json::Value>(payload)
            .ok()
            .and_then(|p| p["clock"].as_str().map(str::to_string));
        match clock {
            Some(clock) if action == "clock.breached" && ids.contains(&clock) => {
                if !breach_events.insert(clock) {
                    duplicates += 1;
                }
            }
            _ => others += 1,
        }
    }
    let started = Instant::now();
    let verified = audit::verify(conn, None).map_err(|e| failed(&e))?;
    let verify_took = started.elapsed().as_secs_f64();
    let mails_after = raw::<Count>(conn, "SELECT COUNT(*) AS n FROM notifications", &[])
        .ok()
        .map(|c| c[0].n);
    println!(
        "audit: {} events appended, clock.breached for {} distinct cohort clocks, {duplicates} duplicates, {others} others; chain {} ({verify_took:.1} s)",
        events.len(),
        breach_events.len(),
        match &verified {
            Ok(head) => format!("verifies up to seq {}", head.seq),
            Err(broken) => format!("BROKEN: {broken:?}"),
        }
    );
    if let (Some(before), Some(after)) = (mails_before, mails_after) {
        println!("outbox: {} supervisor mails written", after - before);
    }
    if breach_events.len() != count || duplicates != 0 || verified.is_err() {
        return Err("the audit trail does not hold exactly one breach per clock".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("sla_bench: {problem}");
            eprintln!(
                "usage: sla_bench --database-url URL [--requests N] [--same-moment N] \
                 [--repetitions N] [--lead-secs S] [--skip-seed]"
            );
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("sla_bench: {problem}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    let mut settings = Settings::defaults();
    settings.database.url = args.url.clone();
    let database = Database::open(&settings.database).map_err(|e| e.to_string())?;
    let catalog = Catalog::builtin();
    let calendar = Calendar::builtin_shanghai();
    let rules = Rules {
        calendar: &calendar,
        warn_percent: settings.sla.warn_percent,
    };
    let url = DatabaseUrl::parse(&args.url)?;
    println!(
        "sla_bench backend={} requests={} same_moment={} repetitions={} batch={} tick_ms={}",
        database.backend(),
        args.requests,
        args.same_moment,
        args.repetitions,
        settings.sla.batch,
        settings.sla.tick_ms
    );

    if !args.skip_seed {
        // A connection of its own: the pool's stay as the server has them.
        let mut conn = db::establish(&url, &settings.database).map_err(|e| e.to_string())?;
        let existing: i64 = schema::requests::table
            .count()
            .get_result(&mut conn)
            .map_err(|e| e.to_string())?;
        if existing > 0 {
            return Err(format!(
                "the database already holds {existing} requests: seed an empty one, or pass --skip-seed"
            ));
        }
        let now = Utc::now();
        write_transaction(&mut conn, |conn| {
            ensure_catalog_version(conn, &catalog, now.naive_utc())
        })
        .map_err(|e| e.to_string())?;
        let started = Instant::now();
        seed(&mut conn, &catalog, rules, args.requests, now).map_err(|e| e.to_string())?;
        let seeded = started.elapsed().as_secs_f64();
        // The rows went in behind the engine's back: the statistics' rollups are filled from
        // them with the migration's own backfill, as an upgrade fills them.
        let started = Instant::now();
        rollups::rebuild(&mut conn).map_err(|e| e.to_string())?;
        println!(
            "statistics rollups rebuilt from the seeded clocks: {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let started = Instant::now();
        match url.backend() {
            Backend::Postgres => conn.batch_execute("VACUUM ANALYZE"),
            Backend::Sqlite => conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)"),
        }
        .map_err(|e| e.to_string())?;
        println!(
            "seeding took {seeded:.0} s, then {:.0} s of {}",
            started.elapsed().as_secs_f64(),
            match url.backend() {
                Backend::Postgres => "VACUUM ANALYZE",
                Backend::Sqlite => "WAL checkpoint",
            }
        );
    }

    if args.repetitions > 0 {
        let mut conn = database.pool_get().map_err(|e| e.to_string())?;
        queries(&mut conn, &calendar, args.repetitions).map_err(|e| e.to_string())?;
    }
    if args.same_moment > 0 {
        same_moment(
            &database,
            &settings,
            &catalog,
            &calendar,
            args.same_moment,
            args.lead_secs,
        )?;
    }
    Ok(())
}
