//! The supervisors' SLA API (breaches, at-risk, stats) and its client commands, on both
//! backends.
//!
//! Requests are made through the API; their clocks are then put into the states a test needs
//! by updating the `clocks` rows directly (these tests check the queries, not the engine).
//! Every shaped clock gets `check_at = NULL`, so the detection worker leaves it alone.

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, NaiveDateTime, SubsecRound, TimeDelta, Utc};
use diesel::prelude::*;
use mashangban::auth::Actor;
use mashangban::db::schema::{
    clock_rollup_months, clock_rollups, clocks, rating_rollup_months, rating_rollups, ratings,
};
use mashangban::db::{rollups, sla, write_transaction};
use mashangban::domain::UnitCode;
use serde_json::Value;

use mashangban::db::DbConnection;
use mashangban::db::clocks::{ClockStep, Which, from_row, on_step, stop_kinds, to_row};
use mashangban::db::ratings::{NewRating, RatingRow, rate};
use mashangban::db::requests::ClockRow;
use mashangban::domain::calendar::Calendar;
use mashangban::domain::clock::{Clock, Rules};
use mashangban::domain::handling_time;
use mashangban::domain::lifecycle::Action;
use mashangban::domain::request::ClockKind;

use crate::helpers::{TestApp, connect, problem};
use crate::on_both_backends;
use crate::requests::matter_body;

/// What a test wants one clock to be.
#[derive(Debug, Clone)]
struct Shape {
    kind: &'static str,
    unit: &'static str,
    matter: &'static str,
    target: &'static str,
    state: &'static str,
    due_at: Option<NaiveDateTime>,
    breached_at: Option<NaiveDateTime>,
    stopped_at: Option<NaiveDateTime>,
    worked_minutes: Option<i64>,
    lost_to_unit: Option<&'static str>,
    lost_minutes: i64,
}

impl Shape {
    fn new(
        unit: &'static str,
        matter: &'static str,
        kind: &'static str,
        state: &'static str,
    ) -> Self {
        Self {
            kind,
            unit,
            matter,
            target: "20 working_days",
            state,
            due_at: None,
            breached_at: None,
            stopped_at: None,
            worked_minutes: None,
            lost_to_unit: None,
            lost_minutes: 0,
        }
    }

    fn due(mut self, at: NaiveDateTime) -> Self {
        self.due_at = Some(at);
        self
    }

    fn breached(mut self, at: NaiveDateTime) -> Self {
        self.breached_at = Some(at);
        self
    }

    fn stopped(mut self, at: NaiveDateTime, worked: Option<i64>) -> Self {
        self.stopped_at = Some(at);
        self.worked_minutes = worked;
        self
    }

    fn lost(mut self, unit: &'static str, minutes: i64) -> Self {
        self.lost_to_unit = Some(unit);
        self.lost_minutes = minutes;
        self
    }

    fn target(mut self, target: &'static str) -> Self {
        self.target = target;
        self
    }
}

/// A shaped clock: its id, its request's id and number.
#[derive(Debug, Clone)]
struct Made {
    clock: String,
    request: String,
    number: String,
}

fn now() -> NaiveDateTime {
    Utc::now().trunc_subsecs(6).naive_utc()
}

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

/// Submits one request of `matter` and turns its first clock into `shape`; its other clocks
/// become pending with no times, so that they appear in no list.
async fn make(app: &TestApp, matter: &str, shape: Shape) -> Made {
    let response = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(app.enterprise_token())
        .json(&matter_body(matter))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let request = body["id"].as_str().unwrap().to_string();
    let number = body["number"].as_str().unwrap().to_string();
    let mut conn = connect(app);
    let ids: Vec<String> = clocks::table
        .filter(clocks::request_id.eq(&request))
        .order(clocks::id)
        .select(clocks::id)
        .load(&mut conn)
        .unwrap();
    assert!(!ids.is_empty(), "{matter} has clocks");
    let none: Option<NaiveDateTime> = None;
    diesel::update(clocks::table.filter(clocks::request_id.eq(&request)))
        .set((
            clocks::state.eq("pending"),
            clocks::due_at.eq(none),
            clocks::warn_at.eq(none),
            clocks::check_at.eq(none),
            clocks::breached_at.eq(none),
            clocks::stopped_at.eq(none),
            clocks::paused_at.eq(none),
        ))
        .execute(&mut conn)
        .unwrap();
    let changed = diesel::update(clocks::table.filter(clocks::id.eq(&ids[0])))
        .set((
            clocks::kind.eq(shape.kind),
            clocks::unit.eq(shape.unit),
            clocks::matter.eq(shape.matter),
            clocks::target.eq(shape.target),
            clocks::state.eq(shape.state),
            clocks::started_at.eq(Some(now() - TimeDelta::days(40))),
            clocks::due_at.eq(shape.due_at),
            clocks::breached_at.eq(shape.breached_at),
            clocks::stopped_at.eq(shape.stopped_at),
            clocks::check_at.eq(none),
            clocks::worked_minutes.eq(shape.worked_minutes),
            clocks::lost_to_unit.eq(shape.lost_to_unit),
            clocks::lost_minutes.eq(shape.lost_minutes),
        ))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(changed, 1);
    Made {
        clock: ids[0].clone(),
        request,
        number,
    }
}

async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    let response = app.get(path, Some(token)).await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn clock_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["clock_id"].as_str().unwrap().to_string())
        .collect()
}

fn ids(made: &[&Made]) -> Vec<String> {
    made.iter().map(|m| m.clock.clone()).collect()
}

/// The pointers named by a 422.
async fn invalid(app: &TestApp, path: &str, token: &str) -> Vec<String> {
    let body = problem(app.get(path, Some(token)).await, 422).await;
    assert_eq!(body["code"], "validation_failed", "{path}: {body}");
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_string())
        .collect()
}

/// An RFC 4180 reader: quoted fields with doubled quotes, commas and line breaks inside.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => {
                assert!(c != '\n', "bare LF in CSV: {text:?}");
                field.push(c);
            }
        }
    }
    assert!(field.is_empty() && row.is_empty(), "CSV ends with CRLF");
    rows
}

/// The breach fixture: four breaches in two units, and a clock met in time.
struct Breaches {
    /// tax, promised, open, breached 3 h ago; its target has a comma and quotes.
    open_tax: Made,
    /// tax, statutory, breached 2 days ago, stopped a day later; time lost to market.
    stopped_tax: Made,
    /// market, promised, open, breached 1 h ago.
    open_market: Made,
    /// market, window intake, breached 10 days ago and stopped.
    stopped_market: Made,
}

async fn breach_fixture(app: &TestApp) -> Breaches {
    let t = now();
    let open_tax = make(
        app,
        "tax.registration",
        Shape::new("tax", "tax.registration", "promised", "breached")
            .target("210 working_minutes, \"half a day\"")
            .due(t - minutes(180))
            .breached(t - minutes(180)),
    )
    .await;
    let stopped_tax = make(
        app,
        "tax.registration",
        Shape::new("tax", "tax.registration", "statutory", "breached")
            .due(t - TimeDelta::days(2))
            .breached(t - TimeDelta::days(2) + minutes(1))
            .stopped(t - TimeDelta::days(1), Some(9_000))
            .lost("market", 30),
    )
    .await;
    make(
        app,
        "tax.registration",
        Shape::new("tax", "tax.registration", "promised", "met")
            .due(t - TimeDelta::days(1))
            .stopped(t - TimeDelta::days(2), Some(100)),
    )
    .await;
    let open_market = make(
        app,
        "market.establish",
        Shape::new("market", "market.establish", "promised", "breached")
            .due(t - minutes(60))
            .breached(t - minutes(60)),
    )
    .await;
    let stopped_market = make(
        app,
        "market.establish",
        Shape::new("market", "market.establish", "window_intake", "breached")
            .target("PT20M")
            .due(t - TimeDelta::days(10))
            .breached(t - TimeDelta::days(10))
            .stopped(t - TimeDelta::days(10) + minutes(45), Some(65)),
    )
    .await;
    Breaches {
        open_tax,
        stopped_tax,
        open_market,
        stopped_market,
    }
}

