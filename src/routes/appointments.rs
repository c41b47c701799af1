//! Appointments (统一预约): free slots (public), booking, reading, cancelling and moving by the
//! enterprise, check-in by a clerk of the counter's unit, and the supervisors' day.
//! See `docs/appointments.md`; the rules are `crate::domain::appointment`, the storage and its
//! concurrency guarantees `crate::db::appointments`.

use std::collections::BTreeMap;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, SubsecRound, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Actor, Principal, Role};
use crate::config::AppointmentSettings;
use crate::db::Database;
use crate::db::appointments::{
    self, AppointmentRow, Claim, Filters, Move, NewBooking, Outcome, Place,
};
use crate::db::calendars::Calendars;
use crate::db::requests::Scope;
use crate::db::tickets::NewTicket;
use crate::domain::Catalog;
use crate::domain::appointment::{
    self, CheckInRefusal, Hall, RangeRefusal, Slot, SlotRefusal, Status,
};
use crate::domain::audit::Entry;
use crate::domain::intake::{is_email, is_phone};
use crate::domain::notice::AppointmentStage;
use crate::domain::ticket::TicketKind;
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::http::extract::if_match_revision;
use crate::routes::requests::scope_of;

mod supervision;

pub use supervision::{
    CounterDay, DayQuery, DayView, Figures, NoShowCount, UnitDay, day, no_shows,
};

/// Header naming an idempotent retry.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Response header marking a replayed answer.
const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";
/// Most appointments one list answers.
const MAX_LIST: i64 = 500;

fn field(pointer: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        pointer: pointer.into(),
        message: message.into(),
    }
}

fn invalid(pointer: &str, message: impl Into<String>) -> ApiError {
    ApiError::validation(vec![field(pointer, message)])
}

fn parse_date(name: &str, text: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| field(name, format!("`{text}` is not a date (YYYY-MM-DD)")))
}

fn utc(naive: NaiveDateTime) -> DateTime<Utc> {
    naive.and_utc()
}

// ---------------------------------------------------------------------------------------------
// Views

/// A free slot of one counter.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotView {
    /// Start (UTC); send it back as `slot` to book.
    pub start: DateTime<Utc>,
    /// End (UTC).
    pub end: DateTime<Utc>,
    /// Local date, Asia/Shanghai.
    pub local_date: NaiveDate,
    /// Local time, e.g. `09:00–09:30`.
    pub local_time: String,
    /// The counter's unit.
    pub unit: String,
    /// Counter code (send it as `counter` to book this counter only).
    pub counter: String,
    /// Counter name.
    pub counter_name: String,
    /// Places of the slot.
    pub capacity: i32,
    /// Places left (at least 1: full slots are not listed).
    pub remaining: i32,
}

/// The free slots of a matter.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotList {
    /// The matter.
    pub matter: String,
    /// First date listed.
    pub from: NaiveDate,
    /// Last date listed.
    pub to: NaiveDate,
    /// The zone of the local dates and times.
    pub time_zone: String,
    /// Free slots by start, then counter.
    pub slots: Vec<SlotView>,
}

/// Who to contact about a booking; its mails go to `email`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Name (1 to 100 characters).
    pub name: String,
    /// Mainland phone: a mobile (11 digits) or a landline with area code.
    pub phone: String,
    /// E-mail address: the confirmation and the reminder go there.
    pub email: String,
}

/// An appointment, as the enterprise, the clerks and the supervisors see it. It carries what a
/// ticket at the counter needs: id, unit, counter, matter, enterprise, slot, request.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppointmentView {
    /// Id (UUID v7).
    pub id: String,
    /// State.
    pub status: Status,
    /// Matter code.
    pub matter: String,
    /// Matter name, Chinese.
    pub matter_name_zh: String,
    /// The enterprise (unified social credit code).
    pub uscc: String,
    /// The counter's unit.
    pub unit: String,
    /// Counter code.
    pub counter: String,
    /// Counter name.
    pub counter_name: String,
    /// Slot start (UTC).
    pub slot_start: DateTime<Utc>,
    /// Slot end (UTC).
    pub slot_end: DateTime<Utc>,
    /// The slot's local date (Asia/Shanghai).
    pub local_date: String,
    /// The slot in local time, `YYYY-MM-DD HH:MM–HH:MM`.
    pub local_slot: String,
    /// Contact.
    pub contact: Contact,
    /// The request it is for, if any.
    pub request_id: Option<String>,
    /// A booking not checked in by then becomes a no-show (UTC).
    pub no_show_at: DateTime<Utc>,
    /// Checked in (UTC).
    pub checked_in_at: Option<DateTime<Utc>>,
    /// Cancelled (UTC).
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Booked (UTC).
    pub created_at: DateTime<Utc>,
    /// Last changed (UTC).
    pub updated_at: DateTime<Utc>,
    /// Revision (the `ETag` is `"r<revision>"`).
    pub revision: i32,
    /// Its calendar entry (RFC 5545 `.ics`).
    pub calendar: String,
}

