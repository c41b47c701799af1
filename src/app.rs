//! Building and running the HTTP server.
//!
//! [`Application::build`] connects and migrates the database, registers this instance, binds
//! the listener (port 0 picks a free port; [`Application::port`] tells which) and assembles the
//! route table. [`Application::run_until_stopped`] serves until SIGTERM or Ctrl-C, lets
//! in-flight requests finish, then records the graceful stop.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use chrono::Utc;
use utoipa::OpenApi;
use utoipa_actix_web::UtoipaApp;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::{Authenticator, KeyError};
use crate::config::CorsSettings;
use crate::config::{ConfigError, RatingSettings, Settings, SlaSettings};
use crate::db::calendars::Calendars;
use crate::db::instances::{self, ServiceInstance};
use crate::db::requests;
use crate::db::{Database, DbSetupError};
use crate::domain::calendar::Calendar;
use crate::domain::catalog::{Catalog, DEFAULT_CATALOG};
use crate::http::extract::{self, BodyLimit};
use crate::http::{
    Metrics, RouteTable, conditional, cors, fallback, head, metrics, request_id, security,
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

/// A built, bound, not yet running server.
pub struct Application {
    server: Server,
    port: u16,
    database: Database,
    instance: ServiceInstance,
    grace: Duration,
    calendars: web::Data<Calendars>,
    catalog: web::Data<Catalog>,
    metrics: web::Data<Metrics>,
    sla: SlaSettings,
    horizon_notices: sla::HorizonNotices,
    mailer: Option<crate::notify::Mailer>,
}

impl Application {
    /// Prepares everything the server needs; fails fast on bad configuration or database.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        settings.validate()?;
        let mailer = (settings.mail.worker)
            .then(|| crate::notify::Mailer::new(&settings.mail))
            .transpose()?;
        let authenticator = web::Data::new(Authenticator::new(&settings.jwt)?);
        let catalog = load_catalog(&settings)?;
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
        let listener = TcpListener::bind(bind).map_err(|source| StartError::Bind {
            bind: settings.server.bind.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                bind: settings.server.bind.clone(),
                source,
            })?
            .port();

        let calendars = web::Data::new(calendars);
        let catalog = web::Data::new(catalog);
        let metrics = web::Data::new(Metrics::new());
        let doc = Arc::new(routes::openapi());
        let state = SharedState {
            database: web::Data::new(database.clone()),
            authenticator,
            metrics: metrics.clone(),
            route_table: web::Data::new(RouteTable::from_openapi(&doc)),
            catalog: catalog.clone(),
            calendar: calendars.clone(),
            open311: web::Data::new(Open311::new(&settings.open311)),
            sla: web::Data::new(settings.sla),
            rating: web::Data::new(settings.rating),
            body_limit: settings.server.body_limit_bytes,
            cors: settings.cors.clone(),
        };
        let mut server = HttpServer::new(move || app(state.clone(), doc.as_ref().clone()))
            .disable_signals()
            .shutdown_timeout(settings.server.shutdown_timeout_secs)
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
            database = %database.backend(),
            instance = %instance.id,
            "mashangban ready"
        );
        Ok(Self {
            server: server.run(),
            port,
            database,
            instance,
            grace: Duration::from_secs(settings.server.shutdown_timeout_secs),
            calendars,
            catalog,
            metrics,
            sla: settings.sla,
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

    /// Serves until SIGTERM or Ctrl-C, lets in-flight requests finish (up to
    /// `server.shutdown_timeout_secs`), then records the graceful stop.
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
        let calendar_days = actix_web::rt::spawn(sla::follow_calendar_days(
            self.database.clone(),
            self.calendars.clone(),
            self.metrics.clone(),
            self.horizon_notices,
        ));
        let detector = self.sla.worker.then(|| {
            actix_web::rt::spawn(sla::detect(
                self.database.clone(),
                self.calendars.clone(),
                self.catalog.clone(),
                self.metrics.clone(),
                self.sla,
            ))
        });
        let sender = self.mailer.map(|mailer| {
            actix_web::rt::spawn(crate::notify::deliver(
                self.database.clone(),
                mailer,
                self.metrics.clone(),
            ))
        });
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
                tracing::info!(
                    signal = name,
                    grace_secs = self.grace.as_secs(),
                    "stop signal received; graceful shutdown, in-flight requests finish"
                );
                let limit = self.grace + Duration::from_secs(5);
                if actix_web::rt::time::timeout(limit, handle.stop(true))
                    .await
                    .is_err()
                {
                    tracing::warn!("graceful shutdown overran its grace period; exiting anyway");
                }
                match actix_web::rt::time::timeout(Duration::from_secs(1), &mut server).await {
                    Ok(Ok(result)) => result,
                    _ => Ok(()),
                }
            }
        };
        calendar_days.abort();
        if let Some(detector) = detector {
            detector.abort();
        }
        if let Some(sender) = sender {
            sender.abort();
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
    route_table: web::Data<RouteTable>,
    catalog: web::Data<Catalog>,
    calendar: web::Data<Calendars>,
    open311: web::Data<Open311>,
    sla: web::Data<SlaSettings>,
    rating: web::Data<RatingSettings>,
    body_limit: usize,
    cors: CorsSettings,
}

/// One worker's application: state, middleware, documented routes, docs UI, fallback.
///
/// Middleware, outermost first: request id and access log, metrics (both see the method the
/// client sent), security headers (on every answer, CORS refusals included), CORS, the body
/// limit, conditional `GET`, then `HEAD` routed as `GET`.
fn app(
    state: SharedState,
    doc: utoipa::openapi::OpenApi,
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
        .app_data(state.route_table)
        .app_data(state.catalog)
        .app_data(state.calendar)
        .app_data(state.open311)
        .app_data(state.sla)
        .app_data(state.rating)
        .app_data(BodyLimit(state.body_limit))
        .app_data(extract::json_config(state.body_limit))
        .app_data(extract::query_config())
        .app_data(extract::path_config());
    routes::register(app)
        .into_app()
        .service(SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", doc))
        .route("/docs", web::get().to(docs_redirect))
        .default_service(web::to(fallback::not_routed))
        .wrap(from_fn(head::as_get))
        .wrap(from_fn(conditional::not_modified))
        .wrap(from_fn(extract::limit_body))
        .wrap(cors)
        .wrap(from_fn(cors::refusals_as_problems))
        .wrap(from_fn(security::headers))
        .wrap(from_fn(metrics::record))
        .wrap(from_fn(request_id::assign))
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/docs/"))
        .finish()
}