async fn breaches_are_listed_filtered_and_scoped(app: &TestApp) {
    let f = breach_fixture(app).await;
    let admin = app.admin_token();
    let all = get_json(app, "/api/v1/sla/breaches", &admin).await;
    assert_eq!(all["total"], 4, "{all}");
    assert_eq!(all["total_capped"], false, "{all}");
    // Newest breach first; the clock met in time is not a breach.
    assert_eq!(
        clock_ids(&all),
        ids(&[
            &f.open_market,
            &f.open_tax,
            &f.stopped_tax,
            &f.stopped_market
        ])
    );
    assert!(all.get("next_cursor").is_none(), "{all}");

    let open_tax = &all["items"][1];
    assert_eq!(open_tax["request_id"], f.open_tax.request.as_str());
    assert_eq!(open_tax["number"], f.open_tax.number.as_str());
    assert_eq!(open_tax["kind"], "promised");
    assert_eq!(open_tax["state"], "breached");
    assert_eq!(open_tax["unit"], "tax");
    assert_eq!(open_tax["matter"], "tax.registration");
    assert_eq!(open_tax["open"], true);
    assert!(open_tax["stopped_at"].is_null(), "{open_tax}");
    let overdue = open_tax["overdue_minutes"].as_i64().unwrap();
    assert!((180..=181).contains(&overdue), "{open_tax}");
    assert!(open_tax["overdue_working_minutes"].as_i64().unwrap() <= overdue);

    let stopped_tax = &all["items"][2];
    assert_eq!(stopped_tax["number"], f.stopped_tax.number.as_str());
    assert_eq!(stopped_tax["open"], false);
    // Stopped a day after it fell due: overdue by exactly 1,440 wall-clock minutes.
    assert_eq!(stopped_tax["overdue_minutes"], 1_440);
    assert_eq!(stopped_tax["lost_to_unit"], "market");
    assert_eq!(stopped_tax["lost_minutes"], 30);
    assert_eq!(all["items"][3]["overdue_minutes"], 45);

    let t = now();
    let day_ago = url_time(t - TimeDelta::days(1));
    for (query, expected) in [
        ("unit=tax", ids(&[&f.open_tax, &f.stopped_tax])),
        (
            "matter=market.establish",
            ids(&[&f.open_market, &f.stopped_market]),
        ),
        ("kind=promised", ids(&[&f.open_market, &f.open_tax])),
        ("kind=statutory", ids(&[&f.stopped_tax])),
        ("open=true", ids(&[&f.open_market, &f.open_tax])),
        ("open=false", ids(&[&f.stopped_tax, &f.stopped_market])),
        (
            &format!("from={day_ago}"),
            ids(&[&f.open_market, &f.open_tax]),
        ),
        (
            &format!("to={day_ago}"),
            ids(&[&f.stopped_tax, &f.stopped_market]),
        ),
        (
            &format!("from={}&to={day_ago}", url_time(t - TimeDelta::days(3))),
            ids(&[&f.stopped_tax]),
        ),
        ("unit=market&open=false", ids(&[&f.stopped_market])),
        ("unit=justice", vec![]),
        (
            "matter=",
            ids(&[
                &f.open_market,
                &f.open_tax,
                &f.stopped_tax,
                &f.stopped_market,
            ]),
        ),
    ] {
        let page = get_json(app, &format!("/api/v1/sla/breaches?{query}"), &admin).await;
        assert_eq!(clock_ids(&page), expected, "{query}: {page}");
        assert_eq!(page["total"], expected.len() as i64, "{query}");
    }

    // A unit supervisor sees their unit's clocks only, and may not ask for another unit's.
    let tax_head = app.token(Actor::Supervisor(Some(UnitCode::Tax)));
    let theirs = get_json(app, "/api/v1/sla/breaches", &tax_head).await;
    assert_eq!(clock_ids(&theirs), ids(&[&f.open_tax, &f.stopped_tax]));
    assert_eq!(theirs["total"], 2);
    let same = get_json(app, "/api/v1/sla/breaches?unit=tax&open=true", &tax_head).await;
    assert_eq!(clock_ids(&same), ids(&[&f.open_tax]));
    let refused = app
        .get("/api/v1/sla/breaches?unit=market", Some(&tax_head))
        .await;
    assert_eq!(problem(refused, 403).await["code"], "forbidden");
    let market_head = app.token(Actor::Supervisor(Some(UnitCode::Market)));
    let theirs = get_json(app, "/api/v1/sla/breaches", &market_head).await;
    assert_eq!(
        clock_ids(&theirs),
        ids(&[&f.open_market, &f.stopped_market])
    );
    // The district supervisor sees every unit.
    let district = app.token(Actor::Supervisor(None));
    let everything = get_json(app, "/api/v1/sla/breaches", &district).await;
    assert_eq!(everything["total"], 4);
}

