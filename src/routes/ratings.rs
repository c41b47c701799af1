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
use crate::db::ratings::{self, Case, CaseRow, CaseScope, NewRating, RatingRow};
use crate::db::requests::{self, Scope};
use crate::domain::audit::Entry;
use crate::domain::calendar::Horizon;
use crate::domain::catalog::Target;
use crate::domain::clock::{Change, Clock, Rules};
use crate::domain::disclosure::Audience;
use crate::domain::notice::{About, Message};
use crate::domain::rating::{self, CaseStatus, CaseStep, CloseRefusal, Level};
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
    /// Its label.
    #[schema(example = "非常不满意")]
    pub label: String,
    /// The rating's comment: what the enterprise said.
    pub comment: String,
    /// `open`, `contacted` or `closed`.
    pub status: String,
    /// When the enterprise was contacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacted_at: Option<DateTime<Utc>>,
    /// What the contact found (internal: never shown to the enterprise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_note: Option<String>,
    /// When closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    /// What was rectified: what the enterprise is told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closing_note: Option<String>,
    /// Why it was closed without a recorded contact (internal: never shown to the enterprise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_contact_reason: Option<String>,
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
    /// How many match in all: exact while `total_capped` is false; else more than `total`
    /// (1,000) match and the count stopped there.
    pub total: i64,
    /// More cases match than `total`: the count stops at 1,000.
    pub total_capped: bool,
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A case as `audience` may see it: an enterprise is not shown the unit's internal notes
/// (the contact note, the reason for closing without a contact).
fn case_view(case: &Case, audience: Audience, horizon: Horizon) -> CaseView {
    let c = &case.case;
    let internal = |note: &Option<String>| match audience {
        Audience::Staff => note.clone(),
        Audience::Enterprise => None,
    };
    CaseView {
        id: c.id.clone(),
        request_id: c.request_id.clone(),
        number: case.number.clone(),
        unit: c.unit.clone(),
        level: c.level,
        label: Level::new(c.level.into())
            .map(|l| l.label_zh().to_string())
            .unwrap_or_default(),
        comment: case
            .rating
            .as_ref()
            .map(|r| r.comment.clone())
            .unwrap_or_default(),
        status: c.status.clone(),
        contacted_at: c.contacted_at.map(utc),
        contact_note: internal(&c.contact_note),
        closed_at: c.closed_at.map(utc),
        closing_note: c.closing_note.clone(),
        no_contact_reason: internal(&c.no_contact_reason),
        created_at: utc(c.created_at),
        clocks: case.clocks.iter().map(|c| clock_view(c, horizon)).collect(),
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
    request_body(content = RatingBody, example = json!({"level": 5, "comment": "当天办结，很方便 / done the same day"})),
    responses(
        (status = 201, description = "Rated", body = RatingView),
        (status = 404, description = "No such request for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not finished yet (`action_not_allowed`), or rated already (`already_rated`)",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Level not 1 to 5, or comment too long", body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
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
        rectification: case
            .as_ref()
            .map(|c| case_view(c, Audience::Enterprise, calendars.current().horizon())),
    }))
}

/// Filters and page of the case list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseQuery {
    /// Only this state: `open`, `contacted`, `closed`.
    #[param(value_type = Option<String>, pattern = "^(open|contacted|closed)$")]
    pub status: Option<String>,
    /// Only this unit (district supervisors, admins and enterprises; a unit's own people always
    /// see their unit).
    #[param(value_type = Option<UnitCode>)]
    pub unit: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Rows to skip, 0 to 1,000,000,000 (default 0).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000)]
    pub offset: Option<i64>,
}

