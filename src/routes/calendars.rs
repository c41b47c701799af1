//! The working calendars (docs/calendars.md): what the server counts working time on,
//! deadlines on it (provisional after the calendar's horizon), administrators' changes to
//! single days, and whole years loaded at once.
//!
//! Reads are public. Each read first re-reads the stored days, so an answer always reflects
//! the changes made through any instance on the same database; when the database does not
//! answer, the calendar this instance holds is used (and the failure logged), because a
//! deadline calculator that still answers beats one that does not.

use std::sync::Arc;

use actix_web::{HttpResponse, delete, get, put, web};
use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, SubsecRound, Utc, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Principal, Role};
use crate::config::SlaSettings;
use crate::db::Database;
use crate::db::calendars::{self, Calendars, DayChange, YearLoad};
use crate::domain::calendar::{Calendar, CalendarError, DayKind, DayList, Period, YearDays};
use crate::domain::catalog::Target;
use crate::error::{ApiError, FieldError, Problem};

/// Largest `amount` of a deadline question, whatever the unit (about 1.9 years of minutes,
/// ten years of working minutes).
pub const MAX_AMOUNT: u32 = 1_000_000;

/// One served calendar.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarSummary {
    /// Stable identifier.
    #[schema(example = "cn-shanghai")]
    pub code: String,
    /// IANA time zone in which its dates and hours are read.
    #[schema(example = "Asia/Shanghai")]
    pub time_zone: String,
}

/// The served calendars.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarList {
    /// Today exactly one: the configured calendar.
    pub items: Vec<CalendarSummary>,
}

/// Service periods of each weekday, `HH:MM-HH:MM` (opening inclusive, closing exclusive).
#[derive(Debug, Serialize, ToSchema)]
pub struct WeeklyHours {
    /// Monday: also the hours of a working weekend day (调休上班).
    #[schema(example = json!(["09:00-12:00", "13:00-17:00"]))]
    pub monday: Vec<String>,
    /// Tuesday.
    pub tuesday: Vec<String>,
    /// Wednesday.
    pub wednesday: Vec<String>,
    /// Thursday.
    pub thursday: Vec<String>,
    /// Friday.
    pub friday: Vec<String>,
    /// Saturday.
    pub saturday: Vec<String>,
    /// Sunday.
    pub sunday: Vec<String>,
}

/// A date whose weekday does not decide: a holiday, or a working day whatever the weekday.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverrideDay {
    /// The date.
    pub date: NaiveDate,
    /// What it is.
    pub kind: DayKind,
}

/// A calendar in force: the file with administrators' changes applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarView {
    /// Stable identifier.
    #[schema(example = "cn-shanghai")]
    pub code: String,
    /// IANA time zone.
    #[schema(example = "Asia/Shanghai")]
    pub time_zone: String,
    /// Weekly service hours.
    pub hours: WeeklyHours,
    /// Minutes of the standard day (Monday's hours); half a working day is half of it.
    #[schema(example = 420)]
    pub standard_day_minutes: i64,
    /// The horizon: the last day for which holidays and working weekend days are configured
    /// (31 December of the last configured year); due times after it are provisional. Null
    /// when no year is configured.
    #[schema(example = "2026-12-31")]
    pub horizon: Option<NaiveDate>,
    /// The configured years (the file's and those loaded since), in order.
    #[schema(example = json!([2025, 2026]))]
    pub configured_years: Vec<i32>,
    /// Every overriding day (of the `year` asked for), by date.
    pub days: Vec<OverrideDay>,
}

/// Which days to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysQuery {
    /// Only the days of this year.
    #[param(value_type = Option<i32>, minimum = 1, maximum = 9999, example = 2026)]
    pub year: Option<String>,
}

/// What a deadline amount counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineUnit {
    /// Wall-clock minutes.
    Minutes,
    /// Minutes of service hours on working days.
    WorkingMinutes,
    /// Working days: the close of service on the N-th working day after the day of `start`.
    WorkingDays,
}

impl DeadlineUnit {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "minutes" => Some(Self::Minutes),
            "working_minutes" => Some(Self::WorkingMinutes),
            "working_days" => Some(Self::WorkingDays),
            _ => None,
        }
    }

    fn target(self, amount: u32) -> Target {
        match self {
            Self::Minutes => Target::Minutes(amount),
            Self::WorkingMinutes => Target::WorkingMinutes(amount),
            Self::WorkingDays => Target::working_days(amount),
        }
    }
}

