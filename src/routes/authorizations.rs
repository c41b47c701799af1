//! 帮办 grants: an enterprise authorises an official or a unit's desk to act for it
//! (`/api/v1/authorizations`), and the statistics of assisted and leader-assisted handling.
//! The rule is `domain::assistance`; `docs/assisted-filing.md` explains it.

use actix_web::http::header;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Actor, Principal, Role};
use crate::db::Database;
use crate::db::authorizations::{self, AssistedActRow, AuthorizationRow, Granted, Revoked, Viewer};
use crate::domain::UnitCode;
use crate::domain::assistance::{self, Asked, IdentityCheck, Lapse, Official, Standing};
use crate::domain::audit::Entry;
use crate::error::{ApiError, ErrorCode, FieldError, Problem};

/// Most grants one list answers.
const LIST_LIMIT: i64 = 200;

/// Who a grant names: exactly one of the two.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistantBody {
    /// A named official, by the subject (`sub`) of their token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "zhang.wei@market")]
    pub official: Option<String>,
    /// A unit's 帮办 desk: every clerk of the unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desk: Option<UnitCode>,
}

/// The body of `POST /api/v1/authorizations`: an assistant, and exactly one of `request` and
/// a period (`until`, with `from` defaulting to now; at most 366 days).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// Who may act for the enterprise.
    pub assistant: AssistantBody,
    /// One of the enterprise's requests (id): the grant covers it alone.
    pub request: Option<String>,
    /// Period start (RFC 3339; default now; not in the past).
    pub from: Option<DateTime<Utc>>,
    /// Period end (RFC 3339, exclusive; at most 366 days after `from`).
    pub until: Option<DateTime<Utc>>,
    /// 领导干部帮办: the assistant is a leading official (named, not a desk).
    pub leader: Option<bool>,
}

/// Where a grant stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    /// It lets the assistant act now.
    Live,
    /// Its period has not begun.
    Scheduled,
    /// Its period is over.
    Expired,
    /// The enterprise revoked it.
    Revoked,
}

/// One act taken under a grant.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActView {
    /// `intake`, `supplement` or `withdraw`.
    pub action: String,
    /// The request.
    pub request_id: String,
    /// The official (token subject).
    pub official: String,
    /// Their unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A grant as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizationView {
    /// Id (UUID v7).
    pub id: String,
    /// The granting enterprise (USCC).
    pub enterprise: String,
    /// Who may act.
    pub assistant: AssistantBody,
    /// The one request covered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Period start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Period end (exclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// 领导干部帮办.
    pub leader: bool,
    /// Now.
    pub state: GrantState,
    /// Who granted it.
    pub granted_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it was revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who revoked it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    /// The acts taken under it, oldest first (in the answer for one grant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acts: Option<Vec<ActView>>,
}

/// A list of grants.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizationList {
    /// Newest first (at most 200).
    pub items: Vec<AuthorizationView>,
}

fn view(row: &AuthorizationRow, now: DateTime<Utc>) -> AuthorizationView {
    let state = if row.revoked_at.is_some() {
        GrantState::Revoked
    } else {
        match (row.valid_from, row.valid_until) {
            (Some(from), _) if now < from.and_utc() => GrantState::Scheduled,
            (_, Some(until)) if now >= until.and_utc() => GrantState::Expired,
            _ => GrantState::Live,
        }
    };
    AuthorizationView {
        id: row.id.clone(),
        enterprise: row.uscc.clone(),
        assistant: AssistantBody {
            official: row.official.clone(),
            desk: row.desk_unit.as_deref().and_then(|u| u.parse().ok()),
        },
        request: row.request_id.clone(),
        from: row.valid_from.map(|t| t.and_utc()),
        until: row.valid_until.map(|t| t.and_utc()),
        leader: row.leader,
        state,
        granted_by: row.granted_by.clone(),
        created_at: row.created_at.and_utc(),
        revoked_at: row.revoked_at.map(|t| t.and_utc()),
        revoked_by: row.revoked_by.clone(),
        acts: None,
    }
}

