//! The working-calendar API: the calendar served, deadlines on cn-shanghai across the 2026
//! National Day holiday (1–7 October) and its makeup working Saturday (10 October), and
//! administrators' day changes with their audit events, seen by every instance.

use mashangban::auth::Actor;
use mashangban::db::{self, DatabaseUrl, audit};
use mashangban::domain::UnitCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, fresh_postgres, problem, start, test_settings};
use crate::on_both_backends;
use crate::requests::matter_body;

const CODE: &str = "cn-shanghai";

/// The query string of `pairs`, percent-encoded (`+` in an offset must not become a space).
fn query(pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        serializer.append_pair(key, value);
    }
    serializer.finish()
}

async fn ask(app: &TestApp, code: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
    app.get(
        &format!("/api/v1/calendars/{code}/deadline?{}", query(pairs)),
        None,
    )
    .await
}

/// `due_at` of `amount` `unit`s from `start` on cn-shanghai.
async fn due(app: &TestApp, start: &str, amount: u32, unit: &str) -> String {
    let amount = amount.to_string();
    let response = ask(
        app,
        CODE,
        &[("start", start), ("amount", &amount), ("unit", unit)],
    )
    .await;
    assert_eq!(response.status(), 200, "{start} {amount} {unit}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    assert!(body["provisional"].is_boolean(), "{body}");
    body["due_at"].as_str().unwrap().to_string()
}

/// The pointers of a 422 problem's field errors.
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

async fn put_day(app: &TestApp, token: &str, date: &str, body: Value) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/api/v1/calendars/{CODE}/days/{date}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn delete_day(app: &TestApp, token: &str, date: &str) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/api/v1/calendars/{CODE}/days/{date}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The overriding days of `year` as (date, kind).
async fn days(app: &TestApp, year: &str) -> Vec<(String, String)> {
    let response = app
        .get(&format!("/api/v1/calendars/{CODE}?year={year}"), None)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_string(),
                d["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn list_and_read(app: &TestApp) {
    let response = app.get("/api/v1/calendars", None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"items": [{"code": "cn-shanghai", "time_zone": "Asia/Shanghai"}]})
    );

    let response = app.get("/api/v1/calendars/cn-shanghai", None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], CODE);
    assert_eq!(body["time_zone"], "Asia/Shanghai");
    assert_eq!(body["standard_day_minutes"], 420);
    assert_eq!(
        body["hours"]["monday"],
        json!(["09:00-12:00", "13:00-17:00"])
    );
    assert_eq!(
        body["hours"]["friday"],
        json!(["09:00-12:00", "13:00-17:00"])
    );
    assert_eq!(body["hours"]["saturday"], json!([]));
    assert_eq!(body["hours"]["sunday"], json!([]));
    // Both shipped years, holidays and working weekends.
    let all = body["days"].as_array().unwrap();
    assert!(all.contains(&json!({"date": "2025-01-01", "kind": "holiday"})));
    assert!(all.contains(&json!({"date": "2026-10-10", "kind": "working_day"})));

    let year = days(app, "2026").await;
    // 3 + 9 + 3 + 5 + 3 + 3 + 7 holidays, 6 working weekends.
    assert_eq!(year.iter().filter(|(_, k)| k == "holiday").count(), 33);
    assert_eq!(year.iter().filter(|(_, k)| k == "working_day").count(), 6);
    assert!(year.iter().all(|(d, _)| d.starts_with("2026-")));
    let october: Vec<_> = year
        .iter()
        .filter(|(d, _)| d.starts_with("2026-10"))
        .cloned()
        .collect();
    let mut expected: Vec<(String, String)> = (1..=7)
        .map(|d| (format!("2026-10-0{d}"), "holiday".to_string()))
        .collect();
    expected.push(("2026-10-10".into(), "working_day".into()));
    assert_eq!(october, expected);
    assert!(days(app, "2027").await.is_empty());

    for bad in ["twenty", "0", "10000", "2026.5", ""] {
        let response = app
            .get(&format!("/api/v1/calendars/{CODE}?year={bad}"), None)
            .await;
        assert_eq!(pointers(response).await, ["year"], "{bad}");
    }
    let response = app.get("/api/v1/calendars/cn-beijing", None).await;
    let body = problem(response, 404).await;
    assert_eq!(body["code"], "not_found");
    assert!(body["detail"].as_str().unwrap().contains("cn-shanghai"));
}

