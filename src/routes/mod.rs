//! The route table: every endpoint, registered through `utoipa-actix-web` so the OpenAPI
//! document is generated from the very registrations that serve requests.
//!
//! Handlers are thin: extract, check the caller, call the domain or the database, map to a
//! response type. Each handler's attribute carries its full path (`#[get("/api/v1/…")]`), so
//! the `openapi_matches_routes` test can find every route in the source.

pub mod actions;
pub mod audit;
pub mod calendars;
pub mod catalog;
pub mod health;
pub mod instances;
pub mod materials;
pub mod me;
pub mod metrics;
pub mod notifications;
pub mod open311;
pub mod queue;
pub mod ratings;
pub mod requests;
pub mod sla;

use actix_web::dev::{ServiceFactory, ServiceRequest};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};
use utoipa_actix_web::UtoipaApp;

use crate::error::Problem;

/// The static part of the OpenAPI document; paths are added from the registrations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mashangban 马上办",
        description = "Enterprise service requests of a district government service centre. \
                       Errors are RFC 9457 problem+json with a stable `code`.",
        license(name = "MIT", identifier = "MIT")
    ),
    components(schemas(Problem, crate::error::ErrorCode, crate::error::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "operations", description = "Metrics and server instances"),
        (name = "session", description = "Who the token speaks for"),
        (name = "catalog", description = "The published units, matters and bundles (public)"),
        (name = "requests", description = "Enterprise requests: intake, reading, routing"),
        (name = "queue", description = "The clerks' queue"),
        (name = "audit", description = "The hash-chained audit trail"),
        (name = "sla", description = "Supervisors: SLA breaches (JSON or CSV), clocks at risk, on-time statistics (docs/sla.md)"),
        (name = "ratings", description = "Good/bad ratings (好差评) and the rectification cases bad ones open (docs/ratings.md)"),
        (name = "calendars", description = "Working calendars and deadlines on them (docs/calendars.md)"),
        (name = "notifications", description = "The mail outbox: what was sent to whom, what waits and why (docs/notifications.md)"),
        (name = "open311", description = "Open311 GeoReport v2 (docs/open311.md): the matters as services, \
                                           the same requests; GeoReport's own JSON/XML and error body, not problem+json"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme (JWT in `Authorization: Bearer`).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Failures any authenticated endpoint can answer.
#[derive(IntoResponses)]
#[allow(dead_code)] // only a documentation type
pub enum AuthFailures {
    /// Missing, malformed, expired or foreign token.
    #[response(
        status = 401,
        content_type = "application/problem+json",
        headers(("WWW-Authenticate" = String, description = "Bearer challenge (RFC 6750)"))
    )]
    Unauthorized(Problem),
    /// The token's role or unit may not do this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
}

/// Registers every documented route on `app`.
pub fn register<T>(app: UtoipaApp<T>) -> UtoipaApp<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    app.service(health::live)
        .service(health::ready)
        .service(metrics::metrics)
        .service(me::me)
        .service(instances::list)
        .service(catalog::units)
        .service(catalog::matters)
        .service(catalog::matter)
        .service(catalog::bundles)
        .service(requests::create)
        .service(requests::list)
        .service(requests::read)
        .service(requests::routing_history)
        .service(actions::act)
        .service(materials::supply)
        .service(queue::list)
        .service(queue::next)
        .service(audit::timeline)
        .service(audit::verify)
        .service(sla::breaches)
        .service(sla::at_risk)
        .service(sla::stats)
        .service(calendars::list)
        .service(calendars::read)
        .service(calendars::deadline)
        .service(calendars::set_day)
        .service(calendars::clear_day)
        .service(calendars::load_year)
        .service(notifications::list)
        .service(ratings::rate)
        .service(ratings::list_cases)
        .service(ratings::read_case)
        .service(ratings::contact)
        .service(ratings::close)
        .service(open311::services)
        .service(open311::definition)
        .service(open311::create)
        .service(open311::list)
        .service(open311::read)
        .service(open311::token)
}

/// The OpenAPI document of the whole route table.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let app = UtoipaApp::from(actix_web::App::new()).openapi(ApiDoc::openapi());
    let mut doc = register(app).split_for_parts().1;
    document_limits(&mut doc);
    doc
}

/// Paths the rate limits never count (`crate::http::rate_limit`).
const UNLIMITED_PATHS: &[&str] = &["/health/live", "/health/ready", "/metrics"];

/// The answers the middleware of `crate::http` gives on any route, added to every operation
/// rather than written on each: `429` (rate limits) on every counted path, and `422` (a NUL
/// character, `crate::http::nul`) on every operation that takes a parameter or a body and
/// does not document a `422` of its own.
fn document_limits(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder, Type};

    let problem = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build()
    };
    let header = |description: &str, kind: Type| {
        HeaderBuilder::new()
            .schema(utoipa::openapi::ObjectBuilder::new().schema_type(kind))
            .description(Some(description))
            .build()
    };
    let too_many = ResponseBuilder::new()
        .description(
            "Too many requests from this enterprise, official or client address in the current \
             window (`too_many_requests`); nothing was done. See docs/security.md.",
        )
        .content("application/problem+json", problem())
        .header(
            "Retry-After",
            header("Seconds until the window ends (RFC 9110)", Type::Integer),
        )
        .header(
            "RateLimit-Policy",
            header(
                "The caller's quota: `\"enterprise\";q=600;w=60` (draft-ietf-httpapi-ratelimit-headers-10)",
                Type::String,
            ),
        )
        .header(
            "RateLimit",
            header(
                "What is left: `\"enterprise\";r=0;t=41` (draft-ietf-httpapi-ratelimit-headers-10)",
                Type::String,
            ),
        )
        .build();
    let nul = ResponseBuilder::new()
        .description(
            "A path segment, query parameter or body string holds the NUL character (U+0000); \
             `errors` names it; nothing was done",
        )
        .content("application/problem+json", problem())
        .build();
    for (path, item) in doc.paths.paths.iter_mut() {
        let limited = !UNLIMITED_PATHS.contains(&path.as_str());
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let responses = &mut operation.responses.responses;
            if limited {
                responses
                    .entry("429".into())
                    .or_insert_with(|| too_many.clone().into());
            }
            let takes_input = operation.parameters.as_ref().is_some_and(|p| !p.is_empty())
                || operation.request_body.is_some();
            if takes_input {
                responses
                    .entry("422".into())
                    .or_insert_with(|| nul.clone().into());
            }
        }
    }
}
