//! The supervisors' SLA API: breaches (JSON or CSV), clocks at risk, on-time statistics.
//!
//! Supervisors and administrators only. A unit supervisor sees the clocks that count against
//! their own unit; a district supervisor (no unit) and an administrator see every clock.
//! Every wrong parameter is a 422 naming it, all of them at once. Definitions (what counts as
//! breached, on time, handling time) and the CSV format are in `docs/sla.md`.

use actix_web::http::header::{self, Header, HeaderValue, Quality};
use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, SubsecRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Actor, Principal, Role};
use crate::db::calendars::Calendars;
use crate::db::sla::{
    self, After, BreachFilters, ClockFilters, Figures, GroupBy, Listed, StatsQuery,
};
use crate::db::tickets;
use crate::db::{Database, TOTAL_CAP};
use crate::domain::UnitCode;
use crate::domain::calendar::Calendar;
use crate::domain::request::{ClockKind, ClockState};
use crate::error::{ApiError, FieldError, Problem};

/// Largest page.
const MAX_LIMIT: i64 = 100;
/// Default page.
const DEFAULT_LIMIT: i64 = 20;
/// Most rows of one CSV answer; the rest follows through the `Link: rel="next"` header.
pub const CSV_MAX_ROWS: i64 = 10_000;
/// Default `within` of the at-risk list.
const DEFAULT_WITHIN: &str = "PT2H";
/// Longest `within`.
const MAX_WITHIN: TimeDelta = TimeDelta::days(31);
/// Default length of the statistics period, ending now.
const DEFAULT_PERIOD: TimeDelta = TimeDelta::days(30);
/// Media type of the CSV export.
const TEXT_CSV: &str = "text/csv; charset=utf-8";
/// Header carrying the total of a CSV export.
const TOTAL_COUNT: &str = "X-Total-Count";

/// A breached clock.
#[derive(Debug, Serialize, ToSchema)]
pub struct BreachView {
    /// Clock id.
    pub clock_id: String,
    /// Request id.
    pub request_id: String,
    /// Request number.
    #[schema(example = "PT20261128-000123")]
    pub number: String,
    /// Clock kind.
    pub kind: ClockKind,
    /// Clock state (`breached` while open, or as it stopped).
    pub state: ClockState,
    /// The unit the clock counts against.
    pub unit: String,
    /// Matter or bundle code.
    pub matter: String,
    /// Target as published.
    #[schema(example = "20 working_days")]
    pub target: String,
    /// When it fell due.
    pub due_at: Option<DateTime<Utc>>,
    /// `due_at` falls after the working calendar's horizon (its last configured day): it
    /// moves when the year's holidays are loaded (docs/calendars.md).
    pub provisional: bool,
    /// When the breach was marked.
    pub breached_at: DateTime<Utc>,
    /// When the clock stopped; null while still open.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Still open (not stopped).
    pub open: bool,
    /// Wall-clock minutes from due to stop (or to now, while open).
    pub overdue_minutes: Option<i64>,
    /// The same in working minutes of the calendar.
    pub overdue_working_minutes: Option<i64>,
    /// The unit that returned the request (退单), charged with the lost time.
    pub lost_to_unit: Option<String>,
    /// Working minutes lost to a return.
    pub lost_minutes: i64,
}