/// The official behind a staff principal (`None` for an enterprise or an administrator).
pub(crate) fn official_of(principal: &Principal) -> Option<Official<'_>> {
    match principal.actor {
        Actor::Clerk(unit) => Some(Official {
            subject: &principal.subject,
            clerk_of: Some(unit),
        }),
        Actor::Supervisor(_) => Some(Official {
            subject: &principal.subject,
            clerk_of: None,
        }),
        Actor::Enterprise(_) | Actor::Admin => None,
    }
}

/// The caller's 帮办 standing for enterprise `uscc` on `request` (or a new filing) now.
pub(crate) async fn standing_of(
    db: &Database,
    principal: &Principal,
    uscc: &str,
    request: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Standing, ApiError> {
    let Some(official) = official_of(principal) else {
        return Ok(Standing::Without);
    };
    let (subject, clerk_of) = (official.subject.to_string(), official.clerk_of);
    let lookup = uscc.to_string();
    let rows = db
        .run(move |conn| Ok(authorizations::naming(conn, &lookup, &subject, clerk_of)?))
        .await?;
    let grants: Vec<_> = rows.iter().filter_map(AuthorizationRow::as_grant).collect();
    Ok(assistance::standing(&grants, &official, uscc, request, now))
}

/// 403 for an enterprise's step by an official without a live grant, with the reason's code
/// and the grant named.
pub(crate) fn no_grant(lapse: Option<&Lapse>, message: String) -> ApiError {
    let code = match lapse {
        None => ErrorCode::AuthorizationRequired,
        Some(Lapse::Revoked(_)) => ErrorCode::AuthorizationRevoked,
        Some(Lapse::Expired(_)) => ErrorCode::AuthorizationExpired,
        Some(Lapse::NotYet(_)) => ErrorCode::AuthorizationNotStarted,
        Some(Lapse::OtherRequest(_)) => ErrorCode::AuthorizationOutOfScope,
    };
    let error = ApiError::new(code, message);
    match lapse {
        Some(lapse) => error.with_extension("authorization", json!(lapse.grant())),
        None => error,
    }
}

/// The refusal of a filing for `uscc` by an official whose standing is not a live grant.
pub(crate) fn filing_refused(standing: &Standing, uscc: &str) -> ApiError {
    let lapse = match standing {
        Standing::Lapsed(lapse) => Some(lapse),
        _ => None,
    };
    let why = match lapse {
        None => {
            "no 帮办 grant of the enterprise names you; a window clerk of the lead unit files a walk-in with `on_behalf_of.identity_check`"
        }
        Some(Lapse::Revoked(_)) => "your grant was revoked by the enterprise",
        Some(Lapse::Expired(_)) => "your grant has expired",
        Some(Lapse::NotYet(_)) => "your grant has not begun",
        Some(Lapse::OtherRequest(_)) => {
            "your grant covers one existing request only, not new filings"
        }
    };
    no_grant(
        lapse,
        format!("you may not file for enterprise {uscc}: {why}"),
    )
}

/// The row recording an act of `principal` for enterprise `uscc`: `under` a grant (id, leader),
/// or a walk-in with its `identity` check.
pub(crate) fn act_row(
    principal: &Principal,
    uscc: &str,
    action: &str,
    under: Option<(&str, bool)>,
    identity: Option<&IdentityCheck>,
    now: DateTime<Utc>,
) -> AssistedActRow {
    let (_, unit) = principal.actor.claim_values();
    AssistedActRow {
        id: Uuid::now_v7().to_string(),
        request_id: String::new(),
        uscc: uscc.into(),
        action: action.into(),
        official: principal.subject.clone(),
        role: principal.actor.role().as_str().into(),
        unit,
        authorization_id: under.map(|(id, _)| id.to_string()),
        leader: under.is_some_and(|(_, leader)| leader),
        identity_method: identity.map(|c| c.method.as_str().to_string()),
        verified_name: identity.map(|c| c.verified_name.clone()),
        at: now.naive_utc(),
    }
}

fn viewer_of(principal: &Principal) -> Result<Viewer, ApiError> {
    match &principal.actor {
        Actor::Enterprise(uscc) => Ok(Viewer::Enterprise(uscc.to_string())),
        Actor::Clerk(unit) => Ok(Viewer::Official {
            subject: principal.subject.clone(),
            clerk_of: Some(*unit),
        }),
        Actor::Supervisor(_) => Ok(Viewer::Official {
            subject: principal.subject.clone(),
            clerk_of: None,
        }),
        Actor::Admin => Err(ApiError::forbidden(
            "grants are the enterprise's and its assistants' to read; supervisors read the statistics at /api/v1/authorizations/stats",
        )),
    }
}

fn event(principal: &Principal, row: &AuthorizationRow, action: &str, at: DateTime<Utc>) -> Entry {
    Entry {
        request_id: row.id.clone(),
        actor: principal.subject.clone(),
        role: principal.actor.role().as_str().into(),
        unit: None,
        action: action.into(),
        state_before: None,
        state_after: None,
        payload: json!({
            "enterprise": row.uscc,
            "official": row.official,
            "desk": row.desk_unit,
            "request": row.request_id,
            "from": row.valid_from.map(|t| t.and_utc()),
            "until": row.valid_until.map(|t| t.and_utc()),
            "leader": row.leader,
        }),
        at,
    }
}

/// Grant an assistant (帮办) the right to act for the enterprise (enterprise tokens only).
///
/// The assistant is a named official (their token's subject) or a unit's 帮办 desk (every
/// clerk of the unit); the grant covers one of the enterprise's requests, or a period of at
/// most 366 days. `leader: true` marks 领导干部帮办 (a named official only). The holder may
/// file, supplement and withdraw for the enterprise while the grant is live.
#[utoipa::path(
    tag = "authorizations",
    operation_id = "authorizations_grant",
    security(("bearer" = [])),
    request_body(content = GrantBody, example = json!({
        "assistant": {"official": "zhang.wei@market"},
        "from": "2026-12-01T00:00:00Z",
        "until": "2027-03-01T00:00:00Z",
        "leader": true
    })),
    responses(
        (status = 201, description = "Granted", body = AuthorizationView,
         headers(("Location" = String, description = "The new grant"))),
        (status = 422, description = "Invalid fields, each named (`/assistant`, `/request`, `/from`, `/until`, `/leader`)",
         body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/authorizations")]
pub async fn grant(
    principal: Principal,
    body: web::Json<GrantBody>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Enterprise])?;
    let Actor::Enterprise(uscc) = &principal.actor else {
        unreachable!("checked above")
    };
    let body = body.into_inner();
    let now = Utc::now().trunc_subsecs(6);
    let terms = assistance::check_terms(
        &Asked {
            official: body.assistant.official.as_deref(),
            desk: body.assistant.desk,
            request: body.request.as_deref(),
            from: body.from.map(|t| t.trunc_subsecs(6)),
            until: body.until.map(|t| t.trunc_subsecs(6)),
            leader: body.leader.unwrap_or(false),
        },
        now,
    )
    .map_err(ApiError::validation)?;
    let (official, desk_unit) = match terms.assistant {
        assistance::Assistant::Official(subject) => (Some(subject), None),
        assistance::Assistant::Desk(unit) => (None, Some(unit.to_string())),
    };
    let row = AuthorizationRow {
        id: Uuid::now_v7().to_string(),
        uscc: uscc.to_string(),
        official,
        desk_unit,
        request_id: terms.request.clone(),
        valid_from: terms.from.map(|t| t.naive_utc()),
        valid_until: terms.until.map(|t| t.naive_utc()),
        leader: terms.leader,
        granted_by: principal.subject.clone(),
        created_at: now.naive_utc(),
        revoked_at: None,
        revoked_by: None,
    };
    let entry = event(&principal, &row, "authorization.granted", now);
    let stored = db
        .run(move |conn| authorizations::grant(conn, &row, entry))
        .await?;
    match stored {
        Granted::Stored(row) => Ok(HttpResponse::Created()
            .insert_header((
                header::LOCATION,
                format!("/api/v1/authorizations/{}", row.id),
            ))
            .json(view(&row, now))),
        Granted::NoSuchRequest => Err(ApiError::validation(vec![FieldError {
            pointer: "/request".into(),
            message: format!("you have no request {}", terms.request.unwrap_or_default()),
        }])),
    }
}

/// List grants: an enterprise its own, an official those naming them (or, a clerk, their
/// unit's desk); newest first, at most 200.
#[utoipa::path(
    tag = "authorizations",
    operation_id = "authorizations_list",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The grants", body = AuthorizationList),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/authorizations")]
