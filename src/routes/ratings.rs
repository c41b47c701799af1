//! Good/bad ratings (好差评) and the rectification cases bad ones open: the closed loop of
//! collecting, handling and feeding back (docs/ratings.md).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Actor, Principal, Role};
use crate::config::{RatingSettings, SlaSettings};
use crate::db::Database;
use crate::db::calendars::Calendars;
use crate::db::clocks as clock_rows;
use crate::db::notifications::Notice;
use crate::db::ratings::{self, Case, CaseRow, NewRating, RatingRow};
use crate::db::requests::{self, Scope};
use crate::domain::audit::Entry;
use crate::domain::catalog::Target;
use crate::domain::clock::{Change, Clock, Rules};
use crate::domain::notice::{About, Message};
use crate::domain::rating::{self, CaseStatus, CaseStep, Level};
use crate::domain::request::{ClockKind, ClockState, Status};
use crate::domain::{Catalog, UnitCode};
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::http::extract::if_match_revision;
use crate::routes::requests::{ClockView, clock_view};

/// A rating: level 1 (非常不满意) to 5 (非常满意) and a comment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingBody {
    /// 1 非常不满意, 2 不满意, 3 基本满意, 4 满意, 5 非常满意.
    #[schema(minimum = 1, maximum = 5)]
    pub level: i64,
    /// What the enterprise says (up to 1000 characters; may be empty).
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub comment: String,
}

/// A stored rating.
#[derive(Debug, Serialize, ToSchema)]
pub struct RatingView {
    /// The request.
    pub request_id: String,
    /// 1 to 5.
    pub level: i32,
    /// Its label.
    pub label: String,
    /// Comment.
    pub comment: String,
    /// The unit rated.
    pub unit: String,
    /// Matter or bundle.
    pub matter: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The rectification case a bad rating opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rectification: Option<CaseView>,
}

/// A rectification case.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseView {
    /// Case id.
    pub id: String,
    /// The request rated.
    pub request_id: String,
    /// Its number.
    pub number: String,
    /// The unit that must rectify.
    pub unit: String,
    /// The rating's level.
    pub level: i32,
    /// `open`, `contacted` or `closed`.
    pub status: String,
    /// When the enterprise was contacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacted_at: Option<DateTime<Utc>>,
    /// What the contact found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_note: Option<String>,
    /// When closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    /// What was rectified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closing_note: Option<String>,
    /// Opened.
    pub created_at: DateTime<Utc>,
    /// Contact and rectification clocks.
    pub clocks: Vec<ClockView>,
}

/// A page of cases.
#[derive(Debug, Serialize, ToSchema)]
pub struct CasePage {
    /// Newest first.
    pub items: Vec<CaseView>,
    /// How many match.
    pub total: i64,
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

fn case_view(case: &Case) -> CaseView {
    let c = &case.case;
    CaseView {
        id: c.id.clone(),
        request_id: c.request_id.clone(),
        number: case.number.clone(),
        unit: c.unit.clone(),
        level: c.level,
        status: c.status.clone(),
        contacted_at: c.contacted_at.map(utc),
        contact_note: c.contact_note.clone(),
        closed_at: c.closed_at.map(utc),
        closing_note: c.closing_note.clone(),
        created_at: utc(c.created_at),
        clocks: case.clocks.iter().map(clock_view).collect(),
    }
}

fn case_etag(case: &Case) -> HeaderValue {
    HeaderValue::from_str(&format!("\"r{}\"", case.case.revision)).expect("ASCII")
}

fn role_and_unit(actor: &Actor) -> (&'static str, Option<String>) {
    match actor {
        Actor::Enterprise(_) => ("enterprise", None),
        Actor::Clerk(u) => ("clerk", Some(u.to_string())),
        Actor::Supervisor(u) => ("supervisor", u.map(|u| u.to_string())),
        Actor::Admin => ("admin", None),
    }
}

/// Rate a finished request.
///
/// The owning enterprise rates its request once it is completed or delivered, not accepted,
/// or denied; once. A level of 1 or 2 opens a rectification case for the responsible unit,
/// with its contact and rectification clocks, and tells the unit's supervisor.
#[utoipa::path(
    tag = "ratings",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Request id")),
    request_body = RatingBody,
    responses(
        (status = 201, description = "Rated", body = RatingView),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not finished yet (`action_not_allowed`), or rated already (`already_rated`)",
         body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Level not 1 to 5, or comment too long", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/requests/{id}/rating")]