/// A page of breaches.
#[derive(Debug, Serialize, ToSchema)]
pub struct BreachPage {
    /// Newest breach first.
    pub items: Vec<BreachView>,
    /// How many breaches match the filters in all: exact while `total_capped` is false; else
    /// more than `total` (1,000) match and the count stopped there.
    pub total: i64,
    /// More breaches match than `total`: the count stops at 1,000 so that a page never counts
    /// every breach ever kept.
    pub total_capped: bool,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// An open clock falling due soon.
#[derive(Debug, Serialize, ToSchema)]
pub struct AtRiskView {
    /// Clock id.
    pub clock_id: String,
    /// Request id.
    pub request_id: String,
    /// Request number.
    pub number: String,
    /// Clock kind.
    pub kind: ClockKind,
    /// The unit the clock counts against.
    pub unit: String,
    /// Matter or bundle code.
    pub matter: String,
    /// Target as published.
    pub target: String,
    /// When it falls due.
    pub due_at: DateTime<Utc>,
    /// `due_at` falls after the working calendar's horizon (its last configured day): it
    /// moves when the year's holidays are loaded (docs/calendars.md).
    pub provisional: bool,
    /// Wall-clock minutes left (rounded down).
    pub remaining_minutes: i64,
    /// Working minutes left on the calendar (rounded down).
    pub remaining_working_minutes: i64,
}

/// Open clocks due within the window.
#[derive(Debug, Serialize, ToSchema)]
pub struct AtRiskPage {
    /// The window asked for (ISO 8601).
    #[schema(example = "PT2H")]
    pub within: String,
    /// The present the window starts at.
    pub now: DateTime<Utc>,
    /// Least remaining time first.
    pub items: Vec<AtRiskView>,
    /// How many clocks fall due within the window in all: exact while `total_capped` is false;
    /// else more than `total` (1,000).
    pub total: i64,
    /// More clocks fall due than `total`: the count stops at 1,000.
    pub total_capped: bool,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The figures of a group of clocks (definitions in docs/sla.md).
#[derive(Debug, Serialize, ToSchema)]
pub struct FiguresView {
    /// Clocks counted: stopped in the period, plus open ones that became overdue in it.
    pub counted: i64,
    /// Stopped in the period, in time.
    pub met: i64,
    /// Breached: marked breached, plus open running clocks past due but not marked yet.
    pub breached: i64,
    /// Of the breached, those still open.
    pub open_overdue: i64,
    /// Counted but neither met nor breached (cancelled).
    pub cancelled: i64,
    /// met ÷ (met + breached); null when both are 0.
    pub on_time_rate: Option<f64>,
    /// Median handling time in working minutes of the clocks stopped in the period
    /// (nearest rank); null when none. Handling times of an hour or more are counted rounded
    /// down to six significant binary digits (at most 3.1 % low; docs/sla.md).
    pub median_worked_minutes: Option<i64>,
    /// 95th percentile of the same (nearest rank, same rounding); null when none.
    pub p95_worked_minutes: Option<i64>,
    /// Working minutes lost to returns, over the counted clocks.
    pub lost_minutes: i64,
    /// Ratings (好差评) given in the period.
    pub satisfaction: SatisfactionView,
}

/// Ratings given in the period (docs/ratings.md); the clock `kind` filter plays no part.
#[derive(Debug, Serialize, ToSchema)]
pub struct SatisfactionView {
    /// How many ratings.
    pub ratings: i64,
    /// Of them, level 3 (基本满意) or better.
    pub satisfied: i64,
    /// Of them, level 1 or 2 (差评), each of which opened a rectification case.
    pub bad: i64,
    /// satisfied ÷ ratings; null without ratings.
    pub satisfaction_rate: Option<f64>,
    /// Mean level, 1 to 5; null without ratings.
    pub average_level: Option<f64>,
}

impl From<Figures> for FiguresView {
    fn from(f: Figures) -> Self {
        Self {
            counted: f.counted,
            met: f.met,
            breached: f.breached,
            open_overdue: f.open_overdue,
            cancelled: f.cancelled,
            on_time_rate: f.on_time_rate,
            median_worked_minutes: f.median_worked_minutes,
            p95_worked_minutes: f.p95_worked_minutes,
            lost_minutes: f.lost_minutes,
            satisfaction: SatisfactionView {
                ratings: f.satisfaction.ratings,
                satisfied: f.satisfaction.satisfied,
                bad: f.satisfaction.bad,
                satisfaction_rate: f.satisfaction.satisfaction_rate,
                average_level: f.satisfaction.average_level,
            },
        }
    }
}

/// One group's figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupStats {
    /// The unit or matter code.
    pub key: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: FiguresView,
}

/// What the statistics are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// The unit a clock counts against.
    Unit,
    /// The matter (or bundle) it counts for.
    Matter,
}

