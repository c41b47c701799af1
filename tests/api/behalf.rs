//! Walk-in filing and assisted handling (帮办) over HTTP, on both backends.
//!
//! The actors: enterprise A (the owner) and enterprise B; clerks of the lead unit (`market`
//! on `market.ip-dispute`), of its co-unit (`justice`) and of an unrelated unit (`tax`), each
//! with their own token subject; supervisors; an administrator.

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use mashangban::auth::{Actor, Principal, TokenIssuer};
use mashangban::domain::{UnitCode, Uscc};
use serde_json::{Value, json};

use crate::helpers::{TestApp, USCC_A, act, act_ok as ok, connect, problem, submit};
use crate::on_both_backends;
use crate::requests::{bundle_body, matter_body};

/// A matter led by `market` with `justice` as co-operating unit.
const JOINT: &str = "market.ip-dispute";
/// A second enterprise.
const USCC_B: &str = "9144030071526726XG";

/// A token for `actor` with its own subject (the helpers' tokens share one per role).
fn token_of(app: &TestApp, subject: &str, actor: Actor) -> String {
    TokenIssuer::new(&app.settings.jwt).issue(
        &Principal {
            subject: subject.into(),
            actor,
        },
        Duration::from_secs(3600),
        Utc::now(),
    )
}

fn clerk(app: &TestApp, subject: &str, unit: UnitCode) -> String {
    token_of(app, subject, Actor::Clerk(unit))
}

fn enterprise_b(app: &TestApp) -> String {
    token_of(
        app,
        "portal-b",
        Actor::Enterprise(Uscc::parse(USCC_B).unwrap()),
    )
}

/// A walk-in filing of `matter` for enterprise A at the window.
fn walk_in(matter: &str) -> Value {
    let mut body = matter_body(matter);
    body["channel"] = json!("window");
    body["on_behalf_of"] = json!({
        "uscc": USCC_A,
        "identity_check": {"method": "id_card", "verified_name": "张三"}
    });
    body
}

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn file(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    post(app, "/api/v1/requests", token, body).await
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    body
}

/// The pointers of a 422.
async fn pointers(response: reqwest::Response) -> Vec<String> {
    let body = problem(response, 422).await;
    assert_eq!(body["code"], "validation_failed");
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_string())
        .collect()
}

async fn events(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let response = app
        .get(&format!("/api/v1/requests/{id}/events"), Some(token))
        .await;
    json_of(response, 200).await["events"]
        .as_array()
        .unwrap()
        .clone()
}

fn count(app: &TestApp, table: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
        .get_result::<N>(&mut connect(app))
        .unwrap()
        .n
}

/// Enterprise A grants `body`; answers the grant (201 checked).
async fn grant(app: &TestApp, body: Value) -> Value {
    let response = post(
        app,
        "/api/v1/authorizations",
        &app.enterprise_token(),
        &body,
    )
    .await;
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    let grant = json_of(response, 201).await;
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/v1/authorizations/{}", grant["id"].as_str().unwrap()).as_str())
    );
    grant
}

fn in_days(days: i64) -> String {
    (Utc::now() + chrono::TimeDelta::days(days)).to_rfc3339()
}

