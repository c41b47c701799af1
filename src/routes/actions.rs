//! `POST /api/v1/requests/{id}/actions`: one lifecycle step per call, guarded by `If-Match`.

use actix_web::http::header;
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
use crate::db::requests::{RequestRecord, RoutingDecisionRow, TaskRow};
use crate::db::workflow::{
    self, ClockEffects, GivenOpinion, ResultUpdate, Step, StepError, TaskStep,
};
use crate::domain::assistance::Standing;
use crate::domain::audit::Entry;
use crate::domain::clock::{EXTENSION_DAYS, JOINT_EXTENSION_DAYS};
use crate::domain::lifecycle::{
    self, Action, DecisionBlocked, Denied, Opinion, Parties, Refused, Situation, TaskFacts,
    TaskState,
};
use crate::domain::notice::{About, Message};
use crate::domain::request::{RequestKind, Status};
use crate::domain::{Catalog, UnitCode};
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::http::extract::if_match_revision;
use crate::routes::requests::{acted_on, etag, stale, view};

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
    /// Every missing item, in one notice (request_supplement): 1 to 50, each 1 to 200
    /// characters.
    #[schema(max_items = 50)]
    pub items: Option<Vec<String>>,
    /// Which special procedure (begin_special_procedure).
    pub kind: Option<SpecialProcedure>,
    /// Certificate or decision number (deliver).
    pub certificate: Option<String>,
    /// The unit to re-route to (reroute).
    pub unit: Option<UnitCode>,
    /// The unit's own task a review, decision or opinion step is for (its id); needed only
    /// when the clerk's unit has more than one task that could take the step.
    pub task: Option<String>,
    /// A co-unit's opinion (give_opinion).
    pub opinion: Option<Opinion>,
    /// The opinion's note: the conditions, or why not (give_opinion; required unless agree).
    pub note: Option<String>,
}

