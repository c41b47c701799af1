//! The GeoReport v2 discovery document (`/open311/v2/discovery.{format}`): what a client
//! reads first to find the endpoint, its formats, and whom to ask for a key. Public, in
//! GeoReport's JSON or XML like every other resource of the interface.

use actix_web::{HttpRequest, HttpResponse, get, web};
use utoipa::ToSchema;

use super::{Doc, Node, Open311, Open311Error, Open311Format, answer, format_of, text};

/// When this interface last changed (GeoReport's sortable `changeset`). Change it with the
/// Open311 routes, their arguments or their answers.
pub const CHANGESET: &str = "2026-11-29 00:00";

/// The specification the endpoint implements, as discovery documents name it.
pub const SPECIFICATION: &str = "http://wiki.open311.org/GeoReport_v2";

/// The discovery document.
#[derive(ToSchema)]
#[allow(dead_code)] // only a documentation type
pub struct Open311Discovery {
    /// When this document last changed (`YYYY-MM-DD HH:MM`).
    #[schema(example = "2026-11-29 00:00")]
    changeset: String,
    /// Whom to ask about the endpoint.
    contact: String,
    /// How to obtain an API key.
    key_service: String,
    /// The endpoints (one: production).
    endpoints: Vec<Open311Endpoint>,
}

/// One endpoint of a discovery document.
#[derive(ToSchema)]
#[allow(dead_code)] // only a documentation type
pub struct Open311Endpoint {
    /// The specification it implements.
    #[schema(example = "http://wiki.open311.org/GeoReport_v2")]
    specification: String,
    /// Its base URL: resources are `{url}/services.json` and so on.
    #[schema(example = "https://api.putuo.sh.gov.cn/open311/v2")]
    url: String,
    /// When it last changed.
    changeset: String,
    /// `production`.
    #[schema(example = "production")]
    r#type: String,
    /// The media types it answers in.
    #[schema(example = json!(["text/xml", "application/json"]))]
    formats: Vec<String>,
}

/// The endpoint's base URL: the configured `public_url`, else this request's scheme and host.
fn endpoint_url(open311: &Open311, req: &HttpRequest) -> String {
    if !open311.public_url.is_empty() {
        return open311.public_url.clone();
    }
    let info = req.connection_info();
    format!("{}://{}/open311/v2", info.scheme(), info.host())
}

/// The discovery document as a GeoReport tree.
fn discovery_node(open311: &Open311, url: String) -> Node {
    Node::Object(vec![
        ("changeset", text(CHANGESET)),
        ("contact", text(&open311.contact)),
        ("key_service", text(&open311.key_service)),
        (
            "endpoints",
            Node::List(
                "endpoint",
                vec![Node::Object(vec![
                    ("specification", text(SPECIFICATION)),
                    ("url", text(url)),
                    ("changeset", text(CHANGESET)),
                    ("type", text("production")),
                    (
                        "formats",
                        Node::List("format", vec![text("text/xml"), text("application/json")]),
                    ),
                ])],
            ),
        ),
    ])
}

/// The discovery document: the endpoint, its formats, whom to contact, how to get a key.
///
/// Public. Errors are GeoReport's error body: a suffix other than `.json` / `.xml` is 404.
#[utoipa::path(
    tag = "open311",
    operation_id = "open311_discovery",
    params(("format" = inline(Open311Format), Path, description = "Response format")),
    responses(
        (status = 200, description = "The discovery document", content(
            (Open311Discovery = "application/json"), (String = "text/xml"))),
        (status = 404, description = "Unknown format (GeoReport error body)", content(
            (Vec<Open311Error> = "application/json"), (String = "text/xml"))),
    )
)]
#[get("/open311/v2/discovery.{format}")]
pub async fn discovery(req: HttpRequest, open311: web::Data<Open311>) -> HttpResponse {
    let format = match format_of(&req) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let url = endpoint_url(&open311, &req);
    answer(
        format,
        Ok(Doc::ok("discovery", discovery_node(&open311, url))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xml_has_the_elements_georeport_names() {
        let open311 = Open311::new(&crate::config::Settings::defaults().open311);
        let xml = super::super::to_xml(
            "discovery",
            &discovery_node(&open311, "https://x.example/open311/v2".into()),
        );
        for element in [
            "<discovery>",
            "<changeset>2026-11-29 00:00</changeset>",
            "<key_service>",
            "<endpoints>\n    <endpoint>",
            "<specification>http://wiki.open311.org/GeoReport_v2</specification>",
            "<url>https://x.example/open311/v2</url>",
            "<type>production</type>",
            "<formats>\n        <format>text/xml</format>\n        <format>application/json</format>",
        ] {
            assert!(xml.contains(element), "{element}: {xml}");
        }
    }
}