/// A deadline question. Every parameter is required.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadlineQuery {
    /// When counting starts: RFC 3339 with any offset.
    #[param(required = true, value_type = String, format = DateTime, example = "2026-09-30T10:00:00+08:00")]
    pub start: Option<String>,
    /// How many `unit`s: a whole number from 0 to 1000000 (0 answers `start`).
    #[param(required = true, value_type = i64, minimum = 0, maximum = 1000000, example = 3)]
    pub amount: Option<String>,
    /// What `amount` counts.
    #[param(required = true, value_type = DeadlineUnit, inline)]
    pub unit: Option<String>,
}

/// A deadline.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deadline {
    /// RFC 3339 in the calendar's time zone.
    #[schema(format = DateTime, example = "2026-10-09T17:00:00+08:00")]
    pub due_at: String,
    /// The due time falls after the calendar's horizon (its last configured day): it was
    /// counted without that year's holidays and moves when the year is loaded.
    pub provisional: bool,
}

/// An administrator's change of one day.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DayBody {
    /// The day's new kind.
    #[schema(required = true, value_type = DayKind)]
    pub kind: Option<String>,
}

/// A day as stored after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredDay {
    /// The calendar.
    #[schema(example = "cn-shanghai")]
    pub calendar: String,
    /// The date.
    pub date: NaiveDate,
    /// `holiday`, `working_day`, or `regular` (no override: the weekday decides).
    #[schema(example = "holiday")]
    pub kind: StoredKind,
    /// What the date was before this change.
    #[schema(example = "regular")]
    pub previous_kind: StoredKind,
    /// The administrator (token subject).
    pub changed_by: String,
    /// When.
    pub changed_at: DateTime<Utc>,
    /// Running clocks whose due time moved.
    pub clocks_moved: usize,
}

/// A date's kind as stored: an override, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StoredKind {
    /// Not a working day, whatever the weekday.
    Holiday,
    /// A working day, whatever the weekday.
    WorkingDay,
    /// No override: a working day when its weekday has service hours.
    Regular,
}

impl From<Option<DayKind>> for StoredKind {
    fn from(kind: Option<DayKind>) -> Self {
        match kind {
            Some(DayKind::Holiday) => Self::Holiday,
            Some(DayKind::WorkingDay) => Self::WorkingDay,
            None => Self::Regular,
        }
    }
}

/// The calendar in force after re-reading the stored days (see the module doc).
async fn in_force(calendars: &web::Data<Calendars>, db: &Database) -> Arc<Calendar> {
    let holder = calendars.clone();
    if let Err(error) = db.run(move |conn| Ok(holder.reload(conn)?)).await {
        tracing::warn!(%error, "cannot re-read the calendar days; answering from memory");
    }
    calendars.current()
}

/// 404 unless `code` is the served calendar.
fn served(calendars: &Calendars, code: &str) -> Result<(), ApiError> {
    if code == calendars.code() {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "no calendar `{code}`; served: {}",
            calendars.code()
        )))
    }
}

fn field(pointer: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        pointer: pointer.into(),
        message: message.into(),
    }
}

/// A date written exactly `YYYY-MM-DD` that exists.
fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return Err(format!("`{text}` is not a date: write YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|d| d.year() >= 1)
        .ok_or_else(|| format!("`{text}` is not a date of the calendar"))
}

fn periods(service: &[Period]) -> Vec<String> {
    service
        .iter()
        .map(|(open, close)| format!("{}-{}", open.format("%H:%M"), close.format("%H:%M")))
        .collect()
}

/// The calendars served: today exactly one, the configured calendar.
#[utoipa::path(
    operation_id = "calendars_list",
    tag = "calendars",
    responses((status = 200, description = "The served calendars", body = CalendarList))
)]
#[get("/api/v1/calendars")]
pub async fn list(calendars: web::Data<Calendars>) -> HttpResponse {
    let calendar = calendars.file();
    HttpResponse::Ok().json(CalendarList {
        items: vec![CalendarSummary {
            code: calendar.code().into(),
            time_zone: calendar.time_zone().name().into(),
        }],
    })
}

