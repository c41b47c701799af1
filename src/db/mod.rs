//! The database: one code path for SQLite and PostgreSQL.
//!
//! [`DbConnection`] is a diesel `MultiConnection` over both backends. We pick the backend from
//! the URL scheme ourselves (the derived `establish` tries each backend in turn and discards
//! the real error), set SQLite's pragmas on every new connection, and run each backend's own
//! embedded migrations on the concrete connection before the pool starts.
//!
//! Diesel is blocking: [`Database::run`] takes the pooled connection *and* runs the work on
//! actix's blocking thread pool, never on an async worker.
//!
//! Two pools: HTTP requests draw from one (`database.pool_size`), the background workers from
//! their own ([`Database::background`], `database.background_pool_size`), each with its own
//! breaker, so supervisors' reads holding every HTTP connection can never starve the breach
//! detector or the mail sender of one.

pub mod appointments;
pub mod audit;
pub mod authorizations;
mod breaker;
pub mod calendars;
pub mod clocks;
pub mod explain;
pub mod instances;
mod locks;
pub mod materials;
pub mod notifications;
pub mod open311;
pub mod rate_limits;
pub mod ratings;
pub mod requests;
pub mod rollups;
pub mod schema;
pub mod sla;
pub mod tickets;
mod url;
pub mod workflow;

pub use self::url::{Backend, DatabaseUrl};

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseSettings;
use crate::error::ApiError;

/// Migrations for SQLite, compiled into the binary.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// Migrations for PostgreSQL, compiled into the binary; kept in step with the SQLite ones.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Key of the PostgreSQL advisory lock that serialises migrations between server instances.
const MIGRATION_LOCK_KEY: i64 = 0x6d_73_62_6d_69_67; // "msbmig"

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// Embedded SQLite (the zero-setup default).
    Sqlite(SqliteConnection),
    /// PostgreSQL (production).
    Pg(PgConnection),
}

/// A failure to open or prepare the database, with the URL's password redacted.
#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    /// The connection could not be established.
    #[error("cannot connect to database {url}: {reason}")]
    Connect {
        /// Redacted URL.
        url: String,
        /// What the driver said.
        reason: String,
    },
    /// Migrations failed.
    #[error("cannot migrate database {url}: {reason}")]
    Migrate {
        /// Redacted URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// Opens one connection to `url`, dispatching on the scheme so the driver's error is kept.
pub fn establish(
    url: &DatabaseUrl,
    settings: &DatabaseSettings,
) -> Result<DbConnection, DbSetupError> {
    let failed = |reason: String| DbSetupError::Connect {
        url: url.redacted(),
        reason,
    };
    match url.backend() {
        Backend::Sqlite => {
            let path = url.sqlite_path().expect("sqlite url has a path");
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    failed(format!("cannot create folder {}: {e}", parent.display()))
                })?;
            }
            let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                .map_err(|e| failed(e.to_string()))?;
            // Per connection: these pragmas do not persist in the file. `optimize = 0x10002`
            // is what SQLite advises for a connection as it opens: ANALYZE, bounded by
            // `analysis_limit`, every table whose statistics are missing or stale, so the planner
            // picks the right index (without statistics it took the wrong one for the queue).
            // Pooled connections are replaced within r2d2's 30-minute lifetime, so the
            // statistics are refreshed as the tables grow.
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
                 PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;",
                settings.sqlite_busy_timeout_ms
            ))
            .map_err(|e| failed(e.to_string()))?;
            Ok(DbConnection::Sqlite(conn))
        }
        Backend::Postgres => {
            let conn = establish_pg_with_timeout(url.as_str(), settings.connect_timeout_secs)
                .map_err(failed)?;
            Ok(DbConnection::Pg(conn))
        }
    }
}

