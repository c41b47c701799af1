//! The audit trail: a request's timeline, and verification of the whole chain, optionally
//! against a head the caller kept from an earlier verification (the anchor that makes the
//! removal of the newest events visible).

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Actor, Principal, Role};
use crate::db::{Database, audit};
use crate::domain::audit::{Fault, Head};
use crate::domain::disclosure::{self, Audience};
use crate::error::{ApiError, FieldError, Problem};
use crate::routes::requests::visible;

/// One event of a request's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Position in the district-wide chain.
    pub seq: i64,
    /// What happened (`intake`, `accept`, …).
    pub action: String,
    /// Who: the token subject (the enterprise's code for an intake). An enterprise reads the
    /// acting party instead: `enterprise`, the unit's code, `system` or `district`.
    pub actor: String,
    /// Their role.
    pub role: String,
    /// Their unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// State before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_before: Option<String>,
    /// State after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_after: Option<String>,
    /// Reason and details (an enterprise reads them without the units' internal notes).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// When.
    pub at: DateTime<Utc>,
    /// This event's hash (SHA-256, hex).
    pub hash: String,
}

/// A request's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    /// The request.
    pub request_id: String,
    /// Its events, oldest first.
    pub events: Vec<EventView>,
}

/// What a verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChainStatus {
    /// Every link holds (and the anchor, if given, is still there).
    Ok,
    /// A link does not hold, or the anchored event was replaced: see `broken_at_seq`.
    Broken,
    /// Every link holds but the chain ends before the anchor: its newest events were removed.
    Truncated,
}

/// The newest event of the chain: keep it outside the database and pass it back as
/// `anchor_seq` and `anchor_hash` next time.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainHead {
    /// Its position.
    #[schema(minimum = 1)]
    pub seq: i64,
    /// Its hash (SHA-256, hex).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
}

/// The outcome of a chain verification.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    /// `ok`, `broken` or `truncated`.
    pub status: ChainStatus,
    /// Events that verified.
    pub count: i64,
    /// The newest event, when the chain is intact and not empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<ChainHead>,
    /// Where the chain breaks, when it does (`truncated`: the first missing event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at_seq: Option<i64>,
    /// What is wrong there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A head kept from an earlier verification (both or neither).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnchorQuery {
    /// `head.seq` of an earlier verification.
    #[param(value_type = Option<i64>, minimum = 1)]
    pub anchor_seq: Option<String>,
    /// `head.hash` of the same verification.
    #[param(pattern = "^[0-9a-f]{64}$")]
    pub anchor_hash: Option<String>,
}

impl AnchorQuery {
    /// The anchor, if one is given; every wrong parameter named.
    fn anchor(&self) -> Result<Option<Head>, ApiError> {
        let field = |pointer: &str, message: &str| FieldError {
            pointer: pointer.into(),
            message: message.into(),
        };
        let mut errors = Vec::new();
        let seq = match self.anchor_seq.as_deref().map(str::parse::<i64>) {
            Some(Ok(seq)) if seq >= 1 => Some(seq),
            Some(_) => {
                errors.push(field("anchor_seq", "must be a whole number from 1"));
                None
            }
            None => None,
        };
        let hash = match self.anchor_hash.as_deref() {
            Some(hash)
                if hash.len() == 64
                    && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
            {
                Some(hash.to_string())
            }
            Some(_) => {
                errors.push(field(
                    "anchor_hash",
                    "must be 64 lower-case hexadecimal digits (a head's hash)",
                ));
                None
            }
            None => None,
        };
        if self.anchor_seq.is_some() != self.anchor_hash.is_some() {
            let missing = if self.anchor_seq.is_none() {
                "anchor_seq"
            } else {
                "anchor_hash"
            };
            errors.push(field(
                missing,
                "required: an anchor is anchor_seq and anchor_hash together",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(seq.zip(hash).map(|(seq, hash)| Head { seq, hash }))
    }
}

/// The request's timeline: every change, oldest first (who may read the request may read it).
///
/// The enterprise reads the units that acted, not the officials' token subjects, and no
/// internal notes (co-units' opinion notes, the decision record of opinions, a rectification
/// case's contact note, the reason of a return or a reroute): docs/workflow.md. The stored
/// events and their hashes are the same for everyone.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The timeline", body = Timeline),
        (status = 404, description = "No such request for this caller", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/requests/{id}/events")]
pub async fn timeline(
    principal: Principal,
    id: web::Path<String>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let record = visible(&principal, &db, id.into_inner()).await?;
    let audience = match principal.actor {
        Actor::Enterprise(_) => Audience::Enterprise,
        _ => Audience::Staff,
    };
    let request_id = record.request.id;
    let lookup = request_id.clone();
    let rows = db
        .run(move |conn| Ok(audit::for_request(conn, &lookup)?))
        .await?;
    let events = rows
        .iter()
        .map(|row| {
            let event = row.to_event();
            let entry = disclosure::event_for(audience, event.entry);
            EventView {
                seq: event.seq,
                action: entry.action,
                actor: entry.actor,
                role: entry.role,
                unit: entry.unit,
                state_before: entry.state_before,
                state_after: entry.state_after,
                payload: entry.payload,
                at: entry.at,
                hash: event.hash,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(Timeline { request_id, events }))
}

/// Verify the whole audit chain (supervisors and administrators).
///
/// `ok` with the count and the head, or `broken` with the first event whose link fails. Given
/// the head of an earlier verification (`anchor_seq`, `anchor_hash`), also checks that this
/// event is still there, unchanged: `truncated` when the chain now ends before it (its newest
/// events were removed), `broken` when another event stands there.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(AnchorQuery),
    responses(
        (status = 200, description = "The verification", body = Verification),
        (status = 422, description = "The anchor is incomplete or malformed", body = Problem, content_type = "application/problem+json"),
        crate::routes::AuthFailures
    )
)]
#[get("/api/v1/audit/verify")]
pub async fn verify(
    principal: Principal,
    query: web::Query<AnchorQuery>,
    db: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Supervisor, Role::Admin])?;
    let anchor = query.anchor()?;
    let outcome = db.run(move |conn| Ok(audit::verify(conn, anchor)?)).await?;
    let body = match outcome {
        Ok(head) => Verification {
            status: ChainStatus::Ok,
            count: head.seq,
            head: (head.seq > 0).then_some(ChainHead {
                seq: head.seq,
                hash: head.hash,
            }),
            broken_at_seq: None,
            problem: None,
        },
        Err(broken) => Verification {
            status: match broken.fault {
                Fault::Truncated => ChainStatus::Truncated,
                Fault::Link | Fault::Rewritten => ChainStatus::Broken,
            },
            count: broken.seq - 1,
            head: None,
            broken_at_seq: Some(broken.seq),
            problem: Some(broken.problem),
        },
    };
    Ok(HttpResponse::Ok().json(body))
}
