//! The database: one code path for SQLite and PostgreSQL.
//!
//! [`DbConnection`] is a diesel `MultiConnection` over both backends. We pick the backend from
//! the URL scheme ourselves (the derived `establish` tries each backend in turn and discards
//! the real error), set SQLite's pragmas on every new connection, and run each backend's own
//! embedded migrations on the concrete connection before the pool starts.
//!
//! Diesel is blocking: [`Database::run`] takes the pooled connection *and* runs the work on
//! actix's blocking thread pool, never on an async worker.

pub mod appointments;
pub mod audit;
pub mod authorizations;
mod breaker;
pub mod calendars;
pub mod clocks;
pub mod instances;
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
fn establish_pg_with_timeout(url: &str, timeout_secs: u64) -> Result<PgConnection, String> {
    let url = if url.contains("connect_timeout=") {
        url.to_string()
    } else {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}connect_timeout={timeout_secs}")
    };
    PgConnection::establish(&url).map_err(|e| one_line(&e.to_string()))
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

/// The application's handle on the database.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    backend: Backend,
    url: DatabaseUrl,
    settings: DatabaseSettings,
    breaker: Arc<breaker::Breaker>,
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
        let pool = r2d2::Pool::builder()
            .max_size(settings.pool_size)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .test_on_check_out(true)
            .build_unchecked(ConnectionManager {
                url: url.clone(),
                settings: settings.clone(),
            });
        Ok(Self {
            pool,
            backend: url.backend(),
            url,
            settings: settings.clone(),
            breaker: Arc::default(),
        })
    }

    /// A pooled connection, blocking: only for start-up code and the blocking pool.
    pub fn pool_get(&self) -> Result<r2d2::PooledConnection<ConnectionManager>, r2d2::Error> {
        self.pool.get()
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
        if self.breaker.is_open() {
            return Err(ApiError::database_unavailable(
                "the database is down (breaker open; a probe is retrying)",
            ));
        }
        let pool = self.pool.clone();
        let breaker = Arc::clone(&self.breaker);
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
