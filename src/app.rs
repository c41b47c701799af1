//! Building and running the HTTP server.
//!
//! [`Application::build`] connects and migrates the database, registers this instance, binds
//! the listener (port 0 picks a free port; [`Application::port`] tells which) and assembles the
//! route table; with `metrics.bind`, a second listener serves `/metrics` alone
//! ([`Application::metrics_port`]). [`Application::run_until_stopped`] serves until SIGTERM or
//! Ctrl-C, then drains ([`crate::http::drain`]): readiness fails, new connections are refused,
//! every response closes its connection, idle connections are closed, and the process stops as
//! soon as the requests in flight are answered; the background workers then finish the work in
//! hand ([`crate::background`]) and the graceful stop is recorded.

use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use chrono::Utc;
use utoipa::OpenApi;
use utoipa_actix_web::UtoipaApp;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::secret::{self, SecretError};
use crate::auth::{Authenticator, KeyError};
use crate::background::{self, StopSignal};
use crate::config::{
    AppointmentSettings, ConfigError, CorsSettings, RateLimitSettings, RatingSettings, Settings,
    SlaSettings,
};
use crate::db::calendars::Calendars;
use crate::db::instances::{self, ServiceInstance};
use crate::db::requests;
use crate::db::{Database, DatabaseUrl, DbSetupError};
use crate::domain::appointment::Hall;
use crate::domain::calendar::Calendar;
use crate::domain::catalog::{Catalog, DEFAULT_CATALOG};
use crate::http::drain::{self, Drain};
use crate::http::extract::{self, BodyLimit};
use crate::http::metrics::MetricsAccess;
use crate::http::request_line::{self, UriLimit};
use crate::http::{
    Metrics, RouteTable, conditional, cors, fallback, head, metrics, nul, rate_limit, request_id,
    security,
};
use crate::routes::open311::Open311;
use crate::routes::{self, ApiDoc};
use crate::sla;

