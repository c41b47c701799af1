//! Storing and reading the audit chain. Appends happen inside the caller's write transaction,
//! so an event exists exactly when the change it records does.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::audit_events;
use crate::domain::audit::{self, Broken, Entry, Event, Verifier};

/// PostgreSQL advisory lock serialising appends (SQLite's `BEGIN IMMEDIATE` already does).
const APPEND_LOCK_KEY: i64 = 0x6d73_6261_7564; // "msbaud"

/// Rows read per page when verifying.
const PAGE: i64 = 1000;

/// A stored event.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct EventRow {
    /// Position.
    pub seq: i64,
    /// Request.
    pub request_id: String,
    /// Actor subject.
    pub actor: String,
    /// Actor role.
    pub role: String,
    /// Actor unit.
    pub unit: Option<String>,
    /// Action.
    pub action: String,
    /// State before.
    pub state_before: Option<String>,
    /// State after.
    pub state_after: Option<String>,
    /// Payload JSON text.
    pub payload: String,
    /// Time (UTC).
    pub at: NaiveDateTime,
    /// Previous hash.
    pub prev_hash: String,
    /// Hash.
    pub hash: String,
}

impl EventRow {
    fn from_event(event: &Event) -> Self {
        let e = &event.entry;
        Self {
            seq: event.seq,
            request_id: e.request_id.clone(),
            actor: e.actor.clone(),
            role: e.role.clone(),
            unit: e.unit.clone(),
            action: e.action.clone(),
            state_before: e.state_before.clone(),
            state_after: e.state_after.clone(),
            payload: e.payload.to_string(),
            at: e.at.naive_utc(),
            prev_hash: event.prev_hash.clone(),
            hash: event.hash.clone(),
        }
    }

    /// The event as the chain sees it. A payload that no longer parses is kept as a string,
    /// so its hash check fails instead of the read.
    pub fn to_event(&self) -> Event {
        Event {
            seq: self.seq,
            entry: Entry {
                request_id: self.request_id.clone(),
                actor: self.actor.clone(),
                role: self.role.clone(),
                unit: self.unit.clone(),
                action: self.action.clone(),
                state_before: self.state_before.clone(),
                state_after: self.state_after.clone(),
                payload: serde_json::from_str(&self.payload)
                    .unwrap_or_else(|_| serde_json::Value::String(self.payload.clone())),
                at: self.at.and_utc(),
            },
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        }
    }
}

/// Appends `entry` to the chain. Call inside a write transaction.
pub fn append(conn: &mut DbConnection, entry: Entry) -> QueryResult<Event> {
    if let DbConnection::Pg(_) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY})"))
            .execute(conn)?;
    }
    let head: Option<(i64, String)> = audit_events::table
        .order(audit_events::seq.desc())
        .select((audit_events::seq, audit_events::hash))
        .first(conn)
        .optional()?;
    let event = audit::append(head.as_ref().map(|(s, h)| (*s, h.as_str())), entry);
    diesel::insert_into(audit_events::table)
        .values(EventRow::from_event(&event))
        .execute(conn)?;
    Ok(event)
}

/// The events of one request, oldest first.
pub fn for_request(conn: &mut DbConnection, request_id: &str) -> QueryResult<Vec<EventRow>> {
    audit_events::table
        .filter(audit_events::request_id.eq(request_id))
        .order(audit_events::seq)
        .select(EventRow::as_select())
        .load(conn)
}

/// Verifies the whole chain, a page at a time.
pub fn verify(conn: &mut DbConnection) -> QueryResult<Result<i64, Broken>> {
    let mut verifier = Verifier::default();
    loop {
        let (after, _) = verifier.head();
        let page: Vec<EventRow> = audit_events::table
            .filter(audit_events::seq.gt(after))
            .order(audit_events::seq)
            .limit(PAGE)
            .select(EventRow::as_select())
            .load(conn)?;
        if page.is_empty() {
            return Ok(Ok(verifier.count()));
        }
        for row in &page {
            if let Err(broken) = verifier.push(&row.to_event()) {
                return Ok(Err(broken));
            }
        }
    }
}