async fn working_days_skip_the_holiday_and_count_the_makeup_saturday(app: &TestApp) {
    // Wednesday 30 September; 1–7 October are holidays; Saturday 10 October is a working day.
    for start in [
        "2026-09-30T10:00:00+08:00",
        "2026-09-30T08:00:00+08:00", // before opening: the start day still never counts
        "2026-09-30T20:00:00+08:00", // after closing
        "2026-10-03T12:00:00+08:00", // inside the holiday
    ] {
        assert_eq!(
            due(app, start, 1, "working_days").await,
            "2026-10-08T17:00:00+08:00",
            "{start}"
        );
    }
    let start = "2026-09-30T10:00:00+08:00";
    assert_eq!(
        due(app, start, 2, "working_days").await,
        "2026-10-09T17:00:00+08:00"
    );
    assert_eq!(
        due(app, start, 3, "working_days").await,
        "2026-10-10T17:00:00+08:00"
    );
    // Sunday 11 October is not a working day.
    assert_eq!(
        due(app, start, 4, "working_days").await,
        "2026-10-12T17:00:00+08:00"
    );
    // The start day never counts, even when it is a working day started at its opening:
    // Friday 9 October 09:00 + 1 working day is the makeup Saturday's close.
    assert_eq!(
        due(app, "2026-10-09T09:00:00+08:00", 1, "working_days").await,
        "2026-10-10T17:00:00+08:00"
    );
    // 2025-12-31 17:00 UTC is already Thursday 1 January 2026 01:00 in Shanghai (a holiday,
    // as are 2 and 3 January): the day of `start` is read in the calendar's zone, and
    // Sunday 4 January is a working day.
    assert_eq!(
        due(app, "2025-12-31T17:00:00Z", 1, "working_days").await,
        "2026-01-04T17:00:00+08:00"
    );
    // 0 is the start itself, given in the calendar's zone.
    assert_eq!(
        due(app, "2026-09-30T02:00:00Z", 0, "working_days").await,
        "2026-09-30T10:00:00+08:00"
    );
}