/// One calendar as in force now: time zone, weekly service hours, and the overriding days
/// (holidays and working weekend days from the file, with administrators' changes applied).
#[utoipa::path(
    operation_id = "calendars_read",
    tag = "calendars",
    params(("code" = String, Path, description = "Calendar code, e.g. cn-shanghai"), DaysQuery),
    responses(
        (status = 200, description = "The calendar", body = CalendarView),
        (status = 404, description = "No such calendar", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`year` is not a year from 1 to 9999", body = Problem,
         content_type = "application/problem+json")
    )
)]
#[get("/api/v1/calendars/{code}")]
pub async fn read(
    calendars: web::Data<Calendars>,
    db: web::Data<Database>,
    code: web::Path<String>,
    query: web::Query<DaysQuery>,
) -> Result<HttpResponse, ApiError> {
    served(&calendars, &code)?;
    let year = match query.year.as_deref() {
        None => None,
        Some(text) => match text.parse::<i32>() {
            Ok(year) if (1..=9999).contains(&year) => Some(year),
            _ => {
                return Err(ApiError::validation(vec![field(
                    "year",
                    format!("`{text}` is not a year from 1 to 9999"),
                )]));
            }
        },
    };
    let calendar = in_force(&calendars, &db).await;
    let hours = |day| periods(calendar.hours(day));
    Ok(HttpResponse::Ok().json(CalendarView {
        code: calendar.code().into(),
        time_zone: calendar.time_zone().name().into(),
        hours: WeeklyHours {
            monday: hours(Weekday::Mon),
            tuesday: hours(Weekday::Tue),
            wednesday: hours(Weekday::Wed),
            thursday: hours(Weekday::Thu),
            friday: hours(Weekday::Fri),
            saturday: hours(Weekday::Sat),
            sunday: hours(Weekday::Sun),
        },
        standard_day_minutes: calendar.standard_day_minutes(),
        horizon: calendar.horizon().last_day(),
        configured_years: calendar.configured_years().collect(),
        days: calendar
            .days()
            .filter(|(date, _)| year.is_none_or(|y| date.year() == y))
            .map(|(date, kind)| OverrideDay { date, kind })
            .collect(),
    }))
}