/// The cases the caller may see: its own unit's for clerks and unit supervisors, any unit's
/// (or all) for district supervisors and admins, and an enterprise those its own ratings
/// opened (of any unit, or of the unit asked for).
fn case_scope(principal: &Principal, asked: Option<UnitCode>) -> Result<CaseScope, ApiError> {
    match &principal.actor {
        Actor::Clerk(unit) | Actor::Supervisor(Some(unit)) => match asked {
            Some(other) if other != *unit => Err(ApiError::forbidden(format!(
                "unit `{unit}` sees its own rectification cases, not `{other}`'s"
            ))),
            _ => Ok(CaseScope {
                unit: Some(*unit),
                uscc: None,
            }),
        },
        Actor::Supervisor(None) | Actor::Admin => Ok(CaseScope {
            unit: asked,
            uscc: None,
        }),
        Actor::Enterprise(uscc) => Ok(CaseScope {
            unit: asked,
            uscc: Some(uscc.to_string()),
        }),
    }
}

/// Who reads: an enterprise sees its cases without the units' internal notes.
fn audience(principal: &Principal) -> Audience {
    match principal.actor {
        Actor::Enterprise(_) => Audience::Enterprise,
        _ => Audience::Staff,
    }
}

/// Rectification cases.
///
/// Clerks and supervisors of a unit see their unit's cases; district supervisors and admins
/// all (or one unit's with `unit`); an enterprise the cases its own ratings opened, without
/// the units' internal notes. Newest first, with their clocks.
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
    calendars: web::Data<Calendars>,
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
            message: "must be 0 to 1000000000".into(),
        });
    }
    let scope = case_scope(&principal, unit)?;
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let (cases, total) = db
        .run(move |conn| Ok(ratings::cases(conn, &scope, status, limit, offset)?))
        .await?;
    let audience = audience(&principal);
    Ok(HttpResponse::Ok().json(CasePage {
        items: cases
            .iter()
            .map(|c| case_view(c, audience, calendars.current().horizon()))
            .collect(),
        total: total.count,
        total_capped: total.capped,
    }))
}

async fn visible_case(principal: &Principal, id: String, db: &Database) -> Result<Case, ApiError> {
    let lookup = id.clone();
    let case = db
        .run(move |conn| Ok(ratings::case(conn, &lookup)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no rectification case {id}")))?;
    let unit: UnitCode = case.case.unit.parse().map_err(ApiError::internal)?;
    let scope = case_scope(principal, None)?;
    let rated_by = case.rating.as_ref().map(|r| r.uscc.as_str());
    if scope.unit.is_some_and(|own| own != unit)
        || scope
            .uscc
            .as_deref()
            .is_some_and(|own| Some(own) != rated_by)
    {
        return Err(ApiError::not_found(format!("no rectification case {id}")));
    }
    Ok(case)
}

/// One rectification case, with its `ETag`: for the unit's people, district supervisors and
/// admins; and for the enterprise whose rating opened it, without the internal notes.
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
    calendars: web::Data<Calendars>,
) -> Result<HttpResponse, ApiError> {
    let case = visible_case(&principal, id.into_inner(), &db).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, case_etag(&case)))
        .json(case_view(
            &case,
            audience(&principal),
            calendars.current().horizon(),
        )))
}

/// A note on a case step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// What was found or done (1 to 2000 characters).
    pub note: String,
}

/// Closing a case: what was rectified, and, when no contact was recorded, why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    /// What was rectified (1 to 2000 characters): the enterprise is told.
    pub note: String,
    /// Required when the case has no recorded contact (status `open`), refused when it has
    /// one: why the enterprise was not contacted (1 to 2000 characters; internal).
    #[serde(default)]
    pub no_contact_reason: Option<String>,
}

/// The longest note of a case step, in characters.
const NOTE_MAX_CHARS: usize = 2000;

