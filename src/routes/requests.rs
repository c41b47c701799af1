//! Enterprise requests: intake (`POST`), listing, reading, and the routing explanation.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Actor, Principal};
use crate::config::SlaSettings;
use crate::db::Database;
use crate::db::calendars::Calendars;
use crate::db::clocks;
use crate::db::requests::{
    self, ClockRow, Filters, IdempotencyClaim, Intake as Stored, MaterialRow, NewRequest,
    RequestRecord, RequestRow, RoutingDecisionRow, Scope, TaskRow,
};
use crate::domain::assistance::{self, IdentityMethod, Standing};
use crate::domain::calendar::Horizon;
use crate::domain::catalog::Target;
use crate::domain::clock::{Clock, Rules};
use crate::domain::disclosure;
use crate::domain::intake::{self, Intake};
use crate::domain::lifecycle::Opinion;
use crate::domain::request::{
    ClockKind, ClockState, MaterialStatus, RequestKind, Status, TaskRole,
};
use crate::domain::routing::{self, Explanation};
use crate::domain::{Catalog, Category, Channel, UnitCode};
use crate::error::{ApiError, ErrorCode, FieldError, Problem};

/// Header naming an idempotent retry.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Header marking a replayed response.
const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";
/// Largest page.
const MAX_LIMIT: i64 = 100;
/// Default page.
const DEFAULT_LIMIT: i64 = 20;

/// The submitting enterprise.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Applicant {
    /// Enterprise name.
    #[schema(example = "上海马上办科技有限公司")]
    pub name: String,
    /// Unified social credit code; must be the token's.
    #[schema(example = "91350100M000100Y43")]
    pub uscc: String,
}

/// A material declared at intake (the file itself goes to the portal's store).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeclaredMaterial {
    /// Matter the material is for (required in a bundle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matter: Option<String>,
    /// Material code from the catalog.
    pub code: String,
    /// File name.
    pub name: String,
    /// SHA-256 of the file, 64 hex digits.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub sha256: String,
    /// File size in bytes.
    #[schema(minimum = 1)]
    pub size_bytes: i64,
}

/// The body of `POST /api/v1/requests`. Exactly one of `matter` and `bundle`.
/// Nothing else may be set: status, units, numbers and due dates are the system's.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Matter code.
    #[schema(example = "market.establish")]
    pub matter: Option<String>,
    /// Bundle code.
    pub bundle: Option<String>,
    /// Channel of intake.
    pub channel: Channel,
    /// Region that took a cross-region request (required for `cross_region` only).
    pub intake_region: Option<String>,
    /// The enterprise.
    pub applicant: Applicant,
    /// Where the enterprise hears about the request.
    #[schema(example = "office@example.com")]
    pub contact_email: String,
    /// The matter's form; for a bundle, one form per matter code.
    #[schema(value_type = Object)]
    pub form: Option<serde_json::Value>,
    /// Materials declared (at most 50).
    #[schema(max_items = 50)]
    pub materials: Option<Vec<DeclaredMaterial>>,
    /// Approval on a signed commitment (告知承诺), where allowed.
    pub commitment: Option<bool>,
    /// Officials only (帮办): the enterprise the request is filed for. With `identity_check`
    /// a walk-in filing by a clerk of the lead unit (channel `window`); without, a filing
    /// under a live 帮办 grant of the enterprise. `applicant.uscc` must be this enterprise's.
    pub on_behalf_of: Option<OnBehalfOfBody>,
}

/// The enterprise an official files for (docs/assisted-filing.md).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnBehalfOfBody {
    /// The enterprise's unified social credit code; the request belongs to it.
    #[schema(example = "91350100M000100Y43")]
    pub uscc: String,
    /// The identity check done at the window (walk-in filing); omit when filing under a grant.
    pub identity_check: Option<IdentityCheckBody>,
}

/// How the clerk checked who is at the window.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityCheckBody {
    /// ID card, electronic business licence, or face recognition.
    pub method: IdentityMethod,
    /// The name the check confirmed (1 to 100 characters).
    #[schema(example = "张三", min_length = 1, max_length = 100)]
    pub verified_name: String,
}

/// A task: one responsible unit's part.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    /// Task id.
    pub id: String,
    /// Unit.
    pub unit: String,
    /// Matter (the bundle code for a coordinator).
    pub matter: String,
    /// Lead, co-operating unit or coordinator.
    pub role: TaskRole,
    /// State.
    pub status: Status,
    /// Clerk who took it from the queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// A special procedure is under way on this task (bundles).
    pub special_procedure: bool,
    /// A co-unit's opinion, once given (联合会审).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opinion: Option<OpinionView>,
}

/// A co-unit's opinion on its task.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpinionView {
    /// Agree, agree with conditions, or disagree.
    pub opinion: Opinion,
    /// The conditions, or why not (staff only: not shown to the enterprise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_at: Option<DateTime<Utc>>,
}