async fn a_clerk_files_for_a_walk_in_enterprise_which_sees_it_is_mailed_and_withdraws(
    app: &TestApp,
) {
    let lead = clerk(app, "li.na", UnitCode::Market);
    let response = file(app, &lead, &walk_in(JOINT)).await;
    let filed = json_of(response, 201).await;
    let id = filed["id"].as_str().unwrap();
    assert_eq!(filed["applicant"]["uscc"], USCC_A);
    assert_eq!(filed["channel"], "window");
    assert_eq!(filed["lead_unit"], "market");
    assert_eq!(filed["contact_email"], "office@example.com");

    // It is the enterprise's: in its list and readable.
    let owner = app.enterprise_token();
    let list = json_of(app.get("/api/v1/requests", Some(&owner)).await, 200).await;
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id)
    );
    json_of(
        app.get(&format!("/api/v1/requests/{id}"), Some(&owner))
            .await,
        200,
    )
    .await;
    // Not another enterprise's.
    problem(
        app.get(&format!("/api/v1/requests/{id}"), Some(&enterprise_b(app)))
            .await,
        404,
    )
    .await;

    // The trail names the official, the enterprise and the identity check.
    let trail = events(app, &lead, id).await;
    let intake = &trail[0];
    assert_eq!(intake["action"], "intake");
    assert_eq!(intake["actor"], "li.na");
    assert_eq!(intake["role"], "clerk");
    assert_eq!(intake["unit"], "market");
    assert_eq!(intake["payload"]["on_behalf_of"], USCC_A);
    assert_eq!(intake["payload"]["channel"], "window");
    assert_eq!(
        intake["payload"]["identity_check"],
        json!({"method": "id_card", "verified_name": "张三"})
    );
    assert_eq!(intake["payload"]["authorization"], Value::Null);

    // Mailed like any submitter: acceptance goes to the contact address of the form.
    ok(app, &lead, id, json!({"action": "call"})).await;
    ok(app, &lead, id, json!({"action": "accept"})).await;
    let mails: Vec<(String, String)> = {
        use mashangban::db::schema::notifications;
        notifications::table
            .filter(notifications::request_id.eq(id))
            .select((notifications::kind, notifications::recipient))
            .load(&mut connect(app))
            .unwrap()
    };
    assert_eq!(
        mails,
        [("accepted".to_string(), "office@example.com".to_string())]
    );

    // And the enterprise withdraws it, as its own.
    let after = ok(app, &owner, id, json!({"action": "withdraw"})).await;
    assert_eq!(after["status"], "withdrawn");

    // A bundle: the clerk of its lead unit files it too.
    let mut bundle = bundle_body("bundle.open-business");
    bundle["channel"] = json!("window");
    bundle["on_behalf_of"] = json!({"uscc": USCC_A, "identity_check": {"method": "e_license", "verified_name": "上海马上办科技有限公司"}});
    let filed = json_of(file(app, &lead, &bundle).await, 201).await;
    assert_eq!(filed["lead_unit"], "market");
    // A clerk of another unit of the bundle is not its window.
    let tax = clerk(app, "wang.tax", UnitCode::Tax);
    let refused = problem(file(app, &tax, &bundle).await, 403).await;
    assert_eq!(refused["code"], "not_lead_unit");
    assert_eq!(refused["lead_unit"], "market");
}

