//! Intake, routing, idempotency and reading of requests, on both backends.

use mashangban::auth::Actor;
use mashangban::domain::catalog::{Catalog, FieldType, Matter};
use mashangban::domain::{UnitCode, Uscc};
use serde_json::{Value, json};

use crate::helpers::{TestApp, USCC_A, problem};
use crate::on_both_backends;

/// A second enterprise.
pub const USCC_B: &str = "9144030071526726XG";

fn sha(c: char) -> String {
    c.to_string().repeat(64)
}

/// A value that satisfies `field`'s rules.
fn sample(field: &mashangban::domain::catalog::Field) -> Value {
    match field.field_type {
        FieldType::String | FieldType::Text => {
            let n = field.min_length.unwrap_or(1).max(4) as usize;
            let n = n.min(field.max_length.unwrap_or(200) as usize);
            json!("测".repeat(n))
        }
        FieldType::Integer => json!(
            field
                .min
                .map(|m| m.ceil() as i64)
                .unwrap_or(1)
                .max(field.min.unwrap_or(0.0) as i64)
        ),
        FieldType::Decimal => json!(
            field
                .min
                .unwrap_or(1.0)
                .max(1.0)
                .min(field.max.unwrap_or(1e9))
        ),
        FieldType::Boolean => json!(true),
        FieldType::Date => json!("2026-12-01"),
        FieldType::Enum => json!(field.options[0]),
        FieldType::Email => json!("contact@example.com"),
        FieldType::Phone => json!("13800138000"),
        FieldType::Uscc => json!(USCC_B),
    }
}

fn form_of(matter: &Matter) -> Value {
    Value::Object(
        matter
            .fields
            .iter()
            .map(|f| (f.name.clone(), sample(f)))
            .collect(),
    )
}

/// Every required material of `matter`, declared.
fn materials_of(matter: &Matter, in_bundle: bool) -> Vec<Value> {
    matter
        .materials
        .iter()
        .filter(|m| m.required)
        .map(|m| {
            let mut item = json!({"code": m.code, "name": format!("{}.pdf", m.code), "sha256": sha('a'), "size_bytes": 2048});
            if in_bundle {
                item["matter"] = json!(matter.code);
            }
            item
        })
        .collect()
}

/// A valid submission of a matter of the built-in catalog.
pub fn matter_body(code: &str) -> Value {
    let catalog = Catalog::builtin();
    let matter = catalog.matter(code).unwrap();
    json!({
        "matter": code,
        "channel": matter.channels[0],
        "intake_region": if matter.channels[0] == mashangban::domain::Channel::CrossRegion { json!("jiangsu-suzhou") } else { Value::Null },
        "applicant": {"name": "上海马上办科技有限公司", "uscc": USCC_A},
        "contact_email": "office@example.com",
        "form": form_of(matter),
        "materials": materials_of(matter, false),
    })
}

/// A valid submission of a bundle of the built-in catalog.
pub fn bundle_body(code: &str) -> Value {
    let catalog = Catalog::builtin();
    let bundle = catalog.bundle(code).unwrap();
    let matters: Vec<&Matter> = bundle
        .matters
        .iter()
        .map(|m| catalog.matter(m).unwrap())
        .collect();
    json!({
        "bundle": code,
        "channel": bundle.channels[0],
        "intake_region": if bundle.channels[0] == mashangban::domain::Channel::CrossRegion { json!("zhejiang-hangzhou") } else { Value::Null },
        "applicant": {"name": "上海马上办科技有限公司", "uscc": USCC_A},
        "contact_email": "office@example.com",
        "form": Value::Object(matters.iter().map(|m| (m.code.clone(), form_of(m))).collect()),
        "materials": matters.iter().flat_map(|m| materials_of(m, true)).collect::<Vec<_>>(),
    })
}

fn enterprise(uscc: &str) -> Actor {
    Actor::Enterprise(Uscc::parse(uscc).unwrap())
}