pub async fn list(principal: Principal, db: web::Data<Database>) -> Result<HttpResponse, ApiError> {
    let viewer = viewer_of(&principal)?;
    let rows = db
        .run(move |conn| Ok(authorizations::list(conn, &viewer, LIST_LIMIT)?))
        .await?;
    let now = Utc::now();
    Ok(HttpResponse::Ok().json(AuthorizationList {
        items: rows.iter().map(|r| view(r, now)).collect(),
    }))
}

/// Read one grant with the acts taken under it (404 when it is not the caller's to see).
#[utoipa::path(
    tag = "authorizations",
    operation_id = "authorizations_read",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Grant id")),
    responses(
        (status = 200, description = "The grant", body = AuthorizationView),
        (status = 404, description = "No such grant for this caller", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/authorizations/{id}")]
pub async fn read(
    principal: Principal,
    id: web::Path<String>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let viewer = viewer_of(&principal)?;
    let id = id.into_inner();
    let lookup = id.clone();
    let found = db
        .run(move |conn| {
            let Some(row) = authorizations::find(conn, &viewer, &lookup)? else {
                return Ok(None);
            };
            let acts = authorizations::acts_under(conn, &row.id)?;
            Ok(Some((row, acts)))
        })
        .await?;
    let (row, acts) = found.ok_or_else(|| ApiError::not_found(format!("no grant {id}")))?;
    let mut answer = view(&row, Utc::now());
    answer.acts = Some(
        acts.into_iter()
            .map(|a| ActView {
                action: a.action,
                request_id: a.request_id,
                official: a.official,
                unit: a.unit,
                at: a.at.and_utc(),
            })
            .collect(),
    );
    Ok(HttpResponse::Ok().json(answer))
}

/// Revoke a grant (the granting enterprise only). From this instant the assistant may no
/// longer act under it; what was done under it stays recorded. Revoking twice is a conflict.
#[utoipa::path(
    tag = "authorizations",
    operation_id = "authorizations_revoke",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Grant id")),
    responses(
        (status = 200, description = "Revoked; the grant as it is now", body = AuthorizationView),
        (status = 404, description = "No such grant of this enterprise", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`action_not_allowed`: it was revoked before", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/authorizations/{id}/revoke")]
pub async fn revoke(
    principal: Principal,
    id: web::Path<String>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Enterprise])?;
    let Actor::Enterprise(uscc) = &principal.actor else {
        unreachable!("checked above")
    };
    let id = id.into_inner();
    let now = Utc::now().trunc_subsecs(6);
    let (lookup, uscc, by) = (id.clone(), uscc.to_string(), principal.subject.clone());
    let who = principal.clone();
    let outcome = db
        .run(move |conn| {
            authorizations::revoke(conn, &lookup, &uscc, &by, now.naive_utc(), &|row| {
                event(&who, row, "authorization.revoked", now)
            })
        })
        .await?;
    match outcome {
        Revoked::Done(row) => Ok(HttpResponse::Ok().json(view(&row, now))),
        Revoked::Already(row) => Err(ApiError::new(
            ErrorCode::ActionNotAllowed,
            format!(
                "grant {id} was revoked at {}",
                row.revoked_at
                    .map(|t| t.and_utc().to_rfc3339())
                    .unwrap_or_default()
            ),
        )
        .with_extension("state", json!(GrantState::Revoked))
        .with_extension("allowed", json!([]))),
        Revoked::Missing => Err(ApiError::not_found(format!("no grant {id}"))),
    }
}