async fn working_minutes_follow_service_hours(app: &TestApp) {
    // 60 minutes left on Wednesday 30 September, the next opening is Thursday 8 October.
    assert_eq!(
        due(app, "2026-09-30T16:00:00+08:00", 120, "working_minutes").await,
        "2026-10-08T10:00:00+08:00"
    );
    // The same instant in UTC gives the same answer, in the calendar's zone.
    assert_eq!(
        due(app, "2026-09-30T08:00:00+00:00", 120, "working_minutes").await,
        "2026-10-08T10:00:00+08:00"
    );
    assert_eq!(
        due(app, "2026-09-30T08:00:00Z", 120, "working_minutes").await,
        "2026-10-08T10:00:00+08:00"
    );
    // A deadline exactly on a closing is that closing, not the next opening.
    assert_eq!(
        due(app, "2026-09-30T16:00:00+08:00", 60, "working_minutes").await,
        "2026-09-30T17:00:00+08:00"
    );
    assert_eq!(
        due(app, "2026-09-30T09:00:00+08:00", 180, "working_minutes").await,
        "2026-09-30T12:00:00+08:00"
    );
    // One more minute crosses the lunch break.
    assert_eq!(
        due(app, "2026-09-30T09:00:00+08:00", 181, "working_minutes").await,
        "2026-09-30T13:01:00+08:00"
    );
    // Outside service hours counting begins at the next opening: after closing, over the
    // holiday; at lunch; before opening.
    assert_eq!(
        due(app, "2026-09-30T18:30:00+08:00", 30, "working_minutes").await,
        "2026-10-08T09:30:00+08:00"
    );
    assert_eq!(
        due(app, "2026-10-08T12:30:00+08:00", 30, "working_minutes").await,
        "2026-10-08T13:30:00+08:00"
    );
    assert_eq!(
        due(app, "2026-10-08T07:00:00+08:00", 420, "working_minutes").await,
        "2026-10-08T17:00:00+08:00"
    );
    // The makeup Saturday opens with Monday's hours.
    assert_eq!(
        due(app, "2026-10-09T16:00:00+08:00", 120, "working_minutes").await,
        "2026-10-10T10:00:00+08:00"
    );
    // Half a working day (210) from Friday 9 October 14:00: 180 on Friday, 30 on Saturday.
    assert_eq!(
        due(app, "2026-10-09T14:00:00+08:00", 210, "working_minutes").await,
        "2026-10-10T09:30:00+08:00"
    );
    // Seconds of the start are kept.
    assert_eq!(
        due(app, "2026-10-08T09:00:30+08:00", 1, "working_minutes").await,
        "2026-10-08T09:01:30+08:00"
    );
}

async fn minutes_are_wall_clock(app: &TestApp) {
    // The holiday plays no part.
    assert_eq!(
        due(app, "2026-09-30T16:00:00+00:00", 600, "minutes").await,
        "2026-10-01T10:00:00+08:00"
    );
    assert_eq!(
        due(app, "2026-10-01T02:00:00+08:00", 20, "minutes").await,
        "2026-10-01T02:20:00+08:00"
    );
    // Any offset in, the calendar's zone out.
    assert_eq!(
        due(app, "2026-10-01T00:00:00-05:00", 0, "minutes").await,
        "2026-10-01T13:00:00+08:00"
    );
}