#[allow(clippy::too_many_arguments)]
pub async fn rate(
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<RatingBody>,
    db: web::Data<Database>,
    catalog: web::Data<Catalog>,
    calendars: web::Data<Calendars>,
    sla: web::Data<SlaSettings>,
    settings: web::Data<RatingSettings>,
) -> Result<HttpResponse, ApiError> {
    let Actor::Enterprise(uscc) = &principal.actor else {
        return Err(ApiError::forbidden(
            "only the enterprise that submitted the request may rate it",
        ));
    };
    let id = id.into_inner();
    let scope = Scope::Enterprise(uscc.to_string());
    let lookup = id.clone();
    let record = db
        .run(move |conn| Ok(requests::find(conn, &scope, &lookup)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no request {id}")))?;
    let r = &record.request;
    let status: Status = r.status.parse().map_err(ApiError::internal)?;
    if !rating::ratable(status) {
        return Err(ApiError::new(
            ErrorCode::ActionNotAllowed,
            format!(
                "a request is rated once it is completed, delivered, not accepted or denied; it is {status}"
            ),
        )
        .with_extension("state", json!(status)));
    }
    let level = Level::new(body.level);
    let comment = body.comment.trim().to_string();
    let mut errors = Vec::new();
    if level.is_none() {
        errors.push(FieldError {
            pointer: "/level".into(),
            message: "must be 1 (非常不满意) to 5 (非常满意)".into(),
        });
    }
    if comment.chars().count() > rating::COMMENT_MAX_CHARS {
        errors.push(FieldError {
            pointer: "/comment".into(),
            message: format!("at most {} characters", rating::COMMENT_MAX_CHARS),
        });
    }
    let Some(level) = level.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let now = Utc::now().trunc_subsecs(6);
    let at = now.naive_utc();
    let unit: UnitCode = r.lead_unit.parse().map_err(ApiError::internal)?;
    let rating_row = RatingRow {
        request_id: r.id.clone(),
        uscc: uscc.to_string(),
        level: level.get(),
        comment: comment.clone(),
        unit: unit.to_string(),
        matter: r.code.clone(),
        created_at: at,
    };
    let about = About::of(&catalog, &r.number, &r.code);
    let mut events = vec![Entry {
        request_id: r.id.clone(),
        actor: principal.subject.clone(),
        role: "enterprise".into(),
        unit: None,
        action: "rate".into(),
        state_before: Some(status.as_str().into()),
        state_after: Some(status.as_str().into()),
        payload: json!({ "level": level.get(), "label": level.label_zh(), "comment": comment }),
        at: now,
    }];
    let mut notices = Vec::new();
    let case = if level.is_bad() {
        let calendar = calendars.current();
        let rules = Rules {
            calendar: &calendar,
            warn_percent: sla.warn_percent,
        };
        let case = CaseRow {
            id: Uuid::now_v7().to_string(),
            request_id: r.id.clone(),
            unit: unit.to_string(),
            level: level.get(),
            status: CaseStatus::Open.as_str().into(),
            contacted_at: None,
            contact_note: None,
            closed_at: None,
            closing_note: None,
            created_at: at,
            revision: 1,
            no_contact_reason: None,
        };
        let mut clock_list = Vec::new();
        for (kind, days) in [
            (ClockKind::RectificationContact, settings.contact_days),
            (ClockKind::Rectification, settings.rectify_days),
        ] {
            let mut clock = Clock::new(kind, Target::working_days(days));
            clock.start(rules, now).map_err(ApiError::internal)?;
            let row = clock_rows::to_row(
                &clock,
                Uuid::now_v7().to_string(),
                r.id.clone(),
                None,
                unit.to_string(),
                r.code.clone(),
            );
            events.push(clock_rows::event(
                &row,
                ClockState::Pending,
                &Change::Started,
                &principal.subject,
                None,
                now,
            ));
            clock_list.push(row);
        }
        events.insert(
            1,
            Entry {
                request_id: r.id.clone(),
                actor: principal.subject.clone(),
                role: "enterprise".into(),
                unit: Some(unit.to_string()),
                action: "rectification.opened".into(),
                state_before: None,
                state_after: Some(CaseStatus::Open.as_str().into()),
                payload: json!({ "case": case.id, "level": level.get() }),
                at: now,
            },
        );
        notices.push(Notice {
            request_id: Some(r.id.clone()),
            recipient: catalog.unit(unit).supervisor_email.clone(),
            message: Message::RectificationOpened {
                level: level.get(),
                comment: comment.clone(),
            },
            about,
        });
        Some((case, clock_list))
    } else {
        None
    };
    let new = NewRating {
        rating: rating_row,
        case,
        events,
        notices,
    };
    let stored = db
        .run(move |conn| {
            ratings::rate(conn, &new)?;
            let case = match &new.case {
                Some((case, _)) => ratings::case(conn, &case.id)?,
                None => None,
            };
            Ok((new.rating, case))
        })
        .await?;
    let (rating_row, case) = stored;
    Ok(HttpResponse::Created().json(RatingView {
        request_id: rating_row.request_id,
        level: rating_row.level,
        label: level.label_zh().into(),
        comment: rating_row.comment,
        unit: rating_row.unit,
        matter: rating_row.matter,
        created_at: utc(rating_row.created_at),
        rectification: case.as_ref().map(case_view),
    }))
}

/// Filters and page of the case list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseQuery {
    /// Only this state: `open`, `contacted`, `closed`.
    pub status: Option<String>,
    /// Only this unit (district supervisors and admins; a unit's own people always see their unit).
    #[param(value_type = Option<UnitCode>)]
    pub unit: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// Rows to skip (default 0).
    pub offset: Option<i64>,
}

/// The unit whose cases the caller may see: its own for clerks and unit supervisors, any
/// (or all) for district supervisors and admins.
fn case_scope(
    principal: &Principal,
    asked: Option<UnitCode>,
) -> Result<Option<UnitCode>, ApiError> {
    match &principal.actor {
        Actor::Clerk(unit) | Actor::Supervisor(Some(unit)) => match asked {
            Some(other) if other != *unit => Err(ApiError::forbidden(format!(
                "unit `{unit}` sees its own rectification cases, not `{other}`'s"
            ))),
            _ => Ok(Some(*unit)),
        },
        Actor::Supervisor(None) | Actor::Admin => Ok(asked),
        Actor::Enterprise(_) => Err(ApiError::forbidden(
            "rectification cases are for the units and their supervisors",
        )),
    }
}

/// Rectification cases.
///
/// Clerks and supervisors of a unit see their unit's cases; district supervisors and admins
/// all (or one unit's with `unit`). Newest first, with their clocks.
#[utoipa::path(
    tag = "ratings",
    security(("bearer" = [])),
    params(CaseQuery),
    responses(
        (status = 200, description = "A page of cases", body = CasePage),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter is wrong", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/rectifications")]
