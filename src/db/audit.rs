//! Storing and reading the audit chain. Appends happen inside the caller's write transaction,
//! so an event exists exactly when the change it records does.
//!
//! [`append_many`] is the one way in ([`append`] is its one-entry case): it takes the chain's
//! lock once, reads the head once, links the entries in memory and inserts them as multi-row
//! `INSERT`s. MultiConnection has no multi-row insert, so that one statement goes to the
//! concrete connection; it is the same SQL on both backends.

use chrono::NaiveDateTime;
use diesel::connection::TransactionManager;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::audit_events;
use crate::domain::audit::{self, Broken, Entry, Event, Head, Verifier};

/// PostgreSQL advisory lock serialising appends (SQLite's `BEGIN IMMEDIATE` already does).
const APPEND_LOCK_KEY: i64 = 0x6d73_6261_7564; // "msbaud"

/// Rows read per page when verifying.
const PAGE: i64 = 1000;

/// Columns of `audit_events`: bound parameters per inserted row.
const COLUMNS: usize = 12;

/// Rows per multi-row `INSERT`: 12 000 bound parameters, under SQLite's limit (32 766 since
/// 3.32; the bundled SQLite is newer) and PostgreSQL's (65 535).
const ROWS_PER_INSERT: usize = 1000;
const _: () = assert!(ROWS_PER_INSERT * COLUMNS <= 32_766);

/// A stored event.
// `treat_none_as_default_value = false`: a missing unit or state is bound as NULL instead of
// written as DEFAULT, which SQLite's multi-row INSERT cannot take (diesel would fall back to
// one statement per row).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events, treat_none_as_default_value = false)]
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

/// Appends `entry` to the chain. Call inside a write transaction ([`super::write_transaction`]).
pub fn append(conn: &mut DbConnection, entry: Entry) -> QueryResult<Event> {
    let mut events = append_many(conn, vec![entry])?;
    Ok(events.pop().expect("one entry makes one event"))
}

/// Appends `entries` to the chain in order, with one lock, one head read and an `INSERT` per
/// 1000 rows. Call inside a write transaction ([`super::write_transaction`]): outside one it
/// fails with `NotInTransaction` (on PostgreSQL the chain's lock would end with the first
/// statement). Nothing is written, and no lock taken, for no entries.
pub fn append_many(conn: &mut DbConnection, entries: Vec<Entry>) -> QueryResult<Vec<Event>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let depth =
        <DbConnection as Connection>::TransactionManager::transaction_manager_status_mut(conn)
            .transaction_depth()?;
    if depth.is_none() {
        return Err(diesel::result::Error::NotInTransaction);
    }
    super::locks::hold_until_commit(conn, APPEND_LOCK_KEY)?;
    let head: Option<(i64, String)> = audit_events::table
        .order(audit_events::seq.desc())
        .select((audit_events::seq, audit_events::hash))
        .first(conn)
        .optional()?;
    let events = audit::append_all(head.as_ref().map(|(s, h)| (*s, h.as_str())), entries);
    let rows: Vec<EventRow> = events.iter().map(EventRow::from_event).collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        insert(conn, chunk)?;
    }
    Ok(events)
}

/// One `INSERT` of `rows` (at most [`ROWS_PER_INSERT`]).
fn insert(conn: &mut DbConnection, rows: &[EventRow]) -> QueryResult<usize> {
    let into = || diesel::insert_into(audit_events::table);
    match (rows, conn) {
        // The common case, one event per change: a statement the connection keeps prepared.
        ([row], conn) => into().values(row).execute(conn),
        (rows, DbConnection::Sqlite(c)) => into().values(rows).execute(c),
        (rows, DbConnection::Pg(c)) => into().values(rows).execute(c),
    }
}

/// The events of one request, oldest first.
pub fn for_request(conn: &mut DbConnection, request_id: &str) -> QueryResult<Vec<EventRow>> {
    audit_events::table
        .filter(audit_events::request_id.eq(request_id))
        .order(audit_events::seq)
        .select(EventRow::as_select())
        .load(conn)
}

/// The newest event of `action` on a request, if any (read through `audit_events_request`).
pub fn last_of(
    conn: &mut DbConnection,
    request_id: &str,
    action: &str,
) -> QueryResult<Option<EventRow>> {
    audit_events::table
        .filter(audit_events::request_id.eq(request_id))
        .filter(audit_events::action.eq(action))
        .order(audit_events::seq.desc())
        .select(EventRow::as_select())
        .first(conn)
        .optional()
}

/// Every event of `action` on a request, oldest first.
pub fn all_of(
    conn: &mut DbConnection,
    request_id: &str,
    action: &str,
) -> QueryResult<Vec<EventRow>> {
    audit_events::table
        .filter(audit_events::request_id.eq(request_id))
        .filter(audit_events::action.eq(action))
        .order(audit_events::seq)
        .select(EventRow::as_select())
        .load(conn)
}

/// Verifies the whole chain, a page at a time; with an `anchor` (a head seen earlier), also
/// that it still holds that event. Answers the head reached.
pub fn verify(conn: &mut DbConnection, anchor: Option<Head>) -> QueryResult<Result<Head, Broken>> {
    let mut verifier = match anchor {
        Some(anchor) => Verifier::anchored(anchor),
        None => Verifier::default(),
    };
    loop {
        let (after, _) = verifier.head();
        let page: Vec<EventRow> = audit_events::table
            .filter(audit_events::seq.gt(after))
            .order(audit_events::seq)
            .limit(PAGE)
            .select(EventRow::as_select())
            .load(conn)?;
        if page.is_empty() {
            return Ok(verifier.finish());
        }
        for row in &page {
            if let Err(broken) = verifier.push(&row.to_event()) {
                return Ok(Err(broken));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use diesel::pg::Pg;
    use diesel::sqlite::Sqlite;

    fn rows(n: usize) -> Vec<EventRow> {
        let entries = (0..n)
            .map(|i| Entry {
                request_id: format!("r{i}"),
                actor: "sla-worker".into(),
                role: "system".into(),
                unit: None,
                action: "clock_breached".into(),
                state_before: None,
                state_after: None,
                payload: serde_json::json!({}),
                at: Utc::now(),
            })
            .collect();
        audit::append_all(None, entries)
            .iter()
            .map(EventRow::from_event)
            .collect()
    }

    #[test]
    fn a_batch_is_one_multi_row_insert_on_both_backends() {
        let rows = rows(3);
        let query = diesel::insert_into(audit_events::table).values(&rows[..]);
        // Rows with NULLs too: a DEFAULT would make diesel send SQLite one INSERT per row.
        let sqlite = diesel::debug_query::<Sqlite, _>(&query).to_string();
        assert_eq!(sqlite.matches("INSERT INTO").count(), 1, "{sqlite}");
        assert_eq!(sqlite.matches("), (").count(), 2, "{sqlite}");
        let pg = diesel::debug_query::<Pg, _>(&query).to_string();
        assert_eq!(pg.matches("INSERT INTO").count(), 1, "{pg}");
        assert!(!pg.contains("DEFAULT"), "{pg}");
        assert!(pg.contains("$36"), "{pg}");
        assert!(!pg.contains("$37"), "{pg}");
    }
}
