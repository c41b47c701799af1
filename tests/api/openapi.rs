//! The OpenAPI document equals the route table, in both directions.

use std::collections::BTreeSet;
use std::path::Path;

use crate::helpers::{TestApp, spawn_sqlite};

/// `(METHOD, path)` of every route attribute (`#[get("/…")]`) under `src/`.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines().map(str::trim) {
                for method in ["get", "post", "put", "delete", "patch"] {
                    if let Some(rest) = line.strip_prefix(&format!("#[{method}(\"")) {
                        let route = rest.split('"').next().unwrap().to_string();
                        found.insert((method.to_ascii_uppercase(), route));
                    }
                }
                // Routes registered any other way would escape the document.
                if line.contains(".route(") || line.contains("web::resource(") {
                    // The docs UI's redirect and the document itself are not API operations.
                    let allowed =
                        line.contains(".route(\"/docs\"") || line.contains(".route(OPENAPI_PATH");
                    assert!(
                        allowed,
                        "{}: undocumented route registration: {line}",
                        path.display()
                    );
                }
            }
        }
    }
    found
}

/// `(METHOD, path)` of every operation in the served document.
async fn routes_in_document(app: &TestApp) -> BTreeSet<(String, String)> {
    let response = app.get("/api-docs/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            found.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    found
}

#[actix_web::test]
async fn openapi_matches_routes() {
    let app = spawn_sqlite().await;
    let in_source = routes_in_source();
    let in_document = routes_in_document(&app).await;
    assert!(in_source.len() >= 5, "{in_source:?}");
    let missing: Vec<_> = in_source.difference(&in_document).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the OpenAPI document: {missing:?}"
    );
    let extra: Vec<_> = in_document.difference(&in_source).collect();
    assert!(
        extra.is_empty(),
        "documented operations with no route: {extra:?}"
    );

    // And each documented operation is really served (not the 404/405 fallback).
    for (method, path) in &in_document {
        // Every `{parameter}` becomes `x`, also inside a segment (`services.{format}`).
        let concrete = path
            .split('{')
            .enumerate()
            .map(|(i, piece)| match (i, piece.split_once('}')) {
                (0, _) | (_, None) => piece.to_string(),
                (_, Some((_, rest))) => format!("x{rest}"),
            })
            .collect::<String>();
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            status != 405 && !body.contains("no resource at"),
            "{method} {path} is documented but not served: {status} {body}"
        );
    }
}

#[actix_web::test]
async fn documented_api_is_browsable() {
    let app = spawn_sqlite().await;
    let redirect = app.get("/docs", None).await;
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/docs/");
    let page = app.get("/docs/", None).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger"));

    let doc: serde_json::Value = app
        .get("/api-docs/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    // Authenticated operations declare the bearer scheme and their 401/403 answers.
    let me = &doc["paths"]["/api/v1/me"]["get"];
    assert_eq!(me["security"][0]["bearer"], serde_json::json!([]));
    assert!(me["responses"]["401"]["content"]["application/problem+json"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// Every operation has its own operationId (code generators and validators need them unique),
/// documents `X-Request-Id` both ways, and the document names its server and GeoReport's key.
#[actix_web::test]
async fn operations_are_unique_and_documented() {
    let app = spawn_sqlite().await;
    let doc: serde_json::Value = app
        .get("/api-docs/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            if let Some(other) = seen.insert(id.to_string(), format!("{method} {path}")) {
                panic!("operationId `{id}` is used by {other} and {method} {path}");
            }
            let parameters = operation["parameters"].as_array().unwrap();
            assert!(
                parameters
                    .iter()
                    .any(|p| p["name"] == "X-Request-Id" && p["in"] == "header"),
                "{method} {path}"
            );
            for (status, response) in operation["responses"].as_object().unwrap() {
                assert!(
                    response["headers"]["X-Request-Id"].is_object(),
                    "{method} {path} {status}"
                );
            }
        }
    }
    assert!(seen.len() >= 40, "{}", seen.len());
    assert_eq!(doc["servers"][0]["url"], "/");
    let key = &doc["components"]["securitySchemes"]["open311_api_key"];
    assert_eq!(key["type"], "apiKey");
    assert_eq!(key["in"], "query");
    assert_eq!(key["name"], "api_key");

    // "Try it out" starts from a valid body on the operations that take one.
    for (path, method) in [
        ("/api/v1/requests", "post"),
        ("/api/v1/requests/{id}/actions", "post"),
        ("/api/v1/requests/{id}/materials", "post"),
        ("/api/v1/requests/{id}/rating", "post"),
        ("/api/v1/authorizations", "post"),
        ("/api/v1/calendars/{code}/days/{date}", "put"),
        ("/api/v1/calendars/{code}/years/{year}", "put"),
    ] {
        let body = &doc["paths"][path][method]["requestBody"]["content"]["application/json"];
        assert!(body["example"].is_object(), "{method} {path}: {body}");
    }
}

/// Two types of one name would share one component schema, the last registered winning: the
/// appointment's state once replaced the request's, and every request view failed its own
/// schema. Each state enum keeps its own values.
#[actix_web::test]
async fn state_schemas_keep_their_own_values() {
    let app = spawn_sqlite().await;
    let doc: serde_json::Value = app
        .get("/api-docs/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let values = |name: &str| -> Vec<String> {
        doc["components"]["schemas"][name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("no enum schema {name}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert!(values("Status").contains(&"submitted".to_string()));
    assert!(values("AppointmentStatus").contains(&"booked".to_string()));
}
