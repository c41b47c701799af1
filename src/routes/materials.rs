//! `POST /api/v1/requests/{id}/materials`: a deferred material (容缺后补) supplied after
//! intake — online by the enterprise (or for it by an official holding its 帮办 grant), or
//! received at the window by a clerk of the lead unit. Guarded by `If-Match` like a lifecycle
//! step. Who may: [`crate::domain::material`].

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::{Actor, Principal};
use crate::config::SlaSettings;
use crate::db::Database;
use crate::db::calendars::Calendars;
use crate::db::materials::{self, Supply, SupplyError};
use crate::db::notifications::Notice;
use crate::db::requests::RequestRecord;
use crate::domain::assistance::Standing;
use crate::domain::audit::Entry;
use crate::domain::catalog::Matter;
use crate::domain::intake;
use crate::domain::material::{self, Caller, Parties, Refusal, Route};
use crate::domain::notice::{About, Message};
use crate::domain::request::{MaterialStatus, RequestKind, Status};
use crate::domain::{Catalog, UnitCode};
use crate::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::http::extract::if_match_revision;
use crate::routes::requests::{acted_on, etag, stale, view};

/// A deferred material, supplied.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppliedMaterial {
    /// Matter the material is for (required in a bundle).
    pub matter: Option<String>,
    /// Material code from the catalog; must be pending on the request.
    pub code: String,
    /// File name.
    pub name: String,
    /// SHA-256 of the file, 64 hex digits.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub sha256: String,
    /// File size in bytes.
    #[schema(minimum = 1)]
    pub size_bytes: i64,
    /// `true` when a clerk of the lead unit records a material received at the window
    /// (required then); an enterprise supplying online leaves it out or sends `false`.
    pub received_at_window: Option<bool>,
}

/// The request's parties as the domain rule reads them.
fn caller(actor: &Actor) -> Caller<'_> {
    match actor {
        Actor::Enterprise(uscc) => Caller::Enterprise(uscc.as_str()),
        Actor::Clerk(unit) => Caller::Clerk(*unit),
        Actor::Supervisor(unit) => Caller::Overseer(*unit),
        Actor::Admin => Caller::Administrator,
    }
}

fn refused(refusal: Refusal, id: &str) -> ApiError {
    match refusal {
        Refusal::Hidden => ApiError::not_found(format!("no request {id}")),
        Refusal::NotLeadUnit => ApiError::new(
            ErrorCode::NotLeadUnit,
            "only a clerk of the request's lead unit (牵头单位) records a material received at the window",
        ),
        Refusal::Forbidden(why) => ApiError::forbidden(why),
        Refusal::WrongFlag(why) => ApiError::validation(vec![FieldError {
            pointer: "/received_at_window".into(),
            message: why,
        }]),
        Refusal::NoGrant(lapse) => {
            let why = match &lapse {
                None => "no 帮办 grant of the enterprise names you".to_string(),
                Some(lapse) => format!("grant {} {}", lapse.grant(), lapse_reason(lapse)),
            };
            crate::routes::authorizations::no_grant(
                lapse.as_ref(),
                format!(
                    "only the enterprise that submitted the request, or an official it authorised (帮办), supplies a material online: {why}"
                ),
            )
        }
    }
}

/// Why a grant does not cover the supply, after its id.
fn lapse_reason(lapse: &crate::domain::assistance::Lapse) -> &'static str {
    use crate::domain::assistance::Lapse;
    match lapse {
        Lapse::Revoked(_) => "was revoked by the enterprise",
        Lapse::Expired(_) => "has expired",
        Lapse::NotYet(_) => "has not begun",
        Lapse::OtherRequest(_) => "covers another request only",
    }
}

/// The supplied file's SHA-256 (checked present by the intake check).
fn sha256_of(file: &intake::DeclaredMaterial) -> String {
    file.sha256.clone().unwrap_or_default()
}

/// The catalog matters of the request: its matter, or its bundle's.
fn matters_of<'a>(catalog: &'a Catalog, record: &RequestRecord) -> (RequestKind, Vec<&'a Matter>) {
    let r = &record.request;
    if r.kind == RequestKind::Bundle.as_str() {
        let matters = catalog
            .bundle(&r.code)
            .map(|b| b.matters.iter().filter_map(|m| catalog.matter(m)).collect())
            .unwrap_or_default();
        (RequestKind::Bundle, matters)
    } else {
        (
            RequestKind::Matter,
            catalog.matter(&r.code).into_iter().collect(),
        )
    }
}

