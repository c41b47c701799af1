//! `GET /api/v1/notifications`: the mail outbox, for administrators and supervisors.
//!
//! An administrator and a district supervisor (no unit) see every mail; a unit supervisor sees
//! the mails about requests with a task for their unit (the service centre's also every
//! `awaiting_arbitration` mail: it arbitrates returns). Every wrong parameter is a 422 naming
//! it, all of them at once. Delivery itself is `crate::notify`; see `docs/notifications.md`.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Actor, Principal, Role};
use crate::db::Database;
use crate::db::notifications::{self, Filters, NotificationRow};
use crate::error::{ApiError, FieldError, Problem};

/// Largest page.
const MAX_LIMIT: i64 = 100;
/// Default page.
const DEFAULT_LIMIT: i64 = 20;

/// Where a mail is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// Accepted by the SMTP server (or written as an `.eml` file).
    Sent,
    /// Given up: attempts used up, or refused for good. Nothing retries it.
    Dead,
}

/// What a mail says (the stored `kind`, see `crate::domain::notice::Message::kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// 受理, to the enterprise.
    Accepted,
    /// 不予受理, to the enterprise.
    NotAccepted,
    /// 补正, to the enterprise.
    SupplementRequired,
    /// 延期, to the enterprise.
    ExtensionGranted,
    /// 准予, to the enterprise.
    Approved,
    /// 不予, to the enterprise.
    Denied,
    /// 办结, to the enterprise.
    Completed,
    /// A clock warns, to the unit's supervisor.
    ClockWarning,
    /// A clock ran out, to the unit's supervisor.
    ClockBreached,
    /// A return awaits arbitration, to the service centre.
    AwaitingArbitration,
    /// A bad rating opened a rectification case, to the unit's supervisor.
    RectificationOpened,
    /// The rectification case closed, to the enterprise.
    RectificationClosed,
    /// Deemed accepted from receipt (Art. 32), to the enterprise.
    DeemedAccepted,
    /// A deferred material (容缺) is due soon, to the enterprise.
    MaterialDue,
    /// A deferred material arrived, to the lead unit.
    MaterialSupplied,
    /// The working calendar's horizon is near: load the next year, to the administrators.
    CalendarHorizon,
    /// 统一预约: a booking confirmed, to the enterprise's contact.
    AppointmentBooked,
    /// 统一预约: a booking moved to another slot, to the enterprise's contact.
    AppointmentRescheduled,
    /// 统一预约: the reminder the working day before the slot, to the enterprise's contact.
    AppointmentReminder,
}

/// One mail of the outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    /// Id (UUID v7).
    pub id: String,
    /// The request it is about.
    pub request_id: Option<String>,
    /// What it says (every stored kind is a `NoticeKind`; a unit test keeps them equal).
    #[schema(value_type = NoticeKind)]
    pub kind: String,
    /// The address it goes to.
    #[schema(example = "office@example.com")]
    pub recipient: String,
    /// Subject line (Chinese, then English).
    #[schema(example = "【马上办】PT20261128-000001 已受理 / accepted")]
    pub subject: String,
    /// Delivery status.
    pub status: DeliveryStatus,
    /// Delivery attempts made.
    pub attempts: i32,
    /// When the next attempt is due (for a pending mail).
    pub next_attempt_at: DateTime<Utc>,
    /// What went wrong on the last failed attempt.
    pub last_error: Option<String>,
    /// When it was written, in the transaction of the change that caused it.
    pub created_at: DateTime<Utc>,
    /// When the SMTP server accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// Its `Message-ID` header, the same on every attempt.
    #[schema(example = "<0190c3a0-0000-7000-8000-000000000001@mashangban>")]
    pub message_id: String,
}

impl From<NotificationRow> for NotificationView {
    fn from(row: NotificationRow) -> Self {
        Self {
            status: match row.status.as_str() {
                "sent" => DeliveryStatus::Sent,
                "dead" => DeliveryStatus::Dead,
                _ => DeliveryStatus::Pending,
            },
            id: row.id,
            request_id: row.request_id,
            kind: row.kind,
            recipient: row.recipient,
            subject: row.subject,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at.and_utc(),
            last_error: row.last_error,
            created_at: row.created_at.and_utc(),
            sent_at: row.sent_at.map(|t| t.and_utc()),
            message_id: row.message_id,
        }
    }
}

