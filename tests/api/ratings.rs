//! The good/bad rating loop end to end: rate, a bad rating opens a rectification case with its
//! clocks, the unit contacts the enterprise, the supervisor closes it with a note, and the
//! enterprise is told — each step audited and its mails in the outbox.

use diesel::prelude::*;
use mashangban::auth::Actor;
use mashangban::domain::{UnitCode, Uscc};
use serde_json::{Value, json};

use crate::helpers::{self, TestApp, act_ok, connect, post_if_match, problem};
use crate::on_both_backends;
use crate::requests::{USCC_B, matter_body};

async fn submit(app: &TestApp, matter: &str) -> String {
    let created = helpers::submit(app, &matter_body(matter)).await;
    created["id"].as_str().unwrap().to_string()
}

async fn step(
    app: &TestApp,
    token: &str,
    path: &str,
    read: &str,
    body: Value,
) -> reqwest::Response {
    post_if_match(app, token, path, read, &body).await
}

async fn act(app: &TestApp, token: &str, id: &str, body: Value) {
    act_ok(app, token, id, body).await;
}

async fn rate(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/requests/{id}/rating")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// (kind, recipient) of the outbox rows about `request_id`.
fn outbox(app: &TestApp, request_id: &str) -> Vec<(String, String)> {
    use mashangban::db::schema::notifications;
    notifications::table
        .filter(notifications::request_id.eq(request_id))
        .order(notifications::created_at)
        .select((notifications::kind, notifications::recipient))
        .load(&mut connect(app))
        .unwrap()
}

async fn a_bad_rating_is_rectified_and_the_enterprise_told(app: &TestApp) {
    let id = submit(app, "tax.registration").await;
    let clerk = app.clerk_token(UnitCode::Tax);
    let enterprise = app.enterprise_token();

    // Not finished yet: nothing to rate.
    let response = rate(
        app,
        &enterprise,
        &id,
        json!({"level": 1, "comment": "slow"}),
    )
    .await;
    let body = problem(response, 409).await;
    assert_eq!(body["code"], "action_not_allowed");
    assert_eq!(body["state"], "submitted");

    act(app, &clerk, &id, json!({"action": "call"})).await;
    act(
        app,
        &clerk,
        &id,
        json!({"action": "refuse", "reason": "not a tax matter of this district"}),
    )
    .await;

    // Only the owner rates, 1 to 5.
    let response = rate(app, &clerk, &id, json!({"level": 5})).await;
    assert_eq!(problem(response, 403).await["code"], "forbidden");
    let other = app.token(Actor::Enterprise(Uscc::parse(USCC_B).unwrap()));
    let response = rate(app, &other, &id, json!({"level": 5})).await;
    assert_eq!(problem(response, 404).await["code"], "not_found");
    let response = rate(app, &enterprise, &id, json!({"level": 7})).await;
    assert_eq!(
        problem(response, 422).await["errors"][0]["pointer"],
        "/level"
    );
    let long = "差".repeat(1001);
    let response = rate(app, &enterprise, &id, json!({"level": 1, "comment": long})).await;
    assert_eq!(
        problem(response, 422).await["errors"][0]["pointer"],
        "/comment"
    );

    let response = rate(
        app,
        &enterprise,
        &id,
        json!({"level": 1, "comment": "窗口态度差，等了两个小时"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let rated: Value = response.json().await.unwrap();
    assert_eq!(rated["level"], 1);
    assert_eq!(rated["label"], "非常不满意");
    assert_eq!(rated["unit"], "tax");
    let case = &rated["rectification"];
    assert_eq!(case["status"], "open");
    assert_eq!(case["unit"], "tax");
    let clocks = case["clocks"].as_array().unwrap();
    let kinds: Vec<&str> = clocks.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&"rectification_contact") && kinds.contains(&"rectification"));
    for clock in clocks {
        assert_eq!(clock["state"], "running");
    }
    let target = |kind: &str| clocks.iter().find(|c| c["kind"] == kind).unwrap()["target"].clone();
    assert_eq!(target("rectification_contact"), "1 working_days");
    assert_eq!(target("rectification"), "15 working_days");
    let case_id = case["id"].as_str().unwrap().to_string();

    // One rating per request.
    let response = rate(app, &enterprise, &id, json!({"level": 5})).await;
    assert_eq!(problem(response, 409).await["code"], "already_rated");

    // Listed for tax, not for market; not for enterprises.
    let tax_supervisor = app.token(Actor::Supervisor(Some(UnitCode::Tax)));
    let listed: Value = app
        .get("/api/v1/rectifications?status=open", Some(&tax_supervisor))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["total_capped"], false);
    assert_eq!(listed["items"][0]["id"], case_id.as_str());
    let market_supervisor = app.token(Actor::Supervisor(Some(UnitCode::Market)));
    let listed: Value = app
        .get("/api/v1/rectifications", Some(&market_supervisor))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 0);
    let response = app
        .get(
            &format!("/api/v1/rectifications/{case_id}"),
            Some(&market_supervisor),
        )
        .await;
    assert_eq!(problem(response, 404).await["code"], "not_found");
    // The enterprise lists its own case, with its comment.
    let listed: Value = app
        .get("/api/v1/rectifications", Some(&enterprise))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["comment"], "窗口态度差，等了两个小时");
    let response = app
        .get(
            "/api/v1/rectifications?status=pending",
            Some(&tax_supervisor),
        )
        .await;
    assert_eq!(
        problem(response, 422).await["errors"][0]["pointer"],
        "status"
    );

    // The unit contacts the enterprise; then only a supervisor closes, with a note.
    let case_path = format!("/api/v1/rectifications/{case_id}");
    let response = step(
        app,
        &clerk,
        &format!("{case_path}/contact"),
        &case_path,
        json!({"note": "电话联系企业，致歉并说明退件原因"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let contacted: Value = response.json().await.unwrap();
    assert_eq!(contacted["status"], "contacted");
    assert_eq!(
        contacted["contact_note"],
        "电话联系企业，致歉并说明退件原因"
    );
    assert_eq!(contacted["comment"], "窗口态度差，等了两个小时");
    assert_eq!(contacted["level"], 1);
    assert_eq!(contacted["label"], "非常不满意");
    let contact_clock = contacted["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "rectification_contact")
        .unwrap();
    assert_eq!(contact_clock["state"], "met");
    let response = step(
        app,
        &clerk,
        &format!("{case_path}/close"),
        &case_path,
        json!({"note": "done"}),
    )
    .await;
    assert_eq!(problem(response, 403).await["code"], "forbidden");
    let response = step(
        app,
        &tax_supervisor,
        &format!("{case_path}/close"),
        &case_path,
        json!({"note": "  "}),
    )
    .await;
    assert_eq!(
        problem(response, 422).await["errors"][0]["pointer"],
        "/note"
    );
    let response = app
        .client
        .post(app.url(&format!("{case_path}/close")))
        .bearer_auth(&tax_supervisor)
        .header("If-Match", "\"r1\"")
        .json(&json!({"note": "stale"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response, 412).await["code"], "precondition_failed");
    let response = step(
        app,
        &tax_supervisor,
        &format!("{case_path}/close"),
        &case_path,
        json!({"note": "窗口增设引导员，退件原因当场书面告知"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let closed: Value = response.json().await.unwrap();
    assert_eq!(closed["status"], "closed");
    assert_eq!(
        closed["closing_note"],
        "窗口增设引导员，退件原因当场书面告知"
    );
    for clock in closed["clocks"].as_array().unwrap() {
        assert_eq!(clock["state"], "met", "{clock}");
    }
    let response = step(
        app,
        &tax_supervisor,
        &format!("{case_path}/close"),
        &case_path,
        json!({"note": "again"}),
    )
    .await;
    assert_eq!(problem(response, 409).await["state"], "closed");

    // Mails: refusal and outcome to the enterprise, the case to tax's supervisor.
    let mails = outbox(app, &id);
    let has = |kind: &str, to: &str| mails.iter().any(|(k, r)| k == kind && r == to);
    assert!(has("not_accepted", "office@example.com"), "{mails:?}");
    assert!(
        has("rectification_opened", "supervisor.tax@putuo.sh.gov.cn"),
        "{mails:?}"
    );
    assert_eq!(
        mails
            .iter()
            .filter(|(k, _)| k == "rectification_closed")
            .count(),
        1,
        "{mails:?}"
    );

    // Every step is in the trail, and the chain holds.
    let events: Value = app
        .get(
            &format!("/api/v1/requests/{id}/events"),
            Some(&app.admin_token()),
        )
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "rate",
        "rectification.opened",
        "rectification.contacted",
        "rectification.closed",
    ] {
        assert_eq!(
            actions.iter().filter(|a| **a == expected).count(),
            1,
            "{expected} in {actions:?}"
        );
    }
    let verified: Value = app
        .get("/api/v1/audit/verify", Some(&app.admin_token()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["status"], "ok");
}

async fn a_good_rating_opens_nothing(app: &TestApp) {
    let id = submit(app, "tax.registration").await;
    let clerk = app.clerk_token(UnitCode::Tax);
    act(app, &clerk, &id, json!({"action": "call"})).await;
    act(
        app,
        &clerk,
        &id,
        json!({"action": "refuse", "reason": "duplicate"}),
    )
    .await;
    let response = rate(app, &app.enterprise_token(), &id, json!({"level": 4})).await;
    assert_eq!(response.status(), 201);
    let rated: Value = response.json().await.unwrap();
    assert_eq!(rated["label"], "满意");
    assert!(rated["rectification"].is_null());
    let listed: Value = app
        .get("/api/v1/rectifications", Some(&app.admin_token()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 0);

    // Satisfaction per unit and per matter in the supervisors' statistics.
    let stats: Value = app
        .get("/api/v1/sla/stats?group_by=unit", Some(&app.admin_token()))
        .await
        .json()
        .await
        .unwrap();
    let tax = stats["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == "tax")
        .unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(tax["satisfaction"]["ratings"], 1);
    assert_eq!(tax["satisfaction"]["satisfied"], 1);
    assert_eq!(tax["satisfaction"]["bad"], 0);
    assert_eq!(tax["satisfaction"]["satisfaction_rate"], 1.0);
    assert_eq!(tax["satisfaction"]["average_level"], 4.0);
    assert_eq!(stats["overall"]["satisfaction"]["ratings"], 1);
    let by_matter: Value = app
        .get(
            "/api/v1/sla/stats?group_by=matter",
            Some(&app.token(Actor::Supervisor(Some(UnitCode::Tax)))),
        )
        .await
        .json()
        .await
        .unwrap();
    let matter = by_matter["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == "tax.registration")
        .unwrap_or_else(|| panic!("{by_matter}"));
    assert_eq!(matter["satisfaction"]["ratings"], 1);
    // Another unit's supervisor does not count tax's ratings.
    let market: Value = app
        .get(
            "/api/v1/sla/stats?group_by=unit",
            Some(&app.token(Actor::Supervisor(Some(UnitCode::Market)))),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(market["overall"]["satisfaction"]["ratings"], 0);
}

/// A request of enterprise A refused by tax and rated 1: the case's id and the request's id.
async fn bad_case(app: &TestApp, comment: &str) -> (String, String) {
    let id = submit(app, "tax.registration").await;
    let clerk = app.clerk_token(UnitCode::Tax);
    act(app, &clerk, &id, json!({"action": "call"})).await;
    act(
        app,
        &clerk,
        &id,
        json!({"action": "refuse", "reason": "材料不齐"}),
    )
    .await;
    let response = rate(
        app,
        &app.enterprise_token(),
        &id,
        json!({"level": 2, "comment": comment}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let rated: Value = response.json().await.unwrap();
    let case_id = rated["rectification"]["id"].as_str().unwrap().to_string();
    (case_id, id)
}

async fn close(app: &TestApp, token: &str, case_id: &str, body: Value) -> reqwest::Response {
    let case_path = format!("/api/v1/rectifications/{case_id}");
    step(app, token, &format!("{case_path}/close"), &case_path, body).await
}

async fn a_case_closes_after_a_contact_or_with_a_reason_for_none(app: &TestApp) {
    let supervisor = app.token(Actor::Supervisor(Some(UnitCode::Tax)));

    // No contact recorded, no reason: 409 naming what is missing; nothing changes.
    let (case_id, _) = bad_case(app, "没人回电话").await;
    let response = close(app, &supervisor, &case_id, json!({"note": "已整改"})).await;
    let body = problem(response, 409).await;
    assert_eq!(body["code"], "action_not_allowed");
    assert_eq!(body["state"], "open");
    assert_eq!(body["missing"], json!(["contact", "no_contact_reason"]));
    // An empty reason is no reason.
    let response = close(
        app,
        &supervisor,
        &case_id,
        json!({"note": "已整改", "no_contact_reason": " "}),
    )
    .await;
    assert_eq!(
        problem(response, 422).await["errors"][0]["pointer"],
        "/no_contact_reason"
    );
    let unchanged: Value = app
        .get(
            &format!("/api/v1/rectifications/{case_id}"),
            Some(&supervisor),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["status"], "open");

    // With the reason: closed, the reason stored and shown to staff.
    let response = close(
        app,
        &supervisor,
        &case_id,
        json!({"note": "已整改", "no_contact_reason": "企业登记电话为空号，邮件未回复"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let closed: Value = response.json().await.unwrap();
    assert_eq!(closed["status"], "closed");
    assert_eq!(
        closed["no_contact_reason"],
        "企业登记电话为空号，邮件未回复"
    );
    assert!(closed.get("contacted_at").is_none(), "{closed}");
    let stored: Option<String> = {
        use mashangban::db::schema::rectifications;
        rectifications::table
            .find(&case_id)
            .select(rectifications::no_contact_reason)
            .first(&mut connect(app))
            .unwrap()
    };
    assert_eq!(stored.as_deref(), Some("企业登记电话为空号，邮件未回复"));

    // A contacted case closes without a reason, and refuses one.
    let (case_id, _) = bad_case(app, "排队太久").await;
    let case_path = format!("/api/v1/rectifications/{case_id}");
    let response = step(
        app,
        &app.clerk_token(UnitCode::Tax),
        &format!("{case_path}/contact"),
        &case_path,
        json!({"note": "已电话联系"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let response = close(
        app,
        &supervisor,
        &case_id,
        json!({"note": "已整改", "no_contact_reason": "x"}),
    )
    .await;
    assert_eq!(
        problem(response, 422).await["errors"][0]["pointer"],
        "/no_contact_reason"
    );
    let response = close(app, &supervisor, &case_id, json!({"note": "已整改"})).await;
    assert_eq!(response.status(), 200);
    let closed: Value = response.json().await.unwrap();
    assert_eq!(closed["status"], "closed");
    assert!(closed.get("no_contact_reason").is_none(), "{closed}");
}

async fn the_enterprise_reads_its_own_cases_without_internal_notes(app: &TestApp) {
    let (case_id, request_id) = bad_case(app, "窗口态度差").await;
    let case_path = format!("/api/v1/rectifications/{case_id}");
    let enterprise = app.enterprise_token();
    let clerk = app.clerk_token(UnitCode::Tax);
    let supervisor = app.token(Actor::Supervisor(Some(UnitCode::Tax)));

    // The enterprise may read but not act.
    let response = step(
        app,
        &enterprise,
        &format!("{case_path}/contact"),
        &case_path,
        json!({"note": "x"}),
    )
    .await;
    assert_eq!(problem(response, 403).await["code"], "forbidden");
    let response = close(app, &enterprise, &case_id, json!({"note": "x"})).await;
    assert_eq!(problem(response, 403).await["code"], "forbidden");

    let contact_note = "企业负责人情绪激动，内部备注";
    let response = step(
        app,
        &clerk,
        &format!("{case_path}/contact"),
        &case_path,
        json!({"note": contact_note}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let closing_note = "窗口增设引导员";
    assert_eq!(
        close(app, &supervisor, &case_id, json!({"note": closing_note}))
            .await
            .status(),
        200
    );

    // Staff see the contact note; the enterprise sees the outcome, not the note.
    let staff: Value = app
        .get(&case_path, Some(&supervisor))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(staff["contact_note"], contact_note);
    let response = app.get(&case_path, Some(&enterprise)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"r3\"");
    let own: Value = response.json().await.unwrap();
    assert_eq!(own["id"], case_id.as_str());
    assert_eq!(own["status"], "closed");
    assert_eq!(own["level"], 2);
    assert_eq!(own["label"], "不满意");
    assert_eq!(own["comment"], "窗口态度差");
    assert_eq!(own["closing_note"], closing_note);
    assert!(own["contacted_at"].is_string(), "{own}");
    assert!(own.get("contact_note").is_none(), "{own}");
    assert!(!own.to_string().contains(contact_note), "{own}");
    let listed: Value = app
        .get("/api/v1/rectifications?status=closed", Some(&enterprise))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["id"], case_id.as_str());
    assert!(!listed.to_string().contains(contact_note), "{listed}");

    // Another enterprise sees nothing of it.
    let other = app.token(Actor::Enterprise(Uscc::parse(USCC_B).unwrap()));
    let response = app.get(&case_path, Some(&other)).await;
    assert_eq!(problem(response, 404).await["code"], "not_found");
    let listed: Value = app
        .get("/api/v1/rectifications", Some(&other))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 0);
    assert_eq!(listed["items"], json!([]));

    // The timeline: the enterprise reads units, not officials, and no contact note; the
    // closing note it was told is there.
    let timeline = |token: String| {
        let path = format!("/api/v1/requests/{request_id}/events");
        async move {
            let body: Value = app.get(&path, Some(&token)).await.json().await.unwrap();
            body["events"].as_array().unwrap().clone()
        }
    };
    let event = |events: &[Value], action: &str| {
        events
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} in {events:?}"))
            .clone()
    };
    let seen = timeline(enterprise.clone()).await;
    let contacted = event(&seen, "rectification.contacted");
    assert_eq!(contacted["actor"], "tax");
    assert_eq!(contacted["payload"], json!({"case": case_id}));
    let closed = event(&seen, "rectification.closed");
    assert_eq!(closed["actor"], "tax");
    assert_eq!(closed["payload"]["note"], closing_note);
    assert_eq!(event(&seen, "rate")["actor"], "enterprise");
    assert_eq!(event(&seen, "refuse")["payload"]["reason"], "材料不齐");
    for e in &seen {
        let actor = e["actor"].as_str().unwrap();
        assert!(
            ["enterprise", "tax", "system"].contains(&actor),
            "{actor} in {e}"
        );
    }
    let staff = timeline(app.admin_token()).await;
    assert_eq!(staff.len(), seen.len());
    let contacted = event(&staff, "rectification.contacted");
    assert_eq!(contacted["actor"], "test-clerk");
    assert_eq!(contacted["payload"]["note"], contact_note);
    // The same stored events: the hashes agree.
    let hashes = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["hash"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(hashes(&seen), hashes(&staff));
}

on_both_backends!(
    a_bad_rating_is_rectified_and_the_enterprise_told,
    a_good_rating_opens_nothing,
    a_case_closes_after_a_contact_or_with_a_reason_for_none,
    the_enterprise_reads_its_own_cases_without_internal_notes,
);