#[allow(clippy::too_many_arguments)]
async fn case_step(
    req: HttpRequest,
    principal: Principal,
    id: String,
    body: CloseBody,
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
    let expected = if_match_revision(&req, "case", case.case.revision)?;
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
    let no_contact_reason = body.no_contact_reason.as_deref().map(str::trim);
    let mut errors = Vec::new();
    if note.is_empty() || note.chars().count() > NOTE_MAX_CHARS {
        errors.push(FieldError {
            pointer: "/note".into(),
            message: format!("required: what was found or done (1 to {NOTE_MAX_CHARS} characters)"),
        });
    }
    if no_contact_reason.is_some_and(|r| r.is_empty() || r.chars().count() > NOTE_MAX_CHARS) {
        errors.push(FieldError {
            pointer: "/no_contact_reason".into(),
            message: format!(
                "why the enterprise was not contacted: 1 to {NOTE_MAX_CHARS} characters"
            ),
        });
    }
    let refusal = match step {
        CaseStep::Close => rating::may_close(status, no_contact_reason.is_some()).err(),
        CaseStep::Contact => None,
    };
    if refusal == Some(CloseRefusal::ContactRecorded) {
        errors.push(FieldError {
            pointer: "/no_contact_reason".into(),
            message: "the enterprise was contacted: a reason for closing without a contact \
                      does not apply"
                .into(),
        });
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if refusal == Some(CloseRefusal::NoContact) {
        return Err(ApiError::new(
            ErrorCode::ActionNotAllowed,
            "no contact with the enterprise is recorded: record it first (POST …/contact), \
             or close with `no_contact_reason` saying why there was none",
        )
        .with_extension("state", json!(status.as_str()))
        .with_extension("missing", json!(["contact", "no_contact_reason"])));
    }
    let no_contact_reason = no_contact_reason.map(str::to_string);
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
        no_contact_reason: no_contact_reason.clone(),
        actor: principal.subject.clone(),
        event: Entry {
            request_id,
            actor: principal.subject.clone(),
            role: role.into(),
            unit,
            action: action.into(),
            state_before: Some(status.as_str().into()),
            state_after: Some(after.as_str().into()),
            payload: match &no_contact_reason {
                None => json!({ "case": case.case.id, "note": note }),
                Some(reason) => {
                    json!({ "case": case.case.id, "note": note, "no_contact_reason": reason })
                }
            },
            at: now,
        },
        notices,
    };
    let warn_percent = sla.warn_percent;
    let horizon = calendars.current().horizon();
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
            .json(case_view(&case, Audience::Staff, horizon))),
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
    request_body(content = NoteBody, example = json!({"note": "已电话联系企业，说明补正要求 / called the enterprise about what to supply"})),
    responses(
        (status = 200, description = "Contacted", body = CaseView),
        (status = 404, description = "No such case for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not possible in the case's state", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed by someone else first", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Note missing or too long", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
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
        CloseBody {
            note: body.into_inner().note,
            no_contact_reason: None,
        },
        CaseStep::Contact,
        db,
        catalog,
        calendars,
        sla,
    )
    .await
}

/// Close the case with what was rectified (supervisors); the enterprise is told the outcome.
///
/// Closing needs the recorded contact with the enterprise (`POST …/contact` first), or, for a
/// case without one, `no_contact_reason`: otherwise `409 action_not_allowed` with `state`
/// `open` and `missing` `["contact", "no_contact_reason"]`.
#[utoipa::path(
    tag = "ratings",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Case id"),
        ("If-Match" = String, Header, description = "The case's ETag as read, e.g. \"r2\"")
    ),
    request_body(content = CloseBody, example = json!({"note": "窗口已增加叫号提醒 / the window now calls numbers aloud"})),
    responses(
        (status = 200, description = "Closed", body = CaseView),
        (status = 404, description = "No such case for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Closed already, or no contact recorded and no `no_contact_reason` given \
                                      (`missing` names both)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Changed by someone else first", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Note missing or too long; `no_contact_reason` empty, too long, or given \
                                      although a contact is recorded", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/rectifications/{id}/close")]
#[allow(clippy::too_many_arguments)]
pub async fn close(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<CloseBody>,
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