/// A time for a query string (`+` would be read as a space).
fn url_time(t: NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn breaches_page_with_a_cursor_and_a_total(app: &TestApp) {
    let f = breach_fixture(app).await;
    let admin = app.admin_token();
    let mut seen = Vec::new();
    let mut path = "/api/v1/sla/breaches?limit=1".to_string();
    for _ in 0..10 {
        let page = get_json(app, &path, &admin).await;
        assert_eq!(page["total"], 4, "{page}");
        seen.extend(clock_ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/sla/breaches?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ids(&[
            &f.open_market,
            &f.open_tax,
            &f.stopped_tax,
            &f.stopped_market
        ])
    );
    // Pages keep their filters.
    let first = get_json(app, "/api/v1/sla/breaches?unit=tax&limit=1", &admin).await;
    assert_eq!(clock_ids(&first), ids(&[&f.open_tax]));
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = get_json(
        app,
        &format!("/api/v1/sla/breaches?unit=tax&limit=1&cursor={cursor}"),
        &admin,
    )
    .await;
    assert_eq!(clock_ids(&second), ids(&[&f.stopped_tax]));
    assert_eq!(second["total"], 2);
}

async fn breaches_export_as_csv(app: &TestApp) {
    let f = breach_fixture(app).await;
    let admin = app.admin_token();
    let response = app
        .client
        .get(app.url("/api/v1/sla/breaches?limit=1"))
        .bearer_auth(&admin)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(header("x-total-count").as_deref(), Some("4"));
    assert!(header("link").is_none(), "everything fits in one part");
    let text = response.text().await.unwrap();
    let rows = parse_csv(&text);
    assert_eq!(
        rows[0],
        [
            "clock_id",
            "request_id",
            "number",
            "kind",
            "state",
            "unit",
            "matter",
            "target",
            "due_at",
            "breached_at",
            "stopped_at",
            "open",
            "overdue_minutes",
            "overdue_working_minutes",
            "lost_to_unit",
            "lost_minutes",
            "provisional",
        ]
    );
    // All rows, not a page (`limit` is for JSON), in the JSON order.
    let json = get_json(app, "/api/v1/sla/breaches", &admin).await;
    assert_eq!(rows.len(), 5, "{text}");
    let column = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    let in_csv: Vec<String> = rows[1..]
        .iter()
        .map(|r| r[column("clock_id")].clone())
        .collect();
    assert_eq!(in_csv, clock_ids(&json));
    // Each row says what the JSON says.
    for (row, item) in rows[1..].iter().zip(json["items"].as_array().unwrap()) {
        for name in [
            "request_id",
            "number",
            "kind",
            "state",
            "unit",
            "matter",
            "target",
        ] {
            assert_eq!(row[column(name)], item[name].as_str().unwrap(), "{name}");
        }
        for name in ["due_at", "breached_at", "stopped_at"] {
            let csv = &row[column(name)];
            match item[name].as_str() {
                Some(t) => assert_eq!(
                    DateTime::parse_from_rfc3339(csv).unwrap(),
                    DateTime::parse_from_rfc3339(t).unwrap(),
                    "{name}"
                ),
                None => assert_eq!(csv, "", "{name}"),
            }
        }
        assert_eq!(row[column("open")], item["open"].to_string());
        assert_eq!(row[column("provisional")], item["provisional"].to_string());
        assert_eq!(
            row[column("lost_minutes")],
            item["lost_minutes"].to_string()
        );
        assert_eq!(
            row[column("lost_to_unit")],
            item["lost_to_unit"].as_str().unwrap_or("")
        );
    }
    // The target with a comma and quotes came back whole.
    let open_tax = rows.iter().find(|r| r[0] == f.open_tax.clock).unwrap();
    assert_eq!(
        open_tax[column("target")],
        "210 working_minutes, \"half a day\""
    );
    assert!(
        text.contains(",\"210 working_minutes, \"\"half a day\"\"\","),
        "{text}"
    );

    // Filters and scoping apply to the export too.
    let tax_head = app.token(Actor::Supervisor(Some(UnitCode::Tax)));
    let response = app
        .client
        .get(app.url("/api/v1/sla/breaches?open=false"))
        .bearer_auth(&tax_head)
        .header("Accept", "text/csv, application/json;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-total-count"], "1");
    let rows = parse_csv(&response.text().await.unwrap());
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][0], f.stopped_tax.clock);
    assert_eq!(rows[1][column("overdue_minutes")], "1440");

    // JSON stays the default, and wins when preferred.
    for accept in [
        "application/json",
        "*/*",
        "application/json, text/csv;q=0.9",
        "text/csv;q=0, */*",
    ] {
        let response = app
            .client
            .get(app.url("/api/v1/sla/breaches"))
            .bearer_auth(&admin)
            .header("Accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{accept}"
        );
    }
}

