//! Reads for the Open311 GeoReport v2 interface: requests by number, service code, status
//! and creation window, with the clocks and materials their GeoReport view needs.
//!
//! Requests are *created* through [`super::requests::create`], the one intake path; this
//! module only selects.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::requests::{RequestRow, with_parts};
use super::schema::requests;

/// A request with its parts, as the rest of the API reads it.
pub use super::requests::RequestRecord as Found;

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