pub async fn list_cases(
    principal: Principal,
    query: web::Query<CaseQuery>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let mut errors = Vec::new();
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => {
            let parsed = CaseStatus::parse(text);
            if parsed.is_none() {
                errors.push(FieldError {
                    pointer: "status".into(),
                    message: "must be open, contacted or closed".into(),
                });
            }
            parsed
        }
    };
    let unit = match query.unit.as_deref() {
        None => None,
        Some(text) => match text.parse::<UnitCode>() {
            Ok(unit) => Some(unit),
            Err(_) => {
                errors.push(FieldError {
                    pointer: "unit".into(),
                    message: "not a unit code".into(),
                });
                None
            }
        },
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        errors.push(FieldError {
            pointer: "limit".into(),
            message: "must be 1 to 200".into(),
        });
    }
    let offset = query.offset.unwrap_or(0);
    if !(0..=1_000_000_000).contains(&offset) {
        errors.push(FieldError {
            pointer: "offset".into(),
            message: "must be 0 or more".into(),
        });
    }
    let scope = case_scope(&principal, unit)?;
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let (cases, total) = db
        .run(move |conn| Ok(ratings::cases(conn, scope, status, limit, offset)?))
        .await?;
    Ok(HttpResponse::Ok().json(CasePage {
        items: cases.iter().map(case_view).collect(),
        total,
    }))
}