/// The result of a decided request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultView {
    /// `approval` or `denial`.
    pub kind: String,
    /// The certificate or decision number, once delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// When it was delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A material of the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaterialView {
    /// Matter.
    pub matter: String,
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// SHA-256, when provided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Size, when provided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// Provided, or pending (容缺).
    pub status: MaterialStatus,
    /// When a deferred material is (or was) due: its `material` clock's due time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// When a deferred material was supplied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supplied_at: Option<DateTime<Utc>>,
    /// A deferred material was received at the window by a clerk of the lead unit (else
    /// supplied online by the enterprise, or declared at intake).
    pub received_at_window: bool,
}

/// An SLA clock.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClockView {
    /// Clock id.
    pub id: String,
    /// Kind.
    pub kind: ClockKind,
    /// Target as published.
    #[schema(example = "20 working_days")]
    pub target: String,
    /// State.
    pub state: ClockState,
    /// The task it belongs to, for per-unit clocks of a bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// When it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it falls due (while paused: as computed before the pause; resuming recomputes it
    /// from `remaining_minutes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// `due_at` falls after the working calendar's horizon (its last configured day): counted
    /// on weekdays alone, it moves when the year's holidays are loaded (docs/calendars.md).
    pub provisional: bool,
    /// When it warns (the configured share of the allowance used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn_at: Option<DateTime<Utc>>,
    /// When the warning was marked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warned_at: Option<DateTime<Utc>>,
    /// When the breach was marked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breached_at: Option<DateTime<Utc>>,
    /// When it stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<DateTime<Utc>>,
    /// The unit it counts against.
    pub unit: String,
    /// Total time paused, in seconds.
    pub paused_seconds: i64,
    /// While paused: the time it had left when it paused (working minutes; wall minutes for a
    /// wall clock), which counts again from the resume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_minutes: Option<i64>,
    /// Every pause with its reason.
    #[schema(value_type = Vec<Object>)]
    pub pauses: serde_json::Value,
    /// Working days added by an approved extension.
    pub extended_days: i32,
    /// Handling time in working minutes, pauses excluded, once stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worked_minutes: Option<i64>,
    /// The unit that returned the request (退单), charged with `lost_minutes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_to_unit: Option<String>,
    /// Working minutes lost to a return.
    pub lost_minutes: i64,
}

/// A request as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    /// Id (UUID v7).
    pub id: String,
    /// Human number, unique in the district.
    #[schema(example = "PT20261127-000123")]
    pub number: String,
    /// State.
    pub status: Status,
    /// Matter or bundle.
    pub kind: RequestKind,
    /// Its code.
    pub code: String,
    /// Channel.
    pub channel: Channel,
    /// Region of a cross-region intake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intake_region: Option<String>,
    /// The enterprise.
    pub applicant: Applicant,
    /// Contact e-mail.
    pub contact_email: String,
    /// The form as submitted.
    #[schema(value_type = Object)]
    pub form: serde_json::Value,
    /// Commitment chosen.
    pub commitment: bool,
    /// The one feedback point.
    pub lead_unit: String,
    /// A special procedure (hearing, inspection…) is under way; the statutory clock waits.
    pub special_procedure: bool,
    /// The one statutory extension has been granted.
    pub extended: bool,
    /// Counted as accepted from receipt because no supplement notice came within five working
    /// days (Art. 32): the receipt time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deemed_accepted_from: Option<DateTime<Utc>>,
    /// Accepted by law rather than by a clerk (Art. 32; see `deemed_accepted_from`).
    pub deemed: bool,
    /// The decision and what was delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultView>,
    /// One task per responsible unit.
    pub tasks: Vec<TaskView>,
    /// Materials.
    pub materials: Vec<MaterialView>,
    /// Clocks.
    pub clocks: Vec<ClockView>,
    /// Catalog version at intake.
    pub catalog_version: String,
    /// Intake time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A page of requests.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestPage {
    /// The requests, newest first.
    pub items: Vec<RequestView>,
    /// How many match the filters in all: exact while `total_capped` is false; else more
    /// than `total` (1,000) match and the count stopped there.
    pub total: i64,
    /// More requests match than `total`: the count stops at 1,000 so that a page never counts
    /// a million requests.
    pub total_capped: bool,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One routing decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingDecision {
    /// Decision id.
    pub id: String,
    /// `intake` or `reroute`.
    pub reason: String,
    /// Catalog version applied.
    pub catalog_version: String,
    /// When.
    pub decided_at: DateTime<Utc>,
    /// Which rule put which unit where.
    #[schema(value_type = Explanation)]
    pub explanation: serde_json::Value,
}

/// The routing history of a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingView {
    /// The request.
    pub request_id: String,
    /// Decisions, oldest first.
    pub decisions: Vec<RoutingDecision>,
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

fn parse_or<T: std::str::FromStr>(text: &str, fallback: T) -> T {
    text.parse().unwrap_or(fallback)
}