fn view(row: &AppointmentRow, catalog: &Catalog, hall: &Hall, zone: Tz) -> AppointmentView {
    AppointmentView {
        id: row.id.clone(),
        status: row.state(),
        matter: row.matter.clone(),
        matter_name_zh: catalog
            .matter(&row.matter)
            .map(|m| m.name_zh.clone())
            .unwrap_or_else(|| row.matter.clone()),
        uscc: row.uscc.clone(),
        unit: row.unit.clone(),
        counter: row.counter.clone(),
        counter_name: hall
            .counter(&row.counter)
            .map(|(_, c)| c.name.clone())
            .unwrap_or_default(),
        slot_start: utc(row.starts_at),
        slot_end: utc(row.ends_at),
        local_date: row.local_date.clone(),
        local_slot: appointments::slot_text(row, zone),
        contact: Contact {
            name: row.contact_name.clone(),
            phone: row.contact_phone.clone(),
            email: row.contact_email.clone(),
        },
        request_id: row.request_id.clone(),
        no_show_at: utc(row.no_show_at),
        checked_in_at: row.checked_in_at.map(utc),
        cancelled_at: row.cancelled_at.map(utc),
        created_at: utc(row.created_at),
        updated_at: utc(row.updated_at),
        revision: row.revision,
        calendar: appointments::calendar_path(&row.id),
    }
}

fn etag(row: &AppointmentRow) -> HeaderValue {
    HeaderValue::from_str(&format!("\"r{}\"", row.revision)).expect("ASCII")
}

/// What the handlers share.
struct Context<'a> {
    catalog: &'a Catalog,
    hall: &'a Hall,
    zone: Tz,
}

impl Context<'_> {
    fn view(&self, row: &AppointmentRow) -> AppointmentView {
        view(row, self.catalog, self.hall, self.zone)
    }

    fn answer(&self, status: actix_web::http::StatusCode, row: &AppointmentRow) -> HttpResponse {
        HttpResponse::build(status)
            .insert_header((header::ETAG, etag(row)))
            .json(self.view(row))
    }
}

fn role_and_unit(actor: &Actor) -> (&'static str, Option<String>) {
    match actor {
        Actor::Enterprise(_) => ("enterprise", None),
        Actor::Clerk(u) => ("clerk", Some(u.to_string())),
        Actor::Supervisor(u) => ("supervisor", u.map(|u| u.to_string())),
        Actor::Admin => ("admin", None),
    }
}

/// The audit event of `action` by `principal` on `row`.
fn event(
    principal: &Principal,
    row: &AppointmentRow,
    action: &str,
    before: Option<Status>,
    now: DateTime<Utc>,
) -> Entry {
    let (role, unit) = role_and_unit(&principal.actor);
    let actor = match &principal.actor {
        Actor::Enterprise(uscc) => uscc.to_string(),
        _ => principal.subject.clone(),
    };
    Entry {
        request_id: appointments::trail(&row.id),
        actor,
        role: role.into(),
        unit,
        action: action.into(),
        state_before: before.map(|s| s.as_str().into()),
        state_after: Some(row.status.clone()),
        payload: json!({
            "uscc": row.uscc,
            "matter": row.matter,
            "unit": row.unit,
            "counter": row.counter,
            "slot_start": utc(row.starts_at),
            "slot_end": utc(row.ends_at),
            "request_id": row.request_id,
        }),
        at: now,
    }
}

// ---------------------------------------------------------------------------------------------
// Free slots

/// The matter and dates whose free slots to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlotQuery {
    /// The matter code (required), e.g. `market.establish`.
    pub matter: Option<String>,
    /// First date, `YYYY-MM-DD` (local); default today. Not before today.
    #[param(format = Date)]
    pub from: Option<String>,
    /// Last date, `YYYY-MM-DD` (local); default `from` plus 6 days. Not after today plus
    /// `appointments.days_ahead` (30).
    #[param(format = Date)]
    pub to: Option<String>,
}

