//! Single-window authority over HTTP, on both backends: the lead unit speaks for the request,
//! a co-unit only gives its opinion on its own task, a unit with nothing on the request sees
//! nothing; the clocks of each window visit; the result kept on the request.
//!
//! The actors, as in the service centre: the enterprise, a clerk of the lead unit (`market`),
//! a clerk of the co-unit (`justice`, on `market.ip-dispute`), a clerk and a supervisor of an
//! unrelated unit (`tax`), the service centre, supervisors.

use diesel::prelude::*;
use mashangban::auth::Actor;
use mashangban::domain::UnitCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, act, act_ok as ok, connect, problem, submit};
use crate::on_both_backends;
use crate::requests::{bundle_body, matter_body};

/// A matter led by `market` with `justice` as co-operating unit.
const JOINT: &str = "market.ip-dispute";

async fn read(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.get(&format!("/api/v1/requests/{id}"), Some(token))
        .await
}

async fn read_ok(app: &TestApp, token: &str, id: &str) -> Value {
    let response = read(app, token, id).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn task<'a>(request: &'a Value, unit: &str) -> &'a Value {
    request["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["unit"] == unit)
        .unwrap_or_else(|| panic!("no {unit} task in {request}"))
}

/// The clocks of `kind`, oldest first.
fn clocks<'a>(request: &'a Value, kind: &str) -> Vec<&'a Value> {
    request["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind)
        .collect()
}

/// (kind, recipient, body) of the outbox rows about `request_id`, oldest first.
fn outbox(app: &TestApp, request_id: &str) -> Vec<(String, String, String)> {
    use mashangban::db::schema::notifications;
    notifications::table
        .filter(notifications::request_id.eq(request_id))
        .order(notifications::created_at)
        .select((
            notifications::kind,
            notifications::recipient,
            notifications::body,
        ))
        .load(&mut connect(app))
        .unwrap()
}

