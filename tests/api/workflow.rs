//! The lifecycle over HTTP: actions with If-Match, the queue, re-routing; on both backends.

use mashangban::auth::Actor;
use mashangban::domain::UnitCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem};
use crate::helpers::{act, act_ok as ok, submit};
use crate::on_both_backends;
use crate::requests::{bundle_body, matter_body};

async fn a_matter_goes_all_the_way(app: &TestApp) {
    let created = submit(app, &matter_body("market.establish")).await;
    let id = created["id"].as_str().unwrap();
    let clerk = app.clerk_token(UnitCode::Market);
    for (body, state) in [
        (json!({"action": "call"}), "called"),
        (json!({"action": "accept"}), "accepted"),
        (json!({"action": "start_review"}), "under_review"),
        (
            json!({"action": "begin_special_procedure", "kind": "inspection"}),
            "under_review",
        ),
        (json!({"action": "end_special_procedure"}), "under_review"),
        (json!({"action": "approve"}), "approved"),
        (json!({"action": "complete"}), "completed"),
        (
            json!({"action": "deliver", "certificate": "91310107MA1G000001"}),
            "delivered",
        ),
    ] {
        let after = ok(app, &clerk, id, body).await;
        assert_eq!(after["status"], state);
        assert!(
            after["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["status"] == state)
        );
    }
    let events: Value = app
        .get(&format!("/api/v1/requests/{id}/events"), Some(&clerk))
        .await
        .json()
        .await
        .unwrap();
    let events = events["events"].as_array().unwrap().clone();
    let steps: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .filter(|a| !a.starts_with("clock."))
        .collect();
    assert_eq!(
        steps,
        [
            "intake",
            "call",
            "accept",
            "start_review",
            "begin_special_procedure",
            "end_special_procedure",
            "approve",
            "complete",
            "deliver"
        ]
    );
    let deliver = events.iter().find(|e| e["action"] == "deliver").unwrap();
    assert_eq!(deliver["payload"]["certificate"], "91310107MA1G000001");
    assert_eq!(deliver["state_before"], "completed");
    assert_eq!(deliver["unit"], "market");
    // The clocks' own steps are in the trail, each caused by the step before it.
    let clock_steps: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("clock."))
        .map(|e| {
            (
                e["payload"]["kind"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |kind: &str, action: &str| clock_steps.iter().any(|(k, a)| k == kind && a == action);
    assert!(has("window_intake", "clock.started"), "{clock_steps:?}");
    assert!(has("window_intake", "clock.met"), "{clock_steps:?}");
    assert!(has("supplement_notice", "clock.met"), "{clock_steps:?}");
    assert!(has("statutory", "clock.started"), "{clock_steps:?}");
    assert!(has("statutory", "clock.paused"), "{clock_steps:?}");
    assert!(has("statutory", "clock.resumed"), "{clock_steps:?}");
    assert!(has("statutory", "clock.met"), "{clock_steps:?}");
    assert!(has("promised", "clock.met"), "{clock_steps:?}");
    assert!(has("delivery", "clock.started"), "{clock_steps:?}");
    assert!(has("delivery", "clock.met"), "{clock_steps:?}");
    let pause = events
        .iter()
        .find(|e| e["action"] == "clock.paused")
        .unwrap();
    assert_eq!(pause["payload"]["caused_by"], "begin_special_procedure");
    assert_eq!(
        pause["payload"]["detail"]["reason"],
        "special procedure: inspection"
    );
    // Every clock stopped in time; the statutory one records its pause.
    let read: Value = app
        .get(&format!("/api/v1/requests/{id}"), Some(&clerk))
        .await
        .json()
        .await
        .unwrap();
    for clock in read["clocks"].as_array().unwrap() {
        assert_eq!(clock["state"], "met", "{clock}");
    }
    let verified: Value = app
        .get("/api/v1/audit/verify", Some(&app.admin_token()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["status"], "ok");
    assert_eq!(verified["count"], events.len());
}

async fn a_bundle_is_worked_by_its_units(app: &TestApp) {
    let created = submit(app, &bundle_body("bundle.open-business")).await;
    let id = created["id"].as_str().unwrap();
    let market = app.clerk_token(UnitCode::Market);
    let tax = app.clerk_token(UnitCode::Tax);
    let hrss = app.clerk_token(UnitCode::Hrss);
    // One intake for the whole bundle.
    ok(app, &market, id, json!({"action": "call"})).await;
    let accepted = ok(app, &market, id, json!({"action": "accept"})).await;
    let tasks = accepted["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3);
    assert!(tasks.iter().all(|t| t["status"] == "accepted"));
    let task_of = |unit: &str, view: &Value| -> Value {
        view["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["unit"] == unit)
            .unwrap()
            .clone()
    };

    // A unit with no task on the bundle does not see it at all.
    let response = act(
        app,
        &app.clerk_token(UnitCode::Justice),
        id,
        json!({"action": "start_review"}),
    )
    .await;
    assert_eq!(problem(response, 404).await["code"], "not_found");

    // Each unit reviews and decides its own task; the bundle follows.
    let after = ok(app, &tax, id, json!({"action": "start_review"})).await;
    assert_eq!(after["status"], "under_review");
    assert_eq!(task_of("tax", &after)["status"], "under_review");
    assert_eq!(task_of("market", &after)["status"], "accepted");
    assert_eq!(task_of("hrss", &after)["status"], "accepted");
    // hrss has not started its review: no special procedure on its task yet, and the refusal
    // names the task's state, not the bundle's.
    let response = act(
        app,
        &hrss,
        id,
        json!({"action": "begin_special_procedure", "kind": "inspection"}),
    )
    .await;
    let body = problem(response, 409).await;
    assert_eq!(body["state"], "accepted");
    assert!(body["task"].is_string());
    for clerk in [&market, &hrss] {
        ok(app, clerk, id, json!({"action": "start_review"})).await;
    }
    let after = ok(
        app,
        &hrss,
        id,
        json!({"action": "begin_special_procedure", "kind": "expert_review"}),
    )
    .await;
    assert_eq!(after["special_procedure"], true);
    assert_eq!(task_of("hrss", &after)["special_procedure"], true);
    ok(app, &tax, id, json!({"action": "approve"})).await;
    // Not done until every task is decided: the bundle cannot complete yet.
    let response = act(app, &market, id, json!({"action": "complete"})).await;
    let body = problem(response, 409).await;
    assert_eq!(body["state"], "under_review");
    let after = ok(app, &market, id, json!({"action": "approve"})).await;
    assert_eq!(after["status"], "under_review");
    // hrss may not decide during its special procedure.
    let response = act(app, &hrss, id, json!({"action": "approve"})).await;
    let body = problem(response, 409).await;
    assert_eq!(body["code"], "action_not_allowed");
    ok(app, &hrss, id, json!({"action": "end_special_procedure"})).await;
    // A task named explicitly must be the unit's own.
    let tax_task = task_of("tax", &after)["id"].as_str().unwrap().to_string();
    let hrss_task = task_of("hrss", &after)["id"].as_str().unwrap().to_string();
    let response = act(
        app,
        &hrss,
        id,
        json!({"action": "approve", "task": tax_task}),
    )
    .await;
    assert_eq!(problem(response, 403).await["code"], "forbidden");
    // `task` is only for review and decision steps.
    let response = act(
        app,
        &market,
        id,
        json!({"action": "complete", "task": hrss_task}),
    )
    .await;
    assert_eq!(
        problem(response, 422).await["errors"][0]["pointer"],
        "/task"
    );
    let after = ok(
        app,
        &hrss,
        id,
        json!({"action": "approve", "task": hrss_task}),
    )
    .await;
    assert_eq!(after["status"], "approved");
    assert_eq!(after["special_procedure"], false);
    // Decided as a whole: no unit changes its decision any more.
    let response = act(app, &tax, id, json!({"action": "deny", "reason": "late"})).await;
    assert_eq!(problem(response, 409).await["state"], "approved");

    // One reply: the lead completes and delivers for the whole bundle.
    let after = ok(app, &market, id, json!({"action": "complete"})).await;
    assert!(
        after["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "completed")
    );
    let after = ok(
        app,
        &market,
        id,
        json!({"action": "deliver", "certificate": "91310107MA1G000002"}),
    )
    .await;
    assert_eq!(after["status"], "delivered");

    let events: Value = app
        .get(&format!("/api/v1/requests/{id}/events"), Some(&market))
        .await
        .json()
        .await
        .unwrap();
    let events = events["events"].as_array().unwrap();
    let decisions: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["action"] == "approve")
        .map(|e| {
            (
                e["unit"].as_str().unwrap(),
                e["state_after"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("tax", "under_review"),
            ("market", "under_review"),
            ("hrss", "approved")
        ]
    );
    assert_eq!(
        events.iter().filter(|e| e["action"] == "deliver").count(),
        1,
        "one reply"
    );
    // The joint statutory clock paused while any task was in a special procedure.
    let joint_pauses = events
        .iter()
        .filter(|e| e["action"] == "clock.paused" && e["payload"]["task"].is_null())
        .count();
    assert_eq!(joint_pauses, 1);
}

async fn a_bundle_with_a_denied_task_is_denied(app: &TestApp) {
    let created = submit(app, &bundle_body("bundle.open-business")).await;
    let id = created["id"].as_str().unwrap();
    let market = app.clerk_token(UnitCode::Market);
    ok(app, &market, id, json!({"action": "call"})).await;
    ok(app, &market, id, json!({"action": "accept"})).await;
    for unit in [UnitCode::Market, UnitCode::Tax, UnitCode::Hrss] {
        ok(
            app,
            &app.clerk_token(unit),
            id,
            json!({"action": "start_review"}),
        )
        .await;
    }
    ok(app, &market, id, json!({"action": "approve"})).await;
    ok(
        app,
        &app.clerk_token(UnitCode::Tax),
        id,
        json!({"action": "deny", "reason": "tax arrears outstanding"}),
    )
    .await;
    let after = ok(
        app,
        &app.clerk_token(UnitCode::Hrss),
        id,
        json!({"action": "approve"}),
    )
    .await;
    assert_eq!(after["status"], "denied");
    // A task id that is not on the bundle is named precisely.
    let response = act(
        app,
        &market,
        id,
        json!({"action": "start_review", "task": "no-such-task"}),
    )
    .await;
    let body = problem(response, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/task");
    // Decided: no more review steps on any task.
    let response = act(app, &market, id, json!({"action": "start_review"})).await;
    assert_eq!(problem(response, 409).await["state"], "denied");
}

async fn illegal_stale_and_unguarded_steps_are_refused(app: &TestApp) {
    let created = submit(app, &matter_body("tax.registration")).await;
    let id = created["id"].as_str().unwrap();
    let clerk = app.clerk_token(UnitCode::Tax);

    // Not possible now: 409 with the state and the choices.
    let response = act(app, &clerk, id, json!({"action": "approve"})).await;
    let body = problem(response, 409).await;
    assert_eq!(body["code"], "action_not_allowed");
    assert_eq!(body["state"], "submitted");
    assert_eq!(body["allowed"], json!(["withdraw", "call", "return"]));

    // No If-Match: 428. A stale one: 412, and nothing changes.
    let response = app
        .client
        .post(app.url(&format!("/api/v1/requests/{id}/actions")))
        .bearer_auth(&clerk)
        .json(&json!({"action": "call"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(response, 428).await["code"],
        "precondition_required"
    );
    ok(app, &clerk, id, json!({"action": "call"})).await;
    let response = app
        .client
        .post(app.url(&format!("/api/v1/requests/{id}/actions")))
        .bearer_auth(&clerk)
        .header("If-Match", "\"r1\"")
        .json(&json!({"action": "accept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["etag"], "\"r2\"");
    let body = problem(response, 412).await;
    assert_eq!(body["code"], "precondition_failed");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("someone else changed")
    );
    let now: Value = app
        .get(&format!("/api/v1/requests/{id}"), Some(&clerk))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["status"], "called");

    // Missing members: 422 naming them.
    let body = problem(act(app, &clerk, id, json!({"action": "refuse"})).await, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/reason");
    let body = problem(
        act(
            app,
            &clerk,
            id,
            json!({"action": "request_supplement", "items": []}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["pointer"], "/items");
    let response = act(
        app,
        &clerk,
        id,
        json!({"action": "accept", "status": "approved"}),
    )
    .await;
    assert_eq!(response.status(), 422);

    // Roles: the enterprise cannot accept; another enterprise does not see it at all.
    let body = problem(
        act(
            app,
            &app.enterprise_token(),
            id,
            json!({"action": "accept"}),
        )
        .await,
        403,
    )
    .await;
    assert_eq!(body["code"], "forbidden");
    let other = app.token(Actor::Enterprise(
        mashangban::domain::Uscc::parse(crate::requests::USCC_B).unwrap(),
    ));
    let response = act(app, &other, id, json!({"action": "withdraw"})).await;
    assert_eq!(problem(response, 404).await["code"], "not_found");

    // One notice with every item; the enterprise supplements; the clerk calls again.
    let after = ok(
        app,
        &clerk,
        id,
        json!({"action": "request_supplement", "items": ["营业执照副本", "法定代表人身份证明"]}),
    )
    .await;
    assert_eq!(after["status"], "supplement_required");
    let after = ok(
        app,
        &app.enterprise_token(),
        id,
        json!({"action": "supplement"}),
    )
    .await;
    assert_eq!(after["status"], "submitted");
    let after = ok(
        app,
        &app.enterprise_token(),
        id,
        json!({"action": "withdraw"}),
    )
    .await;
    assert_eq!(after["status"], "withdrawn");
    let body = problem(act(app, &clerk, id, json!({"action": "call"})).await, 409).await;
    assert_eq!(body["allowed"], json!([]));
}

async fn a_returned_request_is_rerouted_by_the_service_centre(app: &TestApp) {
    let created = submit(app, &matter_body("tax.registration")).await;
    let id = created["id"].as_str().unwrap();
    ok(
        app,
        &app.clerk_token(UnitCode::Tax),
        id,
        json!({"action": "return", "reason": "不属于本单位事项"}),
    )
    .await;
    let body = problem(
        act(
            app,
            &app.clerk_token(UnitCode::Tax),
            id,
            json!({"action": "reroute", "unit": "market", "reason": "x"}),
        )
        .await,
        403,
    )
    .await;
    assert_eq!(body["code"], "forbidden");
    let after = ok(
        app,
        &app.clerk_token(UnitCode::ServiceCenter),
        id,
        json!({"action": "reroute", "unit": "market", "reason": "属市场监管事项"}),
    )
    .await;
    assert_eq!(after["status"], "submitted");
    assert_eq!(after["lead_unit"], "market");
    assert_eq!(after["tasks"][0]["unit"], "market");
    // The time lost between the return and the reroute is charged to tax; the clock counts
    // against market from now on.
    let notice = after["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "supplement_notice")
        .unwrap();
    assert_eq!(notice["state"], "running");
    assert_eq!(notice["lost_to_unit"], "tax");
    assert_eq!(notice["unit"], "market");
    // Return and reroute came seconds apart: at most one working minute was lost.
    assert!(
        (0..=1).contains(&notice["lost_minutes"].as_i64().unwrap()),
        "{notice}"
    );
    let routing: Value = app
        .get(
            &format!("/api/v1/requests/{id}/routing"),
            Some(&app.admin_token()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(routing["decisions"].as_array().unwrap().len(), 2);
    assert_eq!(routing["decisions"][1]["reason"], "reroute");
    assert_eq!(routing["decisions"][1]["explanation"]["from"], "tax");
    // Now it is in market's queue.
    let queue: Value = app
        .get("/api/v1/queue", Some(&app.clerk_token(UnitCode::Market)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(queue["items"][0]["request_id"], id);
}

async fn two_clerks_never_take_the_same_task(app: &TestApp) {
    for _ in 0..5 {
        submit(app, &matter_body("tax.registration")).await;
    }
    let clerks: Vec<String> = (0..8)
        .map(|i| {
            mashangban::auth::TokenIssuer::new(&app.settings.jwt).issue(
                &mashangban::auth::Principal {
                    subject: format!("tax-clerk-{i}"),
                    actor: Actor::Clerk(UnitCode::Tax),
                },
                std::time::Duration::from_secs(600),
                chrono::Utc::now(),
            )
        })
        .collect();
    let claims = clerks.iter().map(|token| {
        app.client
            .post(app.url("/api/v1/queue/next"))
            .bearer_auth(token)
            .send()
    });
    let mut taken = std::collections::BTreeSet::new();
    let mut empty = 0;
    for response in futures_util::future::join_all(claims).await {
        let response = response.unwrap();
        match response.status().as_u16() {
            200 => {
                let body: Value = response.json().await.unwrap();
                assert!(
                    taken.insert(body["task"]["task_id"].as_str().unwrap().to_string()),
                    "taken twice"
                );
            }
            204 => empty += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(taken.len(), 5);
    assert_eq!(empty, 3);
    let queue: Value = app
        .get("/api/v1/queue", Some(&clerks[0]))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["claimed_by"].is_string())
    );
    let body = problem(
        app.get("/api/v1/queue", Some(&app.enterprise_token()))
            .await,
        403,
    )
    .await;
    assert_eq!(body["code"], "forbidden");
}

on_both_backends!(
    a_matter_goes_all_the_way,
    a_bundle_is_worked_by_its_units,
    a_bundle_with_a_denied_task_is_denied,
    illegal_stale_and_unguarded_steps_are_refused,
    a_returned_request_is_rerouted_by_the_service_centre,
    two_clerks_never_take_the_same_task,
);