/// The free slots of a matter (public, no token): working days only, future slots only, at
/// most `appointments.days_ahead` days ahead; one entry per counter serving the matter.
#[utoipa::path(
    operation_id = "appointments_slots",
    tag = "appointments",
    params(SlotQuery),
    responses(
        (status = 200, description = "Free slots with the places left", body = SlotList),
        (status = 422, description = "`matter` missing, unknown or taking no appointments; `from`/`to` not dates, \
                                      reversed, before today or past the last bookable day (each named)",
         body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/v1/appointments/slots")]
pub async fn slots(
    query: web::Query<SlotQuery>,
    catalog: web::Data<Catalog>,
    hall: web::Data<Hall>,
    calendars: web::Data<Calendars>,
    settings: web::Data<AppointmentSettings>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let matter = query.matter.as_deref().map(str::trim).unwrap_or_default();
    if matter.is_empty() {
        errors.push(field("matter", "required: a matter code"));
    } else if let Err(error) = bookable(&catalog, &hall, matter, "matter") {
        errors.push(error);
    }
    let mut date = |name: &str, value: &Option<String>| match value {
        None => None,
        Some(text) => match parse_date(name, text) {
            Ok(date) => Some(date),
            Err(error) => {
                errors.push(error);
                None
            }
        },
    };
    let (from, to) = (date("from", &query.from), date("to", &query.to));
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let calendar = calendars.current();
    let zone = calendar.time_zone();
    let now = Utc::now();
    let (from, to) = appointment::listing_range(from, to, now, zone, settings.days_ahead).map_err(
        |refusal| match refusal {
            RangeRefusal::Reversed => invalid("to", "is before `from`"),
            RangeRefusal::Past { today } => invalid(
                "from",
                format!("is before today ({today}): only future slots can be booked"),
            ),
            RangeRefusal::TooFar { last } => invalid(
                "to",
                format!(
                    "is after {last}, the last bookable day ({} days ahead)",
                    settings.days_ahead
                ),
            ),
        },
    )?;
    let free = hall.slots(&calendar, matter, from, to, now);
    let counters: Vec<String> = hall
        .counters_for(matter)
        .iter()
        .map(|(_, c)| c.code.clone())
        .collect();
    let (first, last) = match (free.first(), free.last()) {
        (Some(a), Some(b)) => (a.start.naive_utc(), b.start.naive_utc()),
        _ => (now.naive_utc(), now.naive_utc()),
    };
    let taken = db
        .run(move |conn| Ok(appointments::taken(conn, &counters, first, last)?))
        .await?;
    let taken: BTreeMap<(String, NaiveDateTime), i32> = taken
        .into_iter()
        .map(|(counter, start, booked)| ((counter, start), booked))
        .collect();
    let slots = free
        .into_iter()
        .filter_map(|slot| {
            let capacity = slot.capacity as i32;
            let booked = taken
                .get(&(slot.counter.clone(), slot.start.naive_utc()))
                .copied()
                .unwrap_or(0);
            let remaining = capacity - booked;
            (remaining > 0).then(|| slot_view(&hall, &slot, zone, remaining))
        })
        .collect();
    Ok(HttpResponse::Ok().json(SlotList {
        matter: matter.to_string(),
        from,
        to,
        time_zone: zone.name().to_string(),
        slots,
    }))
}

fn slot_view(hall: &Hall, slot: &Slot, zone: Tz, remaining: i32) -> SlotView {
    let (start, end) = (
        slot.start.with_timezone(&zone),
        slot.end.with_timezone(&zone),
    );
    SlotView {
        start: slot.start,
        end: slot.end,
        local_date: slot.date,
        local_time: format!("{}–{}", start.format("%H:%M"), end.format("%H:%M")),
        unit: slot.unit.to_string(),
        counter: slot.counter.clone(),
        counter_name: hall
            .counter(&slot.counter)
            .map(|(_, c)| c.name.clone())
            .unwrap_or_default(),
        capacity: slot.capacity as i32,
        remaining,
    }
}

/// Whether `matter` can be booked: in the catalog and served by a counter of the hall.
fn bookable(catalog: &Catalog, hall: &Hall, matter: &str, pointer: &str) -> Result<(), FieldError> {
    if catalog.matter(matter).is_none() {
        return Err(field(
            pointer,
            format!("`{matter}` is not a matter of the catalog (GET /api/v1/catalog/matters)"),
        ));
    }
    if !hall.serves(matter) {
        return Err(field(
            pointer,
            format!("no counter of the hall takes appointments for `{matter}`"),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Booking

/// A booking.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookingBody {
    /// The matter code.
    pub matter: String,
    /// The slot's start, RFC 3339 (as `start` in the slot list).
    pub slot: String,
    /// Only this counter; without it, the first counter serving the matter with a place left.
    #[serde(default)]
    pub counter: Option<String>,
    /// Who to contact.
    pub contact: Contact,
    /// The request (id or number, `PT…`) the visit is for; must be the enterprise's own.
    #[serde(default)]
    pub request: Option<String>,
}

/// A move to another slot.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    /// The new slot's start, RFC 3339.
    pub slot: String,
    /// Only this counter.
    #[serde(default)]
    pub counter: Option<String>,
}

fn parse_slot(text: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            field(
                "/slot",
                format!("`{text}` is not an RFC 3339 time such as 2026-12-01T09:00:00+08:00"),
            )
        })
}

fn check_contact(contact: &Contact, errors: &mut Vec<FieldError>) {
    let name = contact.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(field("/contact/name", "required: 1 to 100 characters"));
    }
    if !is_phone(&contact.phone) {
        errors.push(field(
            "/contact/phone",
            "not a mainland phone number (an 11-digit mobile, or 0 + area code + number)",
        ));
    }
    if !is_email(&contact.email) {
        errors.push(field("/contact/email", "not an e-mail address"));
    }
}

/// The places a booking of `matter` at `start` may take, or the precise refusal.
fn places_at(
    hall: &Hall,
    calendar: &crate::domain::calendar::Calendar,
    settings: &AppointmentSettings,
    matter: &str,
    start: DateTime<Utc>,
    counter: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<Place>, ApiError> {
    let grace = TimeDelta::minutes(i64::from(settings.grace_minutes));
    let found = hall
        .slots_at(calendar, matter, start, counter, now, settings.days_ahead)
        .map_err(|refusal| match refusal {
            SlotRefusal::Past => invalid("/slot", "starts in the past: book a future slot"),
            SlotRefusal::TooFar { last } => invalid(
                "/slot",
                format!(
                    "is after {last}, the last bookable day ({} days ahead)",
                    settings.days_ahead
                ),
            ),
            SlotRefusal::NotASlot => invalid(
                "/slot",
                format!(
                    "no counter serving `{matter}` has a slot starting then (a holiday, a closed \
                     day or hour, the lunch break, or not a slot boundary): see \
                     GET /api/v1/appointments/slots?matter={matter}"
                ),
            ),
            SlotRefusal::CounterNotServing => {
                invalid("/counter", format!("is not a counter serving `{matter}`"))
            }
        })?;
    Ok(found
        .into_iter()
        .map(|slot| Place {
            unit: slot.unit.to_string(),
            counter: slot.counter.clone(),
            starts_at: slot.start.naive_utc(),
            ends_at: slot.end.naive_utc(),
            capacity: slot.capacity as i32,
            no_show_at: appointment::no_show_at(slot.end, grace).naive_utc(),
        })
        .collect())
}

/// The `Idempotency-Key` header, if any: 1–255 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            IDEMPOTENCY_KEY,
            "must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(text.to_string()))
}

fn refusal(outcome: Outcome, settings: &AppointmentSettings) -> ApiError {
    match outcome {
        Outcome::SlotFull => ApiError::new(
            ErrorCode::SlotFull,
            "every place of this slot is taken: choose another (GET /api/v1/appointments/slots)",
        ),
        Outcome::AlreadyBooked(id) => ApiError::new(
            ErrorCode::AlreadyBooked,
            "you already hold an appointment for this matter on that day: one a day per matter",
        )
        .with_extension("appointment", json!(id)),
        Outcome::WeeklyLimit => ApiError::new(
            ErrorCode::WeeklyLimitReached,
            format!(
                "you already hold {} appointments in that week (Monday to Sunday), the most allowed",
                settings.weekly_limit
            ),
        )
        .with_extension("limit", json!(settings.weekly_limit)),
        Outcome::KeyReused => ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different body; use a new key for a new booking",
        ),
        Outcome::Stale | Outcome::Done(_) | Outcome::Replay(_) => {
            ApiError::internal("not a refusal")
        }
    }
}