async fn bad_parameters_are_422_naming_the_field(app: &TestApp) {
    let ok_start = "2026-09-30T10:00:00+08:00";
    // Everything missing: every field named at once.
    assert_eq!(
        pointers(ask(app, CODE, &[]).await).await,
        ["start", "amount", "unit"]
    );
    for start in [
        "2026-09-30T10:00:00", // no offset
        "2026-09-30",
        "yesterday",
        "2026-02-30T10:00:00+08:00",
        "",
    ] {
        let response = ask(
            app,
            CODE,
            &[("start", start), ("amount", "1"), ("unit", "minutes")],
        )
        .await;
        assert_eq!(pointers(response).await, ["start"], "{start:?}");
    }
    for amount in [
        "-1",
        "1.5",
        "ten",
        "1000001",
        "99999999999999999999",
        "",
        "1e3",
    ] {
        let response = ask(
            app,
            CODE,
            &[("start", ok_start), ("amount", amount), ("unit", "minutes")],
        )
        .await;
        assert_eq!(pointers(response).await, ["amount"], "{amount:?}");
    }
    for unit in ["hours", "days", "Minutes", "working_half_days", ""] {
        let response = ask(
            app,
            CODE,
            &[("start", ok_start), ("amount", "1"), ("unit", unit)],
        )
        .await;
        assert_eq!(pointers(response).await, ["unit"], "{unit:?}");
    }
    // The largest amount is fine.
    let response = ask(
        app,
        CODE,
        &[
            ("start", ok_start),
            ("amount", "1000000"),
            ("unit", "working_days"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    // A deadline after 9999-12-31 cannot be written in RFC 3339.
    let response = ask(
        app,
        CODE,
        &[
            ("start", "9999-12-31T12:00:00Z"),
            ("amount", "1"),
            ("unit", "working_days"),
        ],
    )
    .await;
    assert_eq!(pointers(response).await, ["amount"]);
    // An unknown calendar is 404, even with bad parameters.
    let response = ask(app, "cn-beijing", &[("amount", "x")]).await;
    assert_eq!(problem(response, 404).await["code"], "not_found");
}

/// A calendar on which 2030 to 2040 are holidays from end to end: more than ten years
/// without a working day.
const CLOSED_DECADE: &str = r#"
code = "closed-decade"
time_zone = "Asia/Shanghai"
[hours]
monday = ["09:00-12:00", "13:00-17:00"]
tuesday = ["09:00-12:00", "13:00-17:00"]
wednesday = ["09:00-12:00", "13:00-17:00"]
thursday = ["09:00-12:00", "13:00-17:00"]
friday = ["09:00-12:00", "13:00-17:00"]
saturday = []
sunday = []
"#;

/// A server on the same backend as `app`, with its own fresh database and `calendar` as its
/// calendar file; `None` when PostgreSQL is asked for but not configured.
async fn spawn_with_calendar(app: &TestApp, calendar: &str) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("calendar.toml");
    std::fs::write(&file, calendar).unwrap();
    let on_postgres = app.settings.database.url.starts_with("postgres");
    let (url, pg) = if on_postgres {
        let (admin_url, name, url) = fresh_postgres()?;
        (url, Some((admin_url, name)))
    } else {
        let url = format!("sqlite://{}", dir.path().join("data/test.db").display());
        (url, None)
    };
    let mut settings = test_settings(&url);
    settings.calendar.file = file.display().to_string();
    Some(start(settings, Some(dir), pg).await)
}

async fn an_unreachable_deadline_is_422(app: &TestApp) {
    let mut text = CLOSED_DECADE.to_string();
    for year in 2030..=2040 {
        text.push_str(&format!(
            "[years.{year}]\nholidays = [\"{year}-01-01..{year}-12-31\"]\n"
        ));
    }
    let Some(closed) = spawn_with_calendar(app, &text).await else {
        return;
    };
    let response = closed.get("/api/v1/calendars", None).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["items"][0]["code"], "closed-decade");
    // The configured calendar is the only one served.
    let response = closed.get("/api/v1/calendars/cn-shanghai", None).await;
    assert_eq!(problem(response, 404).await["code"], "not_found");

    for unit in ["working_minutes", "working_days"] {
        let response = ask(
            &closed,
            "closed-decade",
            &[
                ("start", "2030-01-01T00:00:00Z"),
                ("amount", "1"),
                ("unit", unit),
            ],
        )
        .await;
        let body = problem(response, 422).await;
        assert_eq!(body["errors"][0]["pointer"], "amount", "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("no working day"),
            "{body}"
        );
    }
    // Wall-clock minutes do not need a working day.
    let response = ask(
        &closed,
        "closed-decade",
        &[
            ("start", "2030-01-01T00:00:00Z"),
            ("amount", "60"),
            ("unit", "minutes"),
        ],
    )
    .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["due_at"], "2030-01-01T09:00:00+08:00");
}

/// The calendar events of the audit chain, read directly from the database.
fn calendar_events(app: &TestApp) -> Vec<audit::EventRow> {
    let url = DatabaseUrl::parse(&app.settings.database.url).unwrap();
    let mut conn = db::establish(&url, &app.settings.database).unwrap();
    audit::for_request(&mut conn, "calendar:cn-shanghai").unwrap()
}

async fn verified_count(app: &TestApp) -> i64 {
    let response = app
        .get("/api/v1/audit/verify", Some(&app.admin_token()))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    body["count"].as_i64().unwrap()
}

