//! Appointments (统一预约) through the real server, on both backends: slots on the working
//! calendar, booking and every refusal, the capacity race (50 bookings for the last 3 places),
//! cancel and reschedule with If-Match and the cutoff, check-in by the unit's clerk, no-shows
//! and reminders exactly once, the supervisors' day, and who sees what.
//!
//! Dates are chosen from today: the week after next (Monday to Sunday) is always within the
//! 30 bookable days and in the future. Time is moved the way tests/api/clocks.rs does it: a
//! booking's stored times are changed in the database, and the worker's look
//! (`db::appointments::work`) is called with the "now" the test needs.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Asia::Shanghai;
use diesel::prelude::*;
use mashangban::auth::Actor;
use mashangban::db::schema::{appointment_slots, appointments, audit_events, notifications};
use mashangban::domain::appointment::{Hall, week_of};
use mashangban::domain::{Catalog, UnitCode, Uscc};
use serde_json::{Value, json};

use crate::helpers::{self, TestApp, USCC_A, connect, problem, submit};
use crate::requests::{USCC_B, matter_body};

/// A server with the worker as asked, a weekly limit of 3 and a quick tick.
async fn spawn(postgres: bool, worker: bool) -> TestApp {
    let (dir, url, pg) = if postgres {
        let (admin, name, url) = helpers::fresh_postgres().expect("PostgreSQL configured");
        (None, url, Some((admin, name)))
    } else {
        let (dir, url) = helpers::fresh_sqlite();
        (Some(dir), url, None)
    };
    let mut settings = helpers::test_settings(&url);
    settings.appointments.weekly_limit = 3;
    settings.appointments.worker = worker;
    settings.appointments.tick_ms = 50;
    helpers::start(settings, dir, pg).await
}

/// Runs each `async fn(&TestApp)` on SQLite and on PostgreSQL, with the worker off (the tests
/// drive it with their own "now") or on.
macro_rules! both {
    ($worker:expr; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    let app = super::spawn(false, $worker).await;
                    super::$name(&app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                #[cfg_attr(not(postgres_tests), ignore = "needs MASHANGBAN_TEST_DATABASE_URL at build time")]
                async fn $name() {
                    let app = super::spawn(true, $worker).await;
                    super::$name(&app).await;
                }
            )*
        }
    };
}

mod quiet {
    use super::*;
    both!(false;
        slots_follow_the_working_calendar,
        bad_slot_queries_are_named,
        booking_and_its_refusals,
        fifty_bookings_for_the_last_three_places,
        cancel_and_reschedule,
        check_in_by_the_units_clerk,
        no_shows_and_reminders_exactly_once,
        who_sees_what,
    );
}

