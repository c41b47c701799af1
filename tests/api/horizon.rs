//! The working calendar's horizon: due times after its last configured day are provisional
//! (request view, deadline API, SLA lists), loading a whole year moves the horizon and the
//! running clocks, the administrators are mailed once per horizon, and `/metrics` shows the
//! days left.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use mashangban::auth::Actor;
use mashangban::db::calendars::{HorizonNotice, notify_horizon};
use mashangban::db::schema::{audit_events, clocks, notifications};
use mashangban::domain::UnitCode;
use mashangban::domain::calendar::Calendar;
use serde_json::{Value, json};

use crate::helpers::{TestApp, act_ok, connect, problem, start, submit, test_settings};
use crate::on_both_backends;
use crate::requests::matter_body;

const CODE: &str = "cn-shanghai";

/// A plausible 2027 for the tests — a test fixture, NOT the State Council's notice: 元旦
/// Jan 1–3; 春节 Feb 6–14 with working days Sun Jan 31 and Sat Feb 20; 清明 Apr 3–5; 劳动节
/// May 1–5 with working Sat Apr 24; 端午 Jun 9–11; 中秋 Sep 15–17; 国庆 Oct 1–7 with working
/// Sun Sep 26 and Sat Oct 9.
fn year_2027() -> Value {
    json!({
        "holidays": [
            "2027-01-01..2027-01-03",
            "2027-02-06..2027-02-14",
            "2027-04-03..2027-04-05",
            "2027-05-01..2027-05-05",
            "2027-06-09..2027-06-11",
            "2027-09-15..2027-09-17",
            "2027-10-01..2027-10-07",
        ],
        "working_days": ["2027-01-31", "2027-02-20", "2027-04-24", "2027-09-26", "2027-10-09"],
    })
}

async fn put_year(
    app: &TestApp,
    token: Option<&str>,
    year: &str,
    body: &Value,
) -> reqwest::Response {
    let mut request = app
        .client
        .put(app.url(&format!("/api/v1/calendars/{CODE}/years/{year}")))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The deadline API's answer for `amount` working days from `start`.
async fn deadline(app: &TestApp, start: &str, amount: u32) -> Value {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("start", start)
        .append_pair("amount", &amount.to_string())
        .append_pair("unit", "working_days")
        .finish();
    let response = app
        .get(&format!("/api/v1/calendars/{CODE}/deadline?{query}"), None)
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn clock<'a>(request: &'a Value, kind: &str) -> &'a Value {
    request["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} clock in {request}"))
}