async fn stored(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn an_added_holiday_moves_deadlines_and_removing_it_moves_them_back(app: &TestApp) {
    let admin = app.admin_token();
    // Tuesday 10 November 2026: one working day later is Wednesday 11 November.
    let start = "2026-11-10T10:00:00+08:00";
    assert_eq!(
        due(app, start, 1, "working_days").await,
        "2026-11-11T17:00:00+08:00"
    );
    let count = verified_count(app).await;

    let body = stored(put_day(app, &admin, "2026-11-11", json!({"kind": "holiday"})).await).await;
    assert_eq!(body["calendar"], CODE);
    assert_eq!(body["date"], "2026-11-11");
    assert_eq!(body["kind"], "holiday");
    assert_eq!(body["previous_kind"], "regular");
    assert_eq!(body["changed_by"], "test-admin");
    assert!(body["changed_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["clocks_moved"], 0);
    assert_eq!(
        due(app, start, 1, "working_days").await,
        "2026-11-12T17:00:00+08:00"
    );
    assert_eq!(
        due(app, "2026-11-10T16:00:00+08:00", 120, "working_minutes").await,
        "2026-11-12T10:00:00+08:00"
    );
    assert!(
        days(app, "2026")
            .await
            .contains(&("2026-11-11".into(), "holiday".into()))
    );

    // The same change again: harmless, recorded again.
    let body = stored(put_day(app, &admin, "2026-11-11", json!({"kind": "holiday"})).await).await;
    assert_eq!(body["previous_kind"], "holiday");
    assert_eq!(
        due(app, start, 1, "working_days").await,
        "2026-11-12T17:00:00+08:00"
    );

    let body = stored(delete_day(app, &admin, "2026-11-11").await).await;
    assert_eq!(body["kind"], "regular");
    assert_eq!(body["previous_kind"], "holiday");
    assert_eq!(
        due(app, start, 1, "working_days").await,
        "2026-11-11T17:00:00+08:00"
    );
    assert!(
        !days(app, "2026")
            .await
            .iter()
            .any(|(date, _)| date == "2026-11-11")
    );

    // A Sunday made a working day opens with Monday's hours.
    let body =
        stored(put_day(app, &admin, "2026-11-15", json!({"kind": "working_day"})).await).await;
    assert_eq!(body["kind"], "working_day");
    assert_eq!(
        due(app, "2026-11-13T16:00:00+08:00", 120, "working_minutes").await,
        "2026-11-15T10:00:00+08:00"
    );

    // Every change is in the chain, which still verifies.
    assert_eq!(verified_count(app).await, count + 4);
    let events = calendar_events(app);
    let summary: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.state_before.as_deref().unwrap(),
                e.state_after.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("calendar.set_day", "regular", "holiday"),
            ("calendar.set_day", "holiday", "holiday"),
            ("calendar.clear_day", "holiday", "regular"),
            ("calendar.set_day", "regular", "working_day"),
        ]
    );
    for event in &events {
        assert_eq!(event.actor, "test-admin");
        assert_eq!(event.role, "admin");
        assert_eq!(event.unit, None);
    }
    let payload: Value = serde_json::from_str(&events[0].payload).unwrap();
    assert_eq!(
        payload,
        json!({"calendar": "cn-shanghai", "date": "2026-11-11", "kind": "holiday"})
    );
}

async fn removing_a_file_holiday_makes_it_a_working_day(app: &TestApp) {
    let admin = app.admin_token();
    let start = "2026-09-30T10:00:00+08:00";
    assert_eq!(
        due(app, start, 1, "working_days").await,
        "2026-10-08T17:00:00+08:00"
    );
    // Friday 2 October, a holiday in the file.
    let body = stored(delete_day(app, &admin, "2026-10-02").await).await;
    assert_eq!(body["previous_kind"], "holiday");
    assert_eq!(body["kind"], "regular");
    assert_eq!(
        due(app, start, 1, "working_days").await,
        "2026-10-02T17:00:00+08:00"
    );
    assert_eq!(
        due(app, "2026-09-30T16:00:00+08:00", 120, "working_minutes").await,
        "2026-10-02T10:00:00+08:00"
    );
    let october: Vec<_> = days(app, "2026")
        .await
        .into_iter()
        .filter(|(d, _)| d.starts_with("2026-10"))
        .map(|(d, _)| d)
        .collect();
    assert_eq!(
        october,
        [
            "2026-10-01",
            "2026-10-03",
            "2026-10-04",
            "2026-10-05",
            "2026-10-06",
            "2026-10-07",
            "2026-10-10"
        ]
    );
    // Removing the makeup Saturday makes it an ordinary Saturday.
    let body = stored(delete_day(app, &admin, "2026-10-10").await).await;
    assert_eq!(body["previous_kind"], "working_day");
    assert_eq!(
        due(app, "2026-10-09T10:00:00+08:00", 1, "working_days").await,
        "2026-10-12T17:00:00+08:00"
    );
    // And putting the holiday back restores the file's answer.
    stored(put_day(app, &admin, "2026-10-02", json!({"kind": "holiday"})).await).await;
    assert_eq!(
        due(app, start, 1, "working_days").await,
        "2026-10-08T17:00:00+08:00"
    );
    assert_eq!(calendar_events(app).len(), 3);
}

async fn day_changes_are_for_administrators_with_valid_input(app: &TestApp) {
    let before = verified_count(app).await;
    let holiday = json!({"kind": "holiday"});
    for token in [
        app.enterprise_token(),
        app.clerk_token(UnitCode::Market),
        app.token(Actor::Supervisor(None)),
    ] {
        let response = put_day(app, &token, "2026-11-11", holiday.clone()).await;
        assert_eq!(problem(response, 403).await["code"], "forbidden");
        let response = delete_day(app, &token, "2026-10-02").await;
        assert_eq!(problem(response, 403).await["code"], "forbidden");
    }
    let response = app
        .client
        .put(app.url("/api/v1/calendars/cn-shanghai/days/2026-11-11"))
        .json(&holiday)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response, 401).await["code"], "missing_token");

    let admin = app.admin_token();
    for date in [
        "2026-02-30",
        "2026-13-01",
        "2026-2-3",
        "20261111",
        "tomorrow",
    ] {
        let response = put_day(app, &admin, date, holiday.clone()).await;
        assert_eq!(pointers(response).await, ["date"], "{date}");
        let response = delete_day(app, &admin, date).await;
        assert_eq!(pointers(response).await, ["date"], "{date}");
    }
    for body in [
        json!({"kind": "regular"}),
        json!({"kind": "Holiday"}),
        json!({"kind": null}),
        json!({}),
    ] {
        let response = put_day(app, &admin, "2026-11-11", body.clone()).await;
        assert_eq!(pointers(response).await, ["/kind"], "{body}");
    }
    // Bad date and bad kind together: both named.
    let response = put_day(app, &admin, "2026-02-30", json!({})).await;
    assert_eq!(pointers(response).await, ["date", "/kind"]);
    // Members the body does not have, or a kind that is not a string.
    for body in [
        json!({"kind": "holiday", "reason": "x"}),
        json!({"kind": 1}),
    ] {
        let response = put_day(app, &admin, "2026-11-11", body).await;
        assert_eq!(problem(response, 422).await["code"], "validation_failed");
    }
    let response = app
        .client
        .put(app.url("/api/v1/calendars/cn-beijing/days/2026-11-11"))
        .bearer_auth(&admin)
        .json(&holiday)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response, 404).await["code"], "not_found");
    let response = app
        .client
        .delete(app.url("/api/v1/calendars/cn-beijing/days/2026-11-11"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response, 404).await["code"], "not_found");

    // Nothing was stored or audited.
    assert_eq!(verified_count(app).await, before);
    assert!(calendar_events(app).is_empty());
    assert_eq!(
        due(app, "2026-11-10T10:00:00+08:00", 1, "working_days").await,
        "2026-11-11T17:00:00+08:00"
    );
}

