//! Hardening of the input, on both backends: the NUL character (U+0000) is refused before any
//! handler or database sees it, wherever it is sent; lists in bodies have a ceiling. Each
//! refusal names the field and changes nothing.

use diesel::prelude::*;
use mashangban::db::schema::requests;
use mashangban::domain::UnitCode;
use serde_json::{Value, json};

use crate::helpers::{OPEN311_KEY_A, TestApp, act, connect, problem, submit};
use crate::on_both_backends;
use crate::requests::matter_body;

/// How many requests are stored.
fn stored(app: &TestApp) -> i64 {
    let mut conn = connect(app);
    requests::table.count().get_result(&mut conn).unwrap()
}

/// The one field error of a 422, as `(pointer, message)`.
async fn refused_field(response: reqwest::Response) -> (String, String) {
    let body = problem(response, 422).await;
    assert_eq!(body["code"], "validation_failed", "{body}");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body}");
    (
        errors[0]["pointer"].as_str().unwrap().to_string(),
        errors[0]["message"].as_str().unwrap().to_string(),
    )
}

/// A valid Open311 submission of `market.establish` by enterprise A, as form pairs.
fn open311_form(company: &str) -> Vec<(String, String)> {
    let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    vec![
        ("api_key".into(), OPEN311_KEY_A.into()),
        ("service_code".into(), "market.establish".into()),
        ("email".into(), "office@example.com".into()),
        ("attribute[company_name]".into(), company.into()),
        ("attribute[registered_capital_wan]".into(), "100.5".into()),
        (
            "attribute[enterprise_type]".into(),
            "limited_liability".into(),
        ),
        (
            "attribute[material.application_form]".into(),
            format!("{sha}:2048:申请书.pdf"),
        ),
        (
            "attribute[material.articles_of_association]".into(),
            format!("{sha}:4096:章程.pdf"),
        ),
    ]
}

async fn nul_is_refused_with_its_field_and_nothing_is_stored(app: &TestApp) {
    let token = app.enterprise_token();

    // An intake field.
    let mut body = matter_body("market.establish");
    body["form"]["company_name"] = json!("上海马上办\u{0}科技有限公司");
    let response = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (pointer, message) = refused_field(response).await;
    assert_eq!(pointer, "/form/company_name");
    assert!(message.contains("NUL"), "{message}");
    assert_eq!(stored(app), 0);

    // A member name, in a nested object.
    let mut body = matter_body("market.establish");
    body["applicant"]["na\u{0}me"] = json!("x");
    let response = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused_field(response).await.0, "/applicant/na\u{0}me");
    assert_eq!(stored(app), 0);

    // An action's reason: the request stays as it was.
    let created = submit(app, &matter_body("market.establish")).await;
    let id = created["id"].as_str().unwrap();
    let clerk = app.clerk_token(UnitCode::Market);
    let response = act(
        app,
        &clerk,
        id,
        json!({"action": "refuse", "reason": "缺\u{0}材料"}),
    )
    .await;
    assert_eq!(refused_field(response).await.0, "/reason");
    let now: Value = app
        .get(&format!("/api/v1/requests/{id}"), Some(&clerk))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["status"], created["status"]);
    assert_eq!(now["revision"], created["revision"]);

    // A query filter and a path id.
    let response = app
        .get("/api/v1/requests?status=submit%00ted", Some(&token))
        .await;
    assert_eq!(refused_field(response).await.0, "status");
    let response = app
        .get(&format!("/api/v1/requests/{id}%00"), Some(&token))
        .await;
    assert_eq!(refused_field(response).await.0, "id");
    let response = app.get("/api/v1/matters/market%00", None).await;
    assert_eq!(refused_field(response).await.0, "code");

    // An Open311 form field: nothing more is stored.
    let response = app
        .client
        .post(app.url("/open311/v2/requests.json"))
        .form(&open311_form("上海马上办\u{0}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused_field(response).await.0, "attribute[company_name]");
    assert_eq!(stored(app), 1);
    // The same form without the NUL is accepted: the check reads the body and passes it on.
    let response = app
        .client
        .post(app.url("/open311/v2/requests.json"))
        .form(&open311_form("上海马上办科技有限公司"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(stored(app), 2);
}

async fn long_lists_in_bodies_are_refused_and_nothing_changes(app: &TestApp) {
    let token = app.enterprise_token();

    // Materials at intake.
    let mut body = matter_body("market.establish");
    let one = body["materials"][0].clone();
    body["materials"] = Value::Array(vec![one; 51]);
    let response = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (pointer, message) = refused_field(response).await;
    assert_eq!(pointer, "/materials");
    assert!(message.contains("at most 50"), "{message}");
    assert_eq!(stored(app), 0);

    // Items of a supplement notice.
    let created = submit(app, &matter_body("market.establish")).await;
    let id = created["id"].as_str().unwrap();
    let clerk = app.clerk_token(UnitCode::Market);
    let items: Vec<String> = (0..51).map(|i| format!("材料 {i}")).collect();
    let response = act(
        app,
        &clerk,
        id,
        json!({"action": "request_supplement", "items": items}),
    )
    .await;
    let (pointer, message) = refused_field(response).await;
    assert_eq!(pointer, "/items");
    assert!(message.contains("at most 50"), "{message}");
    let now: Value = app
        .get(&format!("/api/v1/requests/{id}"), Some(&clerk))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["revision"], created["revision"]);

    // A calendar year's lists.
    let holidays: Vec<String> = (0..367).map(|_| "2027-01-01".to_string()).collect();
    let response = app
        .client
        .put(app.url("/api/v1/calendars/cn-shanghai/years/2027"))
        .bearer_auth(app.admin_token())
        .json(&json!({"holidays": holidays, "working_days": []}))
        .send()
        .await
        .unwrap();
    let (pointer, message) = refused_field(response).await;
    assert_eq!(pointer, "/holidays");
    assert!(message.contains("at most 366"), "{message}");

    // Open311 attributes: GeoReport's 400, one error naming `attribute`.
    let mut form = open311_form("上海马上办科技有限公司");
    form.extend((0..100).map(|i| (format!("attribute[extra{i}]"), "x".to_string())));
    let response = app
        .client
        .post(app.url("/open311/v2/requests.json"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let errors: Value = response.json().await.unwrap();
    assert!(
        errors.as_array().unwrap().iter().any(|e| e["description"]
            .as_str()
            .unwrap()
            .starts_with("attribute: at most 100")),
        "{errors}"
    );
    assert_eq!(stored(app), 1);
}

on_both_backends!(
    nul_is_refused_with_its_field_and_nothing_is_stored,
    long_lists_in_bodies_are_refused_and_nothing_changes,
);
