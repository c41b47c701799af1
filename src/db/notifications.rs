//! The notification outbox: mails written as rows in the transaction of the change that causes
//! them ([`enqueue`]), delivered later by the sender worker (`crate::notify`).
//!
//! Each row gets its id (UUID v7) and a `Message-ID` made from it when it is written, so every
//! delivery attempt of the same notification carries the same `Message-ID`: a retry can never
//! look like a new mail.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl;
use diesel::expression::SqlLiteral;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use uuid::Uuid;

use super::DbConnection;
use super::schema::notifications;
use crate::domain::notice::{About, Message};

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = notifications, treat_none_as_default_value = false)]
pub struct NotificationRow {
    /// UUID v7.
    pub id: String,
    /// The request it is about.
    pub request_id: Option<String>,
    /// Kind (`accepted`, `clock_breached`, …).
    pub kind: String,
    /// Recipient address.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// `<id@mashangban>`.
    pub message_id: String,
    /// `pending`, `sent`, `dead`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// Next attempt due (UTC).
    pub next_attempt_at: NaiveDateTime,
    /// Held by a sender until (UTC).
    pub locked_until: Option<NaiveDateTime>,
    /// Last error.
    pub last_error: Option<String>,
    /// Written (UTC).
    pub created_at: NaiveDateTime,
    /// Accepted by the SMTP server (UTC).
    pub sent_at: Option<NaiveDateTime>,
}

/// A mail to write.
#[derive(Debug, Clone)]
pub struct Notice {
    /// The request it is about.
    pub request_id: Option<String>,
    /// The address.
    pub recipient: String,
    /// What it says.
    pub message: Message,
    /// The request as people know it.
    pub about: About,
}

/// Most rows per `INSERT`: 14 columns each, under SQLite's and PostgreSQL's bind limits.
const ROWS_PER_INSERT: usize = 1000;

/// The row for `notice`, written at `now`.
pub fn row(notice: &Notice, now: DateTime<Utc>) -> NotificationRow {
    let id = Uuid::now_v7().to_string();
    let (subject, body) = notice.message.render(&notice.about);
    NotificationRow {
        message_id: format!("<{id}@mashangban>"),
        id,
        request_id: notice.request_id.clone(),
        kind: notice.message.kind().into(),
        recipient: notice.recipient.clone(),
        subject,
        body,
        status: "pending".into(),
        attempts: 0,
        next_attempt_at: now.naive_utc(),
        locked_until: None,
        last_error: None,
        created_at: now.naive_utc(),
        sent_at: None,
    }
}

/// Writes `notices` to the outbox. Call inside the transaction of the change that causes them:
/// they commit with it or not at all.
pub fn enqueue(
    conn: &mut DbConnection,
    notices: &[Notice],
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let rows: Vec<NotificationRow> = notices.iter().map(|n| row(n, now)).collect();
    let mut written = 0;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let into = || diesel::insert_into(notifications::table);
        written += match (chunk, &mut *conn) {
            ([one], conn) => into().values(one).execute(conn)?,
            (rows, DbConnection::Sqlite(c)) => into().values(rows).execute(c)?,
            (rows, DbConnection::Pg(c)) => into().values(rows).execute(c)?,
        };
    }
    Ok(written)
}

/// Writes `notice` to the outbox unless a mail with the same `key` is there already: its
/// `Message-ID` is `<key@mashangban>`, and the outbox's `message_id` is unique, so of several
/// writers (server instances) exactly one row stands. Whether this call wrote it. Call it
/// outside a transaction: on PostgreSQL a refused insert would end the caller's.
pub fn enqueue_once(
    conn: &mut DbConnection,
    notice: &Notice,
    key: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    use diesel::result::{DatabaseErrorKind, Error};
    let mut row = row(notice, now);
    row.message_id = format!("<{key}@mashangban>");
    let there: i64 = notifications::table
        .filter(notifications::message_id.eq(&row.message_id))
        .count()
        .get_result(conn)?;
    if there > 0 {
        return Ok(false);
    }
    match diesel::insert_into(notifications::table)
        .values(&row)
        .execute(conn)
    {
        Ok(_) => Ok(true),
        // Another writer got there between the look and the insert.
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(error) => Err(error),
    }
}

// The sender worker's side (`crate::notify`) and the listing. Every read of due mails and every
// claim repeats the same condition; the status is written as a literal, never bound, so the
// partial index `notifications_due` (`WHERE status = 'pending'`) can serve it in a prepared
// statement on both backends.

/// A pending mail's status, as a literal for the partial index.
fn pending() -> SqlLiteral<Bool> {
    dsl::sql::<Bool>("notifications.status = 'pending'")
}

