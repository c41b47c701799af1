//! Server instances: each start registers a row, a graceful stop closes it. Operators see
//! which processes share a database (several instances may share one PostgreSQL).

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::DbConnection;
use super::schema::service_instances;

/// One server process that ran against this database.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = service_instances, treat_none_as_default_value = false)]
pub struct ServiceInstance {
    /// UUID v7.
    pub id: String,
    /// Host name.
    pub hostname: String,
    /// Process id.
    pub pid: i64,
    /// Binary version.
    pub version: String,
    /// Start time (UTC).
    pub started_at: NaiveDateTime,
    /// Graceful stop time (UTC).
    pub stopped_at: Option<NaiveDateTime>,
}

impl ServiceInstance {
    /// The row for this process, starting now.
    pub fn current(now: chrono::DateTime<Utc>) -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into());
        Self {
            id: Uuid::now_v7().to_string(),
            hostname,
            pid: i64::from(std::process::id()),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: now.naive_utc(),
            stopped_at: None,
        }
    }
}

/// Records `instance` as started.
pub fn register(conn: &mut DbConnection, instance: &ServiceInstance) -> QueryResult<()> {
    diesel::insert_into(service_instances::table)
        .values(instance)
        .execute(conn)
        .map(|_| ())
}

/// Records a graceful stop.
pub fn mark_stopped(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(service_instances::table.find(id))
        .set(service_instances::stopped_at.eq(Some(at)))
        .execute(conn)
        .map(|_| ())
}

/// The most recent starts, newest first.
pub fn recent(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<ServiceInstance>> {
    service_instances::table
        .order(service_instances::started_at.desc())
        .then_order_by(service_instances::id.desc())
        .limit(limit)
        .select(ServiceInstance::as_select())
        .load(conn)
}