impl RequestView {
    /// What the enterprise sees of it: the units, not the officials who took its tasks, and
    /// not the co-units' internal opinion notes.
    pub fn for_enterprise(mut self) -> Self {
        for task in &mut self.tasks {
            task.claimed_by = None;
            if let Some(opinion) = &mut task.opinion {
                opinion.note = None;
            }
        }
        self
    }

    /// As `actor` may see it.
    pub fn for_actor(self, actor: &Actor) -> Self {
        match actor {
            Actor::Enterprise(_) => self.for_enterprise(),
            _ => self,
        }
    }
}

/// Renders a stored request; due times after `horizon` are marked provisional.
pub fn view(record: &RequestRecord, horizon: Horizon) -> RequestView {
    let r = &record.request;
    RequestView {
        id: r.id.clone(),
        number: r.number.clone(),
        status: parse_or(&r.status, Status::Submitted),
        kind: parse_or(&r.kind, RequestKind::Matter),
        code: r.code.clone(),
        channel: serde_json::from_value(serde_json::Value::String(r.channel.clone()))
            .unwrap_or(Channel::Online),
        intake_region: r.intake_region.clone(),
        applicant: Applicant {
            name: r.applicant_name.clone(),
            uscc: r.uscc.clone(),
        },
        contact_email: r.contact_email.clone(),
        form: serde_json::from_str(&r.form).unwrap_or_default(),
        commitment: r.commitment,
        lead_unit: r.lead_unit.clone(),
        special_procedure: r.special_procedure,
        extended: r.extended,
        deemed_accepted_from: r.deemed_accepted_at.map(utc),
        deemed: r.deemed_accepted_at.is_some(),
        result: r.result_kind.as_ref().map(|kind| ResultView {
            kind: kind.clone(),
            certificate: r.certificate.clone(),
            delivered_at: r.delivered_at.map(utc),
        }),
        tasks: record
            .tasks
            .iter()
            .map(|t| TaskView {
                id: t.id.clone(),
                unit: t.unit.clone(),
                matter: t.matter_code.clone(),
                role: parse_or(&t.role, TaskRole::Lead),
                status: parse_or(&t.status, Status::Submitted),
                claimed_by: t.claimed_by.clone(),
                special_procedure: t.special_procedure,
                opinion: t
                    .opinion
                    .as_deref()
                    .and_then(|o| o.parse().ok())
                    .map(|opinion| OpinionView {
                        opinion,
                        note: t.opinion_note.clone(),
                        given_at: t.opinion_at.map(utc),
                    }),
            })
            .collect(),
        materials: record
            .materials
            .iter()
            .map(|m| MaterialView {
                matter: m.matter_code.clone(),
                code: m.code.clone(),
                name: m.name.clone(),
                sha256: m.sha256.clone(),
                size_bytes: m.size_bytes,
                status: parse_or(&m.status, MaterialStatus::Provided),
                due_at: m.due_at.map(utc),
                supplied_at: m.supplied_at.map(utc),
                received_at_window: m.received_at_window,
            })
            .collect(),
        clocks: record
            .clocks
            .iter()
            .map(|c| clock_view(c, horizon))
            .collect(),
        catalog_version: r.catalog_version.clone(),
        created_at: utc(r.created_at),
        updated_at: utc(r.updated_at),
    }
}

/// A stored clock as the API shows it; a due time after `horizon` is provisional.
pub(crate) fn clock_view(c: &ClockRow, horizon: Horizon) -> ClockView {
    ClockView {
        id: c.id.clone(),
        kind: parse_or(&c.kind, ClockKind::Promised),
        target: c.target.clone(),
        state: parse_or(&c.state, ClockState::Pending),
        task_id: c.task_id.clone(),
        started_at: c.started_at.map(utc),
        due_at: c.due_at.map(utc),
        provisional: c.due_at.is_some_and(|due| horizon.is_provisional(utc(due))),
        warn_at: c.warn_at.map(utc),
        warned_at: c.warned_at.map(utc),
        breached_at: c.breached_at.map(utc),
        stopped_at: c.stopped_at.map(utc),
        unit: c.unit.clone(),
        paused_seconds: c.paused_seconds,
        remaining_minutes: (c.state == ClockState::Paused.as_str())
            .then_some(c.remaining_seconds)
            .flatten()
            .map(|seconds| seconds / 60),
        pauses: serde_json::from_str(&c.pauses).unwrap_or_default(),
        extended_days: c.extended_days,
        worked_minutes: c.worked_minutes,
        lost_to_unit: c.lost_to_unit.clone(),
        lost_minutes: c.lost_minutes,
    }
}

pub(crate) fn etag(record: &RequestRecord) -> HeaderValue {
    HeaderValue::from_str(&format!("\"r{}\"", record.request.revision)).expect("ASCII")
}

/// 412 for a change based on a revision that is no longer current, with the current `ETag`.
pub(crate) fn stale(revision: i32, status: &str) -> ApiError {
    ApiError::new(
        ErrorCode::PreconditionFailed,
        format!("someone else changed this request first: it is now {status} (revision r{revision}); read it again"),
    )
    .with_header(
        header::ETAG,
        HeaderValue::from_str(&format!("\"r{revision}\"")).expect("ASCII"),
    )
}