/// libpq waits for the OS TCP timeout unless told otherwise; add `connect_timeout` when the
/// URL does not set one, so an unreachable server fails within the configured time.
///
/// Also `gssencmode=disable` unless the URL names one: libpq's default (`prefer`) looks for a
/// Kerberos ticket at every connect to try GSSAPI encryption, and libkrb5 can abort the process
/// at exit (`k5_mutex_lock` assertion) while another thread still connects. Kerberos
/// *authentication* is unaffected; transport encryption is TLS (`sslmode`).
fn establish_pg_with_timeout(url: &str, timeout_secs: u64) -> Result<PgConnection, String> {
    PgConnection::establish(&pg_url_with_defaults(url, timeout_secs))
        .map_err(|e| one_line(&e.to_string()))
}

/// `url` with `connect_timeout` and `gssencmode` added where it does not name them.
fn pg_url_with_defaults(url: &str, timeout_secs: u64) -> String {
    let mut url = url.to_string();
    for (name, default) in [
        ("connect_timeout", timeout_secs.to_string()),
        ("gssencmode", "disable".to_string()),
    ] {
        if !url.contains(&format!("{name}=")) {
            let sep = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{sep}{name}={default}");
        }
    }
    url
}

/// Driver messages span lines (libpq adds hints); start-up errors must be one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Brings the schema up to date. On SQLite also switches the file to WAL (persistent); on
/// PostgreSQL holds an advisory lock so concurrent instances migrate one at a time.
pub fn migrate(conn: &mut DbConnection, url: &DatabaseUrl) -> Result<(), DbSetupError> {
    let failed = |reason: String| DbSetupError::Migrate {
        url: url.redacted(),
        reason,
    };
    match conn {
        DbConnection::Sqlite(c) => {
            c.batch_execute("PRAGMA journal_mode = WAL;")
                .map_err(|e| failed(e.to_string()))?;
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(|e| failed(e.to_string()))?;
        }
        DbConnection::Pg(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .map_err(|e| failed(e.to_string()))?;
            let outcome = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| failed(e.to_string()));
            let unlock = c
                .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                .map_err(|e| failed(e.to_string()));
            outcome?;
            unlock?;
        }
    }
    Ok(())
}

/// Runs `work` in a write transaction: `BEGIN IMMEDIATE` on SQLite (so two writers never
/// deadlock upgrading a read lock), a plain transaction on PostgreSQL; inside a transaction
/// already, a savepoint in it.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <DbConnection as Connection>::TransactionManager;
    // Nested in a write transaction already (a ticket issued inside an appointment's check-in,
    // a request's step inside a ticket's call): a savepoint in it.
    if Manager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some()
    {
        return conn.transaction(work);
    }
    match conn {
        DbConnection::Sqlite(inner) => {
            // SQLite takes one writer at a time. Its own lock wait is a sleep-and-retry loop, so
            // under many writers some keep losing and wait out `busy_timeout`; waiting here
            // instead, on a lock the OS hands over as soon as it is free, queues this
            // process's writers fairly and leaves SQLite's wait for other processes.
            let _writer = sqlite_writer();
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
            match work(conn) {
                Ok(value) => {
                    Manager::commit_transaction(conn)?;
                    Ok(value)
                }
                Err(error) => {
                    Manager::rollback_transaction(conn)?;
                    Err(error)
                }
            }
        }
        DbConnection::Pg(_) => conn.transaction(work),
    }
}

thread_local! {
    /// Whether this thread already holds the SQLite writer lock (a nested write transaction).
    static WRITING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// This process's SQLite writers, one at a time (see [`write_transaction`]).
static SQLITE_WRITERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the SQLite writer lock while alive; none for a nested write transaction.
struct SqliteWriter(Option<std::sync::MutexGuard<'static, ()>>);

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        if self.0.take().is_some() {
            WRITING.with(|w| w.set(false));
        }
    }
}

fn sqlite_writer() -> SqliteWriter {
    if WRITING.with(|w| w.get()) {
        return SqliteWriter(None);
    }
    // A writer that panicked left no transaction behind (it rolled back): the lock is fine.
    let guard = SQLITE_WRITERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    WRITING.with(|w| w.set(true));
    SqliteWriter(Some(guard))
}

/// Most rows a list counts for its total: past it, the total is shown as "more than
/// `TOTAL_CAP`" ([`Total::capped`]), so that a page never costs a count of the whole table.
pub const TOTAL_CAP: i64 = 1000;