/// Why the server could not start. Each renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad verification key.
    #[error("configuration error: {0}")]
    Key(#[from] KeyError),
    /// No usable JWT secret.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The catalog or calendar file is missing or wrong.
    #[error("{0}")]
    Data(String),
    /// The database cannot be reached or migrated.
    #[error(transparent)]
    Database(#[from] DbSetupError),
    /// The listener cannot be bound.
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        /// The address.
        bind: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Longest the background workers get to finish the work in hand once asked to stop. A mail
/// on the wire takes at most a few SMTP steps of `mail.timeout_secs` each; a worker still busy
/// after this is cut (its mail is then sent again after its hold runs out, with the same
/// `Message-ID`).
const WORKER_STOP_LIMIT: Duration = Duration::from_secs(15);

/// A built, bound, not yet running server.
pub struct Application {
    server: Server,
    /// The main listener (a duplicate of the one actix serves), shut on a graceful stop.
    listener: TcpListener,
    port: u16,
    metrics_server: Option<(Server, u16)>,
    database: Database,
    instance: ServiceInstance,
    grace: Duration,
    drain: Arc<Drain>,
    calendars: web::Data<Calendars>,
    catalog: web::Data<Catalog>,
    hall: web::Data<Hall>,
    appointments: AppointmentSettings,
    metrics: web::Data<Metrics>,
    sla: SlaSettings,
    rate_limit: RateLimitSettings,
    horizon_notices: sla::HorizonNotices,
    mailer: Option<crate::notify::Mailer>,
}

impl Application {
    /// Prepares everything the server needs; fails fast on bad configuration or database.
    pub async fn build(mut settings: Settings) -> Result<Self, StartError> {
        settings.validate()?;
        let url = DatabaseUrl::parse(&settings.database.url)
            .map_err(|e| ConfigError::key("database.url", e))?;
        // Start-up only: a small file read (or written once) before anything serves.
        settings.jwt.secret = secret::resolve(&settings.jwt, &url)?;
        let mailer = (settings.mail.worker)
            .then(|| crate::notify::Mailer::new(&settings.mail))
            .transpose()?;
        let authenticator = web::Data::new(Authenticator::new(&settings.jwt)?);
        let catalog = load_catalog(&settings)?;
        let hall = web::Data::new(load_hall(&settings, &catalog)?);
        let calendar = load_calendar(&settings)?;
        let db_settings = settings.database.clone();
        let instance = ServiceInstance::current(Utc::now());
        let registered = instance.clone();
        let known = catalog.clone();
        let (database, calendars) =
            web::block(move || -> Result<(Database, Calendars), DbSetupError> {
                let database = Database::open(&db_settings)?;
                database.register_instance(&registered, &known)?;
                let calendars = Calendars::new(calendar);
                database.load_calendar_days(&calendars)?;
                Ok((database, calendars))
            })
            .await
            .expect("blocking pool is running")?;

        let bind = settings.bind_addr()?;
        let (listener, port) = listen(bind, &settings.server.bind)?;
        let kept_listener = listener.try_clone().map_err(|source| StartError::Bind {
            bind: settings.server.bind.clone(),
            source,
        })?;
        let metrics_bind = settings.metrics.bind_addr()?;

        let calendars = web::Data::new(calendars);
        let catalog = web::Data::new(catalog);
        let metrics = web::Data::new(Metrics::new());
        // The document is built once and kept as its JSON text, shared by every worker: the
        // built document weighs several megabytes, and a copy per worker was most of the idle
        // heap (docs/performance.md, "Memory").
        let doc = routes::openapi();
        let doc_json = web::Data::new(OpenApiJson(web::Bytes::from(
            serde_json::to_vec(&doc)
                .map_err(|e| StartError::Data(format!("the OpenAPI document: {e}")))?,
        )));
        let drain = Drain::new();
        let metrics_access = match metrics_bind {
            Some(_) => MetricsAccess::Elsewhere,
            None => MetricsAccess::here(&settings.metrics.token),
        };
        let state = SharedState {
            database: web::Data::new(database.clone()),
            authenticator,
            metrics: metrics.clone(),
            metrics_access: web::Data::new(metrics_access),
            uri_limit: UriLimit(settings.server.max_uri_bytes),
            route_table: web::Data::new(RouteTable::from_openapi(&doc)),
            doc_json,
            catalog: catalog.clone(),
            hall: hall.clone(),
            appointments: web::Data::new(settings.appointments.clone()),
            calendar: calendars.clone(),
            open311: web::Data::new(Open311::new(&settings.open311)),
            sla: web::Data::new(settings.sla),
            rating: web::Data::new(settings.rating),
            rate_limit: web::Data::new(settings.rate_limit),
            local_counts: web::Data::new(rate_limit::LocalCounts::default()),
            body_limit: settings.server.body_limit_bytes,
            cors: settings.cors.clone(),
            drain: web::Data::from(drain.clone()),
        };
        let metrics_server = match metrics_bind {
            None => None,
            Some(address) => Some(metrics_server(
                address,
                &settings,
                MetricsOnly {
                    database: state.database.clone(),
                    metrics: metrics.clone(),
                    calendar: calendars.clone(),
                    access: web::Data::new(MetricsAccess::here(&settings.metrics.token)),
                    uri_limit: state.uri_limit,
                },
            )?),
        };
        let connections = drain.clone();
        drop(doc);
        let mut server = HttpServer::new(move || app(state.clone()))
            .on_connect(move |io, extensions| connections.on_connect(io, extensions))
            .disable_signals()
            .shutdown_timeout(settings.server.shutdown_timeout_secs)
            .keep_alive(std::time::Duration::from_secs(
                settings.server.keep_alive_secs,
            ))
            .listen(listener)
            .map_err(|source| StartError::Bind {
                bind: settings.server.bind.clone(),
                source,
            })?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        tracing::info!(
            address = %format!("{}:{port}", bind.ip()),
            metrics_address = metrics_bind
                .zip(metrics_server.as_ref())
                .map(|(bind, (_, port))| format!("{}:{port}", bind.ip())),
            database = %database.backend(),
            instance = %instance.id,
            "mashangban ready"
        );
        Ok(Self {
            server: server.run(),
            listener: kept_listener,
            port,
            metrics_server,
            database,
            instance,
            grace: Duration::from_secs(settings.server.shutdown_timeout_secs),
            drain,
            calendars,
            catalog,
            hall,
            appointments: settings.appointments.clone(),
            metrics,
            sla: settings.sla,
            rate_limit: settings.rate_limit,
            horizon_notices: sla::HorizonNotices {
                recipient: settings.mail.admin_email.clone(),
                lead_days: settings.calendar.horizon_notice_days,
            },
            mailer,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate metrics listener, when `metrics.bind` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(_, port)| *port)
    }

    /// Serves until SIGTERM or Ctrl-C, then stops gracefully: drains the connections
    /// ([`crate::http::drain`]; the requests in flight finish, within
    /// `server.shutdown_timeout_secs`), stops the background workers after the work in hand,
    /// and records the stop.
    ///
    /// The signals are ours, not actix's: whatever the server does while stopping, the process
    /// gives up waiting after the grace period plus a margin and still exits.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        use actix_web::rt::signal::{
            ctrl_c,
            unix::{SignalKind, signal},
        };
        use futures_util::future::{Either, select};

        let handle = self.server.handle();
        let mut server = actix_web::rt::spawn(self.server);
        let metrics_handle = self.metrics_server.map(|(metrics_server, _)| {
            let handle = metrics_server.handle();
            actix_web::rt::spawn(metrics_server);
            handle
        });
        let (stopper, stop) = background::signal();
        // The workers draw from their own pool: HTTP reads cannot starve them of connections.
        let database = self.database.background();
        let mut workers = vec![(
            "calendar follower",
            actix_web::rt::spawn(sla::follow_calendar_days(
                database.clone(),
                self.calendars.clone(),
                self.metrics.clone(),
                self.horizon_notices,
                stop.clone(),
            )),
        )];
        if self.sla.worker {
            workers.push((
                "breach detector",
                actix_web::rt::spawn(sla::detect(
                    database.clone(),
                    self.calendars.clone(),
                    self.catalog.clone(),
                    self.metrics.clone(),
                    self.sla,
                    stop.clone(),
                )),
            ));
        }
        if self.appointments.worker {
            workers.push((
                "appointment worker",
                actix_web::rt::spawn(crate::appointment_worker::run(
                    database.clone(),
                    self.calendars.clone(),
                    self.catalog.clone(),
                    self.hall.clone(),
                    self.appointments.clone(),
                    stop.clone(),
                )),
            ));
        }
        if let Some(mailer) = self.mailer {
            workers.push((
                "mail sender",
                actix_web::rt::spawn(crate::notify::deliver(
                    database.clone(),
                    mailer,
                    self.metrics.clone(),
                    stop.clone(),
                )),
            ));
        }
        workers.push((
            "idempotency-key sweeper",
            actix_web::rt::spawn(sweep_idempotency_keys(database.clone(), stop.clone())),
        ));
        // On SQLite the counts live in the process (`rate_limit::LocalCounts`): no rows to sweep.
        if self.rate_limit.enabled && database.backend() == crate::db::Backend::Postgres {
            workers.push((
                "rate-limit sweeper",
                actix_web::rt::spawn(sweep_rate_limits(
                    database.clone(),
                    self.rate_limit.window_secs,
                    stop.clone(),
                )),
            ));
        }
        let mut terminate = signal(SignalKind::terminate())?;
        let stop_signal = Box::pin(async move {
            let term = Box::pin(terminate.recv());
            let interrupt = Box::pin(ctrl_c());
            match select(term, interrupt).await {
                Either::Left(_) => "SIGTERM",
                Either::Right(_) => "SIGINT",
            }
        });
        let outcome = match select(&mut server, stop_signal).await {
            Either::Left((result, _)) => result.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            Either::Right((name, _)) => {
                let begun = self.drain.begin();
                tracing::info!(
                    signal = name,
                    grace_secs = self.grace.as_secs(),
                    in_flight = begun.in_flight,
                    connections = begun.connections,
                    "stop signal received; graceful shutdown: readiness fails, new connections \
                     are refused, in-flight requests finish and close their connection"
                );
                // No new connection: the accept loop pauses and the listening socket is shut,
                // so connection attempts are refused rather than left in the backlog.
                handle.pause().await;
                // The accept thread takes the pause a moment later, unacknowledged; shutting the
                // socket under a thread still accepting on it would log a spurious error.
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                if let Err(error) = socket2::SockRef::from(&self.listener).shutdown(Shutdown::Read)
                {
                    tracing::warn!(%error, "cannot close the listener; new connections wait");
                }
                // actix's own stop is called only once the connections are closed: a worker
                // that sees the accept loop end before its stop message exits at once and takes
                // its connections with it (actix-server 2.6), in flight or not.
                let drained = self.drain.closed(self.grace).await;
                if !drained {
                    tracing::warn!(
                        open = self.drain.open_connections(),
                        "graceful shutdown overran its grace period; cutting what is left"
                    );
                }
                let _ = actix_web::rt::time::timeout(Duration::from_secs(5), handle.stop(drained))
                    .await;
                match actix_web::rt::time::timeout(Duration::from_secs(1), &mut server).await {
                    Ok(Ok(result)) => result,
                    _ => Ok(()),
                }
            }
        };
        if let Some(handle) = metrics_handle {
            let _ = actix_web::rt::time::timeout(Duration::from_secs(2), handle.stop(true)).await;
        }
        // The workers finish the unit of work in hand (a mail on the wire: at most the SMTP
        // timeout per step) and return; one that does not within the limit is cut.
        stopper.stop();
        let mut limit = std::pin::pin!(actix_web::rt::time::sleep(WORKER_STOP_LIMIT));
        for (name, mut worker) in workers {
            match select(&mut worker, limit.as_mut()).await {
                Either::Left((Ok(()), _)) => tracing::debug!(worker = name, "worker stopped"),
                Either::Left((Err(error), _)) => {
                    tracing::warn!(worker = name, %error, "worker ended abnormally")
                }
                Either::Right(_) => {
                    tracing::warn!(worker = name, "worker did not stop in time; cut");
                    worker.abort();
                }
            }
        }
        let id = self.instance.id.clone();
        let recorded = actix_web::rt::time::timeout(
            Duration::from_secs(5),
            self.database
                .run(move |conn| Ok(instances::mark_stopped(conn, &id, Utc::now().naive_utc())?)),
        )
        .await;
        match recorded {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "could not record the graceful stop"),
            Err(_) => tracing::warn!("recording the graceful stop timed out"),
        }
        tracing::info!("mashangban stopped");
        outcome
    }

    /// A handle that stops the server (tests use it; signals do the same in production).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

impl Database {
    /// Records this process and the catalog version it serves.
    fn register_instance(
        &self,
        instance: &ServiceInstance,
        catalog: &Catalog,
    ) -> Result<(), DbSetupError> {
        let failed = |e: String| DbSetupError::Migrate {
            url: "<pool>".into(),
            reason: format!("cannot register instance: {e}"),
        };
        let mut conn = self.pool_get().map_err(|e| failed(e.to_string()))?;
        requests::ensure_catalog_version(&mut conn, catalog, instance.started_at)
            .map_err(|e| failed(e.to_string()))?;
        instances::register(&mut conn, instance).map_err(|e| failed(e.to_string()))
    }

    fn load_calendar_days(&self, calendars: &Calendars) -> Result<(), DbSetupError> {
        let failed = |e: String| DbSetupError::Migrate {
            url: "<pool>".into(),
            reason: format!("cannot read the calendar days: {e}"),
        };
        let mut conn = self.pool_get().map_err(|e| failed(e.to_string()))?;
        calendars
            .reload(&mut conn)
            .map(|_| ())
            .map_err(|e| failed(e.to_string()))
    }
}

/// A listener on `address` (configured as `configured`) and its bound port.
fn listen(address: SocketAddr, configured: &str) -> Result<(TcpListener, u16), StartError> {
    let failed = |source| StartError::Bind {
        bind: configured.to_string(),
        source,
    };
    let listener = TcpListener::bind(address).map_err(failed)?;
    let port = listener.local_addr().map_err(failed)?.port();
    Ok((listener, port))
}

/// What the separate metrics listener needs.
#[derive(Clone)]
struct MetricsOnly {
    database: web::Data<Database>,
    metrics: web::Data<Metrics>,
    calendar: web::Data<Calendars>,
    access: web::Data<MetricsAccess>,
    uri_limit: UriLimit,
}

/// The `metrics.bind` listener: `/metrics` alone, one worker, everything else 404.
fn metrics_server(
    address: SocketAddr,
    settings: &Settings,
    state: MetricsOnly,
) -> Result<(Server, u16), StartError> {
    let (listener, port) = listen(address, &settings.metrics.bind)?;
    let server = HttpServer::new(move || {
        let state = state.clone();
        App::new()
            .app_data(state.database)
            .app_data(state.metrics)
            .app_data(state.calendar)
            .app_data(state.access)
            .app_data(state.uri_limit)
            .app_data(web::Data::new(RouteTable::default()))
            .service(routes::metrics::metrics)
            .default_service(web::to(fallback::not_routed))
            .wrap(from_fn(request_line::check))
            .wrap(from_fn(request_id::assign))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(settings.server.shutdown_timeout_secs)
    .listen(listener)
    .map_err(|source| StartError::Bind {
        bind: settings.metrics.bind.clone(),
        source,
    })?
    .run();
    Ok((server, port))
}

/// The configured catalog, or the compiled-in one.
fn load_catalog(settings: &Settings) -> Result<Catalog, StartError> {
    match settings.catalog.path() {
        None => Catalog::parse("config/catalog.toml (built in)", DEFAULT_CATALOG)
            .map_err(|e| StartError::Data(e.to_string())),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                StartError::Data(format!("catalog {}: cannot read: {e}", path.display()))
            })?;
            Catalog::parse(&path.display().to_string(), &text)
                .map_err(|e| StartError::Data(e.to_string()))
        }
    }
}