/// A page of the outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    /// Newest first.
    pub items: Vec<NotificationView>,
    /// How many mails match the filters in all: exact while `total_capped` is false; else
    /// more than `total` (1,000) match and the count stopped there.
    pub total: i64,
    /// More mails match than `total`: the count stops at 1,000 so that a page never counts
    /// the whole outbox.
    pub total_capped: bool,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Filters and page of the outbox listing.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// Only this delivery status.
    #[param(value_type = Option<DeliveryStatus>)]
    pub status: Option<String>,
    /// Only this kind.
    #[param(value_type = Option<NoticeKind>)]
    pub kind: Option<String>,
    /// Only mails about this request.
    #[param(format = Uuid)]
    pub request_id: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(format = Uuid)]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// A wire name of one of `T`'s values, or the message listing them.
fn one_of<T: for<'de> Deserialize<'de>>(text: &str, allowed: &[&str]) -> Result<String, String> {
    serde_json::from_value::<T>(serde_json::Value::String(text.into()))
        .map(|_| text.to_string())
        .map_err(|_| format!("`{text}` is not one of: {}", allowed.join(", ")))
}

/// A UUID in its usual spelling.
fn uuid(text: &str, message: &str) -> Result<String, String> {
    Uuid::parse_str(text)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| message.to_string())
}

/// The filters, the cursor and the page size, or a 422 naming every wrong parameter.
fn parse(query: &NotificationQuery) -> Result<(Filters, Option<String>, i64), ApiError> {
    let mut errors = Vec::new();
    let mut check =
        |name: &str, value: &Option<String>, parse: &dyn Fn(&str) -> Result<String, String>| {
            value.as_deref().and_then(|v| match parse(v) {
                Ok(parsed) => Some(parsed),
                Err(message) => {
                    errors.push(FieldError {
                        pointer: name.into(),
                        message,
                    });
                    None
                }
            })
        };
    let status = check("status", &query.status, &|v| {
        one_of::<DeliveryStatus>(v, &["pending", "sent", "dead"])
    });
    let kind = check("kind", &query.kind, &|v| one_of::<NoticeKind>(v, &KINDS));
    let request_id = check("request_id", &query.request_id, &|v| {
        uuid(v, "not a request id (a UUID)")
    });
    let cursor = check("cursor", &query.cursor, &|v| {
        uuid(v, "not a cursor from a previous page")
    });
    let limit = check("limit", &query.limit, &|v| match v.parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n.to_string()),
        _ => Err(format!("must be a whole number from 1 to {MAX_LIMIT}")),
    });
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok((
        Filters {
            status,
            kind,
            request_id,
        },
        cursor,
        limit.and_then(|l| l.parse().ok()).unwrap_or(DEFAULT_LIMIT),
    ))
}

/// Every kind, as stored.
const KINDS: [&str; 19] = [
    "accepted",
    "not_accepted",
    "supplement_required",
    "extension_granted",
    "approved",
    "denied",
    "completed",
    "clock_warning",
    "clock_breached",
    "awaiting_arbitration",
    "rectification_opened",
    "rectification_closed",
    "deemed_accepted",
    "material_due",
    "material_supplied",
    "calendar_horizon",
    "appointment_booked",
    "appointment_rescheduled",
    "appointment_reminder",
];

/// List the mail outbox, newest first: what was sent to whom, what waits and why, what was
/// given up. Administrators and district supervisors see every mail; a unit supervisor the
/// mails about requests with a task for their unit (the service centre's also every
/// `awaiting_arbitration` mail).
#[utoipa::path(
    tag = "notifications",
    operation_id = "notifications_list",
    security(("bearer" = [])),
    params(NotificationQuery),
    responses(
        (status = 200, description = "A page of the outbox", body = NotificationPage),
        (status = 400, description = "Malformed query string", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is invalid; each one is named", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database does not answer", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = String, description = "Seconds to wait"))),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/notifications")]
