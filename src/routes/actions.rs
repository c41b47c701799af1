//! `POST /api/v1/requests/{id}/actions`: one lifecycle step per call, guarded by `If-Match`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Actor, Principal};
use crate::config::SlaSettings;
use crate::db::Database;
use crate::db::audit;
use crate::db::calendars::Calendars;
use crate::db::notifications::Notice;
use crate::db::requests::{self, RequestRecord, RoutingDecisionRow, Scope, TaskRow};
use crate::db::workflow::{self, ClockEffects, Step, StepError, TaskStep};
use crate::domain::audit::Entry;
use crate::domain::clock::{EXTENSION_DAYS, JOINT_EXTENSION_DAYS};
use crate::domain::lifecycle::{self, Action, Denied, Parties, Situation};
use crate::domain::notice::{About, Message};
use crate::domain::request::{RequestKind, Status, TaskRole};
use crate::domain::{Catalog, UnitCode};
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::http::extract::if_match_revision;
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
    /// On a bundle, the unit task a review or decision step is for (its id); needed only when
    /// the clerk's unit has more than one task on the bundle.
    pub task: Option<String>,
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

/// The mails a step sends: the enterprise hears of acceptance, refusal, the supplement notice,
/// an extension, the decision (once, for the request or the whole bundle) and completion; the
/// service centre's supervisor hears of a return awaiting arbitration.
fn notices_of(
    catalog: &Catalog,
    record: &RequestRecord,
    action: Action,
    payload: &Value,
    after: Status,
    before: Status,
    actor_unit: Option<&str>,
) -> Vec<Notice> {
    let r = &record.request;
    let reason = payload["reason"].as_str().map(str::to_string);
    let enterprise = |message: Message| Notice {
        request_id: Some(r.id.clone()),
        recipient: r.contact_email.clone(),
        message,
        about: About::of(catalog, &r.number, &r.code),
    };
    let decided = before != after && matches!(after, Status::Approved | Status::Denied);
    let message = match action {
        Action::Accept => Some(Message::Accepted),
        Action::Refuse => Some(Message::NotAccepted {
            reason: reason.clone().unwrap_or_default(),
        }),
        Action::RequestSupplement => Some(Message::SupplementRequired {
            items: payload["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        }),
        Action::ApproveExtension => Some(Message::ExtensionGranted {
            days: if r.kind == RequestKind::Bundle.as_str() {
                JOINT_EXTENSION_DAYS
            } else {
                EXTENSION_DAYS
            },
            reason: reason.clone().unwrap_or_default(),
        }),
        Action::Approve | Action::Deny if decided => Some(Message::Decided {
            approved: after == Status::Approved,
            reason: reason.clone(),
        }),
        Action::Complete => Some(Message::Completed),
        Action::Return => {
            let centre = catalog.unit(UnitCode::ServiceCenter);
            return vec![Notice {
                request_id: Some(r.id.clone()),
                recipient: centre.supervisor_email.clone(),
                message: Message::AwaitingArbitration {
                    from_unit: actor_unit.unwrap_or(&r.lead_unit).to_string(),
                    reason: reason.unwrap_or_default(),
                },
                about: About::of(catalog, &r.number, &r.code),
            }];
        }
        _ => None,
    };
    message.map(enterprise).into_iter().collect()
}

fn not_allowed(illegal: lifecycle::Illegal) -> ApiError {
    ApiError::new(ErrorCode::ActionNotAllowed, illegal.to_string())
        .with_extension("state", json!(illegal.state))
        .with_extension("allowed", json!(illegal.allowed))
}

/// A review or decision step on one unit task of a bundle: the task it is for, the task's
/// new state, and the bundle's state derived from all its unit tasks. Returns the bundle's
/// outcome, the task step, and the steps the bundle as a whole took (for its own clocks).
fn on_task(
    record: &RequestRecord,
    actor: &Actor,
    body: &ActionBody,
    bundle: Situation,
) -> Result<(lifecycle::Outcome, Option<TaskStep>, Vec<Action>), ApiError> {
    let unit_tasks: Vec<&TaskRow> = record
        .tasks
        .iter()
        .filter(|t| t.role != TaskRole::Coordinator.as_str())
        .collect();
    let Actor::Clerk(unit) = actor else {
        return Err(ApiError::forbidden(format!(
            "only a clerk of a unit with a task on this bundle may {}",
            body.action
        )));
    };
    let mine: Vec<&TaskRow> = unit_tasks
        .iter()
        .copied()
        .filter(|t| t.unit == unit.as_str())
        .collect();
    let task = match &body.task {
        Some(id) => match unit_tasks.iter().find(|t| &t.id == id) {
            Some(t) if t.unit == unit.as_str() => *t,
            Some(t) => {
                return Err(ApiError::forbidden(format!(
                    "task {id} belongs to unit `{}`, not to `{unit}`",
                    t.unit
                )));
            }
            None => {
                return Err(ApiError::validation(vec![FieldError {
                    pointer: "/task".into(),
                    message: format!("no unit task {id} on this bundle"),
                }]));
            }
        },
        None => match mine.as_slice() {
            [only] => *only,
            [] => {
                return Err(ApiError::forbidden(format!(
                    "unit `{unit}` has no task of its own on this bundle to {}",
                    body.action
                )));
            }
            _ => {
                return Err(ApiError::validation(vec![FieldError {
                    pointer: "/task".into(),
                    message: format!(
                        "unit `{unit}` has several tasks on this bundle; name one: {}",
                        mine.iter()
                            .map(|t| t.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }]));
            }
        },
    };
    if !matches!(bundle.status, Status::Accepted | Status::UnderReview) {
        return Err(not_allowed(lifecycle::Illegal {
            action: body.action,
            state: bundle.status,
            allowed: lifecycle::allowed(bundle),
        }));
    }
    let situation_of = |t: &TaskRow| -> Result<Situation, ApiError> {
        Ok(Situation {
            status: t.status.parse().map_err(ApiError::internal)?,
            special_procedure: t.special_procedure,
            extended: bundle.extended,
        })
    };
    let before = situation_of(task)?;
    let after = lifecycle::apply(before, body.action)
        .map_err(|illegal| not_allowed(illegal).with_extension("task", json!(task.id)))?;
    let mut all = Vec::with_capacity(unit_tasks.len());
    for t in &unit_tasks {
        all.push(if t.id == task.id {
            Situation {
                status: after.status,
                special_procedure: after.special_procedure,
                extended: bundle.extended,
            }
        } else {
            situation_of(t)?
        });
    }
    let derived_situation = lifecycle::aggregate(&all, bundle.extended);
    let mut derived = Vec::new();
    if derived_situation.special_procedure != bundle.special_procedure {
        derived.push(if derived_situation.special_procedure {
            Action::BeginSpecialProcedure
        } else {
            Action::EndSpecialProcedure
        });
    }
    match derived_situation.status {
        Status::Approved if bundle.status != Status::Approved => derived.push(Action::Approve),
        Status::Denied if bundle.status != Status::Denied => derived.push(Action::Deny),
        _ => {}
    }
    Ok((
        lifecycle::Outcome {
            status: derived_situation.status,
            special_procedure: derived_situation.special_procedure,
            extended: bundle.extended,
        },
        Some(TaskStep {
            task_id: task.id.clone(),
            status: after.status,
            special_procedure: after.special_procedure,
        }),
        derived,
    ))
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
#[allow(clippy::too_many_arguments)] // actix extractors: one per piece of app state
pub async fn act(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<ActionBody>,
    db: web::Data<Database>,
    calendars: web::Data<Calendars>,
    sla: web::Data<SlaSettings>,
    catalog: web::Data<Catalog>,
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
    let expected = if_match_revision(&req, "request")?;
    if expected != r.revision {
        return Err(stale(r.revision, &r.status));
    }
    let status: Status = r.status.parse().map_err(ApiError::internal)?;
    let situation = Situation {
        status,
        special_procedure: r.special_procedure,
        extended: r.extended,
    };
    let joint = r.kind == RequestKind::Bundle.as_str();
    if body.task.is_some() && !(joint && body.action.per_task()) {
        return Err(ApiError::validation(vec![FieldError {
            pointer: "/task".into(),
            message: "only for a review or decision step (start_review, begin/end_special_procedure, approve, deny) on a bundle".into(),
        }]));
    }
    let (outcome, task_step, derived) = if joint && body.action.per_task() {
        on_task(&record, &principal.actor, &body, situation)?
    } else {
        let outcome = lifecycle::apply(situation, body.action).map_err(not_allowed)?;
        (outcome, None, Vec::new())
    };
    let mut payload = check(&body)?;
    if let Some(task) = &task_step {
        payload["task"] = json!({ "id": task.task_id, "status_after": task.status });
    }
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
    let returned = match body.action {
        Action::Reroute => {
            // The return this reroute answers: who returned it, and when.
            let lookup = r.id.clone();
            db.run(move |conn| Ok(audit::last_of(conn, &lookup, Action::Return.as_str())?))
                .await?
                .map(|e| (e.unit.unwrap_or_default(), e.at.and_utc()))
        }
        _ => None,
    };
    let notices = notices_of(
        &catalog,
        &record,
        body.action,
        &payload,
        outcome.status,
        status,
        unit.as_deref(),
    );
    let calendar = calendars.current();
    let step = Step {
        notices,
        request_id: r.id.clone(),
        task: task_step,
        action: body.action,
        clocks: ClockEffects {
            calendar,
            warn_percent: sla.warn_percent,
            joint,
            detail: body
                .kind
                .map(|k| json!(k).as_str().unwrap_or_default().to_string())
                .unwrap_or_default(),
            returned,
            derived,
        },
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
        .json(view(&updated, calendars.current().horizon())))
}