/// How many rows match a list's filters: exact up to [`TOTAL_CAP`], else "more than".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    /// Rows matching; [`TOTAL_CAP`] when [`Total::capped`].
    pub count: i64,
    /// More than `count` rows match: the count stopped at the cap.
    pub capped: bool,
}

/// Counts the rows `query` selects, stopping after `cap + 1`:
/// `SELECT COUNT(*) FROM (query LIMIT cap + 1) AS capped`. The subquery's `LIMIT` lets both
/// backends stop reading as soon as the cap is passed, so the cost is bounded by the cap, not
/// by the table.
pub fn count_up_to<Q>(conn: &mut DbConnection, query: Q, cap: i64) -> QueryResult<Total>
where
    Q: diesel::query_dsl::methods::LimitDsl,
    Q::Output: diesel::query_builder::QueryFragment<<DbConnection as Connection>::Backend>
        + diesel::query_builder::QueryId,
{
    let counted: i64 = CountOf(query.limit(cap + 1)).get_result(conn)?;
    Ok(Total {
        count: counted.min(cap),
        capped: counted > cap,
    })
}

/// `SELECT COUNT(*) FROM (<query>) AS capped`.
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
struct CountOf<Q>(Q);

impl<Q> diesel::query_builder::Query for CountOf<Q> {
    type SqlType = diesel::sql_types::BigInt;
}

impl<Q> RunQueryDsl<DbConnection> for CountOf<Q> {}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for CountOf<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        out.push_sql("SELECT COUNT(*) FROM (");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(") AS capped");
        Ok(())
    }
}