/// The configured hall of appointment counters, or the compiled-in one, checked against the
/// catalog.
fn load_hall(settings: &Settings, catalog: &Catalog) -> Result<Hall, StartError> {
    match settings.appointments.path() {
        None => Hall::builtin(catalog).map_err(|e| StartError::Data(e.to_string())),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                StartError::Data(format!("appointments {}: cannot read: {e}", path.display()))
            })?;
            Hall::parse(&path.display().to_string(), &text, catalog)
                .map_err(|e| StartError::Data(e.to_string()))
        }
    }
}

/// The configured calendar, or the compiled-in cn-shanghai one.
fn load_calendar(settings: &Settings) -> Result<Calendar, StartError> {
    match settings.calendar.path() {
        None => Ok(Calendar::builtin_shanghai()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                StartError::Data(format!("calendar {}: cannot read: {e}", path.display()))
            })?;
            Calendar::parse(&path.display().to_string(), &text)
                .map_err(|e| StartError::Data(e.to_string()))
        }
    }
}

/// Per-process state shared by every worker.
#[derive(Clone)]
struct SharedState {
    database: web::Data<Database>,
    authenticator: web::Data<Authenticator>,
    metrics: web::Data<Metrics>,
    metrics_access: web::Data<MetricsAccess>,
    uri_limit: UriLimit,
    route_table: web::Data<RouteTable>,
    catalog: web::Data<Catalog>,
    hall: web::Data<Hall>,
    appointments: web::Data<AppointmentSettings>,
    calendar: web::Data<Calendars>,
    open311: web::Data<Open311>,
    sla: web::Data<SlaSettings>,
    rating: web::Data<RatingSettings>,
    rate_limit: web::Data<RateLimitSettings>,
    local_counts: web::Data<rate_limit::LocalCounts>,
    body_limit: usize,
    cors: CorsSettings,
    drain: web::Data<Drain>,
    doc_json: web::Data<OpenApiJson>,
}