/// Most missing items one supplement notice may list.
pub const SUPPLEMENT_ITEMS_MAX: usize = 50;

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
                items.len() <= SUPPLEMENT_ITEMS_MAX,
                "/items",
                &format!("at most {SUPPLEMENT_ITEMS_MAX} items in one notice"),
            );
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
        Action::GiveOpinion => {
            need(
                body.opinion.is_some(),
                "/opinion",
                "required: agree, agree_with_conditions or disagree",
            );
            let note = text(&body.note);
            need(
                note.is_none_or(|n| n.chars().count() <= 2000),
                "/note",
                "at most 2000 characters",
            );
            need(
                note.is_some() || !body.opinion.is_some_and(Opinion::needs_note),
                "/note",
                "required unless the opinion is agree: the conditions, or why not",
            );
        }
        _ => {}
    }
    if body.action != Action::GiveOpinion {
        need(
            body.opinion.is_none() && body.note.is_none(),
            "/opinion",
            "only for give_opinion",
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut payload = json!({
        "reason": reason,
        "items": body.items,
        "kind": body.kind,
        "certificate": text(&body.certificate),
        "unit": body.unit,
    });
    if body.action == Action::GiveOpinion {
        payload["opinion"] = json!(body.opinion);
        payload["note"] = json!(text(&body.note));
    }
    Ok(payload)
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
            reason: payload["reasons"]
                .as_str()
                .map(str::to_string)
                .or_else(|| reason.clone()),
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

/// The answer to an actor who may not take the step.
pub(crate) fn denied(denied: Denied, id: &str) -> ApiError {
    match denied {
        Denied::Hidden => ApiError::not_found(format!("no request {id}")),
        Denied::Forbidden(why) => ApiError::forbidden(why),
        Denied::NotLead { lead, message } => {
            ApiError::new(ErrorCode::NotLeadUnit, message).with_extension("lead_unit", json!(lead))
        }
        Denied::WhichTask(message) => ApiError::validation(vec![FieldError {
            pointer: "/task".into(),
            message,
        }]),
        Denied::NoGrant { lapse, message } => {
            crate::routes::authorizations::no_grant(lapse.as_ref(), message)
        }
    }
}

/// The answer to a step that cannot be taken now.
fn refused(refused: Refused) -> ApiError {
    match refused {
        Refused::Illegal(illegal, task) => {
            let error = not_allowed(illegal);
            match task {
                Some(task) => error.with_extension("task", json!(task)),
                None => error,
            }
        }
        Refused::Blocked(blocked) => match &blocked {
            DecisionBlocked::Outstanding(missing) => {
                ApiError::new(ErrorCode::OpinionsOutstanding, blocked.to_string())
                    .with_extension("missing", json!(missing))
            }
            DecisionBlocked::Unanswered(_) => ApiError::validation(vec![FieldError {
                pointer: "/reason".into(),
                message: blocked.to_string(),
            }]),
        },
    }
}

/// Who stands where on the request, for [`lifecycle::authorize`]; the caller's 帮办 standing
/// is added by the caller where the step is the enterprise's.
pub(crate) fn parties_of(record: &RequestRecord) -> Result<Parties, ApiError> {
    let r = &record.request;
    Ok(Parties {
        owner: r.uscc.clone(),
        lead_unit: r.lead_unit.parse().map_err(ApiError::internal)?,
        bundle: r.kind == RequestKind::Bundle.as_str(),
        tasks: record
            .tasks
            .iter()
            .map(|t| task_facts(t).map(|(facts, _)| facts))
            .collect::<Result<_, _>>()?,
        returned: r.status == Status::Returned.as_str(),
        assistant: Standing::Without,
    })
}

fn task_facts(t: &TaskRow) -> Result<(TaskFacts, Situation), ApiError> {
    let bad = |what: &str| ApiError::internal(format!("task {}: bad {what}", t.id));
    Ok((
        TaskFacts {
            id: t.id.clone(),
            unit: t.unit.parse().map_err(|_| bad("unit"))?,
            role: t.role.parse().map_err(|_| bad("role"))?,
            matter: t.matter_code.clone(),
        },
        Situation {
            status: t.status.parse().map_err(|_| bad("status"))?,
            special_procedure: t.special_procedure,
            extended: false,
        },
    ))
}

/// Every task as it stands, for [`lifecycle::plan`].
fn task_states(record: &RequestRecord) -> Result<Vec<TaskState>, ApiError> {
    record
        .tasks
        .iter()
        .map(|t| {
            let (facts, situation) = task_facts(t)?;
            Ok(TaskState {
                facts,
                situation,
                opinion: t.opinion.as_deref().and_then(|o| o.parse().ok()),
                note: t.opinion_note.clone(),
            })
        })
        .collect()
}

/// The denying units' reasons of a bundle denied by its last decision, each named by its unit:
/// the enterprise hears every one, not only the last decider's.
fn denial_reasons(earlier: &[(Option<String>, Value)], this: Option<(&str, &str)>) -> String {
    earlier
        .iter()
        .filter_map(|(unit, payload)| {
            let reason = payload["reason"].as_str()?;
            Some((unit.clone().unwrap_or_default(), reason.to_string()))
        })
        .chain(this.map(|(u, r)| (u.to_string(), r.to_string())))
        .map(|(unit, reason)| format!("{unit}：{reason}"))
        .collect::<Vec<_>>()
        .join("；")
}

/// What the request keeps of its result: the decision when it is taken, the certificate or
/// decision number and the time when it is delivered.
fn result_of(
    action: Action,
    decided: Option<Status>,
    payload: &Value,
    now: chrono::DateTime<Utc>,
) -> Option<ResultUpdate> {
    match (action, decided) {
        (Action::Deliver, _) => Some(ResultUpdate::Delivered {
            certificate: payload["certificate"].as_str().unwrap_or_default().into(),
            at: now.naive_utc(),
        }),
        (_, Some(status)) => Some(ResultUpdate::Decided {
            kind: if status == Status::Approved {
                "approval"
            } else {
                "denial"
            },
        }),
        _ => None,
    }
}

/// What a step needs of the audit trail: the return a reroute answers, the earlier denials of
/// a bundle (the enterprise hears every denying unit's reason).
#[derive(Debug, Default)]
pub(crate) struct History {
    returned: Option<(String, chrono::DateTime<Utc>)>,
    denials: Vec<(Option<String>, Value)>,
}

/// Reads the [`History`] a step of `action` on `record` needs (nothing for most steps).
pub(crate) async fn history_of(
    db: &Database,
    record: &RequestRecord,
    action: Action,
) -> Result<History, ApiError> {
    let mut history = History::default();
    let lookup = record.request.id.clone();
    if action == Action::Reroute {
        // The return this reroute answers: who returned it, and when.
        history.returned = db
            .run(move |conn| Ok(audit::last_of(conn, &lookup, Action::Return.as_str())?))
            .await?
            .map(|e| (e.unit.unwrap_or_default(), e.at.and_utc()));
    } else if matches!(action, Action::Approve | Action::Deny)
        && record.request.kind == RequestKind::Bundle.as_str()
    {
        // The last decision of a bundle may deny it (an approval after a denial).
        history.denials = db
            .run(move |conn| Ok(audit::all_of(conn, &lookup, Action::Deny.as_str())?))
            .await?
            .into_iter()
            .map(|e| (e.unit, serde_json::from_str(&e.payload).unwrap_or_default()))
            .collect();
    }
    Ok(history)
}

/// The rules a step is planned under.
pub(crate) struct StepRules<'a> {
    /// The catalog.
    pub catalog: &'a Catalog,
    /// The calendar in force.
    pub calendar: std::sync::Arc<crate::domain::calendar::Calendar>,
    /// Warning share of the clocks, percent.
    pub warn_percent: u32,
}

/// Plans the lifecycle step `body` by `principal` on `record` as read at revision `expected`:
/// who may take it, whether the state allows it, what it does to the tasks, clocks, result and
/// mail. The one place a step is planned: the actions endpoint and a ticket's call
/// (`routes::tickets`) both record what this returns with [`workflow::record`].
#[allow(clippy::too_many_arguments)] // the step's inputs, each read once by the caller
pub(crate) fn step_for(
    principal: &Principal,
    record: &RequestRecord,
    parties: &Parties,
    body: &ActionBody,
    expected: i32,
    history: History,
    rules: &StepRules<'_>,
    now: chrono::DateTime<Utc>,
) -> Result<Step, ApiError> {
    let r = &record.request;
    let id = &r.id;
    let target = lifecycle::authorize(&principal.actor, body.action, parties, body.task.as_deref())
        .map_err(|d| denied(d, id))?;
    if expected != r.revision {
        return Err(stale(r.revision, &r.status));
    }
    let status: Status = r.status.parse().map_err(ApiError::internal)?;
    if body.action == Action::Refuse && r.deemed_accepted_at.is_some() {
        return Err(ApiError::new(
            ErrorCode::ActionNotAllowed,
            "the request counts as accepted from receipt (Art. 32: no supplement notice within five working days); it can no longer be refused",
        )
        .with_extension("state", json!(status)));
    }
    let situation = Situation {
        status,
        special_procedure: r.special_procedure,
        extended: r.extended,
    };
    let joint = r.kind == RequestKind::Bundle.as_str();
    let mut payload = check(body)?;
    if body.action == Action::Deliver {
        crate::db::materials::ready_to_deliver(rules.catalog, record)?;
    }
    let planned = lifecycle::plan(
        situation,
        joint,
        &task_states(record)?,
        &target,
        body.action,
        payload["reason"].as_str(),
        |unit| {
            let unit = rules.catalog.unit(unit);
            vec![unit.name_zh.clone(), unit.name_en.clone()]
        },
    )
    .map_err(refused)?;
    let outcome = planned.outcome;
    if let Some((task, after)) = &planned.task {
        payload["task"] = json!({ "id": task, "status_after": after.status });
    }
    if !planned.opinions.is_empty() {
        payload["opinions"] = json!(planned.opinions);
    }
    // Taken for the enterprise under a grant: the audit names the enterprise and the grant.
    let enterprise_step = body.action.taken_by() == lifecycle::Taker::OwningEnterprise;
    let assisted = match &parties.assistant {
        Standing::Holds { grant, leader } if enterprise_step => {
            payload["on_behalf_of"] = json!(r.uscc);
            payload["authorization"] = json!(grant);
            payload["leader"] = json!(leader);
            let mut row = crate::routes::authorizations::act_row(
                principal,
                &r.uscc,
                body.action.as_str(),
                Some((grant, *leader)),
                None,
                now,
            );
            row.request_id = r.id.clone();
            Some(row)
        }
        _ => None,
    };
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
    let returned = history.returned;
    let decided =
        outcome.status != status && matches!(outcome.status, Status::Approved | Status::Denied);
    if decided && outcome.status == Status::Denied && joint {
        // A bundle denied: the enterprise hears every denying unit's reason.
        let earlier = &history.denials;
        let this = match (body.action, unit.as_deref(), payload["reason"].as_str()) {
            (Action::Deny, Some(u), Some(reason)) => Some((u, reason)),
            _ => None,
        };
        payload["reasons"] = json!(denial_reasons(earlier, this));
    }
    let notices = notices_of(
        rules.catalog,
        record,
        body.action,
        &payload,
        outcome.status,
        status,
        unit.as_deref(),
    );
    let result = result_of(
        body.action,
        decided.then_some(outcome.status),
        &payload,
        now,
    );
    let calendar = rules.calendar.clone();
    let step = Step {
        notices,
        assisted,
        request_id: r.id.clone(),
        task: planned.task.map(|(task_id, after)| TaskStep {
            task_id,
            status: after.status,
            special_procedure: after.special_procedure,
            opinion: match (body.action, body.opinion) {
                (Action::GiveOpinion, Some(opinion)) => Some(GivenOpinion {
                    opinion,
                    note: payload["note"].as_str().map(str::to_string),
                    by: principal.subject.clone(),
                }),
                _ => None,
            },
        }),
        action: body.action,
        clocks: ClockEffects {
            calendar,
            warn_percent: rules.warn_percent,
            joint,
            detail: body
                .kind
                .map(|k| json!(k).as_str().unwrap_or_default().to_string())
                .unwrap_or_default(),
            returned,
            derived: planned.derived,
        },
        expected_revision: expected,
        status: outcome.status,
        special_procedure: outcome.special_procedure,
        extended: outcome.extended,
        result,
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
    Ok(step)
}

/// Take one step on a request.
///
/// Enterprises `withdraw` and `supplement` their own requests; clerks of the lead unit `call`,
/// `accept`, `refuse`, `request_supplement`, `complete`, `deliver`, `return`, and on a single
/// matter `start_review`, the special procedures, `approve` / `deny` (once every co-unit's
/// opinion is in); a co-unit reviews and `give_opinion`s on its own task; on a bundle each
/// unit reviews and decides its own task; the service centre `reroute`s returned requests; a
/// supervisor of the lead unit `approve_extension`. Every step lands in the audit trail.
#[utoipa::path(
    tag = "requests",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Request id"),
        ("If-Match" = String, Header, description = "The ETag of the request as read, e.g. \"r3\"")
    ),
    request_body(content = ActionBody, example = json!({"action": "call"})),
    responses(
        (status = 200, description = "Done; the request as it is now", body = crate::routes::requests::RequestView,
         headers(("ETag" = String, description = "The new revision"))),
        (status = 404, description = "No such request for this caller: another enterprise's, or one the caller's unit has no task on", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not possible in the current state (`action_not_allowed`: `state` and `allowed` say what is); \
                                      `opinions_outstanding` (`missing` names the co-units); `materials_pending`", body = Problem,
         content_type = "application/problem+json"),
        (status = 412, description = "Someone else changed the request first", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A member the action needs is missing or wrong", body = Problem,
         content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
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
    let record = acted_on(&db, &id).await?;
    let r = &record.request;
    let mut parties = parties_of(&record)?;
    // An official's 帮办 standing for the owner: the enterprise's steps (withdraw, supplement)
    // need a live grant, and a grant shows the request to an official of any unit. Looked up
    // only where it can change the answer (one read less on every other official's step).
    if parties.standing_matters(&principal.actor, body.action) {
        parties.assistant = crate::routes::authorizations::standing_of(
            &db,
            &principal,
            &r.uscc,
            Some(&r.id),
            Utc::now(),
        )
        .await?;
    }
    // Who may act comes before the precondition: a caller who may not see the request gets
    // the 404 of a missing one, whatever `If-Match` says.
    lifecycle::authorize(
        &principal.actor,
        body.action,
        &parties,
        body.task.as_deref(),
    )
    .map_err(|d| denied(d, &id))?;
    let expected = if_match_revision(&req, "request", r.revision)?;
    let history = history_of(&db, &record, body.action).await?;
    let rules = StepRules {
        catalog: &catalog,
        calendar: calendars.current(),
        warn_percent: sla.warn_percent,
    };
    let now = Utc::now().trunc_subsecs(6);
    let step = step_for(
        &principal, &record, &parties, &body, expected, history, &rules, now,
    )?;
    let updated = db
        .run(move |conn| match workflow::record(conn, &step) {
            Ok(record) => Ok(Ok(record)),
            Err(StepError::Stale { revision, status }) => Ok(Err(stale(revision, &status))),
            Err(StepError::Failed(error)) => Err(error),
        })
        .await??;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(&updated)))
        .json(view(&updated, calendars.current().horizon()).for_actor(&principal.actor)))
}