/// The deadline of `amount` `unit`s counted from `start` on the calendar:
/// `minutes` is wall-clock time; `working_minutes` counts service minutes of working days from
/// `start` (from the next opening when `start` is outside service hours; a deadline exactly on
/// a closing is that closing); `working_days` is the close of service on the N-th working day
/// after the calendar day of `start` (that day never counts, whatever the hour).
#[utoipa::path(
    operation_id = "calendars_deadline",
    tag = "calendars",
    params(("code" = String, Path, description = "Calendar code, e.g. cn-shanghai"), DeadlineQuery),
    responses(
        (status = 200, description = "The deadline, in the calendar's zone", body = Deadline),
        (status = 404, description = "No such calendar", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is missing or wrong (each named), or the deadline does not exist \
                                      (no working day within ten years, or after 9999-12-31)",
         body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/v1/calendars/{code}/deadline")]
pub async fn deadline(
    calendars: web::Data<Calendars>,
    db: web::Data<Database>,
    code: web::Path<String>,
    query: web::Query<DeadlineQuery>,
) -> Result<HttpResponse, ApiError> {
    served(&calendars, &code)?;
    let mut errors = Vec::new();
    let start = match query.start.as_deref() {
        None => {
            errors.push(field("start", "required: an RFC 3339 time"));
            None
        }
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| errors.push(field("start", format!("not an RFC 3339 time: {e}"))))
            .ok(),
    };
    let amount = match query.amount.as_deref() {
        None => {
            errors.push(field(
                "amount",
                format!("required: a whole number from 0 to {MAX_AMOUNT}"),
            ));
            None
        }
        Some(text) => match text.parse::<u32>() {
            Ok(n) if n <= MAX_AMOUNT => Some(n),
            _ => {
                errors.push(field(
                    "amount",
                    format!("`{text}` is not a whole number from 0 to {MAX_AMOUNT}"),
                ));
                None
            }
        },
    };
    let unit = match query.unit.as_deref() {
        None => {
            errors.push(field(
                "unit",
                "required: minutes, working_minutes or working_days",
            ));
            None
        }
        Some(text) => DeadlineUnit::parse(text).or_else(|| {
            errors.push(field(
                "unit",
                format!("`{text}` is not one of: minutes, working_minutes, working_days"),
            ));
            None
        }),
    };
    let (Some(start), Some(amount), Some(unit)) = (start, amount, unit) else {
        return Err(ApiError::validation(errors));
    };

    let calendar = in_force(&calendars, &db).await;
    let zone = calendar.time_zone();
    let horizon = calendar.horizon();
    // Up to a million working days is a long walk: off the async worker.
    let outcome =
        web::block(move || calendar.deadline(start.with_timezone(&Utc), unit.target(amount)))
            .await
            .map_err(ApiError::internal)?;
    let due = outcome
        .map_err(|error| match error {
            CalendarError::Unreachable { problem, .. } => {
                ApiError::validation(vec![field("amount", format!("no deadline: {problem}"))])
            }
            other => ApiError::internal(other),
        })?
        .with_timezone(&zone);
    if due.year() > 9999 {
        return Err(ApiError::validation(vec![field(
            "amount",
            "no deadline: it falls after 9999-12-31, which RFC 3339 cannot express",
        )]));
    }
    Ok(HttpResponse::Ok().json(Deadline {
        due_at: due.to_rfc3339_opts(SecondsFormat::AutoSi, false),
        provisional: horizon.is_provisional(due.with_timezone(&Utc)),
    }))
}

/// Checks the caller and the path, then stores the change (see [`calendars::change_day`]).
async fn change(
    principal: Principal,
    calendars: web::Data<Calendars>,
    db: web::Data<Database>,
    sla: web::Data<SlaSettings>,
    (code, date): (String, String),
    kind: Result<Option<DayKind>, FieldError>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Admin])?;
    served(&calendars, &code)?;
    let mut errors = Vec::new();
    let date = parse_date(&date)
        .map_err(|message| errors.push(field("date", message)))
        .ok();
    let kind = kind.map_err(|e| errors.push(e)).ok();
    let (Some(date), Some(kind)) = (date, kind) else {
        return Err(ApiError::validation(errors));
    };
    let change = DayChange {
        date,
        kind,
        actor: principal.subject,
        at: Utc::now().trunc_subsecs(6),
    };
    let warn_percent = sla.warn_percent;
    let holder = calendars.clone();
    let changed = db
        .run(move |conn| calendars::change_day(conn, &holder, &change, warn_percent))
        .await?;
    Ok(HttpResponse::Ok().json(StoredDay {
        calendar: changed.row.calendar,
        date,
        kind: kind.into(),
        previous_kind: changed.previous.into(),
        changed_by: changed.row.changed_by,
        changed_at: changed.row.changed_at.and_utc(),
        clocks_moved: changed.clocks_moved,
    }))
}

/// Make one date a holiday or a working day, whatever its weekday (administrators). Audited
/// (`calendar.set_day`); every running clock follows at once. Repeating the same change is
/// harmless: it is recorded again, and nothing moves.
#[utoipa::path(
    operation_id = "calendars_set_day",
    tag = "calendars",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "Calendar code, e.g. cn-shanghai"),
        ("date" = String, Path, format = Date, description = "The date, YYYY-MM-DD")
    ),
    request_body(content = DayBody, example = json!({"kind": "holiday"})),
    responses(
        (status = 200, description = "The day as stored, and how many clocks moved", body = StoredDay),
        (status = 404, description = "No such calendar", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`date` is not a YYYY-MM-DD date, or `kind` is missing or not holiday / working_day",
         body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
        crate::routes::AuthFailures
    )
)]
#[put("/api/v1/calendars/{code}/days/{date}")]
pub async fn set_day(
    principal: Principal,
    calendars: web::Data<Calendars>,
    db: web::Data<Database>,
    sla: web::Data<SlaSettings>,
    path: web::Path<(String, String)>,
    body: web::Json<DayBody>,
) -> Result<HttpResponse, ApiError> {
    let kind = match body.kind.as_deref() {
        Some("holiday") => Ok(Some(DayKind::Holiday)),
        Some("working_day") => Ok(Some(DayKind::WorkingDay)),
        Some(other) => Err(field(
            "/kind",
            format!("`{other}` is not one of: holiday, working_day (DELETE removes an override)"),
        )),
        None => Err(field("/kind", "required: holiday or working_day")),
    };
    change(principal, calendars, db, sla, path.into_inner(), kind).await
}