async fn at_risk_lists_clocks_due_soon_by_remaining_time(app: &TestApp) {
    let t = now();
    let running = |unit, matter, due| Shape::new(unit, matter, "promised", "running").due(due);
    let in_90 = make(
        app,
        "tax.registration",
        running("tax", "tax.registration", t + minutes(90)),
    )
    .await;
    let in_30 = make(
        app,
        "tax.registration",
        running("tax", "tax.registration", t + minutes(30)),
    )
    .await;
    let in_180 = make(
        app,
        "tax.registration",
        running("tax", "tax.registration", t + minutes(180)),
    )
    .await;
    let market_60 = make(
        app,
        "market.establish",
        running("market", "market.establish", t + minutes(60)),
    )
    .await;
    // Not at risk: overdue already, paused, stopped.
    make(
        app,
        "tax.registration",
        running("tax", "tax.registration", t - minutes(10)),
    )
    .await;
    make(
        app,
        "tax.registration",
        Shape::new("tax", "tax.registration", "promised", "paused").due(t + minutes(20)),
    )
    .await;
    make(
        app,
        "tax.registration",
        Shape::new("tax", "tax.registration", "promised", "running")
            .due(t + minutes(25))
            .stopped(t, Some(5)),
    )
    .await;

    let admin = app.admin_token();
    let page = get_json(app, "/api/v1/sla/at-risk", &admin).await;
    assert_eq!(page["within"], "PT2H");
    assert_eq!(page["total"], 3, "{page}");
    assert_eq!(page["total_capped"], false, "{page}");
    assert_eq!(clock_ids(&page), ids(&[&in_30, &market_60, &in_90]));
    let first = &page["items"][0];
    assert_eq!(first["number"], in_30.number.as_str());
    assert_eq!(first["request_id"], in_30.request.as_str());
    assert_eq!(first["kind"], "promised");
    let left = first["remaining_minutes"].as_i64().unwrap();
    assert!((29..=30).contains(&left), "{first}");
    assert!(first["remaining_working_minutes"].as_i64().unwrap() <= 30);

    let wider = get_json(app, "/api/v1/sla/at-risk?within=PT4H", &admin).await;
    assert_eq!(
        clock_ids(&wider),
        ids(&[&in_30, &market_60, &in_90, &in_180])
    );
    let narrow = get_json(app, "/api/v1/sla/at-risk?within=PT45M", &admin).await;
    assert_eq!(clock_ids(&narrow), ids(&[&in_30]));
    let by_kind = get_json(app, "/api/v1/sla/at-risk?kind=statutory", &admin).await;
    assert_eq!(by_kind["total"], 0);

    let tax_head = app.token(Actor::Supervisor(Some(UnitCode::Tax)));
    let theirs = get_json(app, "/api/v1/sla/at-risk?within=P1D", &tax_head).await;
    assert_eq!(clock_ids(&theirs), ids(&[&in_30, &in_90, &in_180]));
    let refused = app
        .get("/api/v1/sla/at-risk?unit=market", Some(&tax_head))
        .await;
    assert_eq!(problem(refused, 403).await["code"], "forbidden");

    // Pages in remaining-time order, with the total on each.
    let mut seen = Vec::new();
    let mut path = "/api/v1/sla/at-risk?within=PT4H&limit=2".to_string();
    for _ in 0..5 {
        let page = get_json(app, &path, &admin).await;
        assert_eq!(page["total"], 4);
        seen.extend(clock_ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/sla/at-risk?within=PT4H&limit=2&cursor={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(seen, ids(&[&in_30, &market_60, &in_90, &in_180]));

    for bad in [
        "2H", "PT", "P1M", "P1Y", "PT0S", "P32D", "PT1.5H", "", "-PT1H",
    ] {
        let pointers = invalid(app, &format!("/api/v1/sla/at-risk?within={bad}"), &admin).await;
        assert_eq!(pointers, ["within"], "{bad}");
    }
}

async fn stats_count_met_breached_and_open_overdue(app: &TestApp) {
    let t = now();
    let day = TimeDelta::days(1);
    let tax = |kind, state| Shape::new("tax", "tax.registration", kind, state);
    // In the period (the last 10 days):
    make(
        app,
        "tax.registration",
        tax("promised", "met").due(t).stopped(t - day, Some(30)),
    )
    .await;
    make(
        app,
        "tax.registration",
        tax("promised", "met")
            .due(t)
            .stopped(t - day * 2, Some(10))
            .lost("market", 5),
    )
    .await;
    make(
        app,
        "tax.registration",
        tax("promised", "breached")
            .due(t - day * 4)
            .breached(t - day * 4)
            .stopped(t - day * 3, Some(90)),
    )
    .await;
    make(
        app,
        "tax.registration",
        tax("promised", "cancelled").stopped(t - day, None),
    )
    .await;
    // Open and overdue: marked, and not marked yet.
    make(
        app,
        "tax.registration",
        tax("promised", "breached")
            .due(t - minutes(120))
            .breached(t - minutes(120))
            .lost("market", 7),
    )
    .await;
    make(
        app,
        "tax.registration",
        tax("promised", "running").due(t - minutes(60)),
    )
    .await;
    make(
        app,
        "tax.registration",
        Shape::new("tax", "tax.other", "promised", "met").stopped(t - day, Some(50)),
    )
    .await;
    make(
        app,
        "market.establish",
        Shape::new("market", "market.establish", "statutory", "breached")
            .due(t - day * 2)
            .breached(t - day * 2)
            .stopped(t - day, Some(200)),
    )
    .await;
    // Not counted: stopped before the period, running and not yet due, paused past due.
    make(
        app,
        "tax.registration",
        tax("promised", "met").stopped(t - day * 20, Some(5)),
    )
    .await;
    make(
        app,
        "tax.registration",
        tax("promised", "running").due(t + minutes(60)),
    )
    .await;
    make(
        app,
        "tax.registration",
        tax("promised", "paused").due(t - minutes(30)),
    )
    .await;

    // The clocks were shaped behind the engine's back: the rollups learn them as after an
    // upgrade.
    rollups::rebuild(&mut connect(app)).unwrap();

    let admin = app.admin_token();
    let period = format!(
        "from={}&to={}",
        url_time(t - day * 10),
        url_time(t + minutes(1))
    );
    let stats = get_json(
        app,
        &format!("/api/v1/sla/stats?group_by=unit&{period}"),
        &admin,
    )
    .await;
    assert_eq!(stats["group_by"], "unit");
    assert!(
        stats["unit"].is_null() && stats["kind"].is_null(),
        "{stats}"
    );
    let groups = stats["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{stats}");
    // tax: stopped met 30, met 10, breached 90, cancelled, met 50 (tax.other), and two open
    // overdue. Handling times sorted: 10, 30, 50, 90 (nearest rank: median 2nd, p95 4th).
    let tax = &groups[1];
    assert_eq!(tax["key"], "tax");
    assert_eq!(tax["counted"], 7, "{tax}");
    assert_eq!(tax["met"], 3);
    assert_eq!(tax["breached"], 3);
    assert_eq!(tax["open_overdue"], 2);
    assert_eq!(tax["cancelled"], 1);
    assert_eq!(tax["on_time_rate"], 0.5);
    assert_eq!(tax["median_worked_minutes"], 30);
    assert_eq!(tax["p95_worked_minutes"], 90);
    assert_eq!(tax["lost_minutes"], 12);
    let market = &groups[0];
    assert_eq!(market["key"], "market");
    assert_eq!(market["counted"], 1);
    assert_eq!(market["met"], 0);
    assert_eq!(market["breached"], 1);
    assert_eq!(market["on_time_rate"], 0.0);
    assert_eq!(market["median_worked_minutes"], 200);
    assert_eq!(market["p95_worked_minutes"], 200);
    let all = &stats["overall"];
    assert_eq!(all["counted"], 8);
    assert_eq!(all["met"], 3);
    assert_eq!(all["breached"], 4);
    assert_eq!(all["open_overdue"], 2);
    assert_eq!(all["on_time_rate"], 3.0 / 7.0);
    // 10, 30, 50, 90, 200: median the 3rd, p95 the 5th.
    assert_eq!(all["median_worked_minutes"], 50);
    assert_eq!(all["p95_worked_minutes"], 200);
    assert_eq!(all["lost_minutes"], 12);

    let by_matter = get_json(
        app,
        &format!("/api/v1/sla/stats?group_by=matter&{period}"),
        &admin,
    )
    .await;
    let keys: Vec<&str> = by_matter["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["market.establish", "tax.other", "tax.registration"]);
    let registration = &by_matter["groups"][2];
    assert_eq!(registration["counted"], 6);
    assert_eq!(registration["met"], 2);
    assert_eq!(registration["breached"], 3);
    assert_eq!(registration["on_time_rate"], 0.4);
    assert_eq!(registration["median_worked_minutes"], 30);
    assert_eq!(registration["p95_worked_minutes"], 90);
    let other = &by_matter["groups"][1];
    assert_eq!(other["on_time_rate"], 1.0);
    assert_eq!(other["median_worked_minutes"], 50);

    // The kind filter.
    let statutory = get_json(
        app,
        &format!("/api/v1/sla/stats?kind=statutory&{period}"),
        &admin,
    )
    .await;
    assert_eq!(statutory["kind"], "statutory");
    assert_eq!(statutory["groups"].as_array().unwrap().len(), 1);
    assert_eq!(statutory["groups"][0]["key"], "market");

    // A shorter period: only what stopped (or fell overdue) in the last 36 hours.
    let recent = get_json(
        app,
        &format!(
            "/api/v1/sla/stats?from={}&to={}",
            url_time(t - TimeDelta::hours(36)),
            url_time(t + minutes(1))
        ),
        &admin,
    )
    .await;
    let all = &recent["overall"];
    // met 30, cancelled, met 50, market breached 200, two open overdue.
    assert_eq!(all["counted"], 6, "{recent}");
    assert_eq!(all["met"], 2);
    assert_eq!(all["breached"], 3);

    // A unit supervisor gets their unit only; the default period is the last 30 days.
    let tax_head = app.token(Actor::Supervisor(Some(UnitCode::Tax)));
    let theirs = get_json(app, "/api/v1/sla/stats", &tax_head).await;
    assert_eq!(theirs["unit"], "tax");
    assert_eq!(theirs["group_by"], "unit");
    let groups = theirs["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["key"], "tax");
    // 30 days: the one stopped 20 days ago counts too.
    assert_eq!(groups[0]["counted"], 8);
    let from = DateTime::parse_from_rfc3339(theirs["from"].as_str().unwrap()).unwrap();
    let to = DateTime::parse_from_rfc3339(theirs["to"].as_str().unwrap()).unwrap();
    assert_eq!(to - from, TimeDelta::days(30));

    // Nothing in a period: no groups, null rates.
    let empty = get_json(
        app,
        "/api/v1/sla/stats?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z",
        &admin,
    )
    .await;
    assert_eq!(empty["groups"], serde_json::json!([]));
    assert!(empty["overall"]["on_time_rate"].is_null(), "{empty}");
    assert!(
        empty["overall"]["median_worked_minutes"].is_null(),
        "{empty}"
    );
}

async fn only_supervisors_and_admins_and_bad_parameters_are_named(app: &TestApp) {
    for path in [
        "/api/v1/sla/breaches",
        "/api/v1/sla/at-risk",
        "/api/v1/sla/stats",
    ] {
        for token in [
            app.enterprise_token(),
            app.clerk_token(UnitCode::Tax),
            app.clerk_token(UnitCode::ServiceCenter),
        ] {
            let response = app.get(path, Some(&token)).await;
            assert_eq!(problem(response, 403).await["code"], "forbidden", "{path}");
        }
        let response = app.get(path, None).await;
        assert_eq!(response.status(), 401, "{path}");
        for token in [
            app.admin_token(),
            app.token(Actor::Supervisor(None)),
            app.token(Actor::Supervisor(Some(UnitCode::Housing))),
        ] {
            assert_eq!(app.get(path, Some(&token)).await.status(), 200, "{path}");
        }
    }
    let admin = app.admin_token();
    let mut pointers = invalid(
        app,
        "/api/v1/sla/breaches?unit=police&kind=overtime&from=yesterday&to=2026-13-01T00:00:00Z\
         &open=maybe&cursor=zzz&limit=0",
        &admin,
    )
    .await;
    pointers.sort();
    assert_eq!(
        pointers,
        ["cursor", "from", "kind", "limit", "open", "to", "unit"]
    );
    assert_eq!(
        invalid(
            app,
            "/api/v1/sla/breaches?from=2026-11-28T00:00:00Z&to=2026-11-27T00:00:00Z",
            &admin
        )
        .await,
        ["to"]
    );
    assert_eq!(
        invalid(app, "/api/v1/sla/breaches?limit=101", &admin).await,
        ["limit"]
    );
    let mut pointers = invalid(
        app,
        "/api/v1/sla/at-risk?within=soon&unit=x&kind=y&limit=abc&cursor=1_2",
        &admin,
    )
    .await;
    pointers.sort();
    assert_eq!(pointers, ["cursor", "kind", "limit", "unit", "within"]);
    let mut pointers = invalid(
        app,
        "/api/v1/sla/stats?group_by=team&from=1&to=2&kind=z",
        &admin,
    )
    .await;
    pointers.sort();
    assert_eq!(pointers, ["from", "group_by", "kind", "to"]);
    assert_eq!(
        invalid(
            app,
            "/api/v1/sla/stats?from=2026-11-28T00:00:00Z&to=2026-11-28T00:00:00Z",
            &admin
        )
        .await,
        ["to"]
    );
    // A `to` in the past with no `from` has its 30 days before it; a `from` in the future
    // with no `to` is after now.
    assert_eq!(
        invalid(app, "/api/v1/sla/stats?from=2999-01-01T00:00:00Z", &admin).await,
        ["to"]
    );
}

on_both_backends!(
    breaches_are_listed_filtered_and_scoped,
    breaches_page_with_a_cursor_and_a_total,
    breaches_export_as_csv,
    at_risk_lists_clocks_due_soon_by_remaining_time,
    stats_count_met_breached_and_open_overdue,
    stats_from_rollups_equal_a_full_recomputation,
    only_supervisors_and_admins_and_bad_parameters_are_named,
    the_client_commands_for_supervisors,
    a_large_export_comes_in_parts,
);

/// More breaches than one CSV answer holds (10,000): the rest follows the `Link` header, and
/// the client follows it too.
async fn a_large_export_comes_in_parts(app: &TestApp) {
    let t = now();
    let first = make(
        app,
        "tax.registration",
        Shape::new("hrss", "hrss.social-insurance", "promised", "breached")
            .due(t - minutes(5))
            .breached(t),
    )
    .await;
    let mut conn = connect(app);
    let rows: Vec<_> = (1..=10_000i64)
        .map(|i| {
            let at = t - TimeDelta::seconds(i);
            (
                clocks::id.eq(uuid::Uuid::now_v7().to_string()),
                clocks::request_id.eq(first.request.clone()),
                clocks::kind.eq("promised"),
                clocks::target.eq("PT2H"),
                clocks::state.eq("breached"),
                clocks::unit.eq("hrss"),
                clocks::matter.eq("hrss.social-insurance"),
                clocks::due_at.eq(Some(at)),
                clocks::breached_at.eq(Some(at)),
            )
        })
        .collect();
    // MultiConnection has no batch insert: one row at a time, in one transaction.
    conn.transaction(|conn| {
        for row in rows {
            diesel::insert_into(clocks::table)
                .values(row)
                .execute(conn)?;
        }
        diesel::QueryResult::Ok(())
    })
    .unwrap();
    let admin = app.admin_token();
    let csv = |path: String| {
        let request = app
            .client
            .get(app.url(&path))
            .bearer_auth(&admin)
            .header("Accept", "text/csv");
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["x-total-count"], "10001");
            let link = response
                .headers()
                .get("link")
                .map(|v| v.to_str().unwrap().to_string());
            (parse_csv(&response.text().await.unwrap()), link)
        }
    };
    let (part, link) = csv("/api/v1/sla/breaches?unit=hrss&limit=5".into()).await;
    assert_eq!(part.len(), 10_001, "the header and 10,000 rows");
    let link = link.expect("a Link to the rest");
    let target = link
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix(">; rel=\"next\""))
        .unwrap_or_else(|| panic!("{link}"));
    assert!(
        target.starts_with("/api/v1/sla/breaches?unit=hrss&limit=5&cursor="),
        "{target}"
    );
    let (rest, none) = csv(target.to_string()).await;
    assert!(none.is_none());
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0], part[0]);
    let mut all: Vec<&String> = part[1..].iter().chain(&rest[1..]).map(|r| &r[0]).collect();
    assert_eq!(all[0], &first.clock, "newest first");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 10_001);

    // A page counts up to 1,000 and says there are more; the CSV export said the exact count.
    let page = get_json(app, "/api/v1/sla/breaches?unit=hrss&limit=100", &admin).await;
    assert_eq!(page["total"], 1000);
    assert_eq!(page["total_capped"], true);
    assert_eq!(page["items"].as_array().unwrap().len(), 100);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("client.toml");
    ok(
        &config,
        &["login", "--server", &app.address, "--token", &admin],
    )
    .await;
    let out = ok(&config, &["breaches", "--csv", "--unit", "hrss"]).await;
    let rows = parse_csv(&out);
    assert_eq!(rows.len(), 10_002, "one header and every breach");
    assert_eq!(rows[0][0], "clock_id");
    assert_eq!(rows[10_001][0], rest[1][0]);
}