/// How many mails wait and how many are dead, across all instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Pending (due or waiting for a retry).
    pub pending: i64,
    /// Parked after their last attempt failed.
    pub dead: i64,
}

/// Counts the outbox for `/metrics`: two `COUNT`s, each on a partial index (`notifications_due`,
/// `notifications_dead`). The statuses are literals, not bound parameters, so SQLite's
/// planner can use those partial indexes.
pub fn counts(conn: &mut DbConnection) -> QueryResult<OutboxCounts> {
    let dead = || diesel::dsl::sql::<diesel::sql_types::Bool>("notifications.status = 'dead'");
    Ok(OutboxCounts {
        pending: notifications::table
            .filter(pending())
            .count()
            .get_result(conn)?,
        dead: notifications::table
            .filter(dead())
            .count()
            .get_result(conn)?,
    })
}

/// Not held by a sender, or held past its lease.
type Unheld = dsl::Or<
    dsl::IsNull<notifications::locked_until>,
    dsl::Lt<notifications::locked_until, NaiveDateTime>,
>;

/// Pending, due, and [`Unheld`].
type Free = dsl::And<
    dsl::And<SqlLiteral<Bool>, dsl::LtEq<notifications::next_attempt_at, NaiveDateTime>>,
    Unheld,
>;

/// The condition of a mail a sender may take at `now`: pending, due, and not held by another
/// sender (or held past its lease).
fn free(now: NaiveDateTime) -> Free {
    pending().and(notifications::next_attempt_at.le(now)).and(
        notifications::locked_until
            .is_null()
            .or(notifications::locked_until.lt(now)),
    )
}

/// Takes up to `limit` mails that are free at `now` (oldest due first) for one sender until
/// `lease_until`, and answers them in that order. One write transaction, so a batch costs one
/// commit: a select of the ids, then one conditional `UPDATE … SET locked_until = lease_until
/// WHERE id IN (ids) AND <still free> RETURNING …`.
///
/// Of several senders (server instances) on one database, each mail goes to exactly one:
/// on PostgreSQL the select locks the rows it picks `FOR UPDATE SKIP LOCKED` until the commit
/// (a concurrent claim skips them instead of waiting; a row another claim took and committed
/// meanwhile no longer passes the re-checked condition); on SQLite the write transaction
/// (`BEGIN IMMEDIATE`) already excludes every other writer. The update repeats the condition,
/// so a row is only ever taken while it is free.
pub fn claim(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<NotificationRow>> {
    let picked = || {
        notifications::table
            .filter(free(now))
            .order((notifications::next_attempt_at, notifications::id))
            .limit(limit)
            .select(notifications::id)
    };
    // A macro, not a closure: the returning clause is typed by the backend it runs on.
    macro_rules! take {
        ($ids:expr, $conn:expr) => {
            diesel::update(
                notifications::table
                    .filter(notifications::id.eq_any($ids))
                    .filter(free(now)),
            )
            .set(notifications::locked_until.eq(lease_until))
            .returning(NotificationRow::as_returning())
            .get_results($conn)
        };
    }
    let mut rows = super::write_transaction(conn, |conn| match conn {
        DbConnection::Pg(pg) => {
            let ids: Vec<String> = picked().for_update().skip_locked().load(pg)?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            take!(ids, pg)
        }
        DbConnection::Sqlite(lite) => {
            let ids: Vec<String> = picked().load(lite)?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            take!(ids, lite)
        }
    })?;
    // RETURNING promises no order.
    rows.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
    Ok(rows)
}

/// Gives back mails `ids` that this sender took until `lease_until` but will not send now (it
/// is stopping, or too little of its lease is left): they are free again at once, for any
/// sender, instead of when the lease runs out. Rows taken by another sender meanwhile, or
/// already recorded, are left alone. How many were given back.
pub fn release(
    conn: &mut DbConnection,
    ids: &[String],
    lease_until: NaiveDateTime,
) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::update(
        notifications::table
            .filter(notifications::id.eq_any(ids))
            .filter(pending())
            .filter(notifications::locked_until.eq(lease_until)),
    )
    .set(notifications::locked_until.eq(None::<NaiveDateTime>))
    .execute(conn)
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The server accepted the mail (or the `.eml` file was written).
    Sent,
    /// It failed; try again at `retry_at`.
    Retry {
        /// What went wrong.
        error: String,
        /// When the next attempt is due.
        retry_at: NaiveDateTime,
    },
    /// It failed for good (attempts used up, or a permanent refusal): park it as dead.
    Dead {
        /// What went wrong.
        error: String,
    },
}