/// Supply a deferred material (容缺后补).
///
/// The enterprise that owns the request supplies it online, and so may an official holding a
/// live 帮办 grant of the enterprise covering the request (audited with `on_behalf_of`,
/// `authorization` and `leader`, and recorded among the grant's acts); a clerk of the
/// request's lead unit records one received at the window with `received_at_window: true`. The material must be
/// pending on the request, and the request still open: not withdrawn, not refused (不予受理),
/// not delivered — unless its matter delivers before its materials arrive
/// (`deliver_before_materials`). In one step: the material is provided, its `material` clock stops (met, or
/// late), the audit trail records `material.supplied`, and the lead unit is mailed.
#[utoipa::path(
    tag = "requests",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Request id"),
        ("If-Match" = String, Header, description = "The ETag of the request as read, e.g. \"r3\"")
    ),
    request_body(content = SuppliedMaterial, example = json!({
        "code": "premises_proof", "name": "lease.pdf", "size_bytes": 48213,
        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    })),
    responses(
        (status = 200, description = "Supplied; the request as it is now", body = crate::routes::requests::RequestView,
         headers(("ETag" = String, description = "The new revision"))),
        (status = 403, description = "`not_lead_unit`: a co-unit's clerk at the window; `forbidden`: a supervisor or \
                                      administrator at the window; online, an official without a live 帮办 grant: \
                                      `authorization_required`, `authorization_revoked`, `authorization_expired`, \
                                      `authorization_not_started`, `authorization_out_of_scope` (`authorization` names the grant)",
         body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`material_not_pending`: the material is not pending on the request; \
                                      `action_not_allowed`: the request is closed (`state`)",
         body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Someone else changed the request first", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A member is wrong (unknown material code, SHA-256, size, name), or \
                                      `received_at_window` does not fit the caller", body = Problem,
         content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
        crate::routes::JsonBodyFailures,
        crate::routes::AuthFailures
    )
)]
#[post("/api/v1/requests/{id}/materials")]
#[allow(clippy::too_many_arguments)] // actix extractors: one per piece of app state
pub async fn supply(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<Value>,
    db: web::Data<Database>,
    calendars: web::Data<Calendars>,
    sla: web::Data<SlaSettings>,
    catalog: web::Data<Catalog>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let id = id.into_inner();
    let record = acted_on(&db, &id).await?;
    let r = &record.request;
    let units: Vec<UnitCode> = record
        .tasks
        .iter()
        .filter_map(|t| t.unit.parse().ok())
        .collect();
    // An official's 帮办 standing for the owner: supplying online is the enterprise's act, and
    // a live grant shows the request to an official of any unit.
    let assistant = if matches!(principal.actor, Actor::Clerk(_) | Actor::Supervisor(_)) {
        crate::routes::authorizations::standing_of(
            &db,
            &principal,
            &r.uscc,
            Some(&r.id),
            Utc::now(),
        )
        .await?
    } else {
        Standing::Without
    };
    let parties = Parties {
        owner: &r.uscc,
        lead_unit: r.lead_unit.parse().map_err(ApiError::internal)?,
        units: &units,
        assistant: &assistant,
    };
    // Read leniently here; the body check below names a flag that is not a boolean.
    let at_window = body.get("received_at_window") == Some(&Value::Bool(true));
    let route = material::may_supply(caller(&principal.actor), parties, at_window)
        .map_err(|refusal| refused(refusal, &id))?;
    let expected = if_match_revision(&req, "request", r.revision)?;
    if expected != r.revision {
        return Err(stale(r.revision, &r.status));
    }
    let status: Status = r.status.parse().map_err(ApiError::internal)?;
    let (kind, matters) = matters_of(&catalog, &record);
    let closed = match status {
        Status::Withdrawn | Status::NotAccepted => true,
        // A matter whose result may go out first (`deliver_before_materials`) still takes
        // its deferred materials after delivery; any other delivered request is closed.
        Status::Delivered => !matters.iter().any(|m| m.deliver_before_materials),
        _ => false,
    };
    if closed {
        return Err(ApiError::new(
            ErrorCode::ActionNotAllowed,
            format!(
                "request {} is {status}: materials are no longer taken",
                r.number
            ),
        )
        .with_extension("state", json!(status))
        .with_extension("allowed", json!([])));
    }
    let supplied = intake::check_supplied(&body, &matters, kind).map_err(ApiError::validation)?;
    let file = &supplied.file;
    let pending = record.materials.iter().find(|m| {
        m.matter_code == file.matter_code
            && m.code == file.code
            && m.status == MaterialStatus::Pending.as_str()
    });
    let Some(pending) = pending else {
        return Err(ApiError::new(
            ErrorCode::MaterialNotPending,
            format!(
                "material `{}` of `{}` is not pending on request {}: it was provided, or never deferred",
                file.code, file.matter_code, r.number
            ),
        )
        .with_extension(
            "pending",
            json!(materials::pending(&record.materials).map(|(_, code)| code).collect::<Vec<_>>()),
        ));
    };
    let now = Utc::now().trunc_subsecs(6);
    let (role, unit) = match &principal.actor {
        Actor::Clerk(u) => ("clerk", Some(u.to_string())),
        Actor::Supervisor(u) => ("supervisor", u.map(|u| u.to_string())),
        _ => ("enterprise", None),
    };
    let received_at_window = route == Route::Window;
    let mut payload = json!({
        "matter": file.matter_code,
        "code": file.code,
        "name": file.name,
        "sha256": sha256_of(file),
        "size": file.size_bytes.unwrap_or_default(),
        "received_at_window": received_at_window,
    });
    // Supplied for the enterprise under a grant: the audit names the enterprise and the grant,
    // and the act is recorded under the grant, as for the enterprise's lifecycle steps.
    let assisted = match &route {
        Route::Assisted { grant, leader } => {
            payload["on_behalf_of"] = json!(r.uscc);
            payload["authorization"] = json!(grant);
            payload["leader"] = json!(leader);
            // Among the grant's acts a supply counts as a supplement (补): the table and the
            // 帮办 statistics know intake, supplement and withdraw; the audit event says which.
            let mut row = crate::routes::authorizations::act_row(
                &principal,
                &r.uscc,
                "supplement",
                Some((grant, *leader)),
                None,
                now,
            );
            row.request_id = r.id.clone();
            Some(row)
        }
        Route::Online | Route::Window => None,
    };
    let sha256 = sha256_of(file);
    let size_bytes = file.size_bytes.unwrap_or_default();
    let about = About::of(&catalog, &r.number, &r.code);
    // The lead unit's only address in the catalog is its supervisor's.
    let lead = catalog.unit(parties.lead_unit);
    let notices = vec![Notice {
        request_id: Some(r.id.clone()),
        recipient: lead.supervisor_email.clone(),
        message: Message::MaterialSupplied {
            code: file.code.clone(),
            name: file.name.clone(),
            received_at_window,
        },
        about,
    }];
    let step = Supply {
        request_id: r.id.clone(),
        expected_revision: expected,
        material_id: pending.id.clone(),
        name: file.name.clone(),
        sha256: sha256.clone(),
        size_bytes,
        supplied_by: principal.subject.clone(),
        received_at_window,
        event: Entry {
            request_id: r.id.clone(),
            actor: principal.subject.clone(),
            role: role.into(),
            unit,
            action: "material.supplied".into(),
            state_before: Some(status.as_str().into()),
            state_after: Some(status.as_str().into()),
            payload,
            at: now,
        },
        notices,
        assisted,
        calendar: calendars.current(),
        warn_percent: sla.warn_percent,
        at: now,
    };
    let number = r.number.clone();
    let code = file.code.clone();
    let updated = db
        .run(move |conn| match materials::supply(conn, &step) {
            Ok(record) => Ok(Ok(record)),
            Err(SupplyError::Stale { revision, status }) => Ok(Err(stale(revision, &status))),
            Err(SupplyError::NotPending) => Ok(Err(ApiError::new(
                ErrorCode::MaterialNotPending,
                format!("material `{code}` of request {number} was supplied meanwhile"),
            ))),
            Err(SupplyError::Failed(error)) => Err(error),
        })
        .await??;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(&updated)))
        .json(view(&updated, calendars.current().horizon()).for_actor(&principal.actor)))
}