/// Book a slot (enterprise tokens only).
///
/// The slot is a start time from `GET /api/v1/appointments/slots`; the booking takes a place
/// at the named `counter`, or at the first counter serving the matter with a place left. One
/// active booking per matter and day; at most `appointments.weekly_limit` per week. A
/// confirmation mail goes to the contact. Send an `Idempotency-Key` to make retries safe: the
/// same key and body answer the booking made the first time, as it is now.
#[utoipa::path(
    operation_id = "appointments_book",
    tag = "appointments",
    security(("bearer" = [])),
    request_body(content = BookingBody, example = json!({
        "matter": "market.establish",
        "slot": "2026-12-01T09:00:00+08:00",
        "contact": {"name": "张敏", "phone": "13800138000", "email": "office@example.com"},
        "request": "PT20261129-000002"
    })),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe (per enterprise)")),
    responses(
        (status = 201, description = "Booked (or the replay of the booking made with this key)", body = AppointmentView,
         headers(("Location" = String, description = "The appointment"), ("ETag" = String, description = "Revision"),
                 ("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 409, description = "`slot_full`: no place left; `already_booked`: an active booking for the matter \
                                      that day (`appointment` names it); `weekly_limit_reached` (`limit`)",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named (unknown matter, not a slot, past or too far ahead, \
                                      counter not serving it, contact, request not yours); or a key reused with another body",
         body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/appointments")]
#[allow(clippy::too_many_arguments)]
pub async fn book(
    req: HttpRequest,
    principal: Principal,
    body: web::Json<serde_json::Value>,
    catalog: web::Data<Catalog>,
    hall: web::Data<Hall>,
    calendars: web::Data<Calendars>,
    settings: web::Data<AppointmentSettings>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Enterprise])?;
    let Actor::Enterprise(uscc) = &principal.actor else {
        return Err(ApiError::forbidden("enterprise tokens only"));
    };
    let uscc = uscc.to_string();
    let key = idempotency_key(&req)?;
    let body = body.into_inner();
    let body_sha256: String = Sha256::digest(body.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let booking: BookingBody =
        serde_json::from_value(body).map_err(|e| invalid("/", e.to_string()))?;
    let mut errors = Vec::new();
    let matter = booking.matter.trim().to_string();
    if let Err(error) = bookable(&catalog, &hall, &matter, "/matter") {
        errors.push(error);
    }
    let start = parse_slot(&booking.slot).map_err(|e| errors.push(e)).ok();
    check_contact(&booking.contact, &mut errors);
    let reference = booking
        .request
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    if booking.request.is_some() && reference.is_none() {
        errors.push(field("/request", "empty: leave it out, or name a request"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let start = start.expect("checked above");
    let calendar = calendars.current();
    let zone = calendar.time_zone();
    let now = Utc::now().trunc_subsecs(6);
    let places = places_at(
        &hall,
        &calendar,
        &settings,
        &matter,
        start,
        booking.counter.as_deref(),
        now,
    )?;
    let request_id = match reference {
        None => None,
        Some(reference) => {
            let owner = uscc.clone();
            let found = db
                .run(move |conn| Ok(appointments::own_request(conn, &owner, &reference)?))
                .await?;
            Some(found.ok_or_else(|| {
                invalid(
                    "/request",
                    "no request of yours has this id or number (GET /api/v1/requests)",
                )
            })?)
        }
    };
    let date = start.with_timezone(&zone).date_naive();
    let first = places.first().expect("at least one place").clone();
    let row = AppointmentRow {
        id: uuid::Uuid::now_v7().to_string(),
        uscc,
        matter,
        unit: first.unit,
        counter: first.counter,
        starts_at: first.starts_at,
        ends_at: first.ends_at,
        local_date: date.to_string(),
        week: appointment::week_of(date).to_string(),
        status: Status::Booked.as_str().into(),
        contact_name: booking.contact.name.trim().to_string(),
        contact_phone: booking.contact.phone.trim().to_string(),
        contact_email: booking.contact.email.trim().to_string(),
        request_id,
        idempotency_key: None,
        body_sha256: None,
        no_show_at: first.no_show_at,
        reminder_due_at: appointment::reminder_at(&calendar, date, now).map(|t| t.naive_utc()),
        reminded_at: None,
        checked_in_at: None,
        checked_in_by: None,
        cancelled_at: None,
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
        revision: 1,
    };
    let new = NewBooking {
        row,
        places,
        weekly_limit: settings.weekly_limit as i32,
    };
    let claim = key.map(|key| Claim { key, body_sha256 });
    let (shared_catalog, shared_hall) = (catalog.clone(), hall.clone());
    let cutoff_minutes = settings.cutoff_minutes;
    let outcome = db
        .run(move |conn| {
            let compose = |row: &AppointmentRow| {
                (
                    vec![event(&principal, row, "appointment.booked", None, now)],
                    vec![appointments::notice(
                        row,
                        AppointmentStage::Booked,
                        &shared_catalog,
                        &shared_hall,
                        zone,
                        cutoff_minutes,
                    )],
                )
            };
            appointments::book(conn, &new, claim.as_ref(), now, &compose)
        })
        .await?;
    let context = Context {
        catalog: &catalog,
        hall: &hall,
        zone,
    };
    match outcome {
        Outcome::Done(row) => Ok(HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/api/v1/appointments/{}", row.id)))
            .insert_header((header::ETAG, etag(&row)))
            .json(context.view(&row))),
        Outcome::Replay(row) => Ok(HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/api/v1/appointments/{}", row.id)))
            .insert_header((header::ETAG, etag(&row)))
            .insert_header((IDEMPOTENT_REPLAYED, "true"))
            .json(context.view(&row))),
        other => Err(refusal(other, &settings)),
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Filters of the appointment list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only slots on this local date, `YYYY-MM-DD`.
    #[param(format = Date)]
    pub date: Option<String>,
    /// Only this state.
    #[param(value_type = Option<Status>)]
    pub status: Option<String>,
    /// Only this matter code.
    pub matter: Option<String>,
    /// At most this many (1 to 500, default 500).
    pub limit: Option<String>,
}

/// The appointments the caller sees, by slot start: an enterprise its own, a clerk or unit
/// supervisor their unit's counters', a district supervisor or administrator all.
#[utoipa::path(
    operation_id = "appointments_list",
    tag = "appointments",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The appointments", body = Vec<AppointmentView>),
        (status = 422, description = "A filter is not valid (each named)", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/appointments")]
pub async fn list(
    principal: Principal,
    query: web::Query<ListQuery>,
    catalog: web::Data<Catalog>,
    hall: web::Data<Hall>,
    calendars: web::Data<Calendars>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let date = match &query.date {
        Some(text) => parse_date("date", text)
            .map(|d| Some(d.to_string()))
            .unwrap_or_else(|e| {
                errors.push(e);
                None
            }),
        None => None,
    };
    if let Some(status) = &query.status {
        if Status::parse(status).is_none() {
            errors.push(field(
                "status",
                format!("`{status}` is not one of: booked, cancelled, checked_in, no_show"),
            ));
        }
    }
    let limit = match &query.limit {
        None => MAX_LIST,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=MAX_LIST).contains(&n) => n,
            _ => {
                errors.push(field("limit", format!("must be 1 to {MAX_LIST}")));
                MAX_LIST
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filters = Filters {
        date,
        status: query.status.clone(),
        matter: query.matter.clone(),
        unit: None,
    };
    let scope = scope_of(&principal);
    let rows = db
        .run(move |conn| Ok(appointments::list(conn, &scope, &filters, limit)?))
        .await?;
    let context = Context {
        catalog: &catalog,
        hall: &hall,
        zone: calendars.current().time_zone(),
    };
    let views: Vec<AppointmentView> = rows.iter().map(|r| context.view(r)).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// The appointment `id` if `principal` sees it, else 404.
async fn visible(
    principal: &Principal,
    id: String,
    db: &Database,
) -> Result<AppointmentRow, ApiError> {
    let scope = scope_of(principal);
    let row = db
        .run(move |conn| Ok(appointments::find(conn, &id)?))
        .await?;
    row.filter(|row| appointments::visible(row, &scope))
        .ok_or_else(|| ApiError::not_found("no such appointment"))
}

/// One appointment, with its `ETag` (for `If-Match` on cancel and reschedule).
#[utoipa::path(
    operation_id = "appointments_read",
    tag = "appointments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Appointment id")),
    responses(
        (status = 200, description = "The appointment", body = AppointmentView,
         headers(("ETag" = String, description = "Revision, for If-Match"))),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, description = "No such appointment for this caller", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/appointments/{id}")]
pub async fn read(
    principal: Principal,
    id: web::Path<String>,
    catalog: web::Data<Catalog>,
    hall: web::Data<Hall>,
    calendars: web::Data<Calendars>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let row = visible(&principal, id.into_inner(), &db).await?;
    let context = Context {
        catalog: &catalog,
        hall: &hall,
        zone: calendars.current().time_zone(),
    };
    Ok(context.answer(actix_web::http::StatusCode::OK, &row))
}

/// The appointment as an RFC 5545 calendar entry (`text/calendar`), for the enterprise's
/// calendar; the confirmation and reminder mails name this path.
#[utoipa::path(
    operation_id = "appointments_calendar",
    tag = "appointments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Appointment id")),
    responses(
        (status = 200, description = "One VEVENT (cancelled bookings carry STATUS:CANCELLED)",
         content_type = "text/calendar", body = String),
        (status = 404, description = "No such appointment for this caller", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/appointments/{id}/calendar")]
pub async fn calendar_entry(
    principal: Principal,
    id: web::Path<String>,
    catalog: web::Data<Catalog>,
    hall: web::Data<Hall>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let row = visible(&principal, id.into_inner(), &db).await?;
    let text = ics(&row, &catalog, &hall);
    Ok(HttpResponse::Ok()
        .content_type("text/calendar; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"appointment-{}.ics\"", row.id),
        ))
        .body(text))
}

/// The RFC 5545 text of `row`, made with the `icalendar` crate (escaping, line folding and
/// CRLF done right).
fn ics(row: &AppointmentRow, catalog: &Catalog, hall: &Hall) -> String {
    use icalendar::{Calendar as Ical, Component, Event, EventLike, EventStatus};
    let matter = catalog
        .matter(&row.matter)
        .map(|m| m.name_zh.clone())
        .unwrap_or_else(|| row.matter.clone());
    let counter = appointments::counter_label(hall, &row.counter);
    let mut event = Event::new();
    event
        .uid(&format!("{}@mashangban", row.id))
        .timestamp(utc(row.updated_at))
        .starts(utc(row.starts_at))
        .ends(utc(row.ends_at))
        .summary(&format!("马上办预约：{matter}"))
        .location(&format!("普陀区行政服务中心 {counter}"))
        .description(&format!(
            "预约号 {} / appointment {}\n事项 matter: {} ({})\n窗口 counter: {counter}\n请按时到窗口签到 / check in at the counter on time.",
            row.id, row.id, matter, row.matter
        ))
        .add_property("SEQUENCE", row.revision.to_string())
        .status(if row.state() == Status::Cancelled {
            EventStatus::Cancelled
        } else {
            EventStatus::Confirmed
        });
    let mut calendar = Ical::new();
    calendar.name("马上办 统一预约").push(event.done());
    calendar.done().to_string()
}

// ---------------------------------------------------------------------------------------------
// Cancel, reschedule

fn stale(row: &AppointmentRow) -> ApiError {
    ApiError::new(
        ErrorCode::PreconditionFailed,
        format!(
            "the appointment changed first: it is now {} (revision r{}); read it again",
            row.status, row.revision
        ),
    )
    .with_header(header::ETAG, etag(row))
}

fn not_booked(row: &AppointmentRow) -> ApiError {
    ApiError::new(
        ErrorCode::ActionNotAllowed,
        format!(
            "the appointment is {}; only a booked one can be changed",
            row.status
        ),
    )
    .with_extension("state", json!(row.status))
}

/// The enterprise's own booked appointment as `If-Match` expects it, before the cutoff.
async fn changeable(
    req: &HttpRequest,
    principal: &Principal,
    id: String,
    db: &Database,
    settings: &AppointmentSettings,
    now: DateTime<Utc>,
) -> Result<(AppointmentRow, i32), ApiError> {
    principal.require(&[Role::Enterprise])?;
    let row = visible(principal, id, db).await?;
    let expected = if_match_revision(req, "appointment", row.revision)?;
    if expected != row.revision {
        return Err(stale(&row));
    }
    if row.state() != Status::Booked {
        return Err(not_booked(&row));
    }
    let cutoff = TimeDelta::minutes(i64::from(settings.cutoff_minutes));
    if !appointment::before_cutoff(utc(row.starts_at), now, cutoff) {
        return Err(ApiError::new(
            ErrorCode::CutoffPassed,
            format!(
                "the slot starts within {} minutes: it can no longer be cancelled or moved",
                settings.cutoff_minutes
            ),
        )
        .with_extension("cutoff_at", json!(utc(row.starts_at) - cutoff)));
    }
    Ok((row, expected))
}

/// Cancel a booking (the enterprise, with `If-Match`), until `appointments.cutoff_minutes`
/// before the slot; its place is free again at once.
#[utoipa::path(
    operation_id = "appointments_cancel",
    tag = "appointments",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Appointment id"),
        ("If-Match" = String, Header, description = "The appointment's ETag as read, e.g. \"r1\"")
    ),
    responses(
        (status = 200, description = "Cancelled", body = AppointmentView,
         headers(("ETag" = String, description = "New revision"))),
        (status = 404, description = "No such appointment of this enterprise", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`action_not_allowed`: not booked any more (`state`); `cutoff_passed`: too close \
                                      to the slot (`cutoff_at`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed first by someone else", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/appointments/{id}/cancel")]
#[allow(clippy::too_many_arguments)]
pub async fn cancel(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<String>,
    catalog: web::Data<Catalog>,
    hall: web::Data<Hall>,
    calendars: web::Data<Calendars>,
    settings: web::Data<AppointmentSettings>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now().trunc_subsecs(6);
    let id = id.into_inner();
    let (row, expected) = changeable(&req, &principal, id.clone(), &db, &settings, now).await?;
    let actor = principal.clone();
    let target = id.clone();
    let cancelled = db
        .run(move |conn| {
            let compose = |row: &AppointmentRow| {
                (
                    vec![event(
                        &actor,
                        row,
                        "appointment.cancelled",
                        Some(Status::Booked),
                        now,
                    )],
                    vec![],
                )
            };
            appointments::cancel(conn, &target, expected, now, &compose)
        })
        .await?;
    let context = Context {
        catalog: &catalog,
        hall: &hall,
        zone: calendars.current().time_zone(),
    };
    match cancelled {
        Some(row) => Ok(context.answer(actix_web::http::StatusCode::OK, &row)),
        None => {
            let now_row = visible(&principal, id, &db).await.unwrap_or(row);
            Err(stale(&now_row))
        }
    }
}

/// Move a booking to another slot (the enterprise, with `If-Match`), until
/// `appointments.cutoff_minutes` before its current slot. The new place is taken before the old
/// one is given back: a full slot refuses the move and the booking stays as it was.
#[utoipa::path(
    operation_id = "appointments_reschedule",
    tag = "appointments",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Appointment id"),
        ("If-Match" = String, Header, description = "The appointment's ETag as read, e.g. \"r1\"")
    ),
    request_body(content = MoveBody, example = json!({"slot": "2026-12-02T14:00:00+08:00"})),
    responses(
        (status = 200, description = "Moved; a mail confirms the new slot", body = AppointmentView,
         headers(("ETag" = String, description = "New revision"))),
        (status = 404, description = "No such appointment of this enterprise", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`action_not_allowed` (`state`), `cutoff_passed` (`cutoff_at`), `slot_full`, \
                                      `already_booked`, `weekly_limit_reached`", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed first by someone else", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a slot of the matter, in the past or too far ahead, the same slot, or a counter \
                                      not serving it (named)", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/appointments/{id}/reschedule")]
#[allow(clippy::too_many_arguments)]
pub async fn reschedule(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<MoveBody>,
    catalog: web::Data<Catalog>,
    hall: web::Data<Hall>,
    calendars: web::Data<Calendars>,
    settings: web::Data<AppointmentSettings>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now().trunc_subsecs(6);
    let id = id.into_inner();
    let (row, expected) = changeable(&req, &principal, id.clone(), &db, &settings, now).await?;
    let start = parse_slot(&body.slot).map_err(|e| ApiError::validation(vec![e]))?;
    let calendar = calendars.current();
    let zone = calendar.time_zone();
    let places = places_at(
        &hall,
        &calendar,
        &settings,
        &row.matter,
        start,
        body.counter.as_deref(),
        now,
    )?;
    // Another counter at the same time is a move; the same place is not. Without a counter
    // named, the booking stays at its counter when that one serves the new slot.
    let mut places = places;
    places.retain(|p| !(p.counter == row.counter && p.starts_at == row.starts_at));
    if places.is_empty() {
        return Err(invalid("/slot", "is the booking's slot already"));
    }
    places.sort_by_key(|p| p.counter != row.counter);
    let date = start.with_timezone(&zone).date_naive();
    let change = Move {
        id: id.clone(),
        expected_revision: expected,
        places,
        local_date: date.to_string(),
        week: appointment::week_of(date).to_string(),
        reminder_due_at: appointment::reminder_at(&calendar, date, now).map(|t| t.naive_utc()),
        weekly_limit: settings.weekly_limit as i32,
    };
    let (shared_catalog, shared_hall) = (catalog.clone(), hall.clone());
    let cutoff_minutes = settings.cutoff_minutes;
    let actor = principal.clone();
    let outcome = db
        .run(move |conn| {
            let compose = |row: &AppointmentRow| {
                (
                    vec![event(
                        &actor,
                        row,
                        "appointment.rescheduled",
                        Some(Status::Booked),
                        now,
                    )],
                    vec![appointments::notice(
                        row,
                        AppointmentStage::Rescheduled,
                        &shared_catalog,
                        &shared_hall,
                        zone,
                        cutoff_minutes,
                    )],
                )
            };
            appointments::reschedule(conn, &change, now, &compose)
        })
        .await?;
    let context = Context {
        catalog: &catalog,
        hall: &hall,
        zone,
    };
    match outcome {
        Outcome::Done(row) => Ok(context.answer(actix_web::http::StatusCode::OK, &row)),
        Outcome::Stale => {
            let now_row = visible(&principal, id, &db).await.unwrap_or(row);
            Err(stale(&now_row))
        }
        other => Err(refusal(other, &settings)),
    }
}

// ---------------------------------------------------------------------------------------------
// Check-in

/// A checked-in appointment and the ticket it was given.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckedInView {
    /// The appointment as it is now.
    #[serde(flatten)]
    pub appointment: AppointmentView,
    /// The visitor's ticket in the unit's window queue.
    pub ticket: crate::routes::tickets::TicketView,
}

/// Check a visitor in (a clerk of the counter's unit): on the slot's day, from
/// `appointments.check_in_early_minutes` before its start until the no-show time. The
/// appointment is `checked_in` and answered with what a ticket needs (unit, counter, matter,
/// enterprise, slot, request).
#[utoipa::path(
    operation_id = "appointments_check_in",
    tag = "appointments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Appointment id")),
    responses(
        (status = 200, description = "Checked in: the appointment, and under `ticket` the visitor's ticket in the unit's window queue (docs/tickets.md)", body = CheckedInView,
         headers(("ETag" = String, description = "New revision"))),
        (status = 404, description = "No such appointment at this clerk's unit", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`action_not_allowed`: cancelled, checked in already or a no-show (`state`); \
                                      `check_in_not_open`: another day, too early (`opens_at`) or past the no-show time (`reason`)",
         body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/appointments/{id}/check-in")]
#[allow(clippy::too_many_arguments)]
pub async fn check_in(
    principal: Principal,
    id: web::Path<String>,
    catalog: web::Data<Catalog>,
    hall: web::Data<Hall>,
    calendars: web::Data<Calendars>,
    settings: web::Data<AppointmentSettings>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Clerk])?;
    let id = id.into_inner();
    let row = visible(&principal, id.clone(), &db).await?;
    if row.state() != Status::Booked {
        return Err(ApiError::new(
            ErrorCode::ActionNotAllowed,
            format!(
                "the appointment is {}; only a booked one is checked in",
                row.status
            ),
        )
        .with_extension("state", json!(row.status)));
    }
    let zone = calendars.current().time_zone();
    let now = Utc::now().trunc_subsecs(6);
    let early = TimeDelta::minutes(i64::from(settings.check_in_early_minutes));
    appointment::check_in_window(utc(row.starts_at), utc(row.no_show_at), now, early, zone)
        .map_err(|refusal| {
            let (reason, detail) = match refusal {
                CheckInRefusal::NotToday => (
                    "not_today",
                    format!("the slot is on {}, not today", row.local_date),
                ),
                CheckInRefusal::TooEarly { opens_at } => (
                    "too_early",
                    format!(
                        "check-in opens {} minutes before the slot, at {}",
                        settings.check_in_early_minutes,
                        opens_at.with_timezone(&zone).format("%H:%M")
                    ),
                ),
                CheckInRefusal::Closed => (
                    "no_show",
                    "the slot ended and its grace period passed: the booking is a no-show".into(),
                ),
            };
            let error = ApiError::new(ErrorCode::CheckInNotOpen, detail)
                .with_extension("reason", json!(reason));
            match refusal {
                CheckInRefusal::TooEarly { opens_at } => {
                    error.with_extension("opens_at", json!(opens_at))
                }
                _ => error,
            }
        })?;
    let actor = principal.clone();
    let clerk = principal.subject.clone();
    let target = id.clone();
    let checked = db
        .run(move |conn| {
            let compose = |row: &AppointmentRow| {
                (
                    vec![event(
                        &actor,
                        row,
                        "appointment.checked_in",
                        Some(Status::Booked),
                        now,
                    )],
                    vec![],
                )
            };
            // The check-in and the visitor's ticket in the unit's window queue: both or neither.
            crate::db::write_transaction(conn, |conn| {
                let Some(row) = appointments::check_in(conn, &target, &clerk, now, &compose)?
                else {
                    return Ok(None);
                };
                let new = NewTicket {
                    unit: row.unit.parse().map_err(ApiError::internal)?,
                    kind: TicketKind::Appointment,
                    appointment_id: Some(row.id.clone()),
                    request_id: row.request_id.clone(),
                    uscc: Some(row.uscc.clone()),
                    matter: Some(row.matter.clone()),
                    counter: Some(row.counter.clone()),
                    slot_start: Some(utc(row.starts_at)),
                    by: crate::routes::tickets::official(&actor),
                    at: now,
                };
                let ticket = crate::db::tickets::issue(conn, &new)?;
                Ok(Some((row, ticket)))
            })
        })
        .await?;
    let context = Context {
        catalog: &catalog,
        hall: &hall,
        zone,
    };
    match checked {
        Some((row, ticket)) => Ok(HttpResponse::Ok()
            .insert_header((header::ETAG, etag(&row)))
            .json(CheckedInView {
                appointment: context.view(&row),
                ticket: crate::routes::tickets::ticket_view(&ticket, now),
            })),
        None => {
            let now_row = visible(&principal, id, &db).await?;
            Err(ApiError::new(
                ErrorCode::ActionNotAllowed,
                format!("the appointment is {} now", now_row.status),
            )
            .with_extension("state", json!(now_row.status)))
        }
    }
}
