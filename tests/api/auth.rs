//! Bearer tokens: HS256 from our secret, RS256 and EdDSA by `kid`; 401 and 403.

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mashangban::auth::{Actor, Principal, TokenIssuer};
use mashangban::config::{KeyAlgorithm, PublicKeySettings};
use mashangban::domain::UnitCode;

use crate::helpers::{self, TestApp, USCC_A, problem};
use crate::on_both_backends;

async fn missing_token_is_401_with_challenge(app: &TestApp) {
    let response = app.get("/api/v1/me", None).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"mashangban\""
    );
    let body = problem(response, 401).await;
    assert_eq!(body["code"], "missing_token");
}

async fn invalid_tokens_are_401(app: &TestApp) {
    let issuer = TokenIssuer::new(&app.settings.jwt);
    let principal = Principal {
        subject: "x".into(),
        actor: Actor::Admin,
    };
    let expired = issuer.issue(
        &principal,
        Duration::from_secs(60),
        Utc::now() - chrono::Duration::hours(3),
    );
    let mut foreign = app.settings.jwt.clone();
    foreign.secret = "another-secret-another-secret-another".into();
    let forged = TokenIssuer::new(&foreign).issue(&principal, Duration::from_secs(60), Utc::now());
    let mut claims = issuer.claims(&principal, Duration::from_secs(60), Utc::now());
    claims.aud = "other-api".into();
    let wrong_audience = issuer.sign(&claims);

    for (token, expect) in [
        ("garbage", "malformed token"),
        (expired.as_str(), "expired"),
        (forged.as_str(), "signature"),
        (wrong_audience.as_str(), "audience"),
    ] {
        let response = app.get("/api/v1/me", Some(token)).await;
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            challenge.starts_with("Bearer realm=\"mashangban\", error=\"invalid_token\""),
            "{challenge}"
        );
        let body = problem(response, 401).await;
        assert_eq!(body["code"], "invalid_token");
        assert!(body["detail"].as_str().unwrap().contains(expect), "{body}");
    }

    // Not a bearer scheme at all.
    let response = app
        .client
        .get(app.url("/api/v1/me"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response, 401).await["code"], "invalid_token");
}

async fn each_role_is_recognised(app: &TestApp) {
    let cases = [
        (app.enterprise_token(), "enterprise", Some(USCC_A), None),
        (app.clerk_token(UnitCode::Tax), "clerk", None, Some("tax")),
        (
            app.token(Actor::Supervisor(Some(UnitCode::ServiceCenter))),
            "supervisor",
            None,
            Some("service-center"),
        ),
        (app.token(Actor::Supervisor(None)), "supervisor", None, None),
        (app.admin_token(), "admin", None, None),
    ];
    for (token, role, uscc, unit) in cases {
        let response = app.get("/api/v1/me", Some(&token)).await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["role"], role);
        assert_eq!(body["uscc"].as_str(), uscc);
        assert_eq!(body["unit"].as_str(), unit);
    }
}

async fn wrong_role_is_403(app: &TestApp) {
    for token in [
        app.enterprise_token(),
        app.clerk_token(UnitCode::Market),
        app.token(Actor::Supervisor(None)),
    ] {
        let body = problem(app.get("/api/v1/instances", Some(&token)).await, 403).await;
        assert_eq!(body["code"], "forbidden");
    }
    assert_eq!(
        app.get("/api/v1/instances", Some(&app.admin_token()))
            .await
            .status(),
        200
    );
}

on_both_backends!(
    missing_token_is_401_with_challenge,
    invalid_tokens_are_401,
    each_role_is_recognised,
    wrong_role_is_403,
);

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A token as the city's identity platform would sign it.
fn external_token(app: &TestApp, algorithm: Algorithm, kid: &str, private_pem: &str) -> String {
    let issuer = TokenIssuer::new(&app.settings.jwt);
    let claims = issuer.claims(
        &Principal {
            subject: "city-idp-user-9".into(),
            actor: Actor::Clerk(UnitCode::Housing),
        },
        Duration::from_secs(300),
        Utc::now(),
    );
    let key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_ed_pem(private_pem.as_bytes()).unwrap(),
    };
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// RS256 and EdDSA tokens are verified with the public key their `kid` selects, and a key is
/// never accepted with another algorithm or under another id.
#[actix_web::test]
async fn external_keys_are_selected_by_kid() {
    let (dir, url) = helpers::fresh_sqlite();
    let mut settings = helpers::test_settings(&url);
    settings.jwt.keys.insert(
        "city-rsa".into(),
        PublicKeySettings {
            algorithm: KeyAlgorithm::RS256,
            public_key: fixture("rsa-public.pem"),
        },
    );
    settings.jwt.keys.insert(
        "city-ed".into(),
        PublicKeySettings {
            algorithm: KeyAlgorithm::EdDSA,
            public_key: fixture("ed25519-public.pem"),
        },
    );
    let app = helpers::start(settings, Some(dir), None).await;
    let rsa = fixture("rsa-private.pem");
    let ed = fixture("ed25519-private.pem");

    for token in [
        external_token(&app, Algorithm::RS256, "city-rsa", &rsa),
        external_token(&app, Algorithm::EdDSA, "city-ed", &ed),
    ] {
        let response = app.get("/api/v1/me", Some(&token)).await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["subject"], "city-idp-user-9");
        assert_eq!(body["unit"], "housing");
    }

    let swapped = external_token(&app, Algorithm::EdDSA, "city-rsa", &ed);
    let body = problem(app.get("/api/v1/me", Some(&swapped)).await, 401).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("not accepted for this key"),
        "{body}"
    );
    let unknown = external_token(&app, Algorithm::RS256, "retired-key", &rsa);
    let body = problem(app.get("/api/v1/me", Some(&unknown)).await, 401).await;
    assert!(
        body["detail"].as_str().unwrap().contains("unknown key id"),
        "{body}"
    );
}