async fn running_clocks_follow_a_change_at_once(app: &TestApp) {
    let response = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(app.enterprise_token())
        .json(&matter_body("tax.registration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let clock = |body: &Value| -> (String, String) {
        let clock = body["clocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["state"] == "running" && c["target"].as_str().unwrap().ends_with("working_days")
            })
            .unwrap_or_else(|| panic!("no running clock counted in working days: {body}"));
        (
            clock["id"].as_str().unwrap().to_string(),
            clock["due_at"].as_str().unwrap().to_string(),
        )
    };
    let read = || async {
        let response = app
            .get(&format!("/api/v1/requests/{id}"), Some(&app.admin_token()))
            .await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    };
    let (clock_id, due_before) = clock(&read().await);
    // Its due date, in Shanghai, becomes a holiday: the clock moves to a later close.
    let due = chrono::DateTime::parse_from_rfc3339(&due_before)
        .unwrap()
        .with_timezone(&chrono_tz::Asia::Shanghai);
    let date = due.format("%Y-%m-%d").to_string();
    let body =
        stored(put_day(app, &app.admin_token(), &date, json!({"kind": "holiday"})).await).await;
    assert!(body["clocks_moved"].as_u64().unwrap() >= 1, "{body}");
    let after = read().await;
    let moved = after["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == clock_id.as_str())
        .unwrap();
    let due_after = moved["due_at"].as_str().unwrap();
    assert!(
        due_after > due_before.as_str(),
        "{due_before} -> {due_after}"
    );
    // Removing the holiday brings it back.
    let body = stored(delete_day(app, &app.admin_token(), &date).await).await;
    assert!(body["clocks_moved"].as_u64().unwrap() >= 1, "{body}");
    let back = read().await;
    let (_, due_back) = clock(&back);
    assert_eq!(due_back, due_before);
    // The moves are in the chain too, and it still verifies.
    verified_count(app).await;
}

async fn a_change_through_one_instance_is_seen_by_another(app: &TestApp) {
    let other = start(test_settings(&app.settings.database.url), None, None).await;
    let start_at = "2026-11-10T10:00:00+08:00";
    assert_eq!(
        due(&other, start_at, 1, "working_days").await,
        "2026-11-11T17:00:00+08:00"
    );
    stored(
        put_day(
            app,
            &app.admin_token(),
            "2026-11-11",
            json!({"kind": "holiday"}),
        )
        .await,
    )
    .await;
    // The other instance re-reads the stored days on its next calendar read.
    assert_eq!(
        due(&other, start_at, 1, "working_days").await,
        "2026-11-12T17:00:00+08:00"
    );
    assert!(
        days(&other, "2026")
            .await
            .contains(&("2026-11-11".into(), "holiday".into()))
    );
    // A change through the other instance is seen here.
    stored(delete_day(&other, &other.admin_token(), "2026-11-11").await).await;
    assert_eq!(
        due(app, start_at, 1, "working_days").await,
        "2026-11-11T17:00:00+08:00"
    );
    // A third instance started now begins with the stored days.
    stored(delete_day(app, &app.admin_token(), "2026-10-02").await).await;
    let third = start(test_settings(&app.settings.database.url), None, None).await;
    assert_eq!(
        due(&third, "2026-09-30T10:00:00+08:00", 1, "working_days").await,
        "2026-10-02T17:00:00+08:00"
    );
}

on_both_backends!(
    list_and_read,
    working_days_skip_the_holiday_and_count_the_makeup_saturday,
    working_minutes_follow_service_hours,
    minutes_are_wall_clock,
    bad_parameters_are_422_naming_the_field,
    an_unreachable_deadline_is_422,
    an_added_holiday_moves_deadlines_and_removing_it_moves_them_back,
    removing_a_file_holiday_makes_it_a_working_day,
    day_changes_are_for_administrators_with_valid_input,
    running_clocks_follow_a_change_at_once,
    a_change_through_one_instance_is_seen_by_another,
);