pub async fn list(
    principal: Principal,
    query: web::Query<NotificationQuery>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Supervisor, Role::Admin])?;
    let unit = match principal.actor {
        Actor::Supervisor(unit) => unit,
        _ => None,
    };
    let (filters, cursor, limit) = parse(&query)?;
    let (rows, total) = db
        .run(move |conn| {
            Ok(notifications::list(
                conn,
                unit,
                &filters,
                cursor.as_deref(),
                limit,
            )?)
        })
        .await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|row| row.id.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(NotificationPage {
        items: rows.into_iter().map(NotificationView::from).collect(),
        total: total.count,
        total_capped: total.capped,
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::notice::{AppointmentStage, Message};

    fn appointment(stage: AppointmentStage) -> Message {
        Message::Appointment {
            stage,
            counter: "A01".into(),
            slot: "2026-12-01 09:00–09:30".into(),
            calendar_path: "/api/v1/appointments/x/calendar".into(),
            cutoff_minutes: 120,
        }
    }

    /// One message of every kind; the `match` stops compiling when a variant is added, so the
    /// kinds listed here cannot fall behind `Message`.
    fn every_message() -> Vec<Message> {
        let all = vec![
            Message::Accepted,
            Message::NotAccepted { reason: "x".into() },
            Message::SupplementRequired { items: vec![] },
            Message::ExtensionGranted {
                days: 10,
                reason: "x".into(),
            },
            Message::Decided {
                approved: true,
                reason: None,
            },
            Message::Decided {
                approved: false,
                reason: None,
            },
            Message::Completed,
            Message::ClockWarning {
                clock: "statutory".into(),
                unit: "tax".into(),
                due_at: "x".into(),
            },
            Message::ClockBreached {
                clock: "statutory".into(),
                unit: "tax".into(),
                due_at: "x".into(),
            },
            Message::AwaitingArbitration {
                from_unit: "tax".into(),
                reason: "x".into(),
            },
            Message::RectificationOpened {
                level: 1,
                comment: "x".into(),
            },
            Message::RectificationClosed { note: "x".into() },
            Message::DeemedAccepted { from: "x".into() },
            Message::MaterialDue {
                code: "x".into(),
                name: "x".into(),
                due_at: "x".into(),
            },
            Message::MaterialSupplied {
                code: "x".into(),
                name: "x".into(),
                received_at_window: false,
            },
            Message::CalendarHorizon {
                calendar: "cn-shanghai".into(),
                last_day: Some("2026-12-31".into()),
                days_left: Some(30),
                next_year: 2027,
            },
            appointment(AppointmentStage::Booked),
            appointment(AppointmentStage::Rescheduled),
            appointment(AppointmentStage::Reminder),
        ];
        for message in &all {
            match message {
                Message::Accepted
                | Message::NotAccepted { .. }
                | Message::SupplementRequired { .. }
                | Message::ExtensionGranted { .. }
                | Message::Decided { .. }
                | Message::Completed
                | Message::ClockWarning { .. }
                | Message::ClockBreached { .. }
                | Message::AwaitingArbitration { .. }
                | Message::RectificationOpened { .. }
                | Message::RectificationClosed { .. }
                | Message::DeemedAccepted { .. }
                | Message::MaterialDue { .. }
                | Message::MaterialSupplied { .. }
                | Message::CalendarHorizon { .. }
                | Message::Appointment { .. } => {}
            }
        }
        all
    }

    #[test]
    fn the_kind_filter_knows_every_kind_a_message_has() {
        let kinds: Vec<&str> = every_message().iter().map(Message::kind).collect();
        assert_eq!(kinds, KINDS);
        for kind in KINDS {
            let parsed: NoticeKind =
                serde_json::from_value(serde_json::Value::String(kind.into())).unwrap();
            assert_eq!(serde_json::to_value(parsed).unwrap(), kind);
        }
    }

    fn query(pairs: &[(&str, &str)]) -> NotificationQuery {
        let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        web::Query::<NotificationQuery>::from_query(&text.join("&"))
            .unwrap()
            .into_inner()
    }

    #[test]
    fn every_wrong_parameter_is_named() {
        let error = parse(&query(&[
            ("status", "lost"),
            ("kind", "gossip"),
            ("request_id", "PT1"),
            ("cursor", "x"),
            ("limit", "0"),
        ]))
        .unwrap_err();
        let problem = error.problem();
        let named: Vec<String> = problem.errors.into_iter().map(|e| e.pointer).collect();
        assert_eq!(named, ["status", "kind", "request_id", "cursor", "limit"]);

        let (filters, cursor, limit) = parse(&query(&[
            ("status", "dead"),
            ("kind", "clock_breached"),
            ("limit", "5"),
        ]))
        .unwrap();
        assert_eq!(filters.status.as_deref(), Some("dead"));
        assert_eq!(filters.kind.as_deref(), Some("clock_breached"));
        assert_eq!((cursor, limit), (None, 5));
    }
}