/// On-time statistics over a period.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    /// The grouping.
    pub group_by: Grouping,
    /// Period start (included).
    pub from: DateTime<Utc>,
    /// Period end (excluded).
    pub to: DateTime<Utc>,
    /// The clock kind counted, when filtered.
    pub kind: Option<ClockKind>,
    /// The unit counted: the caller's own for a unit supervisor, else null (all).
    pub unit: Option<String>,
    /// One entry per group with counted clocks or ratings, in code order.
    pub groups: Vec<GroupStats>,
    /// Every counted clock together.
    pub overall: FiguresView,
    /// Waiting in the hall's window queue (docs/tickets.md): per unit, the tickets first
    /// called in the period and the time from check-in to that call.
    pub waiting: Vec<WaitingView>,
}

/// One unit's waiting times in the window queue over the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingView {
    /// The unit.
    pub unit: String,
    /// Tickets first called in the period.
    pub called: i64,
    /// Median seconds from check-in to the first call (nearest rank).
    pub median_wait_seconds: Option<i64>,
    /// 95th percentile of the same (nearest rank).
    pub p95_wait_seconds: Option<i64>,
}

/// Filters and page of the breach list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BreachQuery {
    /// Only clocks counting against this unit.
    #[param(value_type = Option<UnitCode>)]
    pub unit: Option<String>,
    /// Only clocks of this matter or bundle code.
    pub matter: Option<String>,
    /// Only this clock kind.
    #[param(value_type = Option<ClockKind>)]
    pub kind: Option<String>,
    /// Breached at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// Breached before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
    /// `true`: only clocks still open; `false`: only stopped ones.
    #[param(value_type = Option<bool>)]
    pub open: Option<String>,
    /// `next_cursor` of the previous page (JSON), or of the `Link` header (CSV).
    #[param(
        pattern = "^-?[0-9]{1,16}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20). The CSV export ignores it.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// Window, filters and page of the at-risk list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AtRiskQuery {
    /// How far ahead to look: an ISO 8601 duration of days, hours, minutes or seconds, up to
    /// P31D (default PT2H).
    #[param(example = "PT2H")]
    pub within: Option<String>,
    /// Only clocks counting against this unit.
    #[param(value_type = Option<UnitCode>)]
    pub unit: Option<String>,
    /// Only clocks of this matter or bundle code.
    pub matter: Option<String>,
    /// Only this clock kind.
    #[param(value_type = Option<ClockKind>)]
    pub kind: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = "^-?[0-9]{1,16}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// Grouping, period and kind of the statistics.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Group by `unit` (default) or `matter`.
    #[param(value_type = Option<Grouping>)]
    pub group_by: Option<String>,
    /// Period start, included (RFC 3339; default: 30 days before `to`).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// Period end, excluded (RFC 3339; default: now).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
    /// Only this clock kind.
    #[param(value_type = Option<ClockKind>)]
    pub kind: Option<String>,
}

/// Collects every wrong parameter before answering.
#[derive(Default)]
struct Check {
    errors: Vec<FieldError>,
}

impl Check {
    /// Parses `value` of parameter `name` when present.
    fn field<T>(
        &mut self,
        name: &str,
        value: &Option<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match parse(value.as_deref()?) {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                self.fail(name, message);
                None
            }
        }
    }

    fn fail(&mut self, name: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            pointer: name.into(),
            message: message.into(),
        });
    }

    fn done(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

fn unit(text: &str) -> Result<UnitCode, String> {
    text.parse()
        .map_err(|e: crate::domain::unit::UnknownUnit| e.to_string())
}

fn kind(text: &str) -> Result<String, String> {
    text.parse::<ClockKind>().map(|k| k.as_str().to_string())
}

fn time(text: &str) -> Result<NaiveDateTime, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc).naive_utc())
        .map_err(|e| format!("not an RFC 3339 time ({e}), e.g. 2026-11-28T09:00:00+08:00"))
}