/// Records attempt number `attempts` of mail `id`, made under the lease `lease_until`, and
/// releases the lease. A success is recorded on any pending row (it saves a resend even when the
/// lease ran out meanwhile); a failure only while the lease is still this sender's, so it never
/// overwrites the state of a sender that took the row after it. Whether it was recorded.
pub fn record(
    conn: &mut DbConnection,
    id: &str,
    lease_until: NaiveDateTime,
    attempts: i32,
    attempt: &Attempt,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let row = notifications::table
        .filter(notifications::id.eq(id))
        .filter(pending());
    let changed = match attempt {
        Attempt::Sent => diesel::update(row)
            .set((
                notifications::status.eq("sent"),
                notifications::attempts.eq(attempts),
                notifications::sent_at.eq(Some(now)),
                notifications::locked_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?,
        Attempt::Retry { error, retry_at } => {
            diesel::update(row.filter(notifications::locked_until.eq(lease_until)))
                .set((
                    notifications::attempts.eq(attempts),
                    notifications::last_error.eq(Some(error)),
                    notifications::next_attempt_at.eq(retry_at),
                    notifications::locked_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?
        }
        Attempt::Dead { error } => {
            diesel::update(row.filter(notifications::locked_until.eq(lease_until)))
                .set((
                    notifications::status.eq("dead"),
                    notifications::attempts.eq(attempts),
                    notifications::last_error.eq(Some(error)),
                    notifications::locked_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?
        }
    };
    Ok(changed == 1)
}

/// The outcome of one attempt, to record with [`record_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The mail.
    pub id: String,
    /// The attempt's number (the row's `attempts` + 1).
    pub attempts: i32,
    /// What it came to.
    pub attempt: Attempt,
    /// When it ended (UTC).
    pub at: NaiveDateTime,
}

/// Records `outcomes`, attempts made under the lease `lease_until`, in one write transaction
/// (one commit for all), each by [`record`]'s rules. Whether each was recorded, in order.
pub fn record_all(
    conn: &mut DbConnection,
    lease_until: NaiveDateTime,
    outcomes: &[Outcome],
) -> QueryResult<Vec<bool>> {
    super::write_transaction(conn, |conn| {
        outcomes
            .iter()
            .map(|o| record(conn, &o.id, lease_until, o.attempts, &o.attempt, o.at))
            .collect()
    })
}

/// Filters of the outbox listing; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// `pending`, `sent` or `dead`.
    pub status: Option<String>,
    /// Kind (`accepted`, …).
    pub kind: Option<String>,
    /// The request it is about.
    pub request_id: Option<String>,
}

/// The outbox, newest first: mails about requests with a task for `unit` (the service centre
/// also sees every `awaiting_arbitration` mail: it arbitrates returns), or every mail when
/// `unit` is `None`; matching `filters`, after the id `after`; and how many match in all,
/// counted up to [`super::TOTAL_CAP`].
pub fn list(
    conn: &mut DbConnection,
    unit: Option<crate::domain::UnitCode>,
    filters: &Filters,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<(Vec<NotificationRow>, super::Total)> {
    use super::schema::tasks;
    type Backend = <DbConnection as Connection>::Backend;

    let filtered = || {
        let mut query = notifications::table.into_boxed::<Backend>();
        if let Some(unit) = unit {
            let about_unit = notifications::request_id.eq_any(
                tasks::table
                    .filter(tasks::unit.eq(unit.as_str()))
                    .select(tasks::request_id.nullable()),
            );
            query = if unit == crate::domain::UnitCode::ServiceCenter {
                query.filter(about_unit.or(notifications::kind.eq("awaiting_arbitration")))
            } else {
                query.filter(about_unit)
            };
        }
        if let Some(status) = &filters.status {
            query = query.filter(notifications::status.eq(status.clone()));
        }
        if let Some(kind) = &filters.kind {
            query = query.filter(notifications::kind.eq(kind.clone()));
        }
        if let Some(request_id) = &filters.request_id {
            query = query.filter(notifications::request_id.eq(request_id.clone()));
        }
        query
    };
    let total = super::count_up_to(
        conn,
        // In the page's order, so the count reads the same index range the pages do.
        filtered()
            .select(notifications::id)
            .order(notifications::id.desc()),
        super::TOTAL_CAP,
    )?;
    let mut page = filtered();
    if let Some(after) = after {
        page = page.filter(notifications::id.lt(after.to_string()));
    }
    let rows = page
        .order(notifications::id.desc())
        .limit(limit)
        .select(NotificationRow::as_select())
        .load(conn)?;
    Ok((rows, total))
}