/// Remove one date's override, whether it came from the calendar file or an earlier `PUT`:
/// its weekday decides again (administrators). Audited (`calendar.clear_day`); every running
/// clock follows at once. Removing a date that has no override is harmless: it is recorded,
/// and nothing moves.
#[utoipa::path(
    operation_id = "calendars_clear_day",
    tag = "calendars",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "Calendar code, e.g. cn-shanghai"),
        ("date" = String, Path, format = Date, description = "The date, YYYY-MM-DD")
    ),
    responses(
        (status = 200, description = "The day as stored (kind `regular`), and how many clocks moved", body = StoredDay),
        (status = 404, description = "No such calendar", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`date` is not a YYYY-MM-DD date", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[delete("/api/v1/calendars/{code}/days/{date}")]
pub async fn clear_day(
    principal: Principal,
    calendars: web::Data<Calendars>,
    db: web::Data<Database>,
    sla: web::Data<SlaSettings>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    change(principal, calendars, db, sla, path.into_inner(), Ok(None)).await
}

/// A whole year of holidays and working weekend days (调休上班), as the State Council publishes
/// it. Both lists are required; each item is a date `YYYY-MM-DD` or an inclusive range
/// `YYYY-MM-DD..YYYY-MM-DD` of the year.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct YearBody {
    /// The public holidays, including the weekend days inside a holiday period (at least one).
    #[schema(required = true, value_type = Vec<String>, max_items = 366,
             example = json!(["2027-01-01..2027-01-03", "2027-02-06..2027-02-14"]))]
    pub holidays: Option<serde_json::Value>,
    /// The Saturdays and Sundays that are working days (may be empty).
    #[schema(required = true, value_type = Vec<String>, max_items = 366, example = json!(["2027-02-20"]))]
    pub working_days: Option<serde_json::Value>,
}

/// A year as loaded.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoadedYear {
    /// The calendar.
    #[schema(example = "cn-shanghai")]
    pub calendar: String,
    /// The year.
    #[schema(example = 2027)]
    pub year: i32,
    /// How many holidays it has.
    pub holidays: usize,
    /// How many working weekend days.
    pub working_days: usize,
    /// Dates of the year whose kind changed.
    pub days_changed: usize,
    /// The horizon before the load.
    pub horizon_before: Option<NaiveDate>,
    /// The horizon now (moved to the year's end when the year follows the configured years
    /// without a gap).
    pub horizon: Option<NaiveDate>,
    /// The administrator (token subject).
    pub loaded_by: String,
    /// When.
    pub loaded_at: DateTime<Utc>,
    /// Running clocks whose due time moved.
    pub clocks_moved: usize,
}

/// Most items in one list of a year body: a year has no more days.
const YEAR_LIST_MAX: usize = 366;

/// The strings of list `name` of a year body, or its problems.
fn year_list(
    name: &str,
    value: Option<&serde_json::Value>,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<String>> {
    let Some(value) = value else {
        errors.push(field(
            &format!("/{name}"),
            "required: a list of dates YYYY-MM-DD or ranges YYYY-MM-DD..YYYY-MM-DD",
        ));
        return None;
    };
    let Some(items) = value.as_array() else {
        errors.push(field(&format!("/{name}"), "must be a list of dates"));
        return None;
    };
    if items.len() > YEAR_LIST_MAX {
        errors.push(field(
            &format!("/{name}"),
            format!(
                "at most {YEAR_LIST_MAX} items (a year has no more days), not {}",
                items.len()
            ),
        ));
        return None;
    }
    let mut strings = Vec::with_capacity(items.len());
    let before = errors.len();
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(text) => strings.push(text.to_string()),
            None => errors.push(field(
                &format!("/{name}/{i}"),
                "must be a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD",
            )),
        }
    }
    (errors.len() == before).then_some(strings)
}