fn limit(text: &str) -> Result<i64, String> {
    match text.parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from 1 to {MAX_LIMIT}")),
    }
}

fn boolean(text: &str) -> Result<bool, String> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

/// A matter code filter: an empty value means no filter.
fn matter(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `<microseconds since the epoch>_<clock id>` of the last row of a page (the `cursor`
/// parameters' documented pattern says the same).
fn cursor_of(at: NaiveDateTime, id: &str) -> String {
    format!("{}_{id}", at.and_utc().timestamp_micros())
}

fn cursor(text: &str) -> Result<After, String> {
    let bad = || "not a cursor from a previous page".to_string();
    let (micros, id) = text.split_once('_').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok(After {
        at: at.naive_utc(),
        id: id.hyphenated().to_string(),
    })
}

/// Parses an ISO 8601 duration made of weeks, days, hours, minutes and seconds (whole
/// numbers, designators in order: `P1W`, `P2D`, `PT2H`, `P1DT12H`, `PT90M`, `PT30S`). Years
/// and months are refused: they have no fixed length.
pub fn parse_duration(text: &str) -> Result<TimeDelta, String> {
    let wrong = || format!("`{text}` is not an ISO 8601 duration such as PT2H, PT30M or P1DT12H");
    let rest = text.strip_prefix('P').ok_or_else(wrong)?;
    let (date, time) = match rest.split_once('T') {
        Some((_, "")) => return Err(wrong()),
        Some((date, time)) => (date, time),
        None => (rest, ""),
    };
    if date.is_empty() && time.is_empty() {
        return Err(wrong());
    }
    let mut seconds: i64 = 0;
    for (in_date, part, units) in [
        (true, date, &[('W', 7 * 86_400), ('D', 86_400)][..]),
        (false, time, &[('H', 3_600), ('M', 60), ('S', 1)][..]),
    ] {
        let mut digits = String::new();
        let mut next_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            if in_date && matches!(c, 'Y' | 'M') {
                return Err(format!(
                    "`{text}`: years and months have no fixed length; use days (P30D)"
                ));
            }
            let position = units[next_unit..]
                .iter()
                .position(|(designator, _)| *designator == c)
                .ok_or_else(wrong)?;
            if digits.is_empty() || digits.len() > 9 {
                return Err(wrong());
            }
            let amount: i64 = digits.parse().map_err(|_| wrong())?;
            seconds += amount * units[next_unit + position].1;
            next_unit += position + 1;
            digits.clear();
        }
        if !digits.is_empty() {
            return Err(wrong());
        }
    }
    Ok(TimeDelta::seconds(seconds))
}

/// The unit a supervisor is confined to (`None`: every unit); 403 for everyone else.
fn supervisor_scope(principal: &Principal) -> Result<Option<UnitCode>, ApiError> {
    principal.require(&[Role::Supervisor, Role::Admin])?;
    Ok(match principal.actor {
        Actor::Supervisor(unit) => unit,
        _ => None,
    })
}

/// The unit filter: the caller's own unit, or the one asked for when the caller sees all.
/// A unit supervisor asking for another unit is refused (403).
fn unit_filter(
    scope: Option<UnitCode>,
    asked: Option<UnitCode>,
) -> Result<Option<String>, ApiError> {
    match (scope, asked) {
        (Some(own), Some(other)) if own != other => Err(ApiError::forbidden(format!(
            "a supervisor of {own} sees only the clocks of {own}, not those of {other}"
        ))),
        (Some(own), _) => Ok(Some(own.to_string())),
        (None, asked) => Ok(asked.map(|u| u.to_string())),
    }
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

fn parse_or<T: std::str::FromStr>(text: &str, fallback: T) -> T {
    text.parse().unwrap_or(fallback)
}

fn breach_view(row: Listed, calendar: &Calendar, now: NaiveDateTime) -> BreachView {
    let c = row.clock;
    let breached_at = c.breached_at.unwrap_or(now);
    let end = c.stopped_at.unwrap_or(now);
    let overdue = c.due_at.map(|due| ((end - due).num_minutes().max(0), due));
    BreachView {
        kind: parse_or(&c.kind, ClockKind::Promised),
        state: parse_or(&c.state, ClockState::Breached),
        overdue_minutes: overdue.map(|(minutes, _)| minutes),
        overdue_working_minutes: overdue
            .map(|(_, due)| calendar.working_minutes_between(utc(due), utc(end))),
        clock_id: c.id,
        request_id: c.request_id,
        number: row.number,
        unit: c.unit,
        matter: c.matter,
        target: c.target,
        due_at: c.due_at.map(utc),
        provisional: c
            .due_at
            .is_some_and(|due| calendar.horizon().is_provisional(utc(due))),
        breached_at: utc(breached_at),
        stopped_at: c.stopped_at.map(utc),
        open: c.stopped_at.is_none(),
        lost_to_unit: c.lost_to_unit,
        lost_minutes: c.lost_minutes,
    }
}

/// Whether the client prefers `text/csv` to JSON (`Accept`, with q-values and specificity).
fn wants_csv(req: &HttpRequest) -> bool {
    let Ok(accept) = header::Accept::parse(req) else {
        return false;
    };
    let acceptable = header::Accept(
        accept
            .iter()
            .filter(|item| item.quality > Quality::ZERO)
            .cloned()
            .collect(),
    );
    for mime in acceptable.ranked() {
        match (mime.type_().as_str(), mime.subtype().as_str()) {
            ("text", "csv") => return true,
            ("application", "json" | "*") | ("*", _) => return false,
            _ => {}
        }
    }
    false
}

/// The columns of the CSV export, in order.
pub const CSV_COLUMNS: [&str; 17] = [
    "clock_id",
    "request_id",
    "number",
    "kind",
    "state",
    "unit",
    "matter",
    "target",
    "due_at",
    "breached_at",
    "stopped_at",
    "open",
    "overdue_minutes",
    "overdue_working_minutes",
    "lost_to_unit",
    "lost_minutes",
    "provisional",
];

/// One CSV field, quoted as RFC 4180 asks when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn csv_time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

/// The CSV export: a header line, then one line per breach, CRLF line ends (RFC 4180).
pub fn csv(items: &[BreachView]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for b in items {
        let number = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
        let fields = [
            b.clock_id.clone(),
            b.request_id.clone(),
            b.number.clone(),
            b.kind.as_str().to_string(),
            b.state.as_str().to_string(),
            b.unit.clone(),
            b.matter.clone(),
            b.target.clone(),
            csv_time(b.due_at),
            csv_time(Some(b.breached_at)),
            csv_time(b.stopped_at),
            b.open.to_string(),
            number(b.overdue_minutes),
            number(b.overdue_working_minutes),
            b.lost_to_unit.clone().unwrap_or_default(),
            b.lost_minutes.to_string(),
            b.provisional.to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The query string of `req` with `cursor` set to `next` (other parameters kept).
fn next_query(req: &HttpRequest, next: &str) -> String {
    let mut pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .filter(|(key, _)| key != "cursor")
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
    pairs.push(("cursor".into(), next.into()));
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Breached clocks the caller may see (breached_at set), newest breach first, with the
/// request number, the time overdue and the time lost to a return. `Accept: text/csv` gives
/// the same rows as CSV: every match from `cursor` on, up to 10,000 rows; when more remain, a
/// `Link: <…>; rel="next"` header points at the rest (docs/sla.md).
#[utoipa::path(
    tag = "sla",
    security(("bearer" = [])),
    params(BreachQuery),
    responses(
        (status = 200, description = "A page of breaches (JSON), or the CSV export",
         content(
             (BreachPage = "application/json"),
             (String = "text/csv", example = json!("clock_id,request_id,number,kind,state,unit,matter,target,due_at,breached_at,stopped_at,open,overdue_minutes,overdue_working_minutes,lost_to_unit,lost_minutes,provisional\r\n"))
         ),
         headers(
             ("Vary" = String, description = "Accept: JSON or CSV"),
             ("X-Total-Count" = i64, description = "CSV only: how many breaches match in all"),
             ("Link" = String, description = "CSV only, when more than 10,000 rows remain: the next part, rel=\"next\"")
         )),
        (status = 422, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/sla/breaches")]
pub async fn breaches(
    req: HttpRequest,
    principal: Principal,
    query: web::Query<BreachQuery>,
    db: web::Data<Database>,
    calendars: web::Data<Calendars>,
) -> Result<HttpResponse, ApiError> {
    let scope = supervisor_scope(&principal)?;
    let mut check = Check::default();
    let asked_unit = check.field("unit", &query.unit, unit);
    let kind = check.field("kind", &query.kind, kind);
    let from = check.field("from", &query.from, time);
    let to = check.field("to", &query.to, time);
    let open = check.field("open", &query.open, boolean);
    let after = check.field("cursor", &query.cursor, cursor);
    let page_size = check.field("limit", &query.limit, limit);
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            check.fail("to", "must be after `from`");
        }
    }
    check.done()?;
    let filters = BreachFilters {
        clocks: ClockFilters {
            unit: unit_filter(scope, asked_unit)?,
            matter: matter(&query.matter),
            kind,
        },
        from,
        to,
        open,
    };
    let as_csv = wants_csv(&req);
    let page_size = if as_csv {
        CSV_MAX_ROWS
    } else {
        page_size.unwrap_or(DEFAULT_LIMIT)
    };
    let now = Utc::now().trunc_subsecs(6).naive_utc();
    let (rows, total) = db
        .run(move |conn| {
            // The CSV export says its exact total in `X-Total-Count`; a page counts up to the cap.
            let cap = if as_csv { i64::MAX - 1 } else { TOTAL_CAP };
            Ok(sla::breaches(
                conn,
                &filters,
                after.as_ref(),
                page_size,
                cap,
            )?)
        })
        .await?;
    let next_cursor = (rows.len() as i64 == page_size)
        .then(|| rows.last())
        .flatten()
        .and_then(|r| r.clock.breached_at.map(|at| cursor_of(at, &r.clock.id)));
    let calendar = calendars.current();
    let items: Vec<BreachView> = rows
        .into_iter()
        .map(|row| breach_view(row, &calendar, now))
        .collect();
    if as_csv {
        let mut response = HttpResponse::Ok();
        response
            .content_type(TEXT_CSV)
            .insert_header((header::VARY, "Accept"))
            .insert_header((TOTAL_COUNT, total.count.to_string()))
            .insert_header((
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"breaches.csv\"",
            ));
        if let Some(next) = &next_cursor {
            let link = format!("<{}?{}>; rel=\"next\"", req.path(), next_query(&req, next));
            if let Ok(value) = HeaderValue::from_str(&link) {
                response.insert_header((header::LINK, value));
            }
        }
        return Ok(response.body(csv(&items)));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::VARY, "Accept"))
        .json(BreachPage {
            items,
            total: total.count,
            total_capped: total.capped,
            next_cursor,
        }))
}

/// Open running clocks the caller may see that fall due between now and now + `within`
/// (default PT2H), least remaining time first, with the minutes left.
#[utoipa::path(
    tag = "sla",
    security(("bearer" = [])),
    params(AtRiskQuery),
    responses(
        (status = 200, description = "Clocks falling due soon", body = AtRiskPage),
        (status = 422, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/sla/at-risk")]
pub async fn at_risk(
    principal: Principal,
    query: web::Query<AtRiskQuery>,
    db: web::Data<Database>,
    calendars: web::Data<Calendars>,
) -> Result<HttpResponse, ApiError> {
    let scope = supervisor_scope(&principal)?;
    let mut check = Check::default();
    let within_text = query
        .within
        .clone()
        .unwrap_or_else(|| DEFAULT_WITHIN.to_string());
    let within = check.field("within", &Some(within_text.clone()), |text| {
        let within = parse_duration(text)?;
        if within <= TimeDelta::zero() || within > MAX_WITHIN {
            Err("must be longer than 0 and at most P31D".into())
        } else {
            Ok(within)
        }
    });
    let asked_unit = check.field("unit", &query.unit, unit);
    let kind = check.field("kind", &query.kind, kind);
    let after = check.field("cursor", &query.cursor, cursor);
    let page_size = check
        .field("limit", &query.limit, limit)
        .unwrap_or(DEFAULT_LIMIT);
    check.done()?;
    let within = within.expect("checked");
    let filters = ClockFilters {
        unit: unit_filter(scope, asked_unit)?,
        matter: matter(&query.matter),
        kind,
    };
    let now = Utc::now().trunc_subsecs(6).naive_utc();
    let until = now + within;
    let (rows, total) = db
        .run(move |conn| {
            Ok(sla::at_risk(
                conn,
                &filters,
                now,
                until,
                after.as_ref(),
                page_size,
                TOTAL_CAP,
            )?)
        })
        .await?;
    let next_cursor = (rows.len() as i64 == page_size)
        .then(|| rows.last())
        .flatten()
        .and_then(|r| r.clock.due_at.map(|at| cursor_of(at, &r.clock.id)));
    let calendar = calendars.current();
    let items = rows
        .into_iter()
        .filter_map(|row| {
            let c = row.clock;
            let due = c.due_at?;
            Some(AtRiskView {
                kind: parse_or(&c.kind, ClockKind::Promised),
                remaining_minutes: (due - now).num_minutes().max(0),
                remaining_working_minutes: calendar.working_minutes_between(utc(now), utc(due)),
                due_at: utc(due),
                provisional: calendar.horizon().is_provisional(utc(due)),
                clock_id: c.id,
                request_id: c.request_id,
                number: row.number,
                unit: c.unit,
                matter: c.matter,
                target: c.target,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(AtRiskPage {
        within: within_text,
        now: utc(now),
        items,
        total: total.count,
        total_capped: total.capped,
        next_cursor,
    }))
}

/// On-time statistics per unit or matter over a period (default: the 30 days to now):
/// clocks counted, met, breached (open-and-overdue included), the on-time rate, the median
/// and 95th percentile handling time in working minutes, and the minutes lost to returns.
#[utoipa::path(
    tag = "sla",
    security(("bearer" = [])),
    params(StatsParams),
    responses(
        (status = 200, description = "The statistics", body = StatsView),
        (status = 422, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/sla/stats")]
pub async fn stats(
    principal: Principal,
    query: web::Query<StatsParams>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let scope = supervisor_scope(&principal)?;
    let mut check = Check::default();
    let grouping = check
        .field("group_by", &query.group_by, |text| match text {
            "unit" => Ok(Grouping::Unit),
            "matter" => Ok(Grouping::Matter),
            _ => Err("must be unit or matter".into()),
        })
        .unwrap_or(Grouping::Unit);
    let from = check.field("from", &query.from, time);
    let to = check.field("to", &query.to, time);
    let kind = check.field("kind", &query.kind, kind);
    let now = Utc::now().trunc_subsecs(6).naive_utc();
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(to - DEFAULT_PERIOD);
    if from >= to && check.errors.is_empty() {
        check.fail("to", "must be after `from` (default `to`: now)");
    }
    check.done()?;
    let unit = scope.map(|u| u.to_string());
    let request = StatsQuery {
        group_by: match grouping {
            Grouping::Unit => GroupBy::Unit,
            Grouping::Matter => GroupBy::Matter,
        },
        unit: unit.clone(),
        kind: kind.clone(),
        from,
        to,
        now,
    };
    let waiting_unit = unit.clone();
    let (stats, waiting) = db
        .run(move |conn| {
            Ok((
                sla::stats(conn, &request)?,
                tickets::waiting_times(conn, waiting_unit.as_deref(), from, to)?,
            ))
        })
        .await?;
    Ok(HttpResponse::Ok().json(StatsView {
        group_by: grouping,
        from: utc(from),
        to: utc(to),
        kind: kind.and_then(|k| k.parse().ok()),
        unit,
        groups: stats
            .groups
            .into_iter()
            .map(|g| GroupStats {
                key: g.key,
                figures: g.figures.into(),
            })
            .collect(),
        overall: stats.overall.into(),
        waiting: waiting
            .into_iter()
            .map(|(unit, seconds)| WaitingView {
                unit,
                called: seconds.len() as i64,
                median_wait_seconds: sla::percentile(&seconds, 50),
                p95_wait_seconds: sla::percentile(&seconds, 95),
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_of_days_hours_minutes_and_seconds() {
        for (text, seconds) in [
            ("PT2H", 7_200),
            ("PT30M", 1_800),
            ("PT90M", 5_400),
            ("PT45S", 45),
            ("P1D", 86_400),
            ("P1W", 604_800),
            ("P1DT12H", 129_600),
            ("PT1H30M15S", 5_415),
            ("P0D", 0),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(TimeDelta::seconds(seconds)),
                "{text}"
            );
        }
        for bad in [
            "",
            "P",
            "PT",
            "2H",
            "PT2",
            "PTH",
            "PT2H2H",
            "PT30M2H",
            "P1DT",
            "PT1.5H",
            "pt2h",
            "P1H",
            "PT1D",
            "PT-2H",
            "P1D1W",
            "PT9999999999H",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("P1M").unwrap_err().contains("months"));
        assert!(parse_duration("P1Y").unwrap_err().contains("years"));
        // M after T is minutes.
        assert_eq!(parse_duration("PT1M"), Ok(TimeDelta::minutes(1)));
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_764_300_000_123_456)
            .unwrap()
            .naive_utc();
        let id = "0193f2a4-7c1e-7d2a-9b3c-1a2b3c4d5e6f";
        let text = cursor_of(at, id);
        assert_eq!(cursor(&text), Ok(After { at, id: id.into() }));
        for bad in [
            "",
            "x",
            "12_",
            "_0193f2a4-7c1e-7d2a-9b3c-1a2b3c4d5e6f",
            "1_x",
        ] {
            assert!(cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_as_rfc_4180_asks() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv(&[]), format!("{}\r\n", CSV_COLUMNS.join(",")));
    }

    #[test]
    fn a_unit_supervisor_is_held_to_their_unit() {
        assert_eq!(
            unit_filter(Some(UnitCode::Tax), None).unwrap(),
            Some("tax".into())
        );
        assert_eq!(
            unit_filter(Some(UnitCode::Tax), Some(UnitCode::Tax)).unwrap(),
            Some("tax".into())
        );
        assert!(unit_filter(Some(UnitCode::Tax), Some(UnitCode::Market)).is_err());
        assert_eq!(
            unit_filter(None, Some(UnitCode::Market)).unwrap(),
            Some("market".into())
        );
        assert_eq!(unit_filter(None, None).unwrap(), None);
    }
}