async fn read(app: &TestApp, id: &str) -> Value {
    let response = app
        .get(
            &format!("/api/v1/requests/{id}"),
            Some(&app.enterprise_token()),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn a_clock_past_the_horizon_is_provisional_until_its_year_is_loaded(app: &TestApp) {
    // 20 working days from Thursday 10 Dec 2026, 10:00: Dec 11, 14–18, 21–25, 28–31 are 15;
    // with 2027 unknown, Fri 1 Jan counts and the 20th is Thu 7 Jan — provisional.
    let start_at = "2026-12-10T10:00:00+08:00";
    let before = deadline(app, start_at, 20).await;
    assert_eq!(
        before,
        json!({"due_at": "2027-01-07T17:00:00+08:00", "provisional": true})
    );
    // Inside the horizon: settled.
    assert_eq!(
        deadline(app, start_at, 10).await,
        json!({"due_at": "2026-12-24T17:00:00+08:00", "provisional": false})
    );

    // A request whose statutory clock started then (the passing of time, written directly).
    let created = submit(app, &matter_body("tax.registration")).await;
    let id = created["id"].as_str().unwrap().to_string();
    let clerk = app.clerk_token(UnitCode::Tax);
    act_ok(app, &clerk, &id, json!({"action": "call"})).await;
    let accepted = act_ok(app, &clerk, &id, json!({"action": "accept"})).await;
    let statutory = clock(&accepted, "statutory");
    assert_eq!(statutory["target"], "20 working_days");
    let clock_id = statutory["id"].as_str().unwrap().to_string();
    {
        let mut conn = connect(app);
        diesel::update(clocks::table.find(&clock_id))
            .set((
                clocks::started_at.eq(at(start_at).naive_utc()),
                clocks::due_at.eq(at("2027-01-07T17:00:00+08:00").naive_utc()),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    let view = read(app, &id).await;
    let statutory = clock(&view, "statutory");
    assert_eq!(statutory["due_at"], "2027-01-07T09:00:00Z");
    assert_eq!(statutory["provisional"], true);
    // The window clock (met today) is not.
    assert_eq!(clock(&view, "window_intake")["provisional"], false);
    let calendar: Value = app
        .get(&format!("/api/v1/calendars/{CODE}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(calendar["horizon"], "2026-12-31");
    assert_eq!(calendar["configured_years"], json!([2025, 2026]));

    // The administrator loads 2027.
    let events_before: i64 = audit_events::table
        .count()
        .get_result(&mut connect(app))
        .unwrap();
    let response = put_year(app, Some(&app.admin_token()), "2027", &year_2027()).await;
    assert_eq!(response.status(), 200);
    let loaded: Value = response.json().await.unwrap();
    assert_eq!(loaded["calendar"], CODE);
    assert_eq!(loaded["year"], 2027);
    assert_eq!(loaded["holidays"], 3 + 9 + 3 + 5 + 3 + 3 + 7);
    assert_eq!(loaded["working_days"], 5);
    assert_eq!(loaded["days_changed"], 33 + 5);
    assert_eq!(loaded["horizon_before"], "2026-12-31");
    assert_eq!(loaded["horizon"], "2027-12-31");
    assert_eq!(loaded["loaded_by"], "test-admin");
    assert_eq!(loaded["clocks_moved"], 1);

    // Jan 1 is a holiday now: Dec 28–31 are 15, Jan 4–8 make 20 — Friday 8 Jan, settled.
    let view = read(app, &id).await;
    let statutory = clock(&view, "statutory");
    assert_eq!(statutory["due_at"], "2027-01-08T09:00:00Z");
    assert_eq!(statutory["provisional"], false);
    assert_eq!(
        deadline(app, start_at, 20).await,
        json!({"due_at": "2027-01-08T17:00:00+08:00", "provisional": false})
    );
    // Beyond the new horizon, provisional again.
    assert_eq!(
        deadline(app, "2027-12-30T10:00:00+08:00", 2).await["provisional"],
        true
    );

    // One audit event for the year (and one for the moved clock), on the calendar's trail.
    let mut conn = connect(app);
    let year_events: Vec<(String, String, Option<String>, Option<String>)> = audit_events::table
        .filter(audit_events::action.eq("calendar.load_year"))
        .select((
            audit_events::request_id,
            audit_events::actor,
            audit_events::state_before,
            audit_events::state_after,
        ))
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        year_events,
        vec![(
            format!("calendar:{CODE}"),
            "test-admin".to_string(),
            Some("not_configured".to_string()),
            Some("configured".to_string())
        )]
    );
    let events_after: i64 = audit_events::table.count().get_result(&mut conn).unwrap();
    assert_eq!(events_after, events_before + 2);
    let moved: i64 = audit_events::table
        .filter(audit_events::request_id.eq(&id))
        .filter(audit_events::action.eq("clock.moved"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(moved, 1);

    // The calendar lists the year; a second instance reads it from the database.
    let other = start(test_settings(&app.settings.database.url), None, None).await;
    let calendar: Value = other
        .get(&format!("/api/v1/calendars/{CODE}?year=2027"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(calendar["horizon"], "2027-12-31");
    assert_eq!(calendar["configured_years"], json!([2025, 2026, 2027]));
    assert_eq!(calendar["days"].as_array().unwrap().len(), 33 + 5);
    assert_eq!(
        deadline(&other, start_at, 20).await["due_at"],
        "2027-01-08T17:00:00+08:00"
    );
}

/// `provisional` of breach `clock_id` in the SLA breaches, as JSON and as CSV.
async fn breach_provisional(app: &TestApp, clock_id: &str) -> (Value, String) {
    let admin = app.admin_token();
    let page: Value = app
        .get("/api/v1/sla/breaches", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let item = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["clock_id"] == clock_id)
        .unwrap_or_else(|| panic!("{page}"))
        .clone();
    let csv = app
        .client
        .get(app.url("/api/v1/sla/breaches"))
        .bearer_auth(&admin)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    assert!(
        lines.next().unwrap().ends_with(",lost_minutes,provisional"),
        "{csv}"
    );
    let row = lines
        .find(|l| l.starts_with(clock_id))
        .unwrap_or_else(|| panic!("{csv}"));
    (
        item["provisional"].clone(),
        row.rsplit(',').next().unwrap().to_string(),
    )
}

async fn the_sla_breaches_mark_provisional_due_times(app: &TestApp) {
    let created = submit(app, &matter_body("tax.registration")).await;
    let id = created["id"].as_str().unwrap().to_string();
    let clerk = app.clerk_token(UnitCode::Tax);
    act_ok(app, &clerk, &id, json!({"action": "call"})).await;
    let accepted = act_ok(app, &clerk, &id, json!({"action": "accept"})).await;
    let clock_id = clock(&accepted, "statutory")["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A clock stopped late with a due time in 2027 (written directly: a stopped clock is not
    // recomputed, so its due time stays).
    let now = Utc::now().naive_utc();
    diesel::update(clocks::table.find(&clock_id))
        .set((
            clocks::state.eq("breached"),
            clocks::due_at.eq(at("2027-01-07T17:00:00+08:00").naive_utc()),
            clocks::breached_at.eq(Some(now)),
            clocks::stopped_at.eq(Some(now)),
            clocks::check_at.eq(None::<chrono::NaiveDateTime>),
        ))
        .execute(&mut connect(app))
        .unwrap();
    assert_eq!(
        breach_provisional(app, &clock_id).await,
        (json!(true), "true".to_string())
    );
    let response = put_year(app, Some(&app.admin_token()), "2027", &year_2027()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        breach_provisional(app, &clock_id).await,
        (json!(false), "false".to_string())
    );
}

async fn a_bad_year_is_refused_whole_and_changes_nothing(app: &TestApp) {
    let admin = app.admin_token();
    let body = json!({
        "holidays": ["2027-01-01..2027-01-03", "2026-12-31", "2027-02-30", "2027-01-02", 7],
        "working_days": ["2027-02-20", "2027-02-19", "2027-01-03"],
    });
    let response = put_year(app, Some(&admin), "2027", &body).await;
    let problem_body = problem(response, 422).await;
    assert_eq!(problem_body["code"], "validation_failed");
    let pointers: Vec<&str> = problem_body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    // The non-string item is named first; the list is checked once every item is a string.
    assert_eq!(pointers, vec!["/holidays/4"]);
    let mut body = body;
    body["holidays"].as_array_mut().unwrap().pop();
    let problem_body = problem(put_year(app, Some(&admin), "2027", &body).await, 422).await;
    let errors: Vec<(String, String)> = problem_body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            ("/holidays/1".into(), "2026-12-31 is not in 2027".into()),
            (
                "/holidays/2".into(),
                "`2027-02-30` is not a date (YYYY-MM-DD) or a range (YYYY-MM-DD..YYYY-MM-DD)"
                    .into()
            ),
            ("/holidays/3".into(), "2027-01-02 is listed twice".into()),
            (
                "/working_days/1".into(),
                "2027-02-19 is a Friday, not a Saturday or Sunday".into()
            ),
            (
                "/working_days/2".into(),
                "2027-01-03 is both a holiday and a working weekend".into()
            ),
        ]
    );
    // Lists missing or of the wrong shape, a year that is not one, no holiday at all.
    let problem_body = problem(put_year(app, Some(&admin), "2027", &json!({})).await, 422).await;
    assert_eq!(problem_body["errors"][0]["pointer"], "/holidays");
    assert_eq!(problem_body["errors"][1]["pointer"], "/working_days");
    let problem_body = problem(
        put_year(
            app,
            Some(&admin),
            "27",
            &json!({"holidays": "2027-01-01", "working_days": []}),
        )
        .await,
        422,
    )
    .await;
    let pointers: Vec<&str> = problem_body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, vec!["year", "/holidays"]);
    let problem_body = problem(
        put_year(
            app,
            Some(&admin),
            "2027",
            &json!({"holidays": [], "working_days": []}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(problem_body["errors"][0]["pointer"], "/holidays");
    let response = put_year(
        app,
        Some(&admin),
        "2027",
        &json!({"holidays": ["2027-01-01"], "working_days": [], "makeup": []}),
    )
    .await;
    assert_eq!(problem(response, 422).await["code"], "validation_failed");

    // Only administrators; only the served calendar.
    for token in [
        app.enterprise_token(),
        app.clerk_token(UnitCode::ServiceCenter),
        app.token(Actor::Supervisor(None)),
    ] {
        let response = put_year(app, Some(&token), "2027", &year_2027()).await;
        assert_eq!(problem(response, 403).await["code"], "forbidden");
    }
    let response = put_year(app, None, "2027", &year_2027()).await;
    assert_eq!(response.status(), 401);
    let response = app
        .client
        .put(app.url("/api/v1/calendars/cn-beijing/years/2027"))
        .bearer_auth(&admin)
        .json(&year_2027())
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response, 404).await["code"], "not_found");

    // Nothing changed: no day stored, no event, the horizon where it was.
    let mut conn = connect(app);
    let stored: i64 = mashangban::db::schema::calendar_days::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(stored, 0);
    let events: i64 = audit_events::table
        .filter(audit_events::action.like("calendar.%"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(events, 0);
    let calendar: Value = app
        .get(&format!("/api/v1/calendars/{CODE}?year=2027"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(calendar["horizon"], "2026-12-31");
    assert_eq!(calendar["days"], json!([]));
}

/// The outbox rows of the horizon mail: (recipient, subject, message_id).
fn horizon_mails(app: &TestApp) -> Vec<(String, String, String)> {
    notifications::table
        .filter(notifications::kind.eq("calendar_horizon"))
        .order(notifications::created_at)
        .select((
            notifications::recipient,
            notifications::subject,
            notifications::message_id,
        ))
        .load(&mut connect(app))
        .unwrap()
}

async fn the_horizon_mail_is_written_once_per_horizon(app: &TestApp) {
    let mut conn = connect(app);
    let mut calendar = Calendar::builtin_shanghai();
    let admin = "admin@putuo.example";
    let now = at("2026-11-29T10:00:00+08:00");
    // More than 60 days before: not yet.
    assert_eq!(
        notify_horizon(
            &mut conn,
            &calendar,
            admin,
            60,
            at("2026-10-31T10:00:00+08:00")
        )
        .unwrap(),
        HorizonNotice::NotDue
    );
    // Within 60 days: once, however often it is checked.
    assert_eq!(
        notify_horizon(&mut conn, &calendar, admin, 60, now).unwrap(),
        HorizonNotice::Written
    );
    assert_eq!(
        notify_horizon(&mut conn, &calendar, admin, 60, now).unwrap(),
        HorizonNotice::AlreadyWritten
    );
    assert_eq!(
        notify_horizon(
            &mut conn,
            &calendar,
            admin,
            60,
            at("2027-01-05T10:00:00+08:00")
        )
        .unwrap(),
        HorizonNotice::AlreadyWritten
    );
    let mails = horizon_mails(app);
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].0, admin);
    assert_eq!(
        mails[0].1,
        "【马上办】cn-shanghai 节假日安排即将用尽，请载入 2027 年 / holidays run out: load 2027"
    );
    assert_eq!(
        mails[0].2,
        "<calendar-horizon.cn-shanghai.2026-12-31@mashangban>"
    );
    // A new horizon is a new mail.
    let year: Value = year_2027();
    let list = |key: &str| -> Vec<String> {
        year[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let days = mashangban::domain::calendar::YearDays::check(
        2027,
        &list("holidays"),
        &list("working_days"),
    )
    .unwrap();
    calendar.load_year(&days);
    assert_eq!(
        notify_horizon(&mut conn, &calendar, admin, 60, now).unwrap(),
        HorizonNotice::NotDue
    );
    assert_eq!(
        notify_horizon(
            &mut conn,
            &calendar,
            admin,
            60,
            at("2027-11-15T10:00:00+08:00")
        )
        .unwrap(),
        HorizonNotice::Written
    );
    assert_eq!(horizon_mails(app).len(), 2);
}

/// The value of the first line of `text` that starts with `series`.
fn sample(text: &str, series: &str) -> Option<i64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as i64)
}

async fn two_instances_write_the_horizon_mail_once_and_metrics_show_the_days_left(app: &TestApp) {
    let gauge = "mashangban_calendar_horizon_days{calendar=\"cn-shanghai\"}";
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let expected = (NaiveDate::from_ymd_opt(2026, 12, 31).unwrap() - today).num_days();
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert_eq!(sample(&metrics, gauge), Some(expected), "{metrics}");

    // Two instances on the same database, both checking the horizon (a year ahead: due on any
    // day from 2026-01-01 on).
    let mut instances = Vec::new();
    for _ in 0..2 {
        let mut settings = test_settings(&app.settings.database.url);
        settings.calendar.horizon_notice_days = 366;
        settings.mail.admin_email = "centre-admin@putuo.example".into();
        instances.push(start(settings, None, None).await);
    }
    // Wait until each has checked (its counter shows an outcome).
    let outcomes = |text: &str| {
        (
            sample(
                text,
                "mashangban_calendar_horizon_notices_total{outcome=\"written\"}",
            )
            .unwrap_or(0),
            sample(
                text,
                "mashangban_calendar_horizon_notices_total{outcome=\"already_written\"}",
            )
            .unwrap_or(0),
        )
    };
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen.clear();
        for instance in &instances {
            let text = instance.get("/metrics", None).await.text().await.unwrap();
            seen.push(outcomes(&text));
        }
        if seen.iter().all(|(w, a)| w + a >= 1) {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    let written: i64 = seen.iter().map(|(w, _)| w).sum();
    let already: i64 = seen.iter().map(|(_, a)| a).sum();
    assert_eq!((written, already), (1, 1), "{seen:?}");
    let mails = horizon_mails(app);
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].0, "centre-admin@putuo.example");
    // An instance that has seen the mail does not write another while the horizon stands.
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(horizon_mails(app).len(), 1);

    // Loading 2027 moves the gauge a year on.
    let response = put_year(app, Some(&app.admin_token()), "2027", &year_2027()).await;
    assert_eq!(response.status(), 200);
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert_eq!(sample(&metrics, gauge), Some(expected + 365), "{metrics}");
    drop(instances);
}

on_both_backends!(
    a_clock_past_the_horizon_is_provisional_until_its_year_is_loaded,
    the_sla_breaches_mark_provisional_due_times,
    a_bad_year_is_refused_whole_and_changes_nothing,
    the_horizon_mail_is_written_once_per_horizon,
    two_instances_write_the_horizon_mail_once_and_metrics_show_the_days_left,
);
