//! Supplying a deferred material (容缺后补) after intake.
//!
//! One write transaction, like a lifecycle step: the request's revision moves on only if it is
//! still the one the caller read (`If-Match`), the material goes from `pending` to `provided`
//! with who supplied it and how, its `material` clock stops (met, or late), and the audit event
//! `material.supplied` and the lead unit's mail are written with it.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::authorizations::AssistedActRow;
use super::clocks;
use super::notifications::{self, Notice};
use super::requests::{self, MaterialRow, RequestRecord, Scope};
use super::schema::{materials, requests as requests_table};
use super::{DbConnection, audit, write_transaction};
use crate::domain::Catalog;
use crate::domain::audit::Entry;
use crate::domain::calendar::Calendar;
use crate::domain::clock::Rules;
use crate::domain::material;
use crate::domain::request::MaterialStatus;
use crate::error::{ApiError, ErrorCode};

/// A supply to record.
#[derive(Debug, Clone)]
pub struct Supply {
    /// The request.
    pub request_id: String,
    /// The revision the caller read (`If-Match`).
    pub expected_revision: i32,
    /// The pending material (its row id).
    pub material_id: String,
    /// File name.
    pub name: String,
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// Who supplied or recorded it (the token's subject).
    pub supplied_by: String,
    /// Received at the window by a clerk.
    pub received_at_window: bool,
    /// The audit event `material.supplied`.
    pub event: Entry,
    /// The lead unit's mail.
    pub notices: Vec<Notice>,
    /// The act, when an official supplied it for the enterprise under a 帮办 grant.
    pub assisted: Option<AssistedActRow>,
    /// The calendar in force, for the clock.
    pub calendar: Arc<Calendar>,
    /// Warning share, percent.
    pub warn_percent: u32,
    /// When.
    pub at: DateTime<Utc>,
}

/// Why a supply was not recorded.
#[derive(Debug)]
pub enum SupplyError {
    /// Someone changed the request since the caller read it.
    Stale {
        /// The current revision.
        revision: i32,
        /// The current state.
        status: String,
    },
    /// The material is no longer pending (supplied meanwhile).
    NotPending,
    /// Anything else.
    Failed(ApiError),
}

impl From<diesel::result::Error> for SupplyError {
    fn from(error: diesel::result::Error) -> Self {
        SupplyError::Failed(error.into())
    }
}

impl From<ApiError> for SupplyError {
    fn from(error: ApiError) -> Self {
        SupplyError::Failed(error)
    }
}

/// Records `supply`; answers the request as it is now.
pub fn supply(conn: &mut DbConnection, supply: &Supply) -> Result<RequestRecord, SupplyError> {
    write_transaction(conn, |conn| {
        let at: NaiveDateTime = supply.at.naive_utc();
        let bumped = diesel::update(
            requests_table::table
                .filter(requests_table::id.eq(&supply.request_id))
                .filter(requests_table::revision.eq(supply.expected_revision)),
        )
        .set((
            requests_table::revision.eq(supply.expected_revision + 1),
            requests_table::updated_at.eq(at),
        ))
        .execute(conn)?;
        if bumped == 0 {
            let (revision, status): (i32, String) = requests_table::table
                .find(&supply.request_id)
                .select((requests_table::revision, requests_table::status))
                .first(conn)?;
            return Err(SupplyError::Stale { revision, status });
        }
        let provided = diesel::update(
            materials::table
                .find(&supply.material_id)
                .filter(materials::request_id.eq(&supply.request_id))
                .filter(materials::status.eq(MaterialStatus::Pending.as_str())),
        )
        .set((
            materials::status.eq(MaterialStatus::Provided.as_str()),
            materials::name.eq(&supply.name),
            materials::sha256.eq(&supply.sha256),
            materials::size_bytes.eq(supply.size_bytes),
            materials::supplied_at.eq(at),
            materials::supplied_by.eq(&supply.supplied_by),
            materials::received_at_window.eq(supply.received_at_window),
        ))
        .execute(conn)?;
        if provided == 0 {
            return Err(SupplyError::NotPending);
        }
        let rules = Rules {
            calendar: &supply.calendar,
            warn_percent: supply.warn_percent,
        };
        let mut events = vec![supply.event.clone()];
        events.extend(clocks::stop_material(
            conn,
            &supply.material_id,
            rules,
            &supply.event.actor,
            supply.at,
        )?);
        audit::append_many(conn, events)?;
        notifications::enqueue(conn, &supply.notices, supply.at)?;
        if let Some(act) = &supply.assisted {
            super::authorizations::record_act(conn, act)?;
        }
        requests::find(conn, &Scope::All, &supply.request_id)?
            .ok_or_else(|| SupplyError::Failed(ApiError::not_found("the request disappeared")))
    })
}

/// The pending materials among `materials`, as `(matter code, material code)`.
pub fn pending(materials: &[MaterialRow]) -> impl Iterator<Item = (&str, &str)> {
    materials
        .iter()
        .filter(|m| m.status == MaterialStatus::Pending.as_str())
        .map(|m| (m.matter_code.as_str(), m.code.as_str()))
}

/// Refuses `deliver` while a deferred material (容缺) that holds back delivery is pending:
/// 409 `materials_pending` naming them (`materials`). The lifecycle step handler calls it just
/// before recording the step; the step's revision guard makes a supply in between a 412.
pub fn ready_to_deliver(catalog: &Catalog, record: &RequestRecord) -> Result<(), ApiError> {
    // A denial hands over no result: a material owed for the result is moot.
    if record.request.result_kind.as_deref() == Some("denial") {
        return Ok(());
    }
    let holding = material::holding_delivery(catalog, pending(&record.materials));
    if holding.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::MaterialsPending,
        format!(
            "request {} may not be delivered before its deferred materials (容缺后补) arrive: {}",
            record.request.number,
            holding.join(", ")
        ),
    )
    .with_extension("materials", serde_json::json!(holding)))
}