async fn visible_case(principal: &Principal, id: String, db: &Database) -> Result<Case, ApiError> {
    let lookup = id.clone();
    let case = db
        .run(move |conn| Ok(ratings::case(conn, &lookup)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no rectification case {id}")))?;
    let unit: UnitCode = case.case.unit.parse().map_err(ApiError::internal)?;
    match case_scope(principal, None)? {
        Some(own) if own != unit => Err(ApiError::not_found(format!("no rectification case {id}"))),
        _ => Ok(case),
    }
}

/// One rectification case, with its `ETag`.
#[utoipa::path(
    tag = "ratings",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 200, description = "The case", body = CaseView,
         headers(("ETag" = String, description = "Its revision, for If-Match"))),
        (status = 404, description = "No such case for this caller", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/rectifications/{id}")]
pub async fn read_case(
    principal: Principal,
    id: web::Path<String>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let case = visible_case(&principal, id.into_inner(), &db).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, case_etag(&case)))
        .json(case_view(&case)))
}

/// A note on a case step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// What was found or done (1 to 2000 characters).
    pub note: String,
}

#[allow(clippy::too_many_arguments)]
async fn case_step(
    req: HttpRequest,
    principal: Principal,
    id: String,
    body: NoteBody,
    step: CaseStep,
    db: web::Data<Database>,
    catalog: web::Data<Catalog>,
    calendars: web::Data<Calendars>,
    sla: web::Data<SlaSettings>,
) -> Result<HttpResponse, ApiError> {
    principal.require(match step {
        CaseStep::Contact => &[Role::Clerk, Role::Supervisor, Role::Admin],
        CaseStep::Close => &[Role::Supervisor, Role::Admin],
    })?;
    let case = visible_case(&principal, id.clone(), &db).await?;
    let expected = if_match_revision(&req, "case")?;
    if expected != case.case.revision {
        return Err(stale(&case));
    }
    let status = CaseStatus::parse(&case.case.status)
        .ok_or_else(|| ApiError::internal("bad case status"))?;
    let after = rating::next(status, step).ok_or_else(|| {
        ApiError::new(
            ErrorCode::ActionNotAllowed,
            format!(
                "the case is {}; that step is not possible now",
                status.as_str()
            ),
        )
        .with_extension("state", json!(status.as_str()))
    })?;
    let note = body.note.trim().to_string();
    if note.is_empty() || note.chars().count() > 2000 {
        return Err(ApiError::validation(vec![FieldError {
            pointer: "/note".into(),
            message: "required: what was found or done (1 to 2000 characters)".into(),
        }]));
    }
    let now = Utc::now().trunc_subsecs(6);
    let (role, unit) = role_and_unit(&principal.actor);
    let request_id = case.case.request_id.clone();
    let mut notices = Vec::new();
    if step == CaseStep::Close {
        let lookup = request_id.clone();
        let request = db
            .run(move |conn| Ok(requests::find(conn, &Scope::All, &lookup)?))
            .await?
            .ok_or_else(|| ApiError::internal("the rated request disappeared"))?;
        notices.push(Notice {
            request_id: Some(request_id.clone()),
            recipient: request.request.contact_email.clone(),
            message: Message::RectificationClosed { note: note.clone() },
            about: About::of(&catalog, &request.request.number, &request.request.code),
        });
    }
    let action = match step {
        CaseStep::Contact => "rectification.contacted",
        CaseStep::Close => "rectification.closed",
    };
    let record = ratings::Step {
        id: case.case.id.clone(),
        expected_revision: expected,
        step,
        status: after,
        note: note.clone(),
        actor: principal.subject.clone(),
        event: Entry {
            request_id,
            actor: principal.subject.clone(),
            role: role.into(),
            unit,
            action: action.into(),
            state_before: Some(status.as_str().into()),
            state_after: Some(after.as_str().into()),
            payload: json!({ "case": case.case.id, "note": note }),
            at: now,
        },
        notices,
    };
    let warn_percent = sla.warn_percent;
    let updated = db
        .run(move |conn| {
            let calendar = calendars.current();
            let rules = Rules {
                calendar: &calendar,
                warn_percent,
            };
            ratings::step(conn, &record, rules, now)
        })
        .await?;
    match updated {
        Some(case) => Ok(HttpResponse::Ok()
            .insert_header((header::ETAG, case_etag(&case)))
            .json(case_view(&case))),
        None => {
            let case = visible_case(&principal, id, &db).await?;
            Err(stale(&case))
        }
    }
}