mod working {
    use super::*;
    both!(true; the_worker_marks_no_shows);
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn today() -> NaiveDate {
    Utc::now().with_timezone(&Shanghai).date_naive()
}

/// Monday of the week after next.
fn monday() -> NaiveDate {
    week_of(today()) + TimeDelta::days(14)
}

fn day(offset: i64) -> NaiveDate {
    monday() + TimeDelta::days(offset)
}

/// `date` at local `hh:mm`, RFC 3339.
fn at(date: NaiveDate, time: &str) -> String {
    format!("{date}T{time}:00+08:00")
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// A valid unified social credit code numbered `n`.
fn uscc(n: u32) -> String {
    const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [u32; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    let body = format!("9131000000{n:07}");
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| ALPHABET.iter().position(|&a| a == b).unwrap() as u32 * w)
        .sum();
    let check = ALPHABET[((31 - sum % 31) % 31) as usize] as char;
    let code = format!("{body}{check}");
    Uscc::parse(&code).expect("valid");
    code
}

fn enterprise(app: &TestApp, code: &str) -> String {
    app.token(Actor::Enterprise(Uscc::parse(code).unwrap()))
}

fn booking(matter: &str, slot: &str) -> Value {
    json!({
        "matter": matter,
        "slot": slot,
        "contact": {"name": "张敏", "phone": "13800138000", "email": "office@example.com"}
    })
}

async fn post(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/appointments"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Books `matter` at `slot` as `token`; answers the appointment (201 checked).
async fn book(app: &TestApp, token: &str, matter: &str, slot: &str) -> Value {
    let response = post(app, token, &booking(matter, slot)).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

async fn slots(app: &TestApp, query: &str) -> reqwest::Response {
    app.get(&format!("/api/v1/appointments/slots?{query}"), None)
        .await
}

async fn slot_list(app: &TestApp, query: &str) -> Vec<Value> {
    let response = slots(app, query).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["slots"].as_array().unwrap().clone()
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_string()
}

async fn read(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.get(&format!("/api/v1/appointments/{id}"), Some(token))
        .await
}

async fn step(
    app: &TestApp,
    token: &str,
    id: &str,
    action: &str,
    if_match: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/api/v1/appointments/{id}/{action}")))
        .bearer_auth(token);
    if let Some(tag) = if_match {
        request = request.header("If-Match", tag);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

fn naive(text: &str) -> NaiveDateTime {
    instant(text).naive_utc()
}

/// Moves appointment `id`'s slot to start `start_in` from now, as the passing of time would.
fn move_slot(app: &TestApp, id: &str, start_in: TimeDelta, length: TimeDelta, grace: TimeDelta) {
    let start = Utc::now() + start_in;
    let mut conn = connect(app);
    diesel::update(appointments::table.find(id))
        .set((
            appointments::starts_at.eq(start.naive_utc()),
            appointments::ends_at.eq((start + length).naive_utc()),
            appointments::no_show_at.eq((start + length + grace).naive_utc()),
            appointments::local_date.eq(start.with_timezone(&Shanghai).date_naive().to_string()),
        ))
        .execute(&mut conn)
        .unwrap();
}

fn audit_actions(app: &TestApp, id: &str) -> Vec<String> {
    let mut conn = connect(app);
    audit_events::table
        .filter(audit_events::request_id.eq(format!("appointment:{id}")))
        .order(audit_events::seq)
        .select(audit_events::action)
        .load(&mut conn)
        .unwrap()
}

fn mails(app: &TestApp, kind: &str) -> Vec<(String, String)> {
    let mut conn = connect(app);
    notifications::table
        .filter(notifications::kind.eq(kind))
        .select((notifications::recipient, notifications::body))
        .load(&mut conn)
        .unwrap()
}

async fn set_day(app: &TestApp, date: NaiveDate, kind: &str) {
    let response = app
        .client
        .put(app.url(&format!("/api/v1/calendars/cn-shanghai/days/{date}")))
        .bearer_auth(app.admin_token())
        .json(&json!({ "kind": kind }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Slots

async fn slots_follow_the_working_calendar(app: &TestApp) {
    let (wednesday, saturday, sunday) = (day(2), day(5), day(6));
    // An ordinary weekday: 09:00–12:00 and 13:00–17:00 in 30 minutes at counter A01, the only
    // one serving market.change: 6 + 8 slots, none at lunch.
    let listed = slot_list(
        app,
        &format!("matter=market.change&from={wednesday}&to={wednesday}"),
    )
    .await;
    assert_eq!(listed.len(), 14);
    assert_eq!(listed[0]["start"], json!(instant(&at(wednesday, "09:00"))));
    assert_eq!(listed[0]["local_time"], "09:00–09:30");
    assert_eq!(listed[0]["counter"], "A01");
    assert_eq!(listed[0]["unit"], "market");
    assert_eq!(listed[0]["remaining"], 4);
    assert!(listed.iter().all(|s| {
        let time = s["local_time"].as_str().unwrap();
        !time.starts_with("12:")
    }));
    // An ordinary weekend has none.
    assert!(
        slot_list(
            app,
            &format!("matter=market.change&from={saturday}&to={sunday}")
        )
        .await
        .is_empty()
    );
    // The administrator makes the Saturday a working day (调休上班) and the Wednesday a
    // holiday: the slots follow at once.
    set_day(app, saturday, "working_day").await;
    set_day(app, wednesday, "holiday").await;
    let makeup = slot_list(
        app,
        &format!("matter=market.change&from={saturday}&to={saturday}"),
    )
    .await;
    assert_eq!(makeup.len(), 14, "Monday's hours open a working weekend");
    assert!(
        slot_list(
            app,
            &format!("matter=market.change&from={wednesday}&to={wednesday}")
        )
        .await
        .is_empty()
    );
    // And a booking on the holiday is refused, one on the makeup Saturday taken.
    let token = app.enterprise_token();
    let refused = problem(
        post(
            app,
            &token,
            &booking("market.change", &at(wednesday, "10:00")),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(refused["errors"][0]["pointer"], "/slot");
    book(app, &token, "market.change", &at(saturday, "10:00")).await;
    // Two counters serve market.establish: each slot twice.
    let monday = day(0);
    let both = slot_list(
        app,
        &format!("matter=market.establish&from={monday}&to={monday}"),
    )
    .await;
    assert_eq!(both.len(), 28);
    // The default range: from today, a week.
    let default: Value = slots(app, "matter=market.change")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(default["from"], json!(today()));
    assert_eq!(default["to"], json!(today() + TimeDelta::days(6)));
    assert_eq!(default["time_zone"], "Asia/Shanghai");
    // Only the future: nothing listed starts before now.
    let now = Utc::now();
    for slot in default["slots"].as_array().unwrap() {
        assert!(instant(slot["start"].as_str().unwrap()) > now);
    }
}

async fn bad_slot_queries_are_named(app: &TestApp) {
    let cases = [
        ("from=2026-01-01".to_string(), "matter"),
        ("matter=market.nothing".to_string(), "matter"),
        ("matter=service-center.appointment".to_string(), "matter"),
        ("matter=justice.dispute-mediation".to_string(), "matter"),
        ("matter=market.change&from=tomorrow".to_string(), "from"),
        (
            format!("matter=market.change&from={}", today() - TimeDelta::days(1)),
            "from",
        ),
        (
            format!("matter=market.change&to={}", today() + TimeDelta::days(31)),
            "to",
        ),
        (
            format!("matter=market.change&from={}&to={}", day(3), day(2)),
            "to",
        ),
    ];
    for (query, pointer) in cases {
        let body = problem(slots(app, &query).await, 422).await;
        assert_eq!(body["code"], "validation_failed", "{query}");
        assert_eq!(body["errors"][0]["pointer"], pointer, "{query}: {body}");
    }
    // The last bookable day is fine.
    let last = today() + TimeDelta::days(30);
    assert_eq!(
        slots(app, &format!("matter=market.change&from={last}&to={last}"))
            .await
            .status(),
        200
    );
    // The retired request type is gone from the catalog and refused at intake.
    let catalog = app
        .get("/api/v1/catalog/matters/service-center.appointment", None)
        .await;
    assert_eq!(catalog.status(), 404);
    let mut body = matter_body("market.change");
    body["matter"] = json!("service-center.appointment");
    let refused = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(app.enterprise_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
}

// ---------------------------------------------------------------------------------------------
// Booking

async fn booking_and_its_refusals(app: &TestApp) {
    let token = app.enterprise_token();
    let slot = at(day(0), "10:00");
    // Outsiders and officials cannot book.
    let anonymous = app
        .client
        .post(app.url("/api/v1/appointments"))
        .json(&booking("market.change", &slot))
        .send()
        .await
        .unwrap();
    problem(anonymous, 401).await;
    for official in [
        app.clerk_token(UnitCode::Market),
        app.token(Actor::Supervisor(None)),
        app.admin_token(),
    ] {
        let body = problem(
            post(app, &official, &booking("market.change", &slot)).await,
            403,
        )
        .await;
        assert_eq!(body["code"], "forbidden");
    }
    // Every wrong field is named; nothing is booked.
    let mut bad = booking("market.change", "tomorrow at ten");
    bad["contact"] = json!({"name": " ", "phone": "12", "email": "nobody"});
    let body = problem(post(app, &token, &bad).await, 422).await;
    let named: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        named,
        ["/slot", "/contact/name", "/contact/phone", "/contact/email"]
    );
    let unknown = problem(
        post(app, &token, &booking("market.nothing", &slot)).await,
        422,
    )
    .await;
    assert_eq!(unknown["errors"][0]["pointer"], "/matter");
    let mut extra = booking("market.change", &slot);
    extra["colour"] = json!("red");
    problem(post(app, &token, &extra).await, 422).await;
    for (text, pointer) in [
        (at(day(0), "10:10"), "/slot"),
        (at(day(0), "12:00"), "/slot"),
        (at(day(0), "18:00"), "/slot"),
        (at(day(6), "10:00"), "/slot"),
        ("2020-01-06T10:00:00+08:00".to_string(), "/slot"),
        (at(today() + TimeDelta::days(40), "10:00"), "/slot"),
    ] {
        let body = problem(
            post(app, &token, &booking("market.change", &text)).await,
            422,
        )
        .await;
        assert_eq!(body["errors"][0]["pointer"], pointer, "{text}: {body}");
    }
    let mut elsewhere = booking("market.change", &slot);
    elsewhere["counter"] = json!("A02");
    let body = problem(post(app, &token, &elsewhere).await, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/counter");
    // Another enterprise's request is not one to book for.
    let theirs = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(enterprise(app, USCC_B))
        .json(&{
            let mut b = matter_body("market.change");
            b["applicant"]["uscc"] = json!(USCC_B);
            b
        })
        .send()
        .await
        .unwrap();
    let theirs: Value = theirs.json().await.unwrap();
    let mut for_theirs = booking("market.change", &slot);
    for_theirs["request"] = theirs["number"].clone();
    let body = problem(post(app, &token, &for_theirs).await, 422).await;
    assert_eq!(body["errors"][0]["pointer"], "/request");
    assert!(
        mails(app, "appointment_booked").is_empty(),
        "nothing was booked"
    );

    // The enterprise's own request, by its number.
    let own = submit(app, &matter_body("market.change")).await;
    let mut body = booking("market.change", &slot);
    body["request"] = own["number"].clone();
    let response = post(app, &token, &body).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"r1\"");
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let booked: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/appointments/{}", id(&booked)));
    assert_eq!(booked["status"], "booked");
    assert_eq!(booked["uscc"], USCC_A);
    assert_eq!(booked["unit"], "market");
    assert_eq!(booked["counter"], "A01");
    assert_eq!(booked["matter"], "market.change");
    assert_eq!(booked["request_id"], own["id"]);
    assert_eq!(booked["slot_start"], json!(instant(&slot)));
    assert_eq!(booked["slot_end"], json!(instant(&at(day(0), "10:30"))));
    assert_eq!(booked["local_slot"], format!("{} 10:00–10:30", day(0)));
    assert_eq!(booked["no_show_at"], json!(instant(&at(day(0), "10:45"))));
    assert_eq!(audit_actions(app, &id(&booked)), ["appointment.booked"]);
    let confirmations = mails(app, "appointment_booked");
    assert_eq!(confirmations.len(), 1);
    assert_eq!(confirmations[0].0, "office@example.com");
    assert!(
        confirmations[0].1.contains("10:00–10:30"),
        "{}",
        confirmations[0].1
    );
    assert!(
        confirmations[0]
            .1
            .contains(&format!("/api/v1/appointments/{}/calendar", id(&booked)))
    );
    // Its place is taken.
    let left = slot_list(
        app,
        &format!("matter=market.change&from={}&to={}", day(0), day(0)),
    )
    .await;
    let that = left
        .iter()
        .find(|s| s["start"] == booked["slot_start"])
        .unwrap();
    assert_eq!(that["remaining"], 3);

    // One active booking per matter and day, at another time too.
    let again = problem(
        post(app, &token, &booking("market.change", &at(day(0), "15:00"))).await,
        409,
    )
    .await;
    assert_eq!(again["code"], "already_booked");
    assert_eq!(again["appointment"], booked["id"]);
    // Another matter the same day is fine; a third booking in the week too; the fourth is
    // past the weekly limit (3 in these tests).
    book(app, &token, "market.establish", &at(day(0), "11:00")).await;
    book(app, &token, "tax.registration", &at(day(1), "09:00")).await;
    let limited = problem(
        post(app, &token, &booking("market.change", &at(day(2), "09:00"))).await,
        409,
    )
    .await;
    assert_eq!(limited["code"], "weekly_limit_reached");
    assert_eq!(limited["limit"], 3);
    // The week after is another week.
    book(app, &token, "market.change", &at(day(7), "09:00")).await;

    // Idempotency-Key: the same key and body answer the same booking; another body is refused.
    let other = enterprise(app, USCC_B);
    let keyed = booking("tax.registration", &at(day(1), "09:00"));
    let send = |body: Value| {
        app.client
            .post(app.url("/api/v1/appointments"))
            .bearer_auth(&other)
            .header("Idempotency-Key", "book-7f3a")
            .json(&body)
            .send()
    };
    let first = send(keyed.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let replay = send(keyed.clone()).await.unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay["id"], first["id"]);
    let reused = problem(
        send(booking("tax.registration", &at(day(1), "09:30")))
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(reused["code"], "idempotency_key_reused");
    let bad_key = app
        .client
        .post(app.url("/api/v1/appointments"))
        .bearer_auth(&other)
        .header("Idempotency-Key", "")
        .json(&keyed)
        .send()
        .await
        .unwrap();
    problem(bad_key, 422).await;

    // The calendar entry (RFC 5545).
    let ics = app
        .get(
            &format!("/api/v1/appointments/{}/calendar", id(&booked)),
            Some(&token),
        )
        .await;
    assert_eq!(ics.status(), 200);
    assert!(
        ics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    let text = ics.text().await.unwrap();
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n"), "{text}");
    assert!(text.contains("BEGIN:VEVENT\r\n"));
    assert!(text.contains(&format!("UID:{}@mashangban", id(&booked))));
    let start = instant(&slot).format("%Y%m%dT%H%M%SZ").to_string();
    assert!(text.contains(&format!("DTSTART:{start}")), "{text}");
    assert!(text.contains("STATUS:CONFIRMED"));
    let stranger = app
        .get(
            &format!("/api/v1/appointments/{}/calendar", id(&booked)),
            Some(&other),
        )
        .await;
    problem(stranger, 404).await;
}

async fn fifty_bookings_for_the_last_three_places(app: &TestApp) {
    let slot = at(day(1), "11:00");
    // One place of four is taken first.
    book(app, &enterprise(app, &uscc(999)), "market.change", &slot).await;
    let tokens: Vec<String> = (0..50).map(|n| enterprise(app, &uscc(n))).collect();
    let body = booking("market.change", &slot);
    let answers = futures_util::future::join_all(tokens.iter().map(|token| {
        app.client
            .post(app.url("/api/v1/appointments"))
            .bearer_auth(token)
            .json(&body)
            .send()
    }))
    .await;
    let mut created = 0;
    let mut full = 0;
    for answer in answers {
        let answer = answer.unwrap();
        match answer.status().as_u16() {
            201 => created += 1,
            409 => {
                let body: Value = answer.json().await.unwrap();
                assert_eq!(body["code"], "slot_full");
                full += 1;
            }
            other => panic!("unexpected {other}: {}", answer.text().await.unwrap()),
        }
    }
    assert_eq!((created, full), (3, 47));
    let mut conn = connect(app);
    let start = naive(&slot);
    let stored: i64 = appointments::table
        .filter(appointments::counter.eq("A01"))
        .filter(appointments::starts_at.eq(start))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(stored, 4);
    let taken: i32 = appointment_slots::table
        .find(("A01", start))
        .select(appointment_slots::booked)
        .first(&mut conn)
        .unwrap();
    assert_eq!(taken, 4);
    // The slot is no longer offered.
    let listed = slot_list(
        app,
        &format!("matter=market.change&from={}&to={}", day(1), day(1)),
    )
    .await;
    assert!(listed.iter().all(|s| s["start"] != json!(instant(&slot))));
}

// ---------------------------------------------------------------------------------------------
// Cancel and reschedule

async fn cancel_and_reschedule(app: &TestApp) {
    let token = app.enterprise_token();
    let booked = book(app, &token, "market.change", &at(day(2), "09:00")).await;
    let id = id(&booked);
    // Who may not, and without the precondition.
    problem(
        step(
            app,
            &enterprise(app, USCC_B),
            &id,
            "cancel",
            Some("\"r1\""),
            None,
        )
        .await,
        404,
    )
    .await;
    problem(
        step(
            app,
            &app.clerk_token(UnitCode::Market),
            &id,
            "cancel",
            Some("\"r1\""),
            None,
        )
        .await,
        403,
    )
    .await;
    problem(step(app, &token, &id, "cancel", None, None).await, 428).await;
    let stale = problem(
        step(app, &token, &id, "cancel", Some("\"r7\""), None).await,
        412,
    )
    .await;
    assert_eq!(stale["code"], "precondition_failed");
    // Moved: the new place taken, the old one given back, a mail about it.
    let moved = step(
        app,
        &token,
        &id,
        "reschedule",
        Some("\"r1\""),
        Some(json!({"slot": at(day(2), "14:00")})),
    )
    .await;
    assert_eq!(moved.status(), 200);
    assert_eq!(moved.headers()["etag"], "\"r2\"");
    let moved: Value = moved.json().await.unwrap();
    assert_eq!(moved["slot_start"], json!(instant(&at(day(2), "14:00"))));
    assert_eq!(moved["id"], booked["id"]);
    assert_eq!(mails(app, "appointment_rescheduled").len(), 1);
    let listed = slot_list(
        app,
        &format!("matter=market.change&from={}&to={}", day(2), day(2)),
    )
    .await;
    let remaining = |time: &str| {
        listed
            .iter()
            .find(|s| s["start"] == json!(instant(&at(day(2), time))))
            .map(|s| s["remaining"].clone())
    };
    assert_eq!(remaining("09:00"), Some(json!(4)));
    assert_eq!(remaining("14:00"), Some(json!(3)));
    // Who may not move it, and without the precondition.
    let later = json!({"slot": at(day(2), "15:00")});
    problem(
        step(
            app,
            &enterprise(app, USCC_B),
            &id,
            "reschedule",
            Some("\"r2\""),
            Some(later.clone()),
        )
        .await,
        404,
    )
    .await;
    problem(
        step(
            app,
            &app.clerk_token(UnitCode::Market),
            &id,
            "reschedule",
            Some("\"r2\""),
            Some(later.clone()),
        )
        .await,
        403,
    )
    .await;
    problem(
        step(app, &token, &id, "reschedule", None, Some(later.clone())).await,
        428,
    )
    .await;
    // Not onto a day that already has the enterprise's booking of the matter.
    let other_day = book(app, &token, "market.change", &at(day(3), "09:00")).await;
    let clash = problem(
        step(
            app,
            &token,
            &id,
            "reschedule",
            Some("\"r2\""),
            Some(json!({"slot": at(day(3), "10:00")})),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(clash["code"], "already_booked");
    assert_eq!(clash["appointment"], other_day["id"]);
    // The same slot is no move; an old revision is refused.
    let same = problem(
        step(
            app,
            &token,
            &id,
            "reschedule",
            Some("\"r2\""),
            Some(json!({"slot": at(day(2), "14:00")})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(same["errors"][0]["pointer"], "/slot");
    problem(
        step(
            app,
            &token,
            &id,
            "reschedule",
            Some("\"r1\""),
            Some(json!({"slot": at(day(2), "15:00")})),
        )
        .await,
        412,
    )
    .await;
    // A full slot refuses the move; the booking stays where it was.
    for n in 0..4 {
        book(
            app,
            &enterprise(app, &uscc(100 + n)),
            "market.change",
            &at(day(2), "16:00"),
        )
        .await;
    }
    let full = problem(
        step(
            app,
            &token,
            &id,
            "reschedule",
            Some("\"r2\""),
            Some(json!({"slot": at(day(2), "16:00")})),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(full["code"], "slot_full");
    let unchanged: Value = read(app, &token, &id).await.json().await.unwrap();
    assert_eq!(unchanged["slot_start"], moved["slot_start"]);
    assert_eq!(unchanged["revision"], 2);
    // Cancelled: the place is free again, and a cancelled booking cannot be cancelled again.
    let cancelled = step(app, &token, &id, "cancel", Some("\"r2\""), None).await;
    assert_eq!(cancelled.status(), 200);
    let cancelled: Value = cancelled.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].is_string());
    let again = problem(
        step(app, &token, &id, "cancel", Some("\"r3\""), None).await,
        409,
    )
    .await;
    assert_eq!(again["code"], "action_not_allowed");
    assert_eq!(again["state"], "cancelled");
    assert_eq!(
        audit_actions(app, &id),
        [
            "appointment.booked",
            "appointment.rescheduled",
            "appointment.cancelled"
        ]
    );
    let ics = app
        .get(&format!("/api/v1/appointments/{id}/calendar"), Some(&token))
        .await
        .text()
        .await
        .unwrap();
    assert!(ics.contains("STATUS:CANCELLED"), "{ics}");
    // The same matter that day can be booked again once cancelled.
    let rebooked = book(app, &token, "market.change", &at(day(2), "09:00")).await;
    // Within the cutoff (2 hours before the slot) nothing changes any more.
    let rebooked_id = rebooked["id"].as_str().unwrap();
    move_slot(
        app,
        rebooked_id,
        TimeDelta::minutes(90),
        TimeDelta::minutes(30),
        TimeDelta::minutes(15),
    );
    let late = problem(
        step(app, &token, rebooked_id, "cancel", Some("\"r1\""), None).await,
        409,
    )
    .await;
    assert_eq!(late["code"], "cutoff_passed");
    assert!(late["cutoff_at"].is_string());
    let late = problem(
        step(
            app,
            &token,
            rebooked_id,
            "reschedule",
            Some("\"r1\""),
            Some(json!({"slot": at(day(3), "09:00")})),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(late["code"], "cutoff_passed");
    let still: Value = read(app, &token, rebooked_id).await.json().await.unwrap();
    assert_eq!(still["status"], "booked");
}

// ---------------------------------------------------------------------------------------------
// Check-in

async fn check_in_by_the_units_clerk(app: &TestApp) {
    let token = app.enterprise_token();
    let clerk = app.clerk_token(UnitCode::Market);
    let booked = book(app, &token, "market.change", &at(day(3), "09:00")).await;
    let id = id(&booked);
    // Only a clerk, only of the counter's unit.
    problem(step(app, &token, &id, "check-in", None, None).await, 403).await;
    problem(
        step(
            app,
            &app.token(Actor::Supervisor(Some(UnitCode::Market))),
            &id,
            "check-in",
            None,
            None,
        )
        .await,
        403,
    )
    .await;
    problem(
        step(
            app,
            &app.clerk_token(UnitCode::Tax),
            &id,
            "check-in",
            None,
            None,
        )
        .await,
        404,
    )
    .await;
    // Another day.
    let body = problem(step(app, &clerk, &id, "check-in", None, None).await, 409).await;
    assert_eq!(
        (body["code"].as_str(), body["reason"].as_str()),
        (Some("check_in_not_open"), Some("not_today"))
    );
    // Today, three hours early: before the early window (60 minutes).
    move_slot(
        app,
        &id,
        TimeDelta::hours(3),
        TimeDelta::minutes(30),
        TimeDelta::minutes(15),
    );
    let early = problem(step(app, &clerk, &id, "check-in", None, None).await, 409).await;
    // Past 21:00 local a slot three hours ahead falls on tomorrow: then it is "not today".
    assert!(
        matches!(
            early["reason"].as_str(),
            Some("too_early") | Some("not_today")
        ),
        "{early}"
    );
    // Past the slot's end and grace.
    move_slot(
        app,
        &id,
        TimeDelta::minutes(-50),
        TimeDelta::minutes(30),
        TimeDelta::minutes(15),
    );
    let closed = problem(step(app, &clerk, &id, "check-in", None, None).await, 409).await;
    assert_eq!(closed["reason"], "no_show");
    // In the window (the slot began a minute ago: the same local day at any hour but the
    // first minute after midnight): checked in, with what a ticket needs.
    move_slot(
        app,
        &id,
        TimeDelta::minutes(-1),
        TimeDelta::minutes(30),
        TimeDelta::minutes(15),
    );
    let response = step(app, &clerk, &id, "check-in", None, None).await;
    assert_eq!(response.status(), 200);
    let checked: Value = response.json().await.unwrap();
    assert_eq!(checked["status"], "checked_in");
    for key in [
        "id",
        "unit",
        "counter",
        "matter",
        "uscc",
        "slot_start",
        "slot_end",
        "checked_in_at",
    ] {
        assert!(!checked[key].is_null(), "{key}: {checked}");
    }
    assert!(checked.as_object().unwrap().contains_key("request_id"));
    // The visitor has a ticket in the unit's window queue, numbered for the day.
    let ticket = &checked["ticket"];
    assert_eq!(ticket["kind"], "appointment", "{checked}");
    assert_eq!(ticket["appointment_id"], checked["id"]);
    assert_eq!(ticket["state"], "waiting");
    let number = ticket["number"].as_str().unwrap().to_string();
    assert!(number.len() == 4 && number.ends_with("001"), "{number}");
    let queue: Value = app
        .get("/api/v1/tickets", Some(&clerk))
        .await
        .json()
        .await
        .unwrap();
    let numbers: Vec<&str> = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["number"].as_str())
        .collect();
    assert_eq!(numbers, [number.as_str()], "{queue}");
    let again = problem(step(app, &clerk, &id, "check-in", None, None).await, 409).await;
    assert_eq!(again["code"], "action_not_allowed");
    // A checked-in booking is not cancelled by the enterprise.
    let body = problem(
        step(app, &token, &id, "cancel", Some("\"r2\""), None).await,
        409,
    )
    .await;
    assert_eq!(body["code"], "action_not_allowed");
    assert_eq!(
        audit_actions(app, &id),
        ["appointment.booked", "appointment.checked_in"]
    );
}

// ---------------------------------------------------------------------------------------------
// No-shows and reminders

async fn no_shows_and_reminders_exactly_once(app: &TestApp) {
    let token = app.enterprise_token();
    let monday = book(app, &token, "market.change", &at(day(0), "10:00")).await;
    let tuesday = book(app, &token, "market.change", &at(day(1), "10:00")).await;
    let catalog = Catalog::builtin();
    let hall = Hall::builtin(&catalog).unwrap();
    // Monday 10:50: past Monday's 10:30 end plus 15 minutes of grace, and past Tuesday's
    // reminder time (Monday 09:00). Two instances look at the same moment.
    let now = instant(&at(day(0), "10:50"));
    let looks: Vec<(usize, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (catalog, hall) = (&catalog, &hall);
                scope.spawn(move || {
                    let mut conn = connect(app);
                    mashangban::db::appointments::work(
                        &mut conn, catalog, hall, Shanghai, 120, now, 100,
                    )
                    .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let marked: usize = looks.iter().map(|l| l.0).sum();
    let reminded: usize = looks.iter().map(|l| l.1).sum();
    assert_eq!((marked, reminded), (1, 1), "{looks:?}");
    // Once more: nothing left to do.
    let mut conn = connect(app);
    assert_eq!(
        mashangban::db::appointments::work(&mut conn, &catalog, &hall, Shanghai, 120, now, 100)
            .unwrap(),
        (0, 0)
    );
    let monday_now: Value = read(app, &token, &id(&monday)).await.json().await.unwrap();
    assert_eq!(monday_now["status"], "no_show");
    assert_eq!(
        audit_actions(app, &id(&monday)),
        ["appointment.booked", "appointment.no_show"]
    );
    let reminders = mails(app, "appointment_reminder");
    assert_eq!(reminders.len(), 1);
    assert!(
        reminders[0].1.contains(&format!("{} 10:00–10:30", day(1))),
        "{}",
        reminders[0].1
    );
    let tuesday_now: Value = read(app, &token, &id(&tuesday)).await.json().await.unwrap();
    assert_eq!(tuesday_now["status"], "booked");
    // Counted per enterprise: the enterprise sees its own, the unit and the district theirs.
    let counts = |token: String| async move {
        let response = app.get("/api/v1/appointments/no-shows", Some(&token)).await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    };
    assert_eq!(
        counts(token.clone()).await,
        json!([{"uscc": USCC_A, "no_shows": 1}])
    );
    assert_eq!(
        counts(enterprise(app, USCC_B)).await,
        json!([{"uscc": USCC_B, "no_shows": 0}])
    );
    assert_eq!(
        counts(app.token(Actor::Supervisor(None))).await,
        json!([{"uscc": USCC_A, "no_shows": 1}])
    );
    assert_eq!(
        counts(app.token(Actor::Supervisor(Some(UnitCode::Market)))).await,
        json!([{"uscc": USCC_A, "no_shows": 1}])
    );
    assert_eq!(counts(app.clerk_token(UnitCode::Tax)).await, json!([]));
    // The supervisors' day: Monday at market, one no-show of one booking.
    let day_view = |token: String, query: String| async move {
        app.get(&format!("/api/v1/appointments/day?{query}"), Some(&token))
            .await
    };
    let response = day_view(
        app.token(Actor::Supervisor(Some(UnitCode::Market))),
        format!("date={}", day(0)),
    )
    .await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["working_day"], true);
    assert_eq!(view["units"].as_array().unwrap().len(), 1);
    let market = &view["units"][0];
    assert_eq!(market["unit"], "market");
    let a01 = market["counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["counter"] == "A01")
        .unwrap();
    assert_eq!(a01["slots"], 14);
    assert_eq!(a01["capacity"], 56);
    assert_eq!(a01["booked"], 1);
    assert_eq!(a01["no_show"], 1);
    assert_eq!(a01["no_show_rate"], 1.0);
    assert_eq!(a01["utilisation"], 1.0 / 56.0);
    assert_eq!(a01["appointments"][0]["id"], monday["id"]);
    assert_eq!(market["capacity"], 112, "two counters");
    let district: Value = day_view(
        app.token(Actor::Supervisor(None)),
        format!("date={}", day(0)),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(district["units"].as_array().unwrap().len() > 1);
    assert_eq!(district["booked"], 1);
    // Refusals.
    problem(
        day_view(
            app.token(Actor::Supervisor(Some(UnitCode::Market))),
            "unit=tax".into(),
        )
        .await,
        403,
    )
    .await;
    problem(day_view(token.clone(), String::new()).await, 403).await;
    problem(
        day_view(app.clerk_token(UnitCode::Market), String::new()).await,
        403,
    )
    .await;
    problem(
        day_view(app.token(Actor::Supervisor(None)), "date=monday".into()).await,
        422,
    )
    .await;
    problem(
        day_view(app.token(Actor::Supervisor(None)), "unit=moon".into()).await,
        422,
    )
    .await;
    problem(app.get("/api/v1/appointments/day", None).await, 401).await;
}

async fn the_worker_marks_no_shows(app: &TestApp) {
    let token = app.enterprise_token();
    let booked = book(app, &token, "market.change", &at(day(4), "09:00")).await;
    let id = id(&booked);
    // The slot ended an hour ago (as if time had passed).
    move_slot(
        app,
        &id,
        TimeDelta::minutes(-90),
        TimeDelta::minutes(30),
        TimeDelta::minutes(15),
    );
    let mut status = Value::Null;
    for _ in 0..200 {
        let now: Value = read(app, &token, &id).await.json().await.unwrap();
        status = now["status"].clone();
        if status == "no_show" {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "no_show");
    assert_eq!(
        audit_actions(app, &id),
        ["appointment.booked", "appointment.no_show"]
    );
}

// ---------------------------------------------------------------------------------------------
// Start-up

/// A hall file that names a matter the catalog does not have stops the server with one line
/// naming the entry.
#[actix_web::test]
async fn a_bad_hall_file_stops_the_server() {
    let (dir, url) = helpers::fresh_sqlite();
    let file = dir.path().join("appointments.toml");
    std::fs::write(
        &file,
        "[[units]]\nunit = \"market\"\nslot_minutes = 30\ncapacity = 2\n\n[[units.counters]]\ncode = \"A01\"\nname = \"窗口\"\nmatters = [\"service-center.appointment\"]\n",
    )
    .unwrap();
    let mut settings = helpers::test_settings(&url);
    settings.appointments.file = file.display().to_string();
    let error = match mashangban::app::Application::build(settings).await {
        Ok(_) => panic!("the server started with a bad hall file"),
        Err(error) => error.to_string(),
    };
    assert_eq!(
        error,
        format!(
            "appointments {}: units[market].counters[A01].matters[0]: `service-center.appointment` is not a matter of the catalog",
            file.display()
        )
    );
    assert!(!error.contains('\n'));
}

// ---------------------------------------------------------------------------------------------
// Visibility

async fn who_sees_what(app: &TestApp) {
    let token = app.enterprise_token();
    let mine = book(app, &token, "market.change", &at(day(0), "09:30")).await;
    let theirs = book(
        app,
        &enterprise(app, USCC_B),
        "tax.registration",
        &at(day(0), "09:30"),
    )
    .await;
    let list = |token: String, query: &'static str| async move {
        let response = app
            .get(&format!("/api/v1/appointments{query}"), Some(&token))
            .await;
        assert_eq!(response.status(), 200);
        let items: Vec<Value> = response.json().await.unwrap();
        items
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(list(token.clone(), "").await, [id(&mine)]);
    assert_eq!(
        list(app.clerk_token(UnitCode::Market), "").await,
        [id(&mine)]
    );
    assert_eq!(
        list(app.token(Actor::Supervisor(Some(UnitCode::Tax))), "").await,
        [id(&theirs)]
    );
    assert!(
        list(app.clerk_token(UnitCode::Housing), "")
            .await
            .is_empty()
    );
    let all = list(app.token(Actor::Supervisor(None)), "").await;
    assert_eq!(all.len(), 2);
    assert_eq!(
        list(app.admin_token(), "?status=booked&matter=tax.registration").await,
        [id(&theirs)]
    );
    assert!(
        list(app.admin_token(), "?status=cancelled")
            .await
            .is_empty()
    );
    problem(
        app.get("/api/v1/appointments?status=lost&limit=0", Some(&token))
            .await,
        422,
    )
    .await;
    problem(app.get("/api/v1/appointments", None).await, 401).await;
    // One appointment: its owner and its unit see it, with an ETag; nobody else.
    let response = read(app, &token, &id(&mine)).await;
    assert_eq!(response.status(), 200);
    let tag = response.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(tag, "\"r1\"");
    let cached = app
        .client
        .get(app.url(&format!("/api/v1/appointments/{}", id(&mine))))
        .bearer_auth(&token)
        .header("If-None-Match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(
        read(app, &app.clerk_token(UnitCode::Market), &id(&mine))
            .await
            .status(),
        200
    );
    problem(
        read(app, &app.clerk_token(UnitCode::Tax), &id(&mine)).await,
        404,
    )
    .await;
    problem(read(app, &enterprise(app, USCC_B), &id(&mine)).await, 404).await;
    problem(read(app, &token, "no-such-id").await, 404).await;
    problem(
        app.get(&format!("/api/v1/appointments/{}", id(&mine)), None)
            .await,
        401,
    )
    .await;
}