/// Load a whole year of holidays and working weekend days at once (administrators), in place
/// of whatever the year had (from the file or earlier changes): the State Council's notice in
/// one request. Checked whole: every item of both lists is a date (or range) of `year`, none
/// listed twice or in both lists, every working day a Saturday or Sunday, at least one
/// holiday; each bad item is a `422` with its JSON pointer (`/holidays/3`) and nothing
/// changes. One audit event (`calendar.load_year`); the running clocks over the days that
/// changed follow at once, in the same transaction. The horizon moves to the year's end when
/// it follows the configured years: due times in the year are no longer provisional. Other
/// instances pick the year up within two seconds.
#[utoipa::path(
    operation_id = "calendars_load_year",
    tag = "calendars",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "Calendar code, e.g. cn-shanghai"),
        ("year" = i32, Path, minimum = 1900, maximum = 9999, description = "The year, e.g. 2027")
    ),
    request_body(content = YearBody, example = json!({
        "holidays": ["2027-01-01..2027-01-03", "2027-02-06..2027-02-14"],
        "working_days": ["2027-02-20"]
    })),
    responses(
        (status = 200, description = "The year as loaded, the horizon, and how many clocks moved", body = LoadedYear),
        (status = 404, description = "No such calendar", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`year` is not a year from 1900 to 9999, or a list or an item is wrong \
                                      (each named by its JSON pointer); nothing changed",
         body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
        crate::routes::AuthFailures
    )
)]
#[put("/api/v1/calendars/{code}/years/{year}")]
pub async fn load_year(
    principal: Principal,
    calendars: web::Data<Calendars>,
    db: web::Data<Database>,
    sla: web::Data<SlaSettings>,
    path: web::Path<(String, String)>,
    body: web::Json<YearBody>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Admin])?;
    let (code, year) = path.into_inner();
    served(&calendars, &code)?;
    let mut errors = Vec::new();
    let number = match year.parse::<i32>() {
        Ok(n) if (1900..=9999).contains(&n) && year.len() == 4 => Some(n),
        _ => {
            errors.push(field(
                "year",
                format!("`{year}` is not a year from 1900 to 9999"),
            ));
            None
        }
    };
    let holidays = year_list("holidays", body.holidays.as_ref(), &mut errors);
    let working_days = year_list("working_days", body.working_days.as_ref(), &mut errors);
    if holidays.as_ref().is_some_and(Vec::is_empty) {
        errors.push(field(
            "/holidays",
            "a year without a public holiday is not a State Council notice: list them",
        ));
    }
    let (Some(number), Some(holidays), Some(working_days)) = (number, holidays, working_days)
    else {
        return Err(ApiError::validation(errors));
    };
    let checked = YearDays::check(number, &holidays, &working_days);
    let days = match checked {
        Ok(days) if errors.is_empty() => days,
        outcome => {
            for problem in outcome.err().unwrap_or_default() {
                let name = match problem.list {
                    DayList::Holidays => "holidays",
                    DayList::WorkingDays => "working_days",
                };
                errors.push(field(
                    &format!("/{name}/{}", problem.index),
                    problem.problem,
                ));
            }
            return Err(ApiError::validation(errors));
        }
    };
    let load = YearLoad {
        year: days,
        actor: principal.subject,
        at: Utc::now().trunc_subsecs(6),
    };
    let warn_percent = sla.warn_percent;
    let holder = calendars.clone();
    let (holidays, working_days) = (
        load.year.count(DayKind::Holiday),
        load.year.count(DayKind::WorkingDay),
    );
    let (actor, at) = (load.actor.clone(), load.at);
    let loaded = db
        .run(move |conn| calendars::load_year(conn, &holder, &load, warn_percent))
        .await?;
    Ok(HttpResponse::Ok().json(LoadedYear {
        calendar: code,
        year: number,
        holidays,
        working_days,
        days_changed: loaded.days_changed,
        horizon_before: loaded.horizon_before,
        horizon: loaded.horizon,
        loaded_by: actor,
        loaded_at: at,
        clocks_moved: loaded.clocks_moved,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_exactly_yyyy_mm_dd_and_real() {
        assert_eq!(
            parse_date("2026-10-01"),
            Ok(NaiveDate::from_ymd_opt(2026, 10, 1).unwrap())
        );
        for bad in [
            "2026-1-01",
            "2026-10-1",
            "20261001",
            "2026/10/01",
            "",
            "2026-10-01x",
        ] {
            assert!(parse_date(bad).unwrap_err().contains("YYYY-MM-DD"), "{bad}");
        }
        for unreal in ["2026-02-30", "2026-13-01", "2026-00-10", "0000-01-01"] {
            assert!(
                parse_date(unreal).unwrap_err().contains("not a date of"),
                "{unreal}"
            );
        }
    }
}
