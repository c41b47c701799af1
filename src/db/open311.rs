//! Reads for the Open311 GeoReport v2 interface: requests by number, service code, status
//! and creation window, with the clocks and materials their GeoReport view needs.
//!
//! Requests are *created* through [`super::requests::create`], the one intake path; this
//! module only selects.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::requests::{ClockRow, MaterialRow, RequestRow};
use super::schema::{clocks, materials, requests};

/// What GeoReport asks of a request: the row, its clocks and its materials.
#[derive(Debug, Clone)]
pub struct Found {
    /// The request.
    pub request: RequestRow,
    /// Its clocks.
    pub clocks: Vec<ClockRow>,
    /// Its materials.
    pub materials: Vec<MaterialRow>,
}

/// A GeoReport selection; every part optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only this enterprise's requests.
    pub uscc: Option<String>,
    /// Only these numbers (GeoReport's `service_request_id`); when set, the other filters
    /// are not applied, as GeoReport says.
    pub numbers: Option<Vec<String>>,
    /// Only these codes.
    pub codes: Vec<String>,
    /// Only these statuses (ours); empty for any.
    pub statuses: Vec<&'static str>,
    /// Created at or after (UTC).
    pub created_from: Option<NaiveDateTime>,
    /// Created at or before (UTC).
    pub created_to: Option<NaiveDateTime>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// The requests of `selection`, newest first.
pub fn select(conn: &mut DbConnection, selection: &Selection) -> QueryResult<Vec<Found>> {
    let mut query = requests::table.into_boxed();
    if let Some(uscc) = &selection.uscc {
        query = query.filter(requests::uscc.eq(uscc));
    }
    match &selection.numbers {
        Some(numbers) => query = query.filter(requests::number.eq_any(numbers)),
        None => {
            if !selection.codes.is_empty() {
                query = query.filter(requests::code.eq_any(&selection.codes));
            }
            if !selection.statuses.is_empty() {
                query = query.filter(requests::status.eq_any(&selection.statuses));
            }
            if let Some(from) = selection.created_from {
                query = query.filter(requests::created_at.ge(from));
            }
            if let Some(to) = selection.created_to {
                query = query.filter(requests::created_at.le(to));
            }
        }
    }
    let rows: Vec<RequestRow> = query
        .order(requests::id.desc())
        .limit(selection.limit)
        .select(RequestRow::as_select())
        .load(conn)?;
    with_parts(conn, rows)
}

/// The request whose id (UUID) is `id`, if any.
pub fn by_id(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Found>> {
    let rows: Vec<RequestRow> = requests::table
        .filter(requests::id.eq(id))
        .select(RequestRow::as_select())
        .load(conn)?;
    Ok(with_parts(conn, rows)?.pop())
}

fn with_parts(conn: &mut DbConnection, rows: Vec<RequestRow>) -> QueryResult<Vec<Found>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let all_clocks: Vec<ClockRow> = clocks::table
        .filter(clocks::request_id.eq_any(&ids))
        .order((clocks::request_id, clocks::id))
        .select(ClockRow::as_select())
        .load(conn)?;
    let all_materials: Vec<MaterialRow> = materials::table
        .filter(materials::request_id.eq_any(&ids))
        .order((materials::request_id, materials::id))
        .select(MaterialRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|request| Found {
            clocks: all_clocks
                .iter()
                .filter(|c| c.request_id == request.id)
                .cloned()
                .collect(),
            materials: all_materials
                .iter()
                .filter(|m| m.request_id == request.id)
                .cloned()
                .collect(),
            request,
        })
        .collect())
}
