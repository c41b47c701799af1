//! The route table: every endpoint, registered through `utoipa-actix-web` so the OpenAPI
//! document is generated from the very registrations that serve requests.
//!
//! Handlers are thin: extract, check the caller, call the domain or the database, map to a
//! response type. Each handler's attribute carries its full path (`#[get("/api/v1/…")]`), so
//! the `openapi_matches_routes` test can find every route in the source.

pub mod actions;
pub mod appointments;
pub mod audit;
pub mod authorizations;
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
pub mod tickets;

use actix_web::dev::{ServiceFactory, ServiceRequest};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, RefOr, Required, Type};
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
        license(name = "MIT", identifier = "MIT"),
        contact(name = "Putuo District Service Centre, 马上办", email = "open311@putuo.sh.gov.cn")
    ),
    servers((url = "/", description = "This server (the document is served by the API it describes)")),
    components(schemas(Problem, crate::error::ErrorCode, crate::error::FieldError)),
    modifiers(&BearerAuth, &Open311ApiKey),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "operations", description = "Metrics and server instances"),
        (name = "session", description = "Who the token speaks for"),
        (name = "catalog", description = "The published units, matters and bundles (public)"),
        (name = "requests", description = "Enterprise requests: intake, reading, routing"),
        (name = "authorizations", description = "帮办: enterprises authorise officials to act for them; walk-in and assisted-handling statistics (docs/assisted-filing.md)"),
        (name = "queue", description = "The clerks' queue"),
        (name = "tickets", description = "The window queue in the hall (叫号): tickets, call-next, waiting times (docs/tickets.md)"),
        (name = "audit", description = "The hash-chained audit trail"),
        (name = "sla", description = "Supervisors: SLA breaches (JSON or CSV), clocks at risk, on-time statistics (docs/sla.md)"),
        (name = "ratings", description = "Good/bad ratings (好差评) and the rectification cases bad ones open (docs/ratings.md)"),
        (name = "calendars", description = "Working calendars and deadlines on them (docs/calendars.md)"),
        (name = "appointments", description = "Appointments at the district hall (统一预约, docs/appointments.md): \
                                                free slots (public), booking, cancel and reschedule, check-in, the day"),
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

/// Declares the `open311_api_key` security scheme: GeoReport's `api_key`.
struct Open311ApiKey;

impl Modify for Open311ApiKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "open311_api_key",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "api_key",
                "Open311 GeoReport v2 API key, one per enterprise ([open311.api_keys], \
                 docs/open311.md). Optional on the reads, in the query string; required to \
                 submit, where GeoReport puts it in the form body (the `api_key` field).",
            ))),
        );
    }
}

/// Documents `X-Request-Id` on every operation: accepted on the request, always answered.
/// Applied by [`openapi`] once the registrations have added the paths.
struct RequestIdHeader;

/// What `X-Request-Id` is, for the document.
const REQUEST_ID_DOC: &str = "Correlates the request with the server's log lines. A client's \
     own id is kept when it is 1 to 128 letters, digits or `-_.:`; otherwise the server makes one \
     (a UUID v7). Always echoed on the response.";

impl Modify for RequestIdHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let text = || ObjectBuilder::new().schema_type(Type::String).build();
        let parameter = ParameterBuilder::new()
            .name("X-Request-Id")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(REQUEST_ID_DOC))
            .schema(Some(text()))
            .build();
        let header = HeaderBuilder::new()
            .schema(text())
            .description(Some(
                "The request's id: the client's, if acceptable, else the server's",
            ))
            .build();
        let add = |operation: &mut Operation| {
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(parameter.clone());
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response
                        .headers
                        .insert("X-Request-Id".into(), header.clone());
                }
            }
        };
        for item in openapi.paths.paths.values_mut() {
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
                add(operation);
            }
        }
    }
}

/// Failures any endpoint that reads a JSON body can answer, before the handler runs
/// (`http::extract`'s JSON configuration).
#[derive(IntoResponses)]
#[allow(dead_code)] // only a documentation type
pub enum JsonBodyFailures {
    /// Body is not JSON.
    #[response(status = 400, content_type = "application/problem+json")]
    NotJson(Problem),
    /// Body too large.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// Body is not application/json.
    #[response(status = 415, content_type = "application/problem+json")]
    NotJsonType(Problem),
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
        .service(authorizations::grant)
        .service(authorizations::list)
        .service(authorizations::stats)
        .service(authorizations::read)
        .service(authorizations::revoke)
        .service(queue::list)
        .service(queue::next)
        .service(tickets::issue)
        .service(tickets::list)
        .service(tickets::next)
        .service(tickets::act)
        .service(tickets::link)
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
        // The fixed paths before `/api/v1/appointments/{id}`, which would take them.
        .service(appointments::slots)
        .service(appointments::day)
        .service(appointments::no_shows)
        .service(appointments::book)
        .service(appointments::list)
        .service(appointments::read)
        .service(appointments::calendar_entry)
        .service(appointments::cancel)
        .service(appointments::reschedule)
        .service(appointments::check_in)
        .service(open311::discovery::discovery)
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
    RequestIdHeader.modify(&mut doc);
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
            // Headers do not count: the HTTP parser refuses a NUL in a header with 400.
            let takes_input = operation.parameters.as_ref().is_some_and(|p| {
                p.iter()
                    .any(|p| p.parameter_in != utoipa::openapi::path::ParameterIn::Header)
            }) || operation.request_body.is_some();
            if takes_input {
                responses
                    .entry("422".into())
                    .or_insert_with(|| nul.clone().into());
            }
        }
    }
}