fn stale(case: &Case) -> ApiError {
    ApiError::new(
        ErrorCode::PreconditionFailed,
        format!(
            "someone else changed this case first: it is now {} (revision r{}); read it again",
            case.case.status, case.case.revision
        ),
    )
    .with_header(header::ETAG, case_etag(case))
}

/// The unit contacted the enterprise about its rating (stops the contact clock).
#[utoipa::path(
    tag = "ratings",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Case id"),
        ("If-Match" = String, Header, description = "The case's ETag as read, e.g. \"r1\"")
    ),
    request_body = NoteBody,
    responses(
        (status = 200, description = "Contacted", body = CaseView),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such case for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not possible in the case's state", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed by someone else first", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Note missing or too long", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/rectifications/{id}/contact")]
#[allow(clippy::too_many_arguments)]
pub async fn contact(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<NoteBody>,
    db: web::Data<Database>,
    catalog: web::Data<Catalog>,
    calendars: web::Data<Calendars>,
    sla: web::Data<SlaSettings>,
) -> Result<HttpResponse, ApiError> {
    case_step(
        req,
        principal,
        id.into_inner(),
        body.into_inner(),
        CaseStep::Contact,
        db,
        catalog,
        calendars,
        sla,
    )
    .await
}

/// Close the case with what was rectified (supervisors); the enterprise is told the outcome.
#[utoipa::path(
    tag = "ratings",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Case id"),
        ("If-Match" = String, Header, description = "The case's ETag as read, e.g. \"r2\"")
    ),
    request_body = NoteBody,
    responses(
        (status = 200, description = "Closed", body = CaseView),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such case for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Closed already", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed by someone else first", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Note missing or too long", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/rectifications/{id}/close")]
#[allow(clippy::too_many_arguments)]
pub async fn close(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<NoteBody>,
    db: web::Data<Database>,
    catalog: web::Data<Catalog>,
    calendars: web::Data<Calendars>,
    sla: web::Data<SlaSettings>,
) -> Result<HttpResponse, ApiError> {
    case_step(
        req,
        principal,
        id.into_inner(),
        body.into_inner(),
        CaseStep::Close,
        db,
        catalog,
        calendars,
        sla,
    )
    .await
}