/// The binary's `client` with its own login file and nothing from the environment.
fn client(config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mashangban"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MASHANGBAN_") || key == "XDG_CONFIG_HOME" {
            command.env_remove(key);
        }
    }
    // Tables fit `COLUMNS` (stdout is a pipe): wide enough for one line per row here, the
    // same whatever terminal runs the tests (80 columns: `client::every_table_fits_…`).
    command
        .env("COLUMNS", "200")
        .arg("client")
        .arg("--config-file")
        .arg(config)
        .args(args);
    command
}

/// Runs the client off the async runtime (the server answers in this process); returns the
/// exit code, stdout and stderr.
async fn run(config: &Path, args: &[&str]) -> (i32, String, String) {
    let mut command = client(config, args);
    let output = actix_web::rt::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

async fn ok(config: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = run(config, args).await;
    assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
    assert!(stderr.is_empty(), "{args:?}: {stderr}");
    stdout
}

async fn the_client_commands_for_supervisors(app: &TestApp) {
    let f = breach_fixture(app).await;
    let t = now();
    let soon = make(
        app,
        "tax.registration",
        Shape::new("tax", "tax.registration", "promised", "running").due(t + minutes(100)),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head/client.toml");
    let token = app.token(Actor::Supervisor(None));
    ok(
        &head,
        &["login", "--server", &app.address, "--token", &token],
    )
    .await;

    // breaches: a table for people, JSON for scripts, CSV for spreadsheets.
    let table = ok(&head, &["breaches"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NUMBER "), "{table}");
    assert!(lines[1].starts_with(&f.open_market.number), "{table}");
    assert!(table.contains(&f.stopped_tax.number), "{table}");
    assert!(table.contains("30m (market)"), "{table}");
    assert!(
        table.ends_with("4 of 4 breaches (times are Shanghai time)\n"),
        "{table}"
    );
    let paged = ok(&head, &["breaches", "--limit", "1"]).await;
    assert!(paged.contains("1 of 4 breaches"), "{paged}");
    assert!(paged.contains("More: add --cursor "), "{paged}");

    let page: Value =
        serde_json::from_str(&ok(&head, &["--json", "breaches", "--unit", "tax", "--open"]).await)
            .unwrap();
    assert_eq!(clock_ids(&page), ids(&[&f.open_tax]));
    let page: Value = serde_json::from_str(
        &ok(
            &head,
            &[
                "breaches",
                "--json",
                "--open",
                "false",
                "--kind",
                "window_intake",
            ],
        )
        .await,
    )
    .unwrap();
    assert_eq!(clock_ids(&page), ids(&[&f.stopped_market]));
    // The Shanghai day of the breach two days ago.
    let day = (t - TimeDelta::days(2) + minutes(1))
        .and_utc()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d")
        .to_string();
    let page: Value = serde_json::from_str(
        &ok(
            &head,
            &[
                "--json",
                "breaches",
                "--matter",
                "tax.registration",
                "--to",
                &day,
            ],
        )
        .await,
    )
    .unwrap();
    // Up to the end of that day (Shanghai time): that breach, not the one 3 hours ago.
    assert_eq!(clock_ids(&page), ids(&[&f.stopped_tax]));

    let csv = ok(&head, &["breaches", "--csv", "--unit", "market"]).await;
    let rows = parse_csv(&csv);
    assert_eq!(rows[0][0], "clock_id");
    assert_eq!(
        rows[1..].iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        ids(&[&f.open_market, &f.stopped_market])
    );

    // at-risk and stats.
    let table = ok(&head, &["at-risk"]).await;
    assert!(table.contains(&soon.number), "{table}");
    assert!(table.contains("1 of 1 clock due within PT2H"), "{table}");
    let empty = ok(&head, &["at-risk", "--within", "PT30M"]).await;
    assert_eq!(empty, "No open clock falls due within PT30M.\n");
    let table = ok(
        &head,
        &["stats", "--group-by", "matter", "--from", "2020-01-01"],
    )
    .await;
    assert!(
        table.lines().nth(1).unwrap().starts_with("MATTER "),
        "{table}"
    );
    assert!(table.contains("market.establish"), "{table}");
    assert!(table.contains("(all)"), "{table}");
    let stats: Value =
        serde_json::from_str(&ok(&head, &["--json", "stats", "--kind", "statutory"]).await)
            .unwrap();
    assert_eq!(stats["kind"], "statutory");

    // Refusals are one line: a bad window (422), a clerk (403).
    let (code, stdout, stderr) = run(&head, &["at-risk", "--within", "2H"]).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.starts_with("mashangban: validation_failed: within: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
    let clerk = dir.path().join("clerk/client.toml");
    ok(
        &clerk,
        &[
            "login",
            "--server",
            &app.address,
            "--token",
            &app.clerk_token(UnitCode::Tax),
        ],
    )
    .await;
    let (code, _, stderr) = run(&clerk, &["breaches", "--csv"]).await;
    assert_eq!(code, 1);
    assert!(stderr.starts_with("mashangban: forbidden: "), "{stderr}");
    let (code, _, stderr) = run(&head, &["breaches", "--csv", "--json"]).await;
    assert_eq!(code, 2, "{stderr}");

    // approve-extension: the supervisor's action, with If-Match, on an accepted request
    // (a fresh one: the shaped clocks above are not the engine's).
    let response = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(app.enterprise_token())
        .json(&matter_body("tax.registration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    ok(&clerk, &["call", id]).await;
    ok(&clerk, &["accept", id]).await;
    let tax_head = dir.path().join("tax-head/client.toml");
    ok(
        &tax_head,
        &[
            "login",
            "--server",
            &app.address,
            "--token",
            &app.token(Actor::Supervisor(Some(UnitCode::Tax))),
        ],
    )
    .await;
    let done = ok(
        &tax_head,
        &["approve-extension", id, "--reason", "需现场核查"],
    )
    .await;
    assert!(
        done.contains("approve-extension done; still accepted"),
        "{done}"
    );
    let view: Value = serde_json::from_str(&ok(&tax_head, &["--json", "show", id]).await).unwrap();
    assert_eq!(view["extended"], true);
}

/// SplitMix64: a small seeded generator, so that a failing history can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// An instant in the `days` days from `start`: often a Shanghai midnight (16:00 UTC) or a
    /// second either side of it, otherwise any second.
    fn instant(&mut self, start: NaiveDateTime, days: i64) -> NaiveDateTime {
        let day = start + TimeDelta::days(self.below(days as u64) as i64);
        match self.below(6) {
            0 => day,
            1 => day - TimeDelta::seconds(1),
            2 => day + TimeDelta::seconds(1),
            _ => day + TimeDelta::seconds(self.below(86_400) as i64),
        }
    }
}

/// The statistics as `docs/sla.md` defines them, from every clock and rating of the database
/// (the all-rows computation the rollups replaced): the oracle of the rollups.
fn recomputed(all: &[ClockRow], rated: &[RatingRow], q: &sla::StatsQuery) -> sla::Stats {
    #[derive(Default)]
    struct Sums {
        counted: i64,
        met: i64,
        breached: i64,
        open_overdue: i64,
        lost: i64,
        worked: Vec<i64>,
        levels: Vec<i32>,
    }
    let key = |unit: &str, matter: &str| match q.group_by {
        sla::GroupBy::Unit => unit.to_string(),
        sla::GroupBy::Matter => matter.to_string(),
    };
    let inside = |t: Option<NaiveDateTime>| t.is_some_and(|t| q.from <= t && t < q.to);
    let mut groups: std::collections::BTreeMap<String, Sums> = Default::default();
    for c in all {
        let in_scope = q.unit.as_ref().is_none_or(|u| *u == c.unit)
            && match &q.kind {
                Some(kind) => *kind == c.kind,
                None => c.kind != "material",
            };
        if !in_scope {
            continue;
        }
        if inside(c.stopped_at) {
            let sums = groups.entry(key(&c.unit, &c.matter)).or_default();
            sums.counted += 1;
            sums.lost += c.lost_minutes;
            if c.breached_at.is_some() {
                sums.breached += 1;
            } else if c.state == "met" {
                sums.met += 1;
            }
            sums.worked
                .extend(c.worked_minutes.map(handling_time::bucket));
            continue;
        }
        let unmarked_overdue = c.state == "running"
            && c.breached_at.is_none()
            && c.due_at
                .is_some_and(|due| q.from <= due && due < q.to && due < q.now);
        if c.stopped_at.is_none() && (inside(c.breached_at) || unmarked_overdue) {
            let sums = groups.entry(key(&c.unit, &c.matter)).or_default();
            sums.counted += 1;
            sums.lost += c.lost_minutes;
            sums.breached += 1;
            sums.open_overdue += 1;
        }
    }
    for r in rated {
        if inside(Some(r.created_at)) && q.unit.as_ref().is_none_or(|u| *u == r.unit) {
            groups
                .entry(key(&r.unit, &r.matter))
                .or_default()
                .levels
                .push(r.level);
        }
    }
    let figures = |s: &Sums| {
        let mut worked = s.worked.clone();
        worked.sort_unstable();
        let decided = s.met + s.breached;
        let ratings = s.levels.len() as i64;
        let satisfied = s.levels.iter().filter(|&&l| l >= 3).count() as i64;
        let sum: i64 = s.levels.iter().map(|&l| i64::from(l)).sum();
        sla::Figures {
            counted: s.counted,
            met: s.met,
            breached: s.breached,
            open_overdue: s.open_overdue,
            cancelled: s.counted - s.met - s.breached,
            on_time_rate: (decided > 0).then(|| s.met as f64 / decided as f64),
            median_worked_minutes: sla::percentile(&worked, 50),
            p95_worked_minutes: sla::percentile(&worked, 95),
            lost_minutes: s.lost,
            satisfaction: sla::Satisfaction {
                ratings,
                satisfied,
                bad: ratings - satisfied,
                satisfaction_rate: (ratings > 0).then(|| satisfied as f64 / ratings as f64),
                average_level: (ratings > 0).then(|| sum as f64 / ratings as f64),
            },
        }
    };
    let mut all_sums = Sums::default();
    for s in groups.values() {
        all_sums.counted += s.counted;
        all_sums.met += s.met;
        all_sums.breached += s.breached;
        all_sums.open_overdue += s.open_overdue;
        all_sums.lost += s.lost;
        all_sums.worked.extend(&s.worked);
        all_sums.levels.extend(&s.levels);
    }
    sla::Stats {
        groups: groups
            .iter()
            .map(|(key, s)| sla::Group {
                key: key.clone(),
                figures: figures(s),
            })
            .collect(),
        overall: figures(&all_sums),
    }
}

/// A rollup row of stopped clocks: period, unit, matter, kind, counted, met, breached,
/// cancelled, lost minutes, handling times.
type StoppedRollup = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    String,
);
type RollupRows = (
    Vec<StoppedRollup>,
    Vec<StoppedRollup>,
    Vec<(String, String, String, i32, i64)>,
    Vec<(String, String, String, i32, i64)>,
);

fn rollup_rows(conn: &mut DbConnection) -> RollupRows {
    (
        clock_rollups::table
            .order((
                clock_rollups::day,
                clock_rollups::unit,
                clock_rollups::matter,
                clock_rollups::kind,
            ))
            .load(conn)
            .unwrap(),
        clock_rollup_months::table
            .order((
                clock_rollup_months::month,
                clock_rollup_months::unit,
                clock_rollup_months::matter,
                clock_rollup_months::kind,
            ))
            .load(conn)
            .unwrap(),
        rating_rollups::table
            .order((
                rating_rollups::day,
                rating_rollups::unit,
                rating_rollups::matter,
                rating_rollups::level,
            ))
            .load(conn)
            .unwrap(),
        rating_rollup_months::table
            .order((
                rating_rollup_months::month,
                rating_rollup_months::unit,
                rating_rollup_months::matter,
                rating_rollup_months::level,
            ))
            .load(conn)
            .unwrap(),
    )
}

/// Random histories: clocks started, marked, stopped and cancelled through the engine's own
/// functions (so the rollups are kept by the transactions that stop them) across 75 days,
/// units, matters and kinds, stop times on and around Shanghai midnights; ratings given through
/// `db::ratings`; some clocks left open (marked breached, overdue unmarked, not yet due). The
/// statistics of random periods (whole days, parts of days, the +8 h boundary, any grouping,
/// unit and kind; whole calendar months among them) equal the recomputation from every row
/// (handling times bucketed as `domain::handling_time` keeps them); and the migration's backfill
/// (`rollups::rebuild` runs its SQL) fills exactly the rollups the transactions kept.
async fn stats_from_rollups_equal_a_full_recomputation(app: &TestApp) {
    let mut rng = Rng(0x0018_2026_1205);
    let mut conn = connect(app);
    let calendar = Calendar::builtin_shanghai();
    let rules = Rules {
        calendar: &calendar,
        warn_percent: 80,
    };
    let mut requests = Vec::new();
    for _ in 0..24 {
        requests.push(
            make(
                app,
                "tax.registration",
                Shape::new("tax", "tax.registration", "promised", "pending"),
            )
            .await
            .request,
        );
    }
    // Only the clocks of this history: the intake's own are removed.
    diesel::delete(clocks::table).execute(&mut conn).unwrap();
    rollups::rebuild(&mut conn).unwrap();

    let real_now = now();
    let midnight = rollups::day_start(rollups::day_of(real_now));
    let start = midnight - TimeDelta::days(75);
    let units = ["tax", "market", "hrss"];
    let matters = [
        "tax.registration",
        "market.establish",
        "hrss.social-insurance",
    ];
    let kinds = [
        ClockKind::WindowIntake,
        ClockKind::Promised,
        ClockKind::Statutory,
        ClockKind::Delivery,
        ClockKind::Material,
    ];
    let targets = ["PT30M", "PT4H", "2 working_days", "5 working_days"];
    let mut open = Vec::new();
    for n in 0..400 {
        let request = rng.pick(&requests).clone();
        let kind = *rng.pick(&kinds);
        let started = rng.instant(start, 73);
        let mut clock = Clock::new(kind, rng.pick(&targets).parse().unwrap());
        clock.start(rules, started.and_utc()).unwrap();
        let mut row = to_row(
            &clock,
            uuid::Uuid::now_v7().to_string(),
            request.clone(),
            None,
            rng.pick(&units).to_string(),
            rng.pick(&matters).to_string(),
        );
        row.lost_minutes = if rng.chance(20) {
            rng.below(300) as i64
        } else {
            0
        };
        if rng.chance(30) {
            // Marked by the detector at its due time (if that came).
            let mut marked = from_row(&row).unwrap();
            marked.detect(row.due_at.unwrap().and_utc());
            row = to_row(&marked, row.id, row.request_id, None, row.unit, row.matter);
            row.lost_minutes = if n % 3 == 0 { 17 } else { 0 };
        }
        if rng.chance(20) {
            row.check_at = None; // the server's detector leaves it alone
            open.push(row);
            continue;
        }
        let stop_at = loop {
            let at = rng.instant(start, 75);
            if at > started && at < real_now {
                break at;
            }
        };
        write_transaction(&mut conn, |conn| {
            diesel::insert_into(clocks::table)
                .values(&row)
                .execute(conn)?;
            if rng.chance(20) {
                // Withdrawn: it stops cancelled (or stays breached).
                let step = ClockStep {
                    action: Action::Withdraw,
                    which: Which::All,
                    joint: false,
                    detail: "",
                    returned: None,
                    new_unit: None,
                    actor: "test",
                };
                on_step(conn, &request, &step, rules, stop_at.and_utc())
            } else {
                stop_kinds(conn, &request, &[kind], rules, "test", stop_at.and_utc())
            }
        })
        .unwrap();
    }
    // Open clocks go in last: no step above stops them.
    for row in &open {
        diesel::insert_into(clocks::table)
            .values(row)
            .execute(&mut conn)
            .unwrap();
    }
    for request in &requests {
        let level = 1 + rng.below(5) as i32;
        let rating = RatingRow {
            request_id: request.clone(),
            uscc: "91310000MA1FL8TQ3X".into(),
            level,
            comment: String::new(),
            unit: rng.pick(&units).to_string(),
            matter: rng.pick(&matters).to_string(),
            created_at: rng.instant(start, 75),
        };
        rate(
            &mut conn,
            &NewRating {
                rating,
                case: None,
                events: Vec::new(),
                notices: Vec::new(),
            },
        )
        .unwrap();
    }

    let all: Vec<ClockRow> = clocks::table
        .select(ClockRow::as_select())
        .load(&mut conn)
        .unwrap();
    let stopped = all.iter().filter(|c| c.stopped_at.is_some()).count();
    assert!(stopped > 150, "{stopped} clocks stopped");
    assert!(all.iter().any(|c| c.state == "cancelled"));
    assert!(
        all.iter()
            .any(|c| c.stopped_at.is_some() && c.breached_at.is_some())
    );
    let rated: Vec<RatingRow> = ratings::table
        .select(RatingRow::as_select())
        .load(&mut conn)
        .unwrap();

    let incremental = rollup_rows(&mut conn);
    let counted: i64 = incremental.0.iter().map(|r| r.4).sum();
    assert_eq!(counted, stopped as i64);

    let unit_choices = [None, Some("tax"), Some("hrss")];
    let kind_choices = [None, Some("promised"), Some("material"), Some("statutory")];
    let (mut short, mut long, mut with_a_month) = (0, 0, 0);
    for round in 0..100 {
        let (from, to) = match round % 4 {
            0 => {
                let from = rng.instant(start - TimeDelta::days(1), 77);
                (
                    from,
                    from + TimeDelta::seconds(1 + rng.below(86_400) as i64),
                )
            }
            1 => {
                // From the period's first ten days to its last ten: the whole calendar month
                // between (75 days back from today) is read from the month rollups.
                with_a_month += 1;
                (
                    rng.instant(start - TimeDelta::days(1), 10),
                    rng.instant(start + TimeDelta::days(66), 10),
                )
            }
            _ => (
                rng.instant(start - TimeDelta::days(1), 77),
                rng.instant(start, 77),
            ),
        };
        if to <= from {
            continue;
        }
        if to - from < TimeDelta::days(2) {
            short += 1;
        } else {
            long += 1;
        }
        let query = sla::StatsQuery {
            group_by: if rng.chance(50) {
                sla::GroupBy::Unit
            } else {
                sla::GroupBy::Matter
            },
            unit: rng.pick(&unit_choices).map(str::to_string),
            kind: rng.pick(&kind_choices).map(str::to_string),
            from,
            to,
            now: real_now,
        };
        let expected = recomputed(&all, &rated, &query);
        let got = sla::stats(&mut conn, &query).unwrap();
        assert_eq!(got, expected, "round {round}: {query:?}");
    }
    assert!(
        short >= 20 && long >= 20 && with_a_month >= 5,
        "{short} short and {long} long periods, {with_a_month} with a whole month"
    );

    // The migration's backfill finds what the transactions counted.
    rollups::rebuild(&mut conn).unwrap();
    assert_eq!(rollup_rows(&mut conn), incremental);
}

#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Runs `first` in a PostgreSQL transaction that stays open, then `second` in another, waits
/// until the second waits on a lock the first holds, commits the first, and waits for both.
/// Returns a third connection to look at the outcome.
fn race_two_transactions(
    app: &TestApp,
    first: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<()> + Send + 'static,
    second: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<()> + Send + 'static,
) -> DbConnection {
    use std::sync::mpsc::channel;

    let (mut one, mut two, mut watcher) = (connect(app), connect(app), connect(app));
    let (done, first_done) = channel();
    let (commit, may_commit) = channel::<()>();
    let first_thread = std::thread::spawn(move || {
        write_transaction(&mut one, |conn| {
            first(conn)?;
            done.send(()).unwrap();
            may_commit.recv().unwrap();
            diesel::QueryResult::Ok(())
        })
    });
    first_done.recv().unwrap();
    let second_thread = std::thread::spawn(move || write_transaction(&mut two, second));
    // The second waits on the first transaction's uncommitted key.
    loop {
        let waiting = diesel::sql_query(
            "SELECT COUNT(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .get_result::<Waiting>(&mut watcher)
        .unwrap();
        if waiting.n > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    commit.send(()).unwrap();
    first_thread.join().unwrap().unwrap();
    second_thread.join().unwrap().unwrap();
    watcher
}

/// Two PostgreSQL transactions add the first rating of the same day, unit, matter and level at
/// once: both find no row to update, both insert; the second insert waits for the first
/// transaction, fails on the key when it commits, and the second adds to the row instead. Both
/// ratings count. (SQLite has one writer at a time: the race cannot happen there.)
#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs MASHANGBAN_TEST_DATABASE_URL at build time"
)]
async fn postgres_two_transactions_adding_the_same_new_rollup_row_both_count() {
    let app = crate::helpers::spawn_postgres()
        .await
        .expect("MASHANGBAN_TEST_DATABASE_URL is set");
    let rating = |request: &str| RatingRow {
        request_id: request.into(),
        uscc: "91310000MA1FL8TQ3X".into(),
        level: 4,
        comment: String::new(),
        unit: "tax".into(),
        matter: "tax.registration".into(),
        created_at: now(),
    };
    let (first_rating, second_rating) = (rating("r-1"), rating("r-2"));
    let mut watcher = race_two_transactions(
        &app,
        move |conn| rollups::count_rating(conn, &first_rating),
        move |conn| rollups::count_rating(conn, &second_rating),
    );
    let rows: Vec<(String, String, String, i32, i64)> =
        rating_rollups::table.load(&mut watcher).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].4, 2, "{rows:?}");
}

/// The same race for a stopped clock's rows (its day's and its month's), which are read with
/// `FOR UPDATE`, changed and written back: the second transaction's insert fails on the key
/// when the first commits, and it reads the committed rows and adds to them. Both clocks and
/// both handling times count.
#[actix_web::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs MASHANGBAN_TEST_DATABASE_URL at build time"
)]
async fn postgres_two_transactions_stopping_clocks_of_the_same_new_rollup_rows_both_count() {
    let app = crate::helpers::spawn_postgres()
        .await
        .expect("MASHANGBAN_TEST_DATABASE_URL is set");
    let calendar = Calendar::builtin_shanghai();
    let rules = Rules {
        calendar: &calendar,
        warn_percent: 80,
    };
    let stopped = |request: &str, worked: i64| {
        let mut clock = Clock::new(ClockKind::Promised, "PT4H".parse().unwrap());
        clock.start(rules, Utc::now()).unwrap();
        let mut row = to_row(
            &clock,
            uuid::Uuid::now_v7().to_string(),
            request.into(),
            None,
            "tax".into(),
            "tax.registration".into(),
        );
        row.state = "met".into();
        row.stopped_at = Some(now());
        row.worked_minutes = Some(worked);
        row
    };
    let (first_clock, second_clock) = (stopped("r-1", 30), stopped("r-2", 1000));
    let mut watcher = race_two_transactions(
        &app,
        move |conn| rollups::count_stopped(conn, &first_clock),
        move |conn| rollups::count_stopped(conn, &second_clock),
    );
    let (days, months, _, _) = rollup_rows(&mut watcher);
    for rows in [days, months] {
        assert_eq!(rows.len(), 1, "{rows:?}");
        let row = &rows[0];
        assert_eq!((row.4, row.5), (2, 2), "{rows:?}");
        assert_eq!(row.9, "30:1 992:1", "{rows:?}");
    }
}