/// The window of the statistics.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Acts at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// Acts before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
}

/// One unit's assisted handling.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct UnitAssistance {
    /// The acting officials' unit (absent for a district-wide supervisor's acts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Requests its clerks filed for walk-in enterprises at the window.
    pub walk_in_filings: i64,
    /// Requests filed under a 帮办 grant.
    pub assisted_filings: i64,
    /// Supplements under a 帮办 grant.
    pub assisted_supplements: i64,
    /// Withdrawals under a 帮办 grant.
    pub assisted_withdrawals: i64,
    /// Of the filings under a grant: under a leader grant (领导干部帮办).
    pub leader_filings: i64,
    /// Of the supplements and withdrawals under a grant: under a leader grant.
    pub leader_handled: i64,
}

/// The statistics of assisted handling.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssistanceStats {
    /// Window start, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Window end, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// One entry per unit with any assisted act, by unit code.
    pub units: Vec<UnitAssistance>,
}

/// Assisted handling per unit: walk-in filings, and filings, supplements and withdrawals under
/// 帮办 grants, with those under leader grants (领导干部帮办) counted apart. Supervisors only:
/// a unit supervisor sees their unit, a district supervisor or an administrator every unit.
#[utoipa::path(
    tag = "authorizations",
    operation_id = "authorizations_stats",
    security(("bearer" = [])),
    params(StatsQuery),
    responses(
        (status = 200, description = "The counts", body = AssistanceStats),
        (status = 422, description = "`from` or `to` is not an RFC 3339 time", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/authorizations/stats")]
pub async fn stats(
    principal: Principal,
    query: web::Query<StatsQuery>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Supervisor, Role::Admin])?;
    let unit = match principal.actor {
        Actor::Supervisor(unit) => unit,
        _ => None,
    };
    let mut errors = Vec::new();
    let mut time = |name: &str, value: &Option<String>| {
        value
            .as_deref()
            .and_then(|v| match DateTime::parse_from_rfc3339(v) {
                Ok(t) => Some(t.to_utc()),
                Err(e) => {
                    errors.push(FieldError {
                        pointer: name.into(),
                        message: format!("not an RFC 3339 time: {e}"),
                    });
                    None
                }
            })
    };
    let (from, to) = (time("from", &query.from), time("to", &query.to));
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let counts = db
        .run(move |conn| Ok(authorizations::count_acts(conn, unit, from, to)?))
        .await?;
    let mut units: std::collections::BTreeMap<Option<String>, UnitAssistance> =
        std::collections::BTreeMap::new();
    for (unit, action, leader, walk_in, n) in counts {
        let entry = units.entry(unit.clone()).or_insert_with(|| UnitAssistance {
            unit,
            ..UnitAssistance::default()
        });
        match (action.as_str(), walk_in) {
            ("intake", true) => entry.walk_in_filings += n,
            ("intake", false) => {
                entry.assisted_filings += n;
                if leader {
                    entry.leader_filings += n;
                }
            }
            (other, _) => {
                if other == "supplement" {
                    entry.assisted_supplements += n;
                } else {
                    entry.assisted_withdrawals += n;
                }
                if leader {
                    entry.leader_handled += n;
                }
            }
        }
    }
    Ok(HttpResponse::Ok().json(AssistanceStats {
        from,
        to,
        units: units.into_values().collect(),
    }))
}
