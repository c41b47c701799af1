//! What answers when no route matches: 405 with `Allow` when the path exists for other
//! methods, 404 otherwise; both as problem+json. The table comes from the OpenAPI document,
//! which is generated from the registered routes, so the two cannot disagree. `HEAD` is
//! allowed wherever `GET` is (see [`super::head`]), though the document lists `GET` only.

use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use utoipa::openapi::OpenApi;

use crate::error::{ApiError, ErrorCode};
use crate::http::head::HeadRequest;

/// One documented path template and the methods it answers.
#[derive(Debug, Clone)]
struct Route {
    segments: Vec<String>,
    methods: Vec<String>,
}

/// Path templates and their methods, from the OpenAPI document.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

fn split(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect()
}

impl RouteTable {
    /// Reads every path and method of `api`.
    pub fn from_openapi(api: &OpenApi) -> Self {
        let routes = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let value = serde_json::to_value(item).unwrap_or_default();
                let mut methods: Vec<String> = [
                    "get", "put", "post", "delete", "options", "head", "patch", "trace",
                ]
                .iter()
                .filter(|m| value.get(**m).is_some())
                .map(|m| m.to_ascii_uppercase())
                .collect();
                if methods.iter().any(|m| m == "GET") && !methods.iter().any(|m| m == "HEAD") {
                    methods.push("HEAD".into());
                }
                methods.sort();
                Route {
                    segments: split(path),
                    methods,
                }
            })
            .collect();
        Self { routes }
    }

    /// The methods allowed on `path`, if some documented template matches it.
    pub fn allowed(&self, path: &str) -> Option<Vec<String>> {
        let parts = split(path);
        let mut allowed: Vec<String> = self
            .routes
            .iter()
            .filter(|route| {
                route.segments.len() == parts.len()
                    && route
                        .segments
                        .iter()
                        .zip(&parts)
                        .all(|(template, part)| segment_matches(template, part))
            })
            .flat_map(|route| route.methods.clone())
            .collect();
        allowed.sort();
        allowed.dedup();
        (!allowed.is_empty()).then_some(allowed)
    }
}

impl RouteTable {
    /// The name of the path parameter at segment `index` of `path` (counted without the
    /// leading `/`), when a documented template matches the path and has a parameter there:
    /// `id` for segment 3 of `/api/v1/requests/{id}`.
    pub fn parameter_at(&self, path: &str, index: usize) -> Option<String> {
        let parts = split(path);
        self.routes
            .iter()
            .filter(|route| {
                route.segments.len() == parts.len()
                    && route
                        .segments
                        .iter()
                        .zip(&parts)
                        .all(|(template, part)| segment_matches(template, part))
            })
            .find_map(|route| {
                let template = route.segments.get(index)?;
                let open = template.find('{')?;
                let close = template[open..].find('}')?;
                Some(template[open + 1..open + close].to_string())
            })
    }
}

/// Whether one path segment matches its template: literal text, and `{name}` parameters
/// that each take at least one character (`{id}`, `services.{format}`,
/// `{service_code}.{format}`), as actix matches them.
fn segment_matches(template: &str, part: &str) -> bool {
    match template.find('{') {
        None => template == part,
        Some(open) => {
            let Some(literal) = part.strip_prefix(&template[..open]) else {
                return false;
            };
            let Some(close) = template[open..].find('}') else {
                return template == part;
            };
            let rest = &template[open + close + 1..];
            // The parameter takes 1..n characters; try each split (segments are short).
            literal
                .char_indices()
                .skip(1)
                .map(|(i, _)| i)
                .chain([literal.len()])
                .filter(|&i| i > 0)
                .any(|i| segment_matches(rest, &literal[i..]))
        }
    }
}

/// The default service.
pub async fn not_routed(req: HttpRequest, table: web::Data<RouteTable>) -> HttpResponse {
    match table.allowed(req.path()) {
        Some(methods) => {
            let allow = methods.join(", ");
            // A `HEAD` is routed as `GET`: name the method the client sent.
            let method = match req.extensions().get::<HeadRequest>() {
                Some(_) => "HEAD".to_string(),
                None => req.method().to_string(),
            };
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{method} is not supported on {}; use {allow}", req.path()),
            )
            .with_header(
                ALLOW,
                HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static("GET")),
            )
            .error_response()
        }
        None => ApiError::not_found(format!("no resource at {}", req.path())).error_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::segment_matches;

    #[test]
    fn segments_match_whole_and_partial_templates() {
        assert!(segment_matches("requests", "requests"));
        assert!(!segment_matches("requests", "request"));
        assert!(segment_matches("{id}", "abc"));
        assert!(!segment_matches("{id}", ""));
        assert!(segment_matches("services.{format}", "services.json"));
        assert!(!segment_matches("services.{format}", "services."));
        assert!(!segment_matches("services.{format}", "services"));
        assert!(segment_matches("{code}.{format}", "market.establish.xml"));
        assert!(segment_matches("{code}.{format}", "a.b"));
        assert!(!segment_matches("{code}.{format}", "abc"));
        assert!(!segment_matches("{code}.{format}", ".json"));
        assert!(segment_matches("{a}-x", "é-x"));
    }
}