async fn every_walk_in_refusal_is_precise_and_changes_nothing(app: &TestApp) {
    let lead = clerk(app, "li.na", UnitCode::Market);
    let before = count(app, "requests");

    // A clerk of the co-unit, of an unrelated unit: not the lead unit's window.
    for (subject, unit) in [("co", UnitCode::Justice), ("other", UnitCode::Tax)] {
        let refused = problem(
            file(app, &clerk(app, subject, unit), &walk_in(JOINT)).await,
            403,
        )
        .await;
        assert_eq!(refused["code"], "not_lead_unit");
        assert_eq!(refused["lead_unit"], "market");
    }
    // A supervisor (of the lead unit, or the district) does not take walk-ins.
    for head in [
        app.token(Actor::Supervisor(Some(UnitCode::Market))),
        app.token(Actor::Supervisor(None)),
    ] {
        assert_eq!(
            problem(file(app, &head, &walk_in(JOINT)).await, 403).await["code"],
            "forbidden"
        );
    }
    // An administrator files nothing; an official without `on_behalf_of` is told how.
    assert_eq!(
        problem(file(app, &app.admin_token(), &walk_in(JOINT)).await, 403).await["code"],
        "forbidden"
    );
    let refused = problem(file(app, &lead, &matter_body(JOINT)).await, 403).await;
    assert_eq!(refused["code"], "forbidden");
    assert!(refused["detail"].as_str().unwrap().contains("on_behalf_of"));

    // An enterprise sending `on_behalf_of`.
    assert_eq!(
        pointers(file(app, &app.enterprise_token(), &walk_in(JOINT)).await).await,
        ["/on_behalf_of"]
    );

    // Each wrong member, named.
    let with = |on_behalf_of: Value| {
        let mut body = walk_in(JOINT);
        body["on_behalf_of"] = on_behalf_of;
        body
    };
    let cases = [
        (
            json!({"uscc": "91350100M000100Y44", "identity_check": {"method": "id_card", "verified_name": "张三"}}),
            vec!["/on_behalf_of/uscc"],
        ),
        (
            json!({"identity_check": {"method": "id_card", "verified_name": "张三"}}),
            vec!["/on_behalf_of/uscc"],
        ),
        (
            json!({"uscc": USCC_A, "identity_check": {"verified_name": "张三"}}),
            vec!["/on_behalf_of/identity_check/method"],
        ),
        (
            json!({"uscc": USCC_A, "identity_check": {"method": "passport", "verified_name": "张三"}}),
            vec!["/on_behalf_of/identity_check/method"],
        ),
        (
            json!({"uscc": USCC_A, "identity_check": {"method": "face", "verified_name": "  "}}),
            vec!["/on_behalf_of/identity_check/verified_name"],
        ),
        (
            json!({"uscc": USCC_A, "identity_check": {"method": "face"}}),
            vec!["/on_behalf_of/identity_check/verified_name"],
        ),
        (
            json!({"uscc": USCC_A, "identity_check": {"method": "face", "verified_name": "张三"}, "status": "approved"}),
            vec!["/on_behalf_of/status"],
        ),
        (json!("91350100M000100Y43"), vec!["/on_behalf_of"]),
    ];
    for (on_behalf_of, want) in cases {
        assert_eq!(
            pointers(file(app, &lead, &with(on_behalf_of.clone())).await).await,
            want,
            "{on_behalf_of}"
        );
    }

    // The same intake check as online: a bad form is the same 422, named with the rest.
    let mut bad = walk_in(JOINT);
    bad["contact_email"] = json!("not an address");
    bad["on_behalf_of"]["identity_check"]["method"] = json!("fax");
    let mut online = matter_body(JOINT);
    online["contact_email"] = json!("not an address");
    let enterprise = pointers(file(app, &app.enterprise_token(), &online).await).await;
    let official = pointers(file(app, &lead, &bad).await).await;
    assert!(official.contains(&"/on_behalf_of/identity_check/method".to_string()));
    for pointer in &enterprise {
        assert!(official.contains(pointer), "{pointer} in {official:?}");
    }
    // The applicant is the enterprise filed for.
    let mut other = walk_in(JOINT);
    other["applicant"]["uscc"] = json!(USCC_B);
    assert_eq!(
        pointers(file(app, &lead, &other).await).await,
        ["/applicant/uscc"]
    );
    // A walk-in is taken at the window.
    let mut online_walk_in = walk_in(JOINT);
    online_walk_in["channel"] = json!("online");
    assert_eq!(
        pointers(file(app, &lead, &online_walk_in).await).await,
        ["/channel"]
    );

    assert_eq!(
        count(app, "requests"),
        before,
        "no refusal created anything"
    );
    assert_eq!(count(app, "assisted_acts"), 0);
}

async fn a_walk_in_filing_honours_the_idempotency_key(app: &TestApp) {
    let lead = clerk(app, "li.na", UnitCode::Market);
    let send = |body: Value| {
        app.client
            .post(app.url("/api/v1/requests"))
            .bearer_auth(&lead)
            .header("Idempotency-Key", "walk-in-1")
            .json(&body)
            .send()
    };
    let first = json_of(send(walk_in(JOINT)).await.unwrap(), 201).await;
    let again = send(walk_in(JOINT)).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(json_of(again, 201).await["id"], first["id"]);
    let mut changed = walk_in(JOINT);
    changed["on_behalf_of"]["identity_check"]["verified_name"] = json!("李四");
    assert_eq!(
        problem(send(changed).await.unwrap(), 422).await["code"],
        "idempotency_key_reused"
    );
    // The enterprise's own keys are its own: the same key files its own request.
    let own = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(app.enterprise_token())
        .header("Idempotency-Key", "walk-in-1")
        .json(&matter_body(JOINT))
        .send()
        .await
        .unwrap();
    assert_ne!(json_of(own, 201).await["id"], first["id"]);
    assert_eq!(count(app, "requests"), 2);
    assert_eq!(count(app, "assisted_acts"), 1);
}