/// One worker's application: state, middleware, documented routes, docs UI, fallback.
///
/// Middleware, outermost first: the drain's in-flight count and `Connection: close` on a
/// graceful stop, request id and access log, metrics (both see the method the
/// client sent), security headers (on every answer, CORS refusals included), CORS, the body
/// limit, conditional `GET`, then `HEAD` routed as `GET`.
fn app(
    state: SharedState,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let cors = cors::middleware(&state.cors);
    let app = UtoipaApp::from(App::new())
        .openapi(ApiDoc::openapi())
        .app_data(state.database)
        .app_data(state.authenticator)
        .app_data(state.metrics)
        .app_data(state.metrics_access)
        .app_data(state.uri_limit)
        .app_data(state.route_table)
        .app_data(state.catalog)
        .app_data(state.hall)
        .app_data(state.appointments)
        .app_data(state.calendar)
        .app_data(state.open311)
        .app_data(state.sla)
        .app_data(state.rating)
        .app_data(state.rate_limit)
        .app_data(state.local_counts)
        .app_data(state.drain)
        .app_data(BodyLimit(state.body_limit))
        .app_data(extract::json_config(state.body_limit))
        .app_data(extract::query_config())
        .app_data(extract::path_config());
    routes::register(app)
        .into_app()
        .service(
            SwaggerUi::new("/docs/{_:.*}").config(utoipa_swagger_ui::Config::from(OPENAPI_PATH)),
        )
        .app_data(state.doc_json)
        .route(OPENAPI_PATH, web::get().to(openapi_json))
        .route("/docs", web::get().to(docs_redirect))
        .default_service(web::to(fallback::not_routed))
        .wrap(from_fn(head::as_get))
        .wrap(from_fn(conditional::not_modified))
        .wrap(from_fn(nul::refuse))
        .wrap(from_fn(extract::limit_body))
        .wrap(from_fn(rate_limit::limit))
        .wrap(cors)
        .wrap(from_fn(cors::refusals_as_problems))
        // Innermost first: the request line is checked before the body, the route or the
        // database, and the refusal is still counted and logged (with bounded labels).
        .wrap(from_fn(request_line::check))
        .wrap(from_fn(security::headers))
        .wrap(from_fn(metrics::record))
        .wrap(from_fn(request_id::assign))
        // Outermost: a request counts as in flight on its connection until its body is sent,
        // and during a graceful stop every answer closes its connection.
        .wrap(from_fn(drain::track))
}