async fn new_joint_request(app: &TestApp) -> String {
    submit(app, &matter_body(JOINT)).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn a_unit_with_nothing_on_the_request_sees_nothing(app: &TestApp) {
    let id = new_joint_request(app).await;
    let unrelated = app.clerk_token(UnitCode::Tax);
    let unrelated_head = app.token(Actor::Supervisor(Some(UnitCode::Tax)));
    for token in [&unrelated, &unrelated_head] {
        assert_eq!(
            problem(read(app, token, &id).await, 404).await["code"],
            "not_found"
        );
        let events = app
            .get(&format!("/api/v1/requests/{id}/events"), Some(token))
            .await;
        problem(events, 404).await;
    }
    // Every step, not only reads: no 403 that would tell the request exists.
    for body in [
        json!({"action": "call"}),
        json!({"action": "start_review"}),
        json!({"action": "give_opinion", "opinion": "agree"}),
        json!({"action": "return", "reason": "not ours"}),
    ] {
        let response = act(app, &unrelated, &id, body.clone()).await;
        assert_eq!(problem(response, 404).await["code"], "not_found", "{body}");
    }
    let response = act(
        app,
        &unrelated_head,
        &id,
        json!({"action": "approve_extension", "reason": "x"}),
    )
    .await;
    problem(response, 404).await;
    // A missing id answers the same.
    let response = act(
        app,
        &unrelated,
        "0190f000-0000-7000-8000-000000000000",
        json!({"action": "call"}),
    )
    .await;
    problem(response, 404).await;
}

async fn a_co_unit_never_takes_the_leads_steps(app: &TestApp) {
    let id = new_joint_request(app).await;
    let lead = app.clerk_token(UnitCode::Market);
    let co = app.clerk_token(UnitCode::Justice);
    // The co-unit sees the request (it has a task) but may not take it in.
    let seen = read_ok(app, &co, &id).await;
    assert_eq!(task(&seen, "justice")["role"], "co");
    for body in [
        json!({"action": "call"}),
        json!({"action": "return", "reason": "not ours"}),
    ] {
        let response = act(app, &co, &id, body.clone()).await;
        let problem = problem(response, 403).await;
        assert_eq!(problem["code"], "not_lead_unit", "{body}");
        assert_eq!(problem["lead_unit"], "market");
        assert!(problem["detail"].as_str().unwrap().contains("market"));
    }
    ok(app, &lead, &id, json!({"action": "call"})).await;
    for body in [
        json!({"action": "accept"}),
        json!({"action": "refuse", "reason": "x"}),
        json!({"action": "request_supplement", "items": ["x"]}),
    ] {
        let response = act(app, &co, &id, body.clone()).await;
        assert_eq!(
            problem(response, 403).await["code"],
            "not_lead_unit",
            "{body}"
        );
    }
    let accepted = ok(app, &lead, &id, json!({"action": "accept"})).await;
    assert!(
        accepted["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "accepted")
    );
    // The co-unit's review moves its own task only.
    let after = ok(app, &co, &id, json!({"action": "start_review"})).await;
    assert_eq!(after["status"], "accepted");
    assert_eq!(task(&after, "justice")["status"], "under_review");
    assert_eq!(task(&after, "market")["status"], "accepted");
    // It never decides the lead's matter, nor completes or delivers it.
    for body in [
        json!({"action": "approve"}),
        json!({"action": "deny", "reason": "x"}),
        json!({"action": "complete"}),
        json!({"action": "deliver", "certificate": "X-1"}),
    ] {
        let response = act(app, &co, &id, body.clone()).await;
        assert_eq!(
            problem(response, 403).await["code"],
            "not_lead_unit",
            "{body}"
        );
    }
    // And its supervisor may not extend the lead's limit.
    let co_head = app.token(Actor::Supervisor(Some(UnitCode::Justice)));
    let response = act(
        app,
        &co_head,
        &id,
        json!({"action": "approve_extension", "reason": "x"}),
    )
    .await;
    assert_eq!(problem(response, 403).await["code"], "not_lead_unit");
    // The lead's review does not move the co-unit's task.
    let after = ok(app, &lead, &id, json!({"action": "start_review"})).await;
    assert_eq!(after["status"], "under_review");
    assert_eq!(task(&after, "justice")["status"], "under_review");
    // The lead gives no opinion: it decides.
    let response = act(
        app,
        &lead,
        &id,
        json!({"action": "give_opinion", "opinion": "agree"}),
    )
    .await;
    assert_eq!(problem(response, 403).await["code"], "forbidden");
    // The service centre, with nothing on it and nothing returned, sees nothing.
    let centre = app.clerk_token(UnitCode::ServiceCenter);
    problem(
        act(app, &centre, &id, json!({"action": "approve"})).await,
        404,
    )
    .await;
}

async fn a_joint_review_is_decided_after_every_opinion(app: &TestApp) {
    let id = new_joint_request(app).await;
    let lead = app.clerk_token(UnitCode::Market);
    let co = app.clerk_token(UnitCode::Justice);
    let enterprise = app.enterprise_token();
    ok(app, &lead, &id, json!({"action": "call"})).await;
    let accepted = ok(app, &lead, &id, json!({"action": "accept"})).await;
    // The co-unit's opinion clock started at acceptance, on its task.
    let opinion_clock = clocks(&accepted, "opinion");
    assert_eq!(opinion_clock.len(), 1, "{accepted}");
    assert_eq!(opinion_clock[0]["state"], "running");
    assert_eq!(
        opinion_clock[0]["task_id"],
        task(&accepted, "justice")["id"]
    );
    ok(app, &lead, &id, json!({"action": "start_review"})).await;
    // Not before the opinion is in.
    let response = act(app, &lead, &id, json!({"action": "approve"})).await;
    let body = problem(response, 409).await;
    assert_eq!(body["code"], "opinions_outstanding");
    assert_eq!(body["missing"], json!(["justice"]));
    let response = act(app, &lead, &id, json!({"action": "deny", "reason": "no"})).await;
    assert_eq!(problem(response, 409).await["code"], "opinions_outstanding");
    // An opinion before the co-unit's own review started is out of order.
    // (Its review started? Not yet: give_opinion names the task's state.)
    let response = act(
        app,
        &co,
        &id,
        json!({"action": "give_opinion", "opinion": "agree"}),
    )
    .await;
    let body = problem(response, 409).await;
    assert_eq!(body["state"], "accepted");
    assert_eq!(body["task"], task(&accepted, "justice")["id"]);
    ok(app, &co, &id, json!({"action": "start_review"})).await;
    // A disagreement needs its reason; the opinion itself is required.
    let response = act(
        app,
        &co,
        &id,
        json!({"action": "give_opinion", "opinion": "disagree"}),
    )
    .await;
    let body = problem(response, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/note");
    let response = act(app, &co, &id, json!({"action": "give_opinion"})).await;
    assert_eq!(
        problem(response, 422).await["errors"][0]["pointer"],
        "/opinion"
    );
    let response = act(
        app,
        &co,
        &id,
        json!({"action": "start_review", "opinion": "agree"}),
    )
    .await;
    assert_eq!(
        problem(response, 422).await["errors"][0]["pointer"],
        "/opinion"
    );
    let given = ok(
        app,
        &co,
        &id,
        json!({"action": "give_opinion", "opinion": "disagree", "note": "涉及在审诉讼，建议暂缓"}),
    )
    .await;
    assert_eq!(given["status"], "under_review");
    let justice = task(&given, "justice");
    assert_eq!(justice["status"], "completed");
    assert_eq!(justice["opinion"]["opinion"], "disagree");
    assert_eq!(justice["opinion"]["note"], "涉及在审诉讼，建议暂缓");
    assert_eq!(clocks(&given, "opinion")[0]["state"], "met");
    // Once is enough: the task is done.
    let response = act(
        app,
        &co,
        &id,
        json!({"action": "give_opinion", "opinion": "agree"}),
    )
    .await;
    assert_eq!(problem(response, 409).await["state"], "completed");
    // The enterprise sees the opinion, not the internal note.
    let seen = read_ok(app, &enterprise, &id).await;
    assert_eq!(task(&seen, "justice")["opinion"]["opinion"], "disagree");
    assert!(
        task(&seen, "justice")["opinion"].get("note").is_none(),
        "{seen}"
    );
    // Deciding against the opinion needs a reason that answers it.
    let response = act(app, &lead, &id, json!({"action": "approve"})).await;
    let body = problem(response, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/reason");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("justice")
    );
    let response = act(
        app,
        &lead,
        &id,
        json!({"action": "approve", "reason": "材料齐全"}),
    )
    .await;
    problem(response, 422).await;
    let approved = ok(
        app,
        &lead,
        &id,
        json!({"action": "approve", "reason": "区司法局所称诉讼与本次登记无关"}),
    )
    .await;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["result"]["kind"], "approval");
    // The opinion task keeps its opinion; the decision record carries it.
    assert_eq!(task(&approved, "justice")["status"], "completed");
    let events: Value = app
        .get(&format!("/api/v1/requests/{id}/events"), Some(&lead))
        .await
        .json()
        .await
        .unwrap();
    let approve = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "approve")
        .unwrap();
    assert_eq!(approve["payload"]["opinions"][0]["unit"], "justice");
    assert_eq!(approve["payload"]["opinions"][0]["opinion"], "disagree");
    let give = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "give_opinion")
        .unwrap();
    assert_eq!(give["unit"], "justice");
    assert_eq!(give["payload"]["opinion"], "disagree");
    assert_eq!(give["payload"]["note"], "涉及在审诉讼，建议暂缓");
    // The enterprise's timeline names units, not officials, and carries no internal note.
    let seen: Value = app
        .get(&format!("/api/v1/requests/{id}/events"), Some(&enterprise))
        .await
        .json()
        .await
        .unwrap();
    let seen = seen["events"].as_array().unwrap();
    let give = seen.iter().find(|e| e["action"] == "give_opinion").unwrap();
    assert_eq!(give["actor"], "justice");
    assert_eq!(give["payload"]["opinion"], "disagree");
    assert!(give["payload"].get("note").is_none(), "{give}");
    let approve = seen.iter().find(|e| e["action"] == "approve").unwrap();
    assert_eq!(approve["actor"], "market");
    assert!(approve["payload"].get("opinions").is_none(), "{approve}");
    assert!(
        seen.iter()
            .all(|e| !e["actor"].as_str().unwrap().starts_with("test-")),
        "{seen:?}"
    );
    // The lead completes and delivers; the result is kept on the request.
    ok(app, &lead, &id, json!({"action": "complete"})).await;
    let delivered = ok(
        app,
        &lead,
        &id,
        json!({"action": "deliver", "certificate": "沪普知调〔2026〕17号"}),
    )
    .await;
    assert_eq!(delivered["status"], "delivered");
    assert_eq!(delivered["result"]["kind"], "approval");
    assert_eq!(delivered["result"]["certificate"], "沪普知调〔2026〕17号");
    assert!(delivered["result"]["delivered_at"].is_string());
    assert!(
        delivered["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "delivered")
    );
}

async fn a_bundle_denial_tells_every_reason(app: &TestApp) {
    let id = submit(app, &bundle_body("bundle.open-business")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let market = app.clerk_token(UnitCode::Market);
    let tax = app.clerk_token(UnitCode::Tax);
    let hrss = app.clerk_token(UnitCode::Hrss);
    ok(app, &market, &id, json!({"action": "call"})).await;
    ok(app, &market, &id, json!({"action": "accept"})).await;
    for clerk in [&market, &tax, &hrss] {
        ok(app, clerk, &id, json!({"action": "start_review"})).await;
    }
    // No unit decides another unit's task, nor completes the bundle for the lead.
    let response = act(app, &tax, &id, json!({"action": "complete"})).await;
    assert_eq!(problem(response, 403).await["code"], "not_lead_unit");
    ok(
        app,
        &tax,
        &id,
        json!({"action": "deny", "reason": "存在欠税记录"}),
    )
    .await;
    ok(
        app,
        &hrss,
        &id,
        json!({"action": "deny", "reason": "社保登记信息不全"}),
    )
    .await;
    // The last decision is an approval: the bundle is denied, and the mail says why, twice.
    let decided = ok(app, &market, &id, json!({"action": "approve"})).await;
    assert_eq!(decided["status"], "denied");
    assert_eq!(decided["result"]["kind"], "denial");
    let mails = outbox(app, &id);
    let denied: Vec<_> = mails
        .iter()
        .filter(|(kind, _, _)| kind == "denied")
        .collect();
    assert_eq!(denied.len(), 1, "{mails:?}");
    let body = &denied[0].2;
    assert!(
        body.contains("存在欠税记录") && body.contains("社保登记信息不全"),
        "{body}"
    );
    assert!(body.contains("tax") && body.contains("hrss"), "{body}");
    assert!(!body.contains("理由：-"), "{body}");
}

async fn every_window_visit_is_timed(app: &TestApp) {
    let id = submit(app, &matter_body("market.establish")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let lead = app.clerk_token(UnitCode::Market);
    let enterprise = app.enterprise_token();
    ok(app, &lead, &id, json!({"action": "call"})).await;
    ok(
        app,
        &lead,
        &id,
        json!({"action": "request_supplement", "items": ["租赁合同"]}),
    )
    .await;
    ok(app, &enterprise, &id, json!({"action": "supplement"})).await;
    let second = ok(app, &lead, &id, json!({"action": "call"})).await;
    let windows = clocks(&second, "window_intake");
    assert_eq!(windows.len(), 2, "{second}");
    assert_eq!(windows[0]["state"], "met");
    assert_eq!(windows[1]["state"], "running");
    assert_ne!(windows[0]["started_at"], windows[1]["started_at"]);
    assert!(windows[1]["due_at"].is_string());
    let accepted = ok(app, &lead, &id, json!({"action": "accept"})).await;
    let windows = clocks(&accepted, "window_intake");
    assert!(windows.iter().all(|w| w["state"] == "met"), "{accepted}");
}

async fn a_rerouted_request_gets_the_new_units_window_clock(app: &TestApp) {
    let id = submit(app, &matter_body("market.establish")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let market = app.clerk_token(UnitCode::Market);
    let centre = app.clerk_token(UnitCode::ServiceCenter);
    ok(app, &market, &id, json!({"action": "call"})).await;
    let returned = ok(
        app,
        &market,
        &id,
        json!({"action": "return", "reason": "属税务事项"}),
    )
    .await;
    let first = clocks(&returned, "window_intake")[0];
    assert_eq!(first["state"], "cancelled");
    assert_eq!(first["unit"], "market");
    // While returned, the service centre sees it (to arbitrate) and may only re-route it.
    let seen = read_ok(app, &centre, &id).await;
    assert_eq!(seen["status"], "returned");
    let response = act(app, &centre, &id, json!({"action": "call"})).await;
    assert_eq!(problem(response, 403).await["code"], "not_lead_unit");
    ok(
        app,
        &centre,
        &id,
        json!({"action": "reroute", "unit": "tax", "reason": "税务登记"}),
    )
    .await;
    // The old lead now has nothing on it.
    let response = act(app, &market, &id, json!({"action": "call"})).await;
    problem(response, 404).await;
    let tax = app.clerk_token(UnitCode::Tax);
    // It waits in the new lead's queue.
    let next = app
        .client
        .post(app.url("/api/v1/queue/next"))
        .bearer_auth(&tax)
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), 200);
    let next: Value = next.json().await.unwrap();
    assert_eq!(next["request"]["id"], id.as_str());
    let called = ok(app, &tax, &id, json!({"action": "call"})).await;
    assert!(task(&called, "tax")["claimed_by"].is_string());
    let windows = clocks(&called, "window_intake");
    assert_eq!(windows.len(), 2, "{called}");
    assert_eq!(windows[0]["state"], "cancelled");
    assert_eq!(windows[1]["state"], "running");
    assert_eq!(windows[1]["unit"], "tax");
    assert!(windows[1]["breached_at"].is_null());
    assert!(windows[1]["started_at"].as_str() > first["started_at"].as_str());
    // The enterprise sees where it went, not which official moved it nor the units' reasons.
    let routing = |token: String| {
        let path = format!("/api/v1/requests/{id}/routing");
        async move {
            let body: Value = app.get(&path, Some(&token)).await.json().await.unwrap();
            body["decisions"][1]["explanation"].clone()
        }
    };
    let staff = routing(app.admin_token()).await;
    assert_eq!(staff["reason"], "税务登记");
    assert!(staff["by"].is_string());
    let seen = routing(app.enterprise_token()).await;
    assert_eq!(seen["to"], "tax");
    assert!(
        seen.get("by").is_none() && seen.get("reason").is_none(),
        "{seen}"
    );
    let view = read_ok(app, &app.enterprise_token(), &id).await;
    assert!(task(&view, "tax").get("claimed_by").is_none(), "{view}");
}

async fn on_the_spot_promises_are_clocks(app: &TestApp) {
    // 即办件: from the call to completion in the visit.
    let id = submit(app, &matter_body("tax.invoice-issue")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tax = app.clerk_token(UnitCode::Tax);
    let called = ok(app, &tax, &id, json!({"action": "call"})).await;
    let immediate = clocks(&called, "immediate");
    assert_eq!(immediate.len(), 1, "{called}");
    assert_eq!(immediate[0]["state"], "running");
    assert_eq!(immediate[0]["target"], "PT1H");
    for step in ["accept", "start_review", "approve", "complete"] {
        ok(app, &tax, &id, json!({"action": step})).await;
    }
    let done = read_ok(app, &tax, &id).await;
    assert_eq!(clocks(&done, "immediate")[0]["state"], "met");

    // 立等可取: the property-transfer bundle, from acceptance to the certificate.
    let id = submit(app, &bundle_body("bundle.property-transfer")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let planning = app.clerk_token(UnitCode::Planning);
    ok(app, &planning, &id, json!({"action": "call"})).await;
    let accepted = ok(app, &planning, &id, json!({"action": "accept"})).await;
    let spot = clocks(&accepted, "on_the_spot");
    assert_eq!(spot.len(), 1, "{accepted}");
    assert_eq!(spot[0]["state"], "running");
    for unit in [UnitCode::Housing, UnitCode::Tax, UnitCode::Planning] {
        let clerk = app.clerk_token(unit);
        ok(app, &clerk, &id, json!({"action": "start_review"})).await;
        ok(app, &clerk, &id, json!({"action": "approve"})).await;
    }
    ok(app, &planning, &id, json!({"action": "complete"})).await;
    let delivered = ok(
        app,
        &planning,
        &id,
        json!({"action": "deliver", "certificate": "沪(2026)普字不动产权第001号"}),
    )
    .await;
    assert_eq!(clocks(&delivered, "on_the_spot")[0]["state"], "met");
    assert_eq!(
        delivered["result"]["certificate"],
        "沪(2026)普字不动产权第001号"
    );
}

on_both_backends!(
    a_unit_with_nothing_on_the_request_sees_nothing,
    a_co_unit_never_takes_the_leads_steps,
    a_joint_review_is_decided_after_every_opinion,
    a_bundle_denial_tells_every_reason,
    every_window_visit_is_timed,
    a_rerouted_request_gets_the_new_units_window_clock,
    on_the_spot_promises_are_clocks,
);