/// Opens connections for the pool, the same way as [`establish`].
#[derive(Debug)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    settings: DatabaseSettings,
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = DbSetupError;

    fn connect(&self) -> Result<DbConnection, DbSetupError> {
        establish(&self.url, &self.settings)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), DbSetupError> {
        conn.ping().map_err(|e| DbSetupError::Connect {
            url: self.url.redacted(),
            reason: e.to_string(),
        })
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// The connection pool.
pub type Pool = r2d2::Pool<ConnectionManager>;

/// A pool and its breaker: what one kind of caller (HTTP requests, background workers) draws
/// connections from.
#[derive(Clone)]
struct Lane {
    pool: Pool,
    breaker: Arc<breaker::Breaker>,
}

impl Lane {
    fn new(size: u32, url: &DatabaseUrl, settings: &DatabaseSettings) -> Self {
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .test_on_check_out(true)
            .build_unchecked(ConnectionManager {
                url: url.clone(),
                settings: settings.clone(),
            });
        Self {
            pool,
            breaker: Arc::default(),
        }
    }
}

/// The application's handle on the database: the HTTP requests' pool, or (from
/// [`Database::background`]) the background workers' own.
#[derive(Clone)]
pub struct Database {
    /// The lane this handle draws from.
    lane: Lane,
    /// The background workers' lane, kept by every handle so [`Database::background`] can
    /// hand it out.
    background: Lane,
    backend: Backend,
    url: DatabaseUrl,
    settings: DatabaseSettings,
}

impl Database {
    /// Connects, migrates, and builds the pool. Fails with the real driver error when the
    /// database cannot be reached at start.
    pub fn open(settings: &DatabaseSettings) -> Result<Self, DbSetupError> {
        let url = DatabaseUrl::parse(&settings.url).map_err(|reason| DbSetupError::Connect {
            url: settings.url.clone(),
            reason,
        })?;
        let mut first = establish(&url, settings)?;
        migrate(&mut first, &url)?;
        drop(first);
        Ok(Self {
            lane: Lane::new(settings.pool_size, &url, settings),
            background: Lane::new(settings.background_pool_size, &url, settings),
            backend: url.backend(),
            url,
            settings: settings.clone(),
        })
    }

    /// The handle the background workers use: their own pool of
    /// `database.background_pool_size` connections and their own breaker, so HTTP requests
    /// holding every connection of theirs (and the breaker that trips when their pool runs
    /// dry) cannot delay them. Readiness keeps reporting the HTTP side.
    pub fn background(&self) -> Database {
        Self {
            lane: self.background.clone(),
            ..self.clone()
        }
    }

    /// A pooled connection, blocking: only for start-up code and the blocking pool.
    pub fn pool_get(&self) -> Result<r2d2::PooledConnection<ConnectionManager>, r2d2::Error> {
        self.lane.pool.get()
    }

    /// Whether this handle's breaker is open (its pool could not hand out a connection, and
    /// requests on it answer 503 at once until the probe connects).
    pub fn breaker_open(&self) -> bool {
        self.lane.breaker.is_open()
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs blocking database work on the blocking pool with a pooled connection.
    pub async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        if self.lane.breaker.is_open() {
            return Err(ApiError::database_unavailable(
                "the database is down (breaker open; a probe is retrying)",
            ));
        }
        let pool = self.lane.pool.clone();
        let breaker = Arc::clone(&self.lane.breaker);
        let (url, settings) = (self.url.clone(), self.settings.clone());
        actix_web::web::block(move || {
            let mut conn = pool.get().map_err(|error| {
                breaker.trip(move || establish(&url, &settings).is_ok());
                ApiError::database_unavailable(error)
            })?;
            work(&mut conn)
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Whether the database answers a trivial query now.
    pub async fn ping(&self) -> Result<(), ApiError> {
        self.run(|conn| {
            conn.ping().map_err(ApiError::database_unavailable)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_gets_a_connect_timeout_and_no_kerberos_probe_unless_it_names_them() {
        let base = "postgres://u@h:5432/db";
        assert_eq!(
            pg_url_with_defaults(base, 5),
            "postgres://u@h:5432/db?connect_timeout=5&gssencmode=disable"
        );
        assert_eq!(
            pg_url_with_defaults("postgres://u@h/db?sslmode=require&gssencmode=prefer", 7),
            "postgres://u@h/db?sslmode=require&gssencmode=prefer&connect_timeout=7"
        );
        assert_eq!(
            pg_url_with_defaults("postgres://u@h/db?connect_timeout=2", 7),
            "postgres://u@h/db?connect_timeout=2&gssencmode=disable"
        );
    }
    use crate::config::Settings;

    fn sqlite_settings(dir: &tempfile::TempDir) -> DatabaseSettings {
        let mut settings = Settings::defaults().database;
        settings.url = format!("sqlite://{}", dir.path().join("test.db").display());
        settings.pool_size = 2;
        settings.background_pool_size = 1;
        settings.connect_timeout_secs = 1;
        settings
    }

    #[actix_web::test]
    async fn the_background_pool_serves_while_http_requests_hold_every_connection() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::open(&sqlite_settings(&dir)).unwrap();
        let background = database.background();
        // A burst of HTTP reads holds every HTTP connection.
        let held: Vec<_> = (0..2).map(|_| database.pool_get().unwrap()).collect();

        // The HTTP side runs dry: readiness (a ping on the HTTP pool) answers 503, and the
        // HTTP breaker trips (its probe closes it again as soon as it can connect directly).
        let refused = database.ping().await.unwrap_err();
        assert_eq!(refused.code(), crate::error::ErrorCode::DatabaseUnavailable);

        // The workers' pool still serves, and their breaker never tripped.
        assert!(!background.breaker_open());
        background.ping().await.unwrap();
        let requests = background
            .run(|conn| Ok(schema::requests::table.count().get_result::<i64>(conn)?))
            .await
            .unwrap();
        assert_eq!(requests, 0);
        assert!(!background.breaker_open());

        // Once the HTTP connections are back, readiness answers again.
        drop(held);
        let mut ready = database.ping().await;
        for _ in 0..100 {
            if ready.is_ok() {
                break;
            }
            std::thread::sleep(breaker::PROBE_EVERY / 4);
            ready = database.ping().await;
        }
        ready.unwrap();
        assert!(!database.breaker_open());
        // The background handle of a background handle is the same pool.
        assert_eq!(background.background().lane.pool.max_size(), 1);
        assert_eq!(database.lane.pool.max_size(), 2);
    }
}
