//! `POST /api/v1/requests/{id}/actions`: one lifecycle step per call, guarded by `If-Match`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Actor, Principal};
use crate::db::Database;
use crate::db::requests::{self, RoutingDecisionRow, Scope};
use crate::db::workflow::{self, Step, StepError};
use crate::domain::UnitCode;
use crate::domain::audit::Entry;
use crate::domain::lifecycle::{self, Action, Denied, Parties, Situation};
use crate::domain::request::Status;
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::routes::requests::{etag, view};

/// Kinds of special procedure that stop the statutory clock (Art. 45).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpecialProcedure {
    /// 听证.
    Hearing,
    /// 招标.
    Tendering,
    /// 拍卖.
    Auction,
    /// 检验.
    Inspection,
    /// 检测.
    Testing,
    /// 检疫.
    Quarantine,
    /// 鉴定.
    Appraisal,
    /// 专家评审.
    ExpertReview,
}

/// One lifecycle step. Which members are needed depends on the action.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// The step.
    pub action: Action,
    /// Why (refuse, deny, return, reroute, approve_extension).
    pub reason: Option<String>,
    /// Every missing item, in one notice (request_supplement).
    pub items: Option<Vec<String>>,
    /// Which special procedure (begin_special_procedure).
    pub kind: Option<SpecialProcedure>,
    /// Certificate or decision number (deliver).
    pub certificate: Option<String>,
    /// The unit to re-route to (reroute).
    pub unit: Option<UnitCode>,
}

fn text(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// Checks that the step carries what it needs; returns the payload for the audit trail.
fn check(body: &ActionBody) -> Result<Value, ApiError> {
    let mut errors = Vec::new();
    let mut need = |ok: bool, pointer: &str, message: &str| {
        if !ok {
            errors.push(FieldError {
                pointer: pointer.into(),
                message: message.into(),
            });
        }
    };
    let reason = text(&body.reason).filter(|r| r.chars().count() <= 1000);
    match body.action {
        Action::Refuse | Action::Deny | Action::Return | Action::ApproveExtension => need(
            reason.is_some(),
            "/reason",
            "required: why (1 to 1000 characters)",
        ),
        Action::Reroute => {
            need(
                reason.is_some(),
                "/reason",
                "required: why (1 to 1000 characters)",
            );
            need(
                body.unit.is_some(),
                "/unit",
                "required: the unit to re-route to",
            );
        }
        Action::RequestSupplement => {
            let items = body.items.as_deref().unwrap_or_default();
            need(
                !items.is_empty()
                    && items
                        .iter()
                        .all(|i| !i.trim().is_empty() && i.chars().count() <= 200),
                "/items",
                "required: every missing item at once (one notice), each 1 to 200 characters",
            )
        }
        Action::BeginSpecialProcedure => need(
            body.kind.is_some(),
            "/kind",
            "required: which special procedure",
        ),
        Action::Deliver => need(
            text(&body.certificate).is_some_and(|c| c.chars().count() <= 100),
            "/certificate",
            "required: the certificate or decision number (1 to 100 characters)",
        ),
        _ => {}
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(json!({
        "reason": reason,
        "items": body.items,
        "kind": body.kind,
        "certificate": text(&body.certificate),
        "unit": body.unit,
    }))
}

/// The revision named by `If-Match: "r<n>"`.
fn expected_revision(req: &HttpRequest) -> Result<i32, ApiError> {
    let value = req.headers().get(header::IF_MATCH).ok_or_else(|| {
        ApiError::new(
            ErrorCode::PreconditionRequired,
            "send If-Match with the ETag of the request as you read it",
        )
    })?;
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/"))
        .and_then(|v| {
            v.strip_prefix("\"r")?
                .strip_suffix('"')?
                .parse::<i32>()
                .ok()
        })
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::PreconditionFailed,
                "If-Match does not name a revision of this request; read it again",
            )
        })
}

fn stale(revision: i32, status: &str) -> ApiError {
    ApiError::new(
        ErrorCode::PreconditionFailed,
        format!("someone else changed this request first: it is now {status} (revision r{revision}); read it again"),
    )
    .with_header(
        header::ETAG,
        HeaderValue::from_str(&format!("\"r{revision}\"")).expect("ASCII"),
    )
}