async fn an_official_acts_under_a_grant_and_is_refused_without_one(app: &TestApp) {
    let owner = app.enterprise_token();
    let x = submit(app, &matter_body(JOINT)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let y = submit(app, &matter_body(JOINT)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // An official of an unrelated unit, named for request x.
    let zhang = clerk(app, "zhang.wei", UnitCode::Tax);
    problem(
        app.get(&format!("/api/v1/requests/{x}"), Some(&zhang))
            .await,
        404,
    )
    .await;
    let g = grant(
        app,
        json!({"assistant": {"official": "zhang.wei"}, "request": x}),
    )
    .await;
    assert_eq!(g["state"], "live");
    assert_eq!(g["enterprise"], USCC_A);
    let gid = g["id"].as_str().unwrap();

    // The grant lets zhang read x, not y; a grant for x does not cover y.
    json_of(
        app.get(&format!("/api/v1/requests/{x}"), Some(&zhang))
            .await,
        200,
    )
    .await;
    problem(
        app.get(&format!("/api/v1/requests/{y}"), Some(&zhang))
            .await,
        404,
    )
    .await;
    let lead = clerk(app, "li.na", UnitCode::Market);
    // (y, seen by its lead unit's clerk who holds nothing)
    let refused = problem(
        act(app, &lead, &y, json!({"action": "withdraw"})).await,
        403,
    )
    .await;
    assert_eq!(refused["code"], "authorization_required");

    // Zhang supplements x after the one-time notice, then withdraws it.
    ok(app, &lead, &x, json!({"action": "call"})).await;
    ok(
        app,
        &lead,
        &x,
        json!({"action": "request_supplement", "items": ["租赁合同"]}),
    )
    .await;
    let supplied = ok(app, &zhang, &x, json!({"action": "supplement"})).await;
    assert_eq!(supplied["status"], "submitted");
    let withdrawn = ok(app, &zhang, &x, json!({"action": "withdraw"})).await;
    assert_eq!(withdrawn["status"], "withdrawn");
    // The owner still sees it as its own.
    let seen = json_of(
        app.get(&format!("/api/v1/requests/{x}"), Some(&owner))
            .await,
        200,
    )
    .await;
    assert_eq!(seen["status"], "withdrawn");

    // Each act names the grant and the enterprise.
    let trail = events(app, &lead, &x).await;
    for action in ["supplement", "withdraw"] {
        let event = trail.iter().find(|e| e["action"] == action).unwrap();
        assert_eq!(event["actor"], "zhang.wei");
        assert_eq!(event["payload"]["authorization"], gid);
        assert_eq!(event["payload"]["on_behalf_of"], USCC_A);
    }
    // And the grant lists them.
    let read = json_of(
        app.get(&format!("/api/v1/authorizations/{gid}"), Some(&owner))
            .await,
        200,
    )
    .await;
    let acts: Vec<&str> = read["acts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(acts, ["supplement", "withdraw"]);

    // Zhang on y: another request, told precisely.
    let refused = problem(
        act(app, &zhang, &y, json!({"action": "withdraw"})).await,
        403,
    )
    .await;
    assert_eq!(refused["code"], "authorization_out_of_scope");
    assert_eq!(refused["authorization"], gid);
    // Zhang may not file new requests with a grant for one request.
    let mut filing = matter_body(JOINT);
    filing["on_behalf_of"] = json!({"uscc": USCC_A});
    assert_eq!(
        problem(file(app, &zhang, &filing).await, 403).await["code"],
        "authorization_out_of_scope"
    );
    // A grant does not make zhang the lead unit.
    let refused = problem(act(app, &zhang, &x, json!({"action": "call"})).await, 403).await;
    assert_eq!(refused["code"], "not_lead_unit");

    // Another enterprise's grant does not speak for A.
    let z = submit(app, &matter_body(JOINT)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b_grant = json_of(
        post(
            app,
            "/api/v1/authorizations",
            &enterprise_b(app),
            &json!({"assistant": {"official": "li.na"}, "until": in_days(30)}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(b_grant["enterprise"], USCC_B);
    let refused = problem(
        act(app, &lead, &z, json!({"action": "withdraw"})).await,
        403,
    )
    .await;
    assert_eq!(refused["code"], "authorization_required");
}

async fn a_grant_is_refused_after_expiry_and_after_revocation(app: &TestApp) {
    let owner = app.enterprise_token();
    let id = submit(app, &matter_body(JOINT)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let desk = clerk(app, "desk.one", UnitCode::Tax);
    // A desk grant for a period: every clerk of `tax`.
    let period = grant(
        app,
        json!({"assistant": {"desk": "tax"}, "until": in_days(30)}),
    )
    .await;
    let pid = period["id"].as_str().unwrap().to_string();
    json_of(
        app.get(&format!("/api/v1/requests/{id}"), Some(&desk))
            .await,
        200,
    )
    .await;
    // A supervisor of `tax` is not the desk.
    let tax_head = token_of(app, "tax.head", Actor::Supervisor(Some(UnitCode::Tax)));
    problem(
        app.get(&format!("/api/v1/requests/{id}"), Some(&tax_head))
            .await,
        404,
    )
    .await;

    // The period ends (as the passing of time would).
    {
        use mashangban::db::schema::authorizations;
        let past = (Utc::now() - chrono::TimeDelta::minutes(1)).naive_utc();
        diesel::update(authorizations::table.find(&pid))
            .set(authorizations::valid_until.eq(past))
            .execute(&mut connect(app))
            .unwrap();
    }
    let refused = problem(
        act(app, &desk, &id, json!({"action": "withdraw"})).await,
        403,
    )
    .await;
    assert_eq!(refused["code"], "authorization_expired");
    assert_eq!(refused["authorization"], pid.as_str());
    let listed = json_of(app.get("/api/v1/authorizations", Some(&owner)).await, 200).await;
    assert_eq!(listed["items"][0]["state"], "expired");

    // A named grant, revoked.
    let named = grant(
        app,
        json!({"assistant": {"official": "desk.one"}, "request": id}),
    )
    .await;
    let nid = named["id"].as_str().unwrap().to_string();
    let revoke = format!("/api/v1/authorizations/{nid}/revoke");
    // Only its enterprise revokes it.
    assert_eq!(
        problem(post(app, &revoke, &desk, &json!({})).await, 403).await["code"],
        "forbidden"
    );
    problem(
        post(app, &revoke, &enterprise_b(app), &json!({})).await,
        404,
    )
    .await;
    let revoked = json_of(post(app, &revoke, &owner, &json!({})).await, 200).await;
    assert_eq!(revoked["state"], "revoked");
    assert!(revoked["revoked_at"].is_string());
    let again = problem(post(app, &revoke, &owner, &json!({})).await, 409).await;
    assert_eq!(again["code"], "action_not_allowed");
    let refused = problem(
        act(app, &desk, &id, json!({"action": "withdraw"})).await,
        403,
    )
    .await;
    assert_eq!(refused["code"], "authorization_revoked");
    assert_eq!(refused["authorization"], nid.as_str());
    // And the revoked grant shows nothing any more.
    problem(
        app.get(&format!("/api/v1/requests/{id}"), Some(&desk))
            .await,
        404,
    )
    .await;

    // Grant and revocation are in the trail, under the grant's id.
    use mashangban::db::schema::audit_events;
    let actions: Vec<String> = audit_events::table
        .filter(audit_events::request_id.eq(&nid))
        .order(audit_events::seq)
        .select(audit_events::action)
        .load(&mut connect(app))
        .unwrap();
    assert_eq!(actions, ["authorization.granted", "authorization.revoked"]);
    // The request is untouched by all of it.
    let seen = json_of(
        app.get(&format!("/api/v1/requests/{id}"), Some(&owner))
            .await,
        200,
    )
    .await;
    assert_eq!(seen["status"], "submitted");
}

async fn a_leader_grant_files_and_counts_in_the_statistics(app: &TestApp) {
    let owner = app.enterprise_token();
    // 领导干部帮办: a named leading official of `tax`.
    let g = grant(
        app,
        json!({"assistant": {"official": "tax.leader"}, "until": in_days(90), "leader": true}),
    )
    .await;
    assert_eq!(g["leader"], true);
    let leader = clerk(app, "tax.leader", UnitCode::Tax);
    let mut body = matter_body("tax.registration");
    body["channel"] = json!("online");
    body["on_behalf_of"] = json!({"uscc": USCC_A});
    let filed = json_of(file(app, &leader, &body).await, 201).await;
    let id = filed["id"].as_str().unwrap();
    assert_eq!(filed["applicant"]["uscc"], USCC_A);
    let intake = &events(app, &leader, id).await[0];
    assert_eq!(intake["actor"], "tax.leader");
    assert_eq!(intake["payload"]["authorization"], g["id"]);
    assert_eq!(intake["payload"]["leader"], true);
    // The enterprise sees it among its own.
    let list = json_of(app.get("/api/v1/requests", Some(&owner)).await, 200).await;
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id)
    );
    // Under a grant a filing is online or at the window.
    body["channel"] = json!("self_service");
    assert_eq!(
        pointers(file(app, &leader, &body).await).await,
        ["/channel"]
    );
    // The leader withdraws it.
    ok(app, &leader, id, json!({"action": "withdraw"})).await;
    // A walk-in at market, too.
    json_of(
        file(app, &clerk(app, "li.na", UnitCode::Market), &walk_in(JOINT)).await,
        201,
    )
    .await;

    let stats = |token: String, query: &'static str| async move {
        app.get(
            &format!("/api/v1/authorizations/stats{query}"),
            Some(&token),
        )
        .await
    };
    let all = json_of(stats(app.token(Actor::Supervisor(None)), "").await, 200).await;
    assert_eq!(
        all["units"],
        json!([
            {"unit": "market", "walk_in_filings": 1, "assisted_filings": 0, "assisted_supplements": 0,
             "assisted_withdrawals": 0, "leader_filings": 0, "leader_handled": 0},
            {"unit": "tax", "walk_in_filings": 0, "assisted_filings": 1, "assisted_supplements": 0,
             "assisted_withdrawals": 1, "leader_filings": 1, "leader_handled": 1},
        ])
    );
    // A unit supervisor sees their unit.
    let tax = json_of(
        stats(app.token(Actor::Supervisor(Some(UnitCode::Tax))), "").await,
        200,
    )
    .await;
    assert_eq!(tax["units"].as_array().unwrap().len(), 1);
    assert_eq!(tax["units"][0]["unit"], "tax");
    // A window before every act counts nothing.
    let none = json_of(
        stats(
            app.token(Actor::Supervisor(None)),
            "?to=2026-01-01T00:00:00Z",
        )
        .await,
        200,
    )
    .await;
    assert_eq!(none["units"], json!([]));
    // Clerks and enterprises do not read them; a bad time is named.
    assert_eq!(
        problem(stats(app.clerk_token(UnitCode::Tax), "").await, 403).await["code"],
        "forbidden"
    );
    assert_eq!(
        problem(stats(owner.clone(), "").await, 403).await["code"],
        "forbidden"
    );
    let bad = problem(
        stats(app.token(Actor::Supervisor(None)), "?from=yesterday").await,
        422,
    )
    .await;
    assert_eq!(bad["errors"][0]["pointer"], "from");
}

async fn grants_are_read_by_their_parties_and_bad_grants_are_refused(app: &TestApp) {
    let owner = app.enterprise_token();
    let x = submit(app, &matter_body(JOINT)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let g = grant(
        app,
        json!({"assistant": {"official": "zhang.wei"}, "request": x}),
    )
    .await;
    let gid = g["id"].as_str().unwrap();
    let path = format!("/api/v1/authorizations/{gid}");
    // The enterprise, the named official: yes. Another enterprise, another official: 404.
    json_of(app.get(&path, Some(&owner)).await, 200).await;
    let zhang = clerk(app, "zhang.wei", UnitCode::Tax);
    json_of(app.get(&path, Some(&zhang)).await, 200).await;
    problem(app.get(&path, Some(&enterprise_b(app))).await, 404).await;
    problem(
        app.get(&path, Some(&clerk(app, "li.na", UnitCode::Tax)))
            .await,
        404,
    )
    .await;
    assert_eq!(
        problem(app.get(&path, Some(&app.admin_token())).await, 403).await["code"],
        "forbidden"
    );
    let mine = json_of(app.get("/api/v1/authorizations", Some(&zhang)).await, 200).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let theirs = json_of(
        app.get("/api/v1/authorizations", Some(&enterprise_b(app)))
            .await,
        200,
    )
    .await;
    assert_eq!(theirs["items"], json!([]));

    // Only an enterprise grants.
    let body = json!({"assistant": {"official": "zhang.wei"}, "request": x});
    assert_eq!(
        problem(
            post(app, "/api/v1/authorizations", &zhang, &body).await,
            403
        )
        .await["code"],
        "forbidden"
    );
    // Every wrong grant, named.
    let y_of_b = {
        let response = app
            .client
            .post(app.url("/api/v1/requests"))
            .bearer_auth(enterprise_b(app))
            .json(&{
                let mut b = matter_body(JOINT);
                b["applicant"]["uscc"] = json!(USCC_B);
                b
            })
            .send()
            .await
            .unwrap();
        json_of(response, 201).await["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let cases = [
        (json!({"assistant": {}, "request": x}), "/assistant"),
        (
            json!({"assistant": {"official": "a", "desk": "tax"}, "request": x}),
            "/assistant",
        ),
        (
            json!({"assistant": {"desk": "tax"}, "request": x, "leader": true}),
            "/leader",
        ),
        (json!({"assistant": {"official": "a"}}), "/until"),
        (
            json!({"assistant": {"official": "a"}, "until": in_days(400)}),
            "/until",
        ),
        (
            json!({"assistant": {"official": "a"}, "until": in_days(-1)}),
            "/until",
        ),
        (
            json!({"assistant": {"official": "a"}, "from": in_days(-10), "until": in_days(10)}),
            "/from",
        ),
        (
            json!({"assistant": {"official": "a"}, "request": x, "until": in_days(10)}),
            "/request",
        ),
        (
            json!({"assistant": {"official": "a"}, "request": y_of_b}),
            "/request",
        ),
    ];
    for (body, pointer) in cases {
        let got = pointers(post(app, "/api/v1/authorizations", &owner, &body).await).await;
        assert_eq!(got, [pointer], "{body}");
    }
    // Unknown members and unknown units are refused before anything is read.
    for body in [
        json!({"assistant": {"desk": "nowhere"}, "request": x}),
        json!({"assistant": {"official": "a"}, "request": x, "scope": "all"}),
    ] {
        assert_eq!(
            problem(
                post(app, "/api/v1/authorizations", &owner, &body).await,
                422
            )
            .await["code"],
            "validation_failed"
        );
    }
    assert_eq!(count(app, "authorizations"), 1, "no refusal stored a grant");
}

async fn a_scheduled_grant_waits_and_a_named_supervisor_files_under_a_live_one(app: &TestApp) {
    let mut body = matter_body("tax.registration");
    body["channel"] = json!("window");
    body["on_behalf_of"] = json!({"uscc": USCC_A});
    // A grant that begins tomorrow lets nobody act today.
    let later = grant(
        app,
        json!({"assistant": {"official": "tax.head"}, "from": in_days(1), "until": in_days(30)}),
    )
    .await;
    assert_eq!(later["state"], "scheduled");
    let head = token_of(app, "tax.head", Actor::Supervisor(Some(UnitCode::Tax)));
    let refused = problem(file(app, &head, &body).await, 403).await;
    assert_eq!(refused["code"], "authorization_not_started");
    assert_eq!(refused["authorization"], later["id"]);
    // A supervisor named by a live grant files (leader assistance is often theirs), at the
    // window too; a walk-in remains a clerk's.
    grant(
        app,
        json!({"assistant": {"official": "tax.head"}, "until": in_days(30), "leader": true}),
    )
    .await;
    let filed = json_of(file(app, &head, &body).await, 201).await;
    assert_eq!(filed["channel"], "window");
    assert_eq!(filed["applicant"]["uscc"], USCC_A);
    let intake = &events(app, &head, filed["id"].as_str().unwrap()).await[0];
    assert_eq!(intake["role"], "supervisor");
    assert_eq!(intake["payload"]["leader"], true);
    // Nobody else is named: a clerk of the same unit has no grant.
    let clerk_of_tax = clerk(app, "wang.tax", UnitCode::Tax);
    assert_eq!(
        problem(file(app, &clerk_of_tax, &body).await, 403).await["code"],
        "authorization_required"
    );
    // An enterprise B's official holds nothing of A's either: B's grant is B's.
    json_of(
        post(
            app,
            "/api/v1/authorizations",
            &enterprise_b(app),
            &json!({"assistant": {"desk": "tax"}, "until": in_days(30)}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        problem(file(app, &clerk_of_tax, &body).await, 403).await["code"],
        "authorization_required"
    );
}

on_both_backends!(
    a_clerk_files_for_a_walk_in_enterprise_which_sees_it_is_mailed_and_withdraws,
    every_walk_in_refusal_is_precise_and_changes_nothing,
    a_walk_in_filing_honours_the_idempotency_key,
    an_official_acts_under_a_grant_and_is_refused_without_one,
    a_grant_is_refused_after_expiry_and_after_revocation,
    a_leader_grant_files_and_counts_in_the_statistics,
    grants_are_read_by_their_parties_and_bad_grants_are_refused,
    a_scheduled_grant_waits_and_a_named_supervisor_files_under_a_live_one,
);