/// Builds the rows of a checked intake: routing, tasks, materials, clocks.
pub(crate) fn plan(
    catalog: &Catalog,
    rules: Rules<'_>,
    intake: &Intake,
    uscc: &str,
    now: DateTime<Utc>,
) -> Result<NewRequest, ApiError> {
    let calendar = rules.calendar;
    let id = Uuid::now_v7().to_string();
    let routing = routing::route(
        catalog,
        intake.kind,
        &intake.code,
        intake.channel,
        intake.intake_region.as_deref(),
    );
    let at = now.naive_utc();
    let tasks: Vec<TaskRow> = routing
        .tasks
        .iter()
        .map(|t| TaskRow {
            id: Uuid::now_v7().to_string(),
            request_id: id.clone(),
            unit: t.unit.to_string(),
            matter_code: t.matter.clone(),
            category: t.category.clone(),
            role: t.role.as_str().into(),
            status: Status::Submitted.as_str().into(),
            created_at: at,
            claimed_by: None,
            claimed_at: None,
            special_procedure: false,
            opinion: None,
            opinion_note: None,
            opinion_by: None,
            opinion_at: None,
        })
        .collect();
    // A deferred material (容缺) gets its own clock from receipt, counted against the lead
    // unit; the material is due when its clock is.
    let mut material_clocks = Vec::new();
    let materials = intake
        .materials
        .iter()
        .map(|m| -> Result<MaterialRow, ApiError> {
            let material_id = Uuid::now_v7().to_string();
            let mut due_at = None;
            if let Some(days) = m.pending_days {
                let mut clock = Clock::new(ClockKind::Material, Target::working_days(days));
                clock.start(rules, now).map_err(ApiError::internal)?;
                due_at = clock.due_at.map(|t| t.naive_utc());
                material_clocks.push((clock, material_id.clone(), m.matter_code.clone()));
            }
            Ok(MaterialRow {
                id: material_id,
                request_id: id.clone(),
                matter_code: m.matter_code.clone(),
                code: m.code.clone(),
                name: m.name.clone(),
                sha256: m.sha256.clone(),
                size_bytes: m.size_bytes,
                status: if m.pending_days.is_some() {
                    MaterialStatus::Pending
                } else {
                    MaterialStatus::Provided
                }
                .as_str()
                .into(),
                due_at,
                supplied_at: None,
                supplied_by: None,
                received_at_window: false,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let clocks = routing
        .clocks
        .iter()
        .map(|c| -> Result<ClockRow, ApiError> {
            let task = c.task.map(|i| &tasks[i]);
            let mut clock = Clock::new(c.kind, c.target);
            if c.starts_at_intake {
                clock.start(rules, now).map_err(ApiError::internal)?;
            }
            Ok(clocks::to_row(
                &clock,
                Uuid::now_v7().to_string(),
                id.clone(),
                task.map(|t| t.id.clone()),
                task.map_or_else(|| routing.lead_unit.to_string(), |t| t.unit.clone()),
                task.map_or_else(|| intake.code.clone(), |t| t.matter_code.clone()),
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Their ids come after the routing clocks' (UUID v7), so a re-read lists them in the
    // same order as this answer.
    let clocks = clocks
        .into_iter()
        .chain(
            material_clocks
                .into_iter()
                .map(|(clock, material_id, matter)| {
                    let mut row = clocks::to_row(
                        &clock,
                        Uuid::now_v7().to_string(),
                        id.clone(),
                        None,
                        routing.lead_unit.to_string(),
                        matter,
                    );
                    row.material_id = Some(material_id);
                    row
                }),
        )
        .collect();
    let local_day = now
        .with_timezone(&calendar.time_zone())
        .format("%Y%m%d")
        .to_string();
    Ok(NewRequest {
        request: RequestRow {
            id: id.clone(),
            number: String::new(),
            uscc: uscc.to_string(),
            applicant_name: intake.applicant_name.clone(),
            kind: intake.kind.as_str().into(),
            code: intake.code.clone(),
            channel: intake.channel.as_str().into(),
            intake_region: intake.intake_region.clone(),
            contact_email: intake.contact_email.clone(),
            form: intake.form.to_string(),
            commitment: intake.commitment,
            status: Status::Submitted.as_str().into(),
            lead_unit: routing.lead_unit.to_string(),
            catalog_version: catalog.version().to_string(),
            revision: 1,
            created_at: at,
            updated_at: at,
            special_procedure: false,
            extended: false,
            deemed_accepted_at: None,
            result_kind: None,
            certificate: None,
            delivered_at: None,
        },
        tasks,
        materials,
        clocks,
        routing: RoutingDecisionRow {
            id: Uuid::now_v7().to_string(),
            request_id: id,
            catalog_version: catalog.version().to_string(),
            reason: "intake".into(),
            explanation: serde_json::to_string(&routing.explanation).expect("serialisable"),
            decided_at: at,
        },
        number_day: local_day,
        assisted: None,
    })
}

/// The `Idempotency-Key` header, if any: 1–255 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::validation(vec![FieldError {
            pointer: IDEMPOTENCY_KEY.into(),
            message: "must be 1 to 255 visible ASCII characters".into(),
        }]));
    }
    Ok(Some(text.to_string()))
}

/// Submit a request for a matter or a bundle: an enterprise for itself, or an official for
/// an enterprise (帮办) with `on_behalf_of`.
///
/// Routed at once by the catalog: the answer carries the lead unit, one task per
/// responsible unit, the materials (pending ones with their due date) and the clocks. Send an
/// `Idempotency-Key` to make retries safe: the same key and body replay the first answer.
///
/// An official files with `on_behalf_of: {uscc, identity_check: {method, verified_name}}` at
/// the window (a clerk of the lead unit; channel `window`), or with `on_behalf_of: {uscc}`
/// under a live 帮办 grant of that enterprise (channel `online` or `window`). The request is
/// the enterprise's; the audit trail names the official, the enterprise, and the identity
/// check or the grant. A walk-in adds to the body above, with `channel: window`:
/// `"on_behalf_of": {"uscc": "91350100M000100Y43", "identity_check": {"method": "id_card",
/// "verified_name": "张三"}}`.
#[utoipa::path(
    tag = "requests",
    security(("bearer" = [])),
    request_body(content = Submission, example = json!({
        "matter": "tax.registration",
        "channel": "online",
        "applicant": {"name": "上海马上办科技有限公司", "uscc": "91350100M000100Y43"},
        "contact_email": "office@example.com",
        "form": {"taxpayer_type": "small_scale"},
        "materials": [{"code": "business_licence", "name": "licence.pdf",
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "size_bytes": 48213}],
        "commitment": false
    })),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe for 24 hours (per enterprise; per official and enterprise for a filing on its behalf)")),
    responses(
        (status = 201, description = "Created and routed (or the replay of the first answer)", body = RequestView,
         headers(("Location" = String, description = "The new request"), ("ETag" = String, description = "Revision"),
                 ("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 403, description = "`forbidden`: an administrator, an official without `on_behalf_of`, a supervisor filing a walk-in; \
                                      `not_lead_unit`: a walk-in filed by a clerk of another unit than the lead (`lead_unit`); \
                                      `authorization_required` / `authorization_revoked` / `authorization_expired` / \
                                      `authorization_not_started` / `authorization_out_of_scope`: a filing without a live 帮办 grant",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named (including `/on_behalf_of/...`, and `/on_behalf_of` sent by an enterprise); or an idempotency key reused with another body",
         body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/requests")]
#[allow(clippy::too_many_arguments)] // actix extractors: one per piece of app state
pub async fn create(
    req: HttpRequest,
    principal: Principal,
    body: web::Json<serde_json::Value>,
    catalog: web::Data<Catalog>,
    calendars: web::Data<Calendars>,
    sla: web::Data<SlaSettings>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let mut body = body.into_inner();
    // The idempotency key is the body's as sent, `on_behalf_of` included.
    let body_sha256 = hex(&Sha256::digest(body.to_string().as_bytes()));
    let on_behalf_of = body
        .as_object_mut()
        .and_then(|object| object.remove("on_behalf_of"));
    let filer = filer(&principal, on_behalf_of.as_ref())?;
    let uscc = match (&principal.actor, &filer) {
        (Actor::Enterprise(uscc), _) => uscc.clone(),
        (_, Some(filing)) => filing.uscc.clone(),
        (_, None) => unreachable!("officials file with on_behalf_of (checked by `filer`)"),
    };
    // One check of everything the body says: the intake's fields and `on_behalf_of`'s.
    let mut errors = match on_behalf_of.as_ref().map(assistance::check_on_behalf_of) {
        Some(Err(errors)) => errors,
        _ => Vec::new(),
    };
    let intake = match intake::check(&catalog, &body, &uscc) {
        Ok(intake) => Some(intake),
        Err(found) => {
            errors.extend(found);
            None
        }
    };
    let channel = intake.as_ref().map(|i| i.channel);
    let wanted: &[Channel] = match filer.as_ref().map(|f| f.walk_in) {
        Some(true) => &[Channel::Window],
        Some(false) => &[Channel::Online, Channel::Window],
        None => &[],
    };
    if let Some(channel) = channel.filter(|c| !wanted.is_empty() && !wanted.contains(c)) {
        errors.push(FieldError {
            pointer: "/channel".into(),
            message: if wanted.len() == 1 {
                format!(
                    "a walk-in filing is taken at the window: `window`, not `{}`",
                    channel.as_str()
                )
            } else {
                format!(
                    "a filing under a 帮办 grant is `online` or `window`, not `{}`",
                    channel.as_str()
                )
            },
        });
    }
    let (Some(intake), true) = (intake, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    // Microseconds: what both backends store, so a re-read equals this answer.
    let now = Utc::now().trunc_subsecs(6);
    let calendar = calendars.current();
    let rules = Rules {
        calendar: &calendar,
        warn_percent: sla.warn_percent,
    };
    let mut new = plan(&catalog, rules, &intake, uscc.as_str(), now)?;
    if let Some(filing) = &filer {
        new.assisted = Some(match (&filing.identity_check, principal.actor.clone()) {
            // A walk-in: the clerk of the lead unit (一口受理) checked who is at the window.
            (Some(check), Actor::Clerk(unit)) => {
                let lead = &new.request.lead_unit;
                if unit.as_str() != lead {
                    return Err(ApiError::new(
                        ErrorCode::NotLeadUnit,
                        format!("only a clerk of the lead unit `{lead}` takes this walk-in filing at the window (one intake, one feedback point)"),
                    )
                    .with_extension("lead_unit", serde_json::json!(lead)));
                }
                crate::routes::authorizations::act_row(
                    &principal,
                    uscc.as_str(),
                    "intake",
                    None,
                    Some(check),
                    now,
                )
            }
            (Some(_), _) => unreachable!("walk-ins are clerks' (checked by `filer`)"),
            (None, _) => {
                let standing = crate::routes::authorizations::standing_of(
                    &db,
                    &principal,
                    uscc.as_str(),
                    None,
                    now,
                )
                .await?;
                let Standing::Holds { grant, leader } = &standing else {
                    return Err(crate::routes::authorizations::filing_refused(
                        &standing,
                        uscc.as_str(),
                    ));
                };
                crate::routes::authorizations::act_row(
                    &principal,
                    uscc.as_str(),
                    "intake",
                    Some((grant, *leader)),
                    None,
                    now,
                )
            }
        });
    }
    let horizon = calendar.horizon();
    // serde_json's map is ordered, so this is a canonical encoding of the body. An official's
    // keys are their own (per enterprise): a space, never in a key, keeps them apart.
    let claim = key.map(|key| IdempotencyClaim {
        uscc: uscc.to_string(),
        key: match &filer {
            Some(_) => format!("{} {key}", principal.subject),
            None => key,
        },
        body_sha256,
    });
    let outcome = db
        .run(move |conn| {
            let render = |record: &RequestRecord| {
                serde_json::to_string(&view(record, horizon)).expect("serialisable")
            };
            requests::create(conn, &new, claim.as_ref(), now.naive_utc(), &render)
        })
        .await?;
    match outcome {
        Stored::Created(record) => Ok(HttpResponse::Created()
            .insert_header((
                header::LOCATION,
                format!("/api/v1/requests/{}", record.request.id),
            ))
            .insert_header((header::ETAG, etag(&record)))
            .json(view(&record, horizon))),
        Stored::Replay { status, body } => {
            let view: serde_json::Value =
                serde_json::from_str(&body).map_err(ApiError::internal)?;
            let id = view["id"].as_str().unwrap_or_default().to_string();
            Ok(HttpResponse::build(
                actix_web::http::StatusCode::from_u16(status).map_err(ApiError::internal)?,
            )
            .insert_header((header::LOCATION, format!("/api/v1/requests/{id}")))
            .insert_header((IDEMPOTENT_REPLAYED, "true"))
            .content_type("application/json")
            .body(body))
        }
        Stored::KeyReused => Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different body; use a new key for a new request",
        )),
    }
}

/// An official's filing for an enterprise, as far as the role decides it.
struct Filing {
    /// The enterprise.
    uscc: crate::domain::Uscc,
    /// A walk-in's identity check (when it is well-formed).
    identity_check: Option<assistance::IdentityCheck>,
    /// Sent as a walk-in (with an identity check, well-formed or not).
    walk_in: bool,
}

/// Who may file with (or without) `on_behalf_of`: an enterprise for itself only; a clerk a
/// walk-in or under a grant; a supervisor under a grant only; an administrator never.
/// `None` for an enterprise filing for itself. A malformed `on_behalf_of` is refused with
/// every other wrong field by the caller; here it only has to name a valid enterprise.
fn filer(
    principal: &Principal,
    on_behalf_of: Option<&serde_json::Value>,
) -> Result<Option<Filing>, ApiError> {
    let walk_in = on_behalf_of
        .and_then(|v| v.get("identity_check"))
        .is_some_and(|c| !c.is_null());
    match (&principal.actor, on_behalf_of) {
        (Actor::Enterprise(_), None) => Ok(None),
        (Actor::Enterprise(_), Some(_)) => Err(ApiError::validation(vec![FieldError {
            pointer: "/on_behalf_of".into(),
            message: "an enterprise files for itself; `on_behalf_of` is for officials filing for an enterprise (帮办)".into(),
        }])),
        (Actor::Admin, _) => Err(ApiError::forbidden(
            "an administrator does not file requests; enterprises file, and officials file for them with `on_behalf_of`",
        )),
        (_, None) => Err(ApiError::forbidden(
            "an official files for an enterprise with `on_behalf_of`: {uscc, identity_check} at the window, or {uscc} under a 帮办 grant",
        )),
        (Actor::Supervisor(_), Some(_)) if walk_in => Err(ApiError::forbidden(
            "a walk-in filing is taken by a window clerk of the lead unit, not by a supervisor",
        )),
        (_, Some(value)) => match assistance::check_on_behalf_of(value) {
            Ok(on_behalf_of) => Ok(Some(Filing {
                uscc: on_behalf_of.uscc,
                identity_check: on_behalf_of.identity_check,
                walk_in,
            })),
            // Every wrong field is named together with the intake's; the enterprise is needed
            // for the intake check, so without a valid one only these are told.
            Err(errors) => match value.get("uscc").and_then(|u| u.as_str()).map(crate::domain::Uscc::parse) {
                Some(Ok(uscc)) => Ok(Some(Filing {
                    uscc,
                    identity_check: None,
                    walk_in,
                })),
                _ => Err(ApiError::validation(errors)),
            },
        },
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// What the caller may see.
pub(crate) fn scope_of(principal: &Principal) -> Scope {
    match &principal.actor {
        Actor::Enterprise(uscc) => Scope::Enterprise(uscc.to_string()),
        Actor::Clerk(unit) | Actor::Supervisor(Some(unit)) => Scope::Unit(*unit),
        Actor::Supervisor(None) | Actor::Admin => Scope::All,
    }
}

/// Filters and page of the request list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this state.
    #[param(value_type = Option<Status>)]
    pub status: Option<String>,
    /// Only this matter or bundle code (a bundle's matters match too).
    pub matter: Option<String>,
    /// Only requests with a task of this category.
    #[param(value_type = Option<Category>)]
    pub category: Option<String>,
    /// Only requests with a task for this unit.
    #[param(value_type = Option<UnitCode>)]
    pub unit: Option<String>,
    /// Only this channel.
    #[param(value_type = Option<Channel>)]
    pub channel: Option<String>,
    /// Created at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub created_from: Option<String>,
    /// Created before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub created_to: Option<String>,
    /// Only the request with this number (exact), e.g. `PT20261129-000002`.
    #[param(pattern = "^PT[0-9]{8}-[0-9]{6}$", example = "PT20261129-000002")]
    pub number: Option<String>,
    /// Only requests whose id starts with this (4 to 36 lower-case hex digits and `-`): how
    /// the clerks' client finds a request from a short id.
    #[param(pattern = "^[0-9a-f-]{4,36}$", example = "0193f2a4")]
    pub id_prefix: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(format = Uuid)]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

fn parse_filters(query: &ListQuery) -> Result<(Filters, i64), ApiError> {
    // An empty `?matter=` means no filter; an empty value where the document names a set or
    // a format is as wrong as any other value outside it.
    let query = ListQuery {
        matter: non_empty(&query.matter),
        ..query.clone()
    };
    let mut errors = Vec::new();
    let mut check =
        |name: &str, value: &Option<String>, ok: &dyn Fn(&str) -> Result<(), String>| {
            if let Some(v) = value {
                if let Err(message) = ok(v) {
                    errors.push(FieldError {
                        pointer: name.into(),
                        message,
                    });
                }
            }
        };
    check("status", &query.status, &|v| {
        v.parse::<Status>().map(|_| ())
    });
    check("category", &query.category, &|v| {
        v.parse::<Category>().map(|_| ())
    });
    check("unit", &query.unit, &|v| {
        v.parse::<UnitCode>().map(|_| ()).map_err(|e| e.to_string())
    });
    check("channel", &query.channel, &|v| {
        serde_json::from_value::<Channel>(serde_json::Value::String(v.into()))
            .map(|_| ())
            .map_err(|_| "must be one of: online, window, self_service, cross_region".into())
    });
    let time = |v: &str| {
        DateTime::parse_from_rfc3339(v)
            .map(|_| ())
            .map_err(|e| format!("not an RFC 3339 time: {e}"))
    };
    check("created_from", &query.created_from, &time);
    check("created_to", &query.created_to, &time);
    check("number", &query.number, &|v| {
        // Bytes, not string slices: a multi-byte character must not split a slice (panic).
        let b = v.as_bytes();
        let ok = b.len() == 17
            && b.starts_with(b"PT")
            && b[2..10].iter().all(u8::is_ascii_digit)
            && b[10] == b'-'
            && b[11..].iter().all(u8::is_ascii_digit);
        if ok {
            Ok(())
        } else {
            Err("a request number: PT, the day (YYYYMMDD), -, six digits".into())
        }
    });
    check("id_prefix", &query.id_prefix, &|v| {
        if (4..=36).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
        {
            Ok(())
        } else {
            Err("4 to 36 lower-case hex digits and `-`".into())
        }
    });
    check("cursor", &query.cursor, &|v| {
        Uuid::parse_str(v)
            .map(|_| ())
            .map_err(|_| "not a cursor from a previous page".into())
    });
    check("limit", &query.limit, &|v| match v.parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(()),
        _ => Err(format!("must be a whole number from 1 to {MAX_LIMIT}")),
    });
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let at = |v: &Option<String>| {
        v.as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc).naive_utc())
    };
    Ok((
        Filters {
            status: query.status.clone(),
            matter: query.matter.clone(),
            category: query.category.clone(),
            unit: query.unit.clone(),
            channel: query.channel.clone(),
            created_from: at(&query.created_from),
            created_to: at(&query.created_to),
            number: query.number.clone(),
            id_prefix: query.id_prefix.clone(),
        },
        query
            .limit
            .as_deref()
            .and_then(|l| l.parse().ok())
            .unwrap_or(DEFAULT_LIMIT),
    ))
}

/// List the requests the caller may see: an enterprise its own, a clerk its unit's, a
/// supervisor its unit's or (district-wide) all; newest first.
#[utoipa::path(
    tag = "requests",
    operation_id = "requests_list",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page", body = RequestPage),
        (status = 422, description = "A filter is invalid", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/requests")]
pub async fn list(
    principal: Principal,
    query: web::Query<ListQuery>,
    db: web::Data<Database>,
    calendars: web::Data<Calendars>,
) -> Result<HttpResponse, ApiError> {
    let (filters, limit) = parse_filters(&query)?;
    let scope = scope_of(&principal);
    let cursor = query.cursor.clone();
    let (records, total) = db
        .run(move |conn| {
            Ok(requests::list(
                conn,
                &scope,
                &filters,
                cursor.as_deref(),
                limit,
            )?)
        })
        .await?;
    let next_cursor = (records.len() as i64 == limit)
        .then(|| records.last().map(|r| r.request.id.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(RequestPage {
        items: records
            .iter()
            .map(|r| view(r, calendars.current().horizon()).for_actor(&principal.actor))
            .collect(),
        total: total.count,
        total_capped: total.capped,
        next_cursor,
    }))
}

/// The request a step is taken on, whoever asks: the step's own rule then decides who may see
/// it (a 404 for those who may not, the same as for a missing id).
pub(crate) async fn acted_on(db: &Database, id: &str) -> Result<RequestRecord, ApiError> {
    let lookup = id.to_string();
    db.run(move |conn| Ok(requests::find(conn, &Scope::All, &lookup)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no request {id}")))
}

pub(crate) async fn visible(
    principal: &Principal,
    db: &Database,
    id: String,
) -> Result<RequestRecord, ApiError> {
    let scope = scope_of(principal);
    let lookup = id.clone();
    if let Some(record) = db
        .run(move |conn| Ok(requests::find(conn, &scope, &lookup)?))
        .await?
    {
        return Ok(record);
    }
    // An official acting for the enterprise under a live 帮办 grant sees the request too.
    if crate::routes::authorizations::official_of(principal).is_some() {
        let record = acted_on(db, &id).await?;
        let standing = crate::routes::authorizations::standing_of(
            db,
            principal,
            &record.request.uscc,
            Some(&record.request.id),
            Utc::now(),
        )
        .await?;
        if matches!(standing, Standing::Holds { .. }) {
            return Ok(record);
        }
    }
    Err(ApiError::not_found(format!("no request {id}")))
}

/// Read one request (404 when it is not the caller's to see).
#[utoipa::path(
    tag = "requests",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request", body = RequestView,
         headers(("ETag" = String, description = "Revision, for If-Match"))),
        (status = 404, description = "No such request for this caller", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/requests/{id}")]
pub async fn read(
    principal: Principal,
    id: web::Path<String>,
    db: web::Data<Database>,
    calendars: web::Data<Calendars>,
) -> Result<HttpResponse, ApiError> {
    let record = visible(&principal, &db, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(&record)))
        .json(view(&record, calendars.current().horizon()).for_actor(&principal.actor)))
}

/// Explain where the request was routed and why, with the catalog version applied.
#[utoipa::path(
    tag = "requests",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The routing decisions", body = RoutingView),
        (status = 404, description = "No such request for this caller", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/requests/{id}/routing")]
pub async fn routing_history(
    principal: Principal,
    id: web::Path<String>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let record = visible(&principal, &db, id.into_inner()).await?;
    let request_id = record.request.id.clone();
    let lookup = request_id.clone();
    let rows = db
        .run(move |conn| Ok(requests::routing_decisions(conn, &lookup)?))
        .await?;
    let enterprise = matches!(principal.actor, Actor::Enterprise(_));
    Ok(HttpResponse::Ok().json(RoutingView {
        request_id,
        decisions: rows
            .into_iter()
            .map(|row| RoutingDecision {
                id: row.id,
                reason: row.reason,
                catalog_version: row.catalog_version,
                decided_at: utc(row.decided_at),
                explanation: {
                    let explanation = serde_json::from_str(&row.explanation).unwrap_or_default();
                    if enterprise {
                        disclosure::routing_for_enterprise(explanation)
                    } else {
                        explanation
                    }
                },
            })
            .collect(),
    }))
}