/// Deletes the rate-limit rows of windows past, once a window (at most once a minute): rows
/// of callers gone quiet would otherwise stay forever. Every instance sweeps; the deletes are
/// idempotent. Runs until `stop` is raised.
async fn sweep_rate_limits(database: Database, window_secs: u32, mut stop: StopSignal) {
    let window = i64::from(window_secs);
    let every = Duration::from_secs(u64::from(window_secs.max(60)));
    while stop.sleep(every).await {
        let before = Utc::now().timestamp() - window;
        let swept = database
            .run(move |conn| Ok(crate::db::rate_limits::sweep(conn, before)?))
            .await;
        match swept {
            Ok(rows) => tracing::debug!(rows, "rate-limit rows of past windows swept"),
            Err(error) => tracing::warn!(%error, "could not sweep rate-limit rows"),
        }
    }
}

/// Where the OpenAPI document is served (and where the docs UI reads it).
const OPENAPI_PATH: &str = "/api-docs/openapi.json";

/// The OpenAPI document as JSON, serialised once at start.
#[derive(Clone)]
struct OpenApiJson(web::Bytes);

/// `GET /api-docs/openapi.json`: the document, from the bytes made at start.
async fn openapi_json(doc: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(doc.0.clone())
}

/// Deletes the idempotency keys past their 24 hours, every ten minutes, so that an intake
/// never pays for it (an intake meeting an expired key not swept yet forgets it itself). Every
/// instance sweeps; the deletes are idempotent. Runs until `stop` is raised.
async fn sweep_idempotency_keys(database: Database, mut stop: StopSignal) {
    let every = Duration::from_secs(600);
    loop {
        let swept = database
            .run(|conn| {
                Ok(crate::db::requests::sweep_idempotency_keys(
                    conn,
                    Utc::now().naive_utc(),
                )?)
            })
            .await;
        match swept {
            Ok(rows) => tracing::debug!(rows, "expired idempotency keys swept"),
            Err(error) => tracing::warn!(%error, "could not sweep expired idempotency keys"),
        }
        if !stop.sleep(every).await {
            break;
        }
    }
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/docs/"))
        .finish()
}