async fn submit(app: &TestApp, token: &str, body: &Value, key: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(token)
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

async fn total(app: &TestApp, token: &str, query: &str) -> i64 {
    let response = app
        .get(&format!("/api/v1/requests{query}"), Some(token))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    // A few requests: counted exactly, not capped.
    assert_eq!(body["total_capped"], false, "{body}");
    body["total"].as_i64().unwrap()
}

async fn a_matter_is_submitted_routed_and_readable(app: &TestApp) {
    let token = app.enterprise_token();
    let mut body = matter_body("market.establish");
    // Leave out premises_proof, which the catalog allows to come later (容缺).
    body["materials"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["code"] != "premises_proof");
    let response = submit(app, &token, &body, None).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/requests/{}", created["id"].as_str().unwrap())
    );
    assert_eq!(
        uuid::Uuid::parse_str(created["id"].as_str().unwrap())
            .unwrap()
            .get_version_num(),
        7
    );
    let number = created["number"].as_str().unwrap();
    assert!(
        number.starts_with("PT20") && number.len() == "PT20261127-000001".len(),
        "{number}"
    );
    assert_eq!(created["status"], "submitted");
    assert_eq!(created["lead_unit"], "market");
    assert_eq!(created["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(created["tasks"][0]["unit"], "market");
    assert_eq!(created["tasks"][0]["role"], "lead");

    let clocks = created["clocks"].as_array().unwrap();
    let clock = |kind: &str| {
        clocks
            .iter()
            .find(|c| c["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind}"))
    };
    assert_eq!(clock("window_intake")["target"], "PT20M");
    assert_eq!(clock("promised")["target"], "0.5 working_days");
    assert_eq!(clock("statutory")["target"], "20 working_days");
    assert_eq!(clock("supplement_notice")["state"], "running");
    assert!(clock("supplement_notice")["due_at"].is_string());
    assert_eq!(clock("statutory")["state"], "pending");

    // premises_proof is 容缺 (deferrable) and was not declared: pending with a due date.
    let pending: Vec<&Value> = created["materials"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "pending")
        .collect();
    assert_eq!(pending.len(), 1, "{}", created["materials"]);
    assert_eq!(pending[0]["code"], "premises_proof");
    assert!(pending[0]["due_at"].is_string());

    // Reading it back gives the same document.
    let read = app.get(&location, Some(&token)).await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["etag"], "\"r1\"");
    let read: Value = read.json().await.unwrap();
    assert_eq!(read, created);

    // The routing is explained, with the catalog version in force.
    let catalog: Value = app.get("/api/v1/units", None).await.json().await.unwrap();
    let routing: Value = app
        .get(&format!("{location}/routing"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let decision = &routing["decisions"][0];
    assert_eq!(decision["reason"], "intake");
    assert_eq!(decision["catalog_version"], catalog["catalog_version"]);
    assert_eq!(decision["explanation"]["lead_unit"], "market");
    assert!(
        decision["explanation"]["lead_rule"]
            .as_str()
            .unwrap()
            .contains("market.establish")
    );
    assert_eq!(created["catalog_version"], catalog["catalog_version"]);
}

async fn a_bundle_goes_to_every_unit_with_one_lead(app: &TestApp) {
    let token = app.enterprise_token();
    let response = submit(app, &token, &bundle_body("bundle.open-business"), None).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["kind"], "bundle");
    assert_eq!(created["lead_unit"], "market");
    let mut units: Vec<&str> = created["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["unit"].as_str().unwrap())
        .collect();
    units.sort();
    for unit in ["hrss", "market", "tax"] {
        assert!(units.contains(&unit), "{units:?}");
    }
    let joint = created["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "statutory" && c.get("task_id").is_none())
        .expect("joint statutory clock");
    assert_eq!(joint["target"], "45 working_days");
    // Per-task clocks point at the request's own tasks.
    let task_ids: Vec<&Value> = created["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["id"])
        .collect();
    for clock in created["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("task_id").is_some())
    {
        assert!(task_ids.contains(&&clock["task_id"]), "{clock}");
    }

    // A tax clerk sees it (tax handles part of it); a justice clerk does not.
    let tax = app.clerk_token(UnitCode::Tax);
    assert_eq!(total(app, &tax, "").await, 1);
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/requests/{id}"), Some(&tax))
            .await
            .status(),
        200
    );
    let justice = app.clerk_token(UnitCode::Justice);
    assert_eq!(total(app, &justice, "").await, 0);
    assert_eq!(
        problem(
            app.get(&format!("/api/v1/requests/{id}"), Some(&justice))
                .await,
            404
        )
        .await["code"],
        "not_found"
    );
}

async fn bad_input_is_422_naming_each_field_and_creates_nothing(app: &TestApp) {
    let token = app.enterprise_token();
    let mut body = matter_body("market.establish");
    body["applicant"]["uscc"] = json!("91350100M000100Y44");
    body["form"]["registered_capital_wan"] = json!(-5);
    body["form"]["enterprise_type"] = json!("cooperative");
    body["materials"] = json!([]);
    body["status"] = json!("approved");
    body["lead_unit"] = json!("tax");
    body["number"] = json!("PT1");
    body["due_at"] = json!("2030-01-01T00:00:00Z");
    let response = submit(app, &token, &body, None).await;
    let problem = problem(response, 422).await;
    assert_eq!(problem["code"], "validation_failed");
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    for expected in [
        "/applicant/uscc",
        "/form/registered_capital_wan",
        "/form/enterprise_type",
        "/materials",
        "/status",
        "/lead_unit",
        "/number",
        "/due_at",
    ] {
        assert!(
            pointers.contains(&expected),
            "{expected} not in {pointers:?}"
        );
    }
    let uscc_error = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pointer"] == "/applicant/uscc")
        .unwrap();
    assert!(
        uscc_error["message"].as_str().unwrap().contains("GB 32100"),
        "{uscc_error}"
    );

    // Unknown matter, wrong channel, cross-region without region, another enterprise's code.
    let mut body = matter_body("market.establish");
    body["matter"] = json!("market.teleport");
    let problem = crate::helpers::problem(submit(app, &token, &body, None).await, 422).await;
    assert_eq!(problem["errors"][0]["pointer"], "/matter");
    let mut body = matter_body("market.establish");
    body["channel"] = json!("cross_region");
    body["applicant"]["uscc"] = json!(USCC_B);
    let problem = crate::helpers::problem(submit(app, &token, &body, None).await, 422).await;
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains(&"/intake_region") && pointers.contains(&"/applicant/uscc"),
        "{pointers:?}"
    );

    // Not JSON, not an object.
    let response = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        crate::helpers::problem(response, 400).await["code"],
        "bad_request"
    );
    let response = submit(app, &token, &json!([1, 2]), None).await;
    assert_eq!(
        crate::helpers::problem(response, 422).await["errors"][0]["pointer"],
        ""
    );

    assert_eq!(
        total(app, &app.admin_token(), "").await,
        0,
        "bad input created nothing"
    );
}

async fn only_enterprises_submit(app: &TestApp) {
    for token in [
        app.clerk_token(UnitCode::Market),
        app.admin_token(),
        app.token(Actor::Supervisor(None)),
    ] {
        let response = submit(app, &token, &matter_body("market.establish"), None).await;
        assert_eq!(
            crate::helpers::problem(response, 403).await["code"],
            "forbidden"
        );
    }
    let response = app
        .client
        .post(app.url("/api/v1/requests"))
        .json(&matter_body("market.establish"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

async fn idempotency_keys_replay_and_refuse(app: &TestApp) {
    let token = app.enterprise_token();
    let body = matter_body("tax.registration");
    let first = submit(app, &token, &body, Some("retry-42")).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    let again = submit(app, &token, &body, Some("retry-42")).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
    assert_eq!(total(app, &token, "").await, 1);

    let mut other = body.clone();
    other["contact_email"] = json!("someone-else@example.com");
    let problem =
        crate::helpers::problem(submit(app, &token, &other, Some("retry-42")).await, 422).await;
    assert_eq!(problem["code"], "idempotency_key_reused");
    assert_eq!(total(app, &token, "").await, 1);

    // Keys are per enterprise: B's "retry-42" is its own.
    let token_b = app.token(enterprise(USCC_B));
    let mut body_b = body.clone();
    body_b["applicant"]["uscc"] = json!(USCC_B);
    let response = submit(app, &token_b, &body_b, Some("retry-42")).await;
    assert_eq!(response.status(), 201);
    assert!(response.headers().get("idempotent-replayed").is_none());
    assert_eq!(total(app, &app.admin_token(), "").await, 2);

    let response = submit(app, &token, &body, Some("")).await;
    assert_eq!(
        crate::helpers::problem(response, 422).await["errors"][0]["pointer"],
        "Idempotency-Key"
    );
}

/// A key is kept 24 hours: after that the same key files anew, and the sweep removes old
/// keys outside any intake.
async fn an_idempotency_key_is_forgotten_after_a_day(app: &TestApp) {
    use diesel::prelude::*;
    use mashangban::db::schema::idempotency_keys;

    let token = app.enterprise_token();
    let body = matter_body("tax.registration");
    let first: Value = submit(app, &token, &body, Some("day-old"))
        .await
        .json()
        .await
        .unwrap();
    let mut conn = crate::helpers::connect(app);
    let a_day_ago = chrono::Utc::now().naive_utc() - chrono::TimeDelta::hours(25);
    diesel::update(idempotency_keys::table)
        .set(idempotency_keys::created_at.eq(a_day_ago))
        .execute(&mut conn)
        .unwrap();
    let again = submit(app, &token, &body, Some("day-old")).await;
    assert_eq!(again.status(), 201);
    assert!(again.headers().get("idempotent-replayed").is_none());
    let again: Value = again.json().await.unwrap();
    assert_ne!(again["id"], first["id"]);
    assert_eq!(total(app, &token, "").await, 2);
    // The fresh key replays; the sweep leaves it and takes only what is older than a day.
    let replayed = submit(app, &token, &body, Some("day-old")).await;
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::uscc.eq(USCC_A),
            idempotency_keys::idempotency_key.eq("stale"),
            idempotency_keys::body_sha256.eq("0".repeat(64)),
            idempotency_keys::request_id.eq(first["id"].as_str().unwrap()),
            idempotency_keys::status_code.eq(201),
            idempotency_keys::response_body.eq("{}"),
            idempotency_keys::created_at.eq(a_day_ago),
        ))
        .execute(&mut conn)
        .unwrap();
    let now = chrono::Utc::now().naive_utc();
    assert_eq!(
        mashangban::db::requests::sweep_idempotency_keys(&mut conn, now).unwrap(),
        1
    );
    let kept: Vec<String> = idempotency_keys::table
        .select(idempotency_keys::idempotency_key)
        .load(&mut conn)
        .unwrap();
    assert_eq!(kept, ["day-old"]);
}

async fn concurrent_retries_create_exactly_one(app: &TestApp) {
    let token = app.enterprise_token();
    let body = matter_body("market.establish");
    let attempts = (0..8).map(|_| submit(app, &token, &body, Some("double-click")));
    let responses = futures_util::future::join_all(attempts).await;
    let mut ids = std::collections::BTreeSet::new();
    for response in responses {
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        ids.insert(body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(total(app, &token, "").await, 1);
}

async fn listing_is_scoped_filtered_and_paged(app: &TestApp) {
    let a = app.enterprise_token();
    let b = app.token(enterprise(USCC_B));
    for _ in 0..3 {
        assert_eq!(
            submit(app, &a, &matter_body("market.establish"), None)
                .await
                .status(),
            201
        );
    }
    assert_eq!(
        submit(app, &a, &matter_body("tax.registration"), None)
            .await
            .status(),
        201
    );
    let mut body_b = matter_body("market.establish");
    body_b["applicant"]["uscc"] = json!(USCC_B);
    let response = submit(app, &b, &body_b, None).await;
    let b_request: Value = response.json().await.unwrap();

    assert_eq!(total(app, &a, "").await, 4);
    assert_eq!(total(app, &b, "").await, 1);
    assert_eq!(total(app, &app.admin_token(), "").await, 5);
    assert_eq!(total(app, &app.token(Actor::Supervisor(None)), "").await, 5);
    assert_eq!(
        total(app, &app.token(Actor::Supervisor(Some(UnitCode::Tax))), "").await,
        1
    );
    assert_eq!(total(app, &app.clerk_token(UnitCode::Market), "").await, 4);

    // Another enterprise's request is simply not there.
    let id = b_request["id"].as_str().unwrap();
    let hidden = problem(
        app.get(&format!("/api/v1/requests/{id}"), Some(&a)).await,
        404,
    )
    .await;
    let missing = problem(
        app.get(
            "/api/v1/requests/01a21e3a-0000-7000-8000-000000000000",
            Some(&a),
        )
        .await,
        404,
    )
    .await;
    assert_eq!(hidden["code"], missing["code"]);
    assert_eq!(
        app.get(&format!("/api/v1/requests/{id}/routing"), Some(&a))
            .await
            .status(),
        404
    );

    assert_eq!(total(app, &a, "?matter=tax.registration").await, 1);
    assert_eq!(total(app, &a, "?category=registration").await, 3);
    assert_eq!(total(app, &a, "?unit=tax").await, 1);
    assert_eq!(total(app, &a, "?status=submitted&channel=online").await, 4);
    assert_eq!(total(app, &a, "?status=approved").await, 0);
    assert_eq!(
        total(app, &a, "?created_from=2000-01-01T00:00:00%2B08:00").await,
        4
    );
    assert_eq!(total(app, &a, "?created_to=2000-01-01T00:00:00Z").await, 0);

    // Pages of 3 then 1, newest first, the total on each.
    let page: Value = app
        .get("/api/v1/requests?limit=3", Some(&a))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    assert_eq!(page["total"], 4);
    assert_eq!(page["total_capped"], false);
    let cursor = page["next_cursor"].as_str().unwrap();
    let next: Value = app
        .get(
            &format!("/api/v1/requests?limit=3&cursor={cursor}"),
            Some(&a),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["items"].as_array().unwrap().len(), 1);
    assert!(next.get("next_cursor").is_none());
    let first_ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(first_ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(next["items"][0]["id"].as_str().unwrap() < first_ids[2]);

    for query in [
        "?status=done",
        "?category=magic",
        "?unit=police",
        "?channel=fax",
        "?created_from=yesterday",
        "?limit=0",
        "?limit=500",
        "?cursor=abc",
    ] {
        let body = problem(
            app.get(&format!("/api/v1/requests{query}"), Some(&a)).await,
            422,
        )
        .await;
        assert_eq!(body["code"], "validation_failed", "{query}");
    }
}

async fn every_catalog_entry_can_be_submitted(app: &TestApp) {
    let token = app.enterprise_token();
    let catalog = Catalog::builtin();
    for matter in catalog.matters() {
        let response = submit(app, &token, &matter_body(&matter.code), None).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{}: {body}", matter.code);
        assert_eq!(body["lead_unit"], matter.lead_unit.as_str());
        assert_eq!(
            body["tasks"].as_array().unwrap().len(),
            1 + matter.co_units.len()
        );
    }
    for bundle in catalog.bundles() {
        let response = submit(app, &token, &bundle_body(&bundle.code), None).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{}: {body}", bundle.code);
        assert_eq!(body["lead_unit"], bundle.lead_unit.as_str());
    }
    let count = (catalog.matters().count() + catalog.bundles().count()) as i64;
    assert_eq!(total(app, &token, "").await, count);
}

async fn cross_region_requests_keep_their_region(app: &TestApp) {
    let token = app.enterprise_token();
    let mut body = matter_body("market.establish");
    body["channel"] = json!("cross_region");
    body["intake_region"] = json!("jiangsu-suzhou");
    let response = submit(app, &token, &body, None).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["intake_region"], "jiangsu-suzhou");
    assert_eq!(created["lead_unit"], "market");
    let id = created["id"].as_str().unwrap();
    let routing: Value = app
        .get(&format!("/api/v1/requests/{id}/routing"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        routing["decisions"][0]["explanation"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("jiangsu-suzhou")
    );
}

on_both_backends!(
    a_matter_is_submitted_routed_and_readable,
    a_bundle_goes_to_every_unit_with_one_lead,
    bad_input_is_422_naming_each_field_and_creates_nothing,
    only_enterprises_submit,
    idempotency_keys_replay_and_refuse,
    an_idempotency_key_is_forgotten_after_a_day,
    concurrent_retries_create_exactly_one,
    listing_is_scoped_filtered_and_paged,
    every_catalog_entry_can_be_submitted,
    cross_region_requests_keep_their_region,
);

/// Keeps `USCC_A` referenced from this module's point of view.
#[test]
fn test_enterprises_differ() {
    assert_ne!(USCC_A, USCC_B);
}