/// Take one step on a request.
///
/// Enterprises `withdraw` and `supplement` their own requests; clerks of a responsible unit
/// `call`, `accept`, `refuse`, `request_supplement`, `start_review`,
/// `begin_special_procedure` / `end_special_procedure`, `approve` / `deny`, `complete`,
/// `deliver`, `return`; the service centre `reroute`s returned requests; a supervisor of the
/// lead unit `approve_extension`. Every step lands in the audit trail.
#[utoipa::path(
    tag = "requests",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Request id"),
        ("If-Match" = String, Header, description = "The ETag of the request as read, e.g. \"r3\"")
    ),
    request_body = ActionBody,
    responses(
        (status = 200, description = "Done; the request as it is now", body = crate::routes::requests::RequestView,
         headers(("ETag" = String, description = "The new revision"))),
        (status = 400, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not possible in the current state; `state` and `allowed` say what is", body = Problem,
         content_type = "application/problem+json"),
        (status = 412, description = "Someone else changed the request first", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A member the action needs is missing or wrong", body = Problem,
         content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/requests/{id}/actions")]
pub async fn act(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<ActionBody>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let id = id.into_inner();
    let lookup = id.clone();
    let record = db
        .run(move |conn| Ok(requests::find(conn, &Scope::All, &lookup)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no request {id}")))?;
    let r = &record.request;
    let parties = Parties {
        owner: r.uscc.clone(),
        lead_unit: r.lead_unit.parse().map_err(ApiError::internal)?,
        units: record
            .tasks
            .iter()
            .filter_map(|t| t.unit.parse().ok())
            .collect(),
    };
    lifecycle::authorize(&principal.actor, body.action, &parties).map_err(
        |denied| match denied {
            Denied::Hidden => ApiError::not_found(format!("no request {id}")),
            Denied::Forbidden(why) => ApiError::forbidden(why),
        },
    )?;
    let expected = expected_revision(&req)?;
    if expected != r.revision {
        return Err(stale(r.revision, &r.status));
    }
    let status: Status = r.status.parse().map_err(ApiError::internal)?;
    let situation = Situation {
        status,
        special_procedure: r.special_procedure,
        extended: r.extended,
    };
    let outcome = lifecycle::apply(situation, body.action).map_err(|illegal| {
        ApiError::new(ErrorCode::ActionNotAllowed, illegal.to_string())
            .with_extension("state", json!(illegal.state))
            .with_extension("allowed", json!(illegal.allowed))
    })?;
    let payload = check(&body)?;
    let now = Utc::now().trunc_subsecs(6);
    let (role, unit) = match &principal.actor {
        Actor::Enterprise(_) => ("enterprise", None),
        Actor::Clerk(u) => ("clerk", Some(u.to_string())),
        Actor::Supervisor(u) => ("supervisor", u.map(|u| u.to_string())),
        Actor::Admin => ("admin", None),
    };
    let reroute = match (body.action, body.unit) {
        (Action::Reroute, Some(to)) => Some((
            to,
            RoutingDecisionRow {
                id: Uuid::now_v7().to_string(),
                request_id: r.id.clone(),
                catalog_version: r.catalog_version.clone(),
                reason: "reroute".into(),
                explanation: json!({
                    "from": r.lead_unit,
                    "to": to,
                    "by": principal.subject,
                    "reason": payload["reason"],
                    "rule": "the service centre arbitrated a returned request (退单) and re-routed it",
                })
                .to_string(),
                decided_at: now.naive_utc(),
            },
        )),
        _ => None,
    };
    let step = Step {
        request_id: r.id.clone(),
        expected_revision: expected,
        status: outcome.status,
        special_procedure: outcome.special_procedure,
        extended: outcome.extended,
        reroute,
        event: Entry {
            request_id: r.id.clone(),
            actor: principal.subject.clone(),
            role: role.into(),
            unit,
            action: body.action.as_str().into(),
            state_before: Some(status.as_str().into()),
            state_after: Some(outcome.status.as_str().into()),
            payload,
            at: now,
        },
        at: now.naive_utc(),
    };
    let updated = db
        .run(move |conn| match workflow::record(conn, &step) {
            Ok(record) => Ok(Ok(record)),
            Err(StepError::Stale { revision, status }) => Ok(Err(stale(revision, &status))),
            Err(StepError::Failed(error)) => Err(error),
        })
        .await??;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(&updated)))
        .json(view(&updated)))
}
