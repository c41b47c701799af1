//! Notification mail through the outbox, against a real SMTP server on 127.0.0.1
//! (`smtp_sink`), on both backends: the mails of real lifecycle steps (recipient, subject, body,
//! `Message-ID`), an SMTP outage with requests flowing, dead letters, permanent refusals, a
//! batch with mixed outcomes, two senders on one database, the batch claim and record at the
//! database (two claimers, a lapsed lease, a batch given back), the `.eml` file transport, and
//! the outbox listing.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use chrono::{NaiveDateTime, SubsecRound, TimeDelta, Utc};
use diesel::prelude::*;
use mail_parser::MimeHeaders as _;
use mashangban::auth::Actor;
use mashangban::config::{MailTls, Settings};
use mashangban::db::notifications::{
    Attempt, Notice, NotificationRow, Outcome, claim, enqueue, record_all, release,
};
use mashangban::db::schema::notifications;
use mashangban::db::{self, DatabaseUrl, DbConnection};
use mashangban::domain::UnitCode;
use mashangban::domain::notice::{About, Message};
use serde_json::{Value, json};

use crate::helpers::{TestApp, fresh_postgres, fresh_sqlite, problem, start, test_settings};
use crate::requests::matter_body;
use crate::smtp_sink::{Received, SmtpSink, TlsSmtpSink};

/// The contact address of `matter_body`.
const CONTACT: &str = "office@example.com";
/// The sender the tests configure.
const FROM: &str = "马上办 测试 <noreply@mashangban.test>";
/// Longest a test waits for the sender; far more than it needs.
const PATIENCE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Mail settings pointing at the sink on `port`, with small delays.
fn to_sink(settings: &mut Settings, port: u16) {
    let mail = &mut settings.mail;
    mail.host = "127.0.0.1".into();
    mail.port = port;
    mail.tls = MailTls::None;
    mail.from = FROM.into();
    mail.timeout_secs = 5;
    mail.max_attempts = 100;
    mail.backoff_base_secs = 1;
    mail.backoff_max_secs = 1;
    mail.tick_ms = 50;
    mail.worker = true;
}

/// A server on a fresh database of `backend` with `configure`d settings; `None` when
/// PostgreSQL is not configured.
async fn spawn(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    match backend {
        Backend::Sqlite => {
            let (dir, url) = fresh_sqlite();
            let mut settings = test_settings(&url);
            configure(&mut settings);
            Some(start(settings, Some(dir), None).await)
        }
        Backend::Postgres => {
            let (admin_url, name, url) = fresh_postgres()?;
            let mut settings = test_settings(&url);
            configure(&mut settings);
            Some(start(settings, None, Some((admin_url, name))).await)
        }
    }
}

/// Runs each named `async fn(Backend)` once on SQLite and once on PostgreSQL.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                #[cfg_attr(not(postgres_tests), ignore = "needs MASHANGBAN_TEST_DATABASE_URL at build time")]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

on_both!(
    an_accepted_request_mails_the_enterprise,
    mails_wait_out_an_smtp_outage_and_arrive_once,
    a_mail_that_keeps_failing_is_parked_as_dead,
    a_permanent_refusal_is_dead_at_once,
    a_batch_records_each_outcome,
    two_senders_on_one_database_send_each_mail_once,
    two_claims_at_once_split_a_backlog,
    a_lapsed_lease_is_not_overwritten_by_the_old_sender,
    a_batch_not_sent_is_given_back,
    a_backlog_drains_over_few_kept_connections,
    the_outbox_is_listed_for_supervisors,
);

/// Polls `probe` until it gives a value, for at most [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Submits a request of enterprise A; its id and number.
async fn submit(app: &TestApp) -> (String, String) {
    let response = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(app.enterprise_token())
        .json(&matter_body("market.establish"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_string(),
        body["number"].as_str().unwrap().to_string(),
    )
}

/// Takes `action` on request `id` as a market clerk, with the current ETag; must answer 200.
async fn act(app: &TestApp, id: &str, action: &str) {
    let clerk = app.clerk_token(UnitCode::Market);
    let read = app
        .get(&format!("/api/v1/requests/{id}"), Some(&clerk))
        .await;
    let etag = read.headers()["etag"].to_str().unwrap().to_string();
    let response = app
        .client
        .post(app.url(&format!("/api/v1/requests/{id}/actions")))
        .bearer_auth(&clerk)
        .header("If-Match", etag)
        .json(&json!({ "action": action }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{action}: {body}");
}

/// A submitted request called and accepted: the enterprise's "accepted" mail is in the outbox.
async fn accepted_request(app: &TestApp) -> (String, String) {
    let (id, number) = submit(app).await;
    act(app, &id, "call").await;
    act(app, &id, "accept").await;
    (id, number)
}

/// The outbox as an administrator sees it, with `query` (e.g. `kind=accepted`).
async fn outbox(app: &TestApp, query: &str) -> Vec<Value> {
    let response = app
        .get(
            &format!("/api/v1/notifications?limit=100&{query}"),
            Some(&app.admin_token()),
        )
        .await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

/// The one outbox row of `kind` about request `id`.
async fn row_of(app: &TestApp, id: &str, kind: &str) -> Value {
    let rows = outbox(app, &format!("request_id={id}&kind={kind}")).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0].clone()
}

/// How often the sink received each `Message-ID`.
fn by_message_id(received: &[Received]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for mail in received {
        let id = mail
            .header("Message-ID")
            .expect("every mail has a Message-ID");
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// Checks the mail the sink received for the "accepted" row `row` of request `number`.
fn check_accepted_mail(mail: &Received, row: &Value, number: &str) {
    assert_eq!(mail.to, [CONTACT]);
    assert_eq!(mail.from, "noreply@mashangban.test");
    assert_eq!(
        mail.header("Message-ID").as_deref(),
        row["message_id"].as_str(),
        "the stored Message-ID, exactly"
    );
    let parsed = mail.parsed();
    let subject = parsed.subject().unwrap();
    assert_eq!(subject, format!("【马上办】{number} 已受理 / accepted"));
    assert_eq!(subject, row["subject"]);
    let from = parsed.from().and_then(|a| a.first()).unwrap();
    assert_eq!(from.address(), Some("noreply@mashangban.test"));
    assert_eq!(from.name(), Some("马上办 测试"));
    let to = parsed.to().and_then(|a| a.first()).unwrap();
    assert_eq!(to.address(), Some(CONTACT));
    let content_type = parsed.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("text", Some("plain"))
    );
    assert_eq!(content_type.attribute("charset"), Some("utf-8"));
    let body = parsed.body_text(0).unwrap();
    let zh = body
        .find(&format!("您的办件 {number}（企业设立登记）已受理"))
        .unwrap_or_else(|| panic!("Chinese text in {body}"));
    let en = body
        .find(&format!("Your request {number}"))
        .unwrap_or_else(|| panic!("English text in {body}"));
    assert!(zh < en, "Chinese first: {body}");
    assert!(body.contains("has been accepted"), "{body}");
}

async fn an_accepted_request_mails_the_enterprise(backend: Backend) {
    let sink = SmtpSink::start();
    let Some(app) = spawn(backend, |s| to_sink(s, sink.port())).await else {
        return;
    };
    let (id, number) = accepted_request(&app).await;
    let mail = eventually("the accepted mail", || async {
        sink.received().into_iter().next()
    })
    .await;
    let row = eventually("the row marked sent", || async {
        let row = row_of(&app, &id, "accepted").await;
        (row["status"] == "sent").then_some(row)
    })
    .await;
    check_accepted_mail(&mail, &row, &number);
    assert_eq!(row["recipient"], CONTACT);
    assert_eq!(row["attempts"], 1);
    assert!(
        row["sent_at"].is_string() && row["last_error"].is_null(),
        "{row}"
    );
    let message_id = row["message_id"].as_str().unwrap();
    assert_eq!(
        message_id,
        format!("<{}@mashangban>", row["id"].as_str().unwrap())
    );
    // Nothing else was mailed for this request: intake and call tell nobody.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 1, "{:?}", sink.received());
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("mashangban_mail_attempts_total{outcome=\"sent\"} 1"),
        "{metrics}"
    );
}

async fn mails_wait_out_an_smtp_outage_and_arrive_once(backend: Backend) {
    let mut sink = SmtpSink::start();
    let Some(app) = spawn(backend, |s| to_sink(s, sink.port())).await else {
        return;
    };
    sink.stop();

    // Requests flow while the mail server is down: every step answers 200 (`act` checks).
    let mut numbers = BTreeMap::new();
    for _ in 0..4 {
        let (id, number) = accepted_request(&app).await;
        numbers.insert(id, number);
    }
    // The mails pile up, each tried and waiting with its error.
    let waiting = eventually("every mail tried at least twice and waiting", || async {
        let rows = outbox(&app, "kind=accepted").await;
        let tried = rows.len() == numbers.len()
            && rows.iter().all(|r| {
                r["status"] == "pending"
                    && r["attempts"].as_i64().unwrap() >= 2
                    && r["last_error"].as_str().is_some_and(|e| !e.is_empty())
            });
        tried.then_some(rows)
    })
    .await;
    assert!(sink.received().is_empty());
    let pending = outbox(&app, "status=pending").await;
    assert_eq!(pending.len(), numbers.len(), "{pending:?}");

    sink.restart();
    let expected: BTreeMap<String, usize> = waiting
        .iter()
        .map(|r| (r["message_id"].as_str().unwrap().to_string(), 1))
        .collect();
    eventually("every waiting mail delivered", || async {
        (by_message_id(&sink.received()).len() == expected.len()).then_some(())
    })
    .await;
    let rows = eventually("every row marked sent", || async {
        let rows = outbox(&app, "kind=accepted").await;
        rows.iter().all(|r| r["status"] == "sent").then_some(rows)
    })
    .await;
    // A little longer: no mail comes twice.
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    let received = sink.received();
    assert_eq!(by_message_id(&received), expected, "each mail exactly once");
    for row in &rows {
        let mail = received
            .iter()
            .find(|m| m.header("Message-ID").as_deref() == row["message_id"].as_str())
            .unwrap();
        let number = &numbers[row["request_id"].as_str().unwrap()];
        check_accepted_mail(mail, row, number);
        assert!(row["attempts"].as_i64().unwrap() >= 3, "{row}");
        assert!(
            row["last_error"].is_string(),
            "the outage stays on record: {row}"
        );
    }
    assert!(outbox(&app, "status=pending").await.is_empty());
}

async fn a_mail_that_keeps_failing_is_parked_as_dead(backend: Backend) {
    let mut sink = SmtpSink::start();
    let Some(app) = spawn(backend, |s| {
        to_sink(s, sink.port());
        s.mail.max_attempts = 2;
    })
    .await
    else {
        return;
    };
    sink.stop();
    let (id, _) = accepted_request(&app).await;
    let row = eventually("the mail parked as dead", || async {
        let row = row_of(&app, &id, "accepted").await;
        (row["status"] == "dead").then_some(row)
    })
    .await;
    assert_eq!(row["attempts"], 2);
    assert!(row["sent_at"].is_null());
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("mashangban_mail_attempts_total{outcome=\"retry\"} 1")
            && metrics.contains("mashangban_mail_attempts_total{outcome=\"dead\"} 1"),
        "{metrics}"
    );
    let error = row["last_error"].as_str().unwrap();
    assert!(error.to_lowercase().contains("connect"), "{error}");
    assert_eq!(outbox(&app, "status=dead").await.len(), 1);

    // Dead stays dead: the server coming back sends nothing.
    sink.restart();
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    assert!(sink.received().is_empty());
    assert_eq!(row_of(&app, &id, "accepted").await["attempts"], 2);
}

async fn a_permanent_refusal_is_dead_at_once(backend: Backend) {
    let sink = SmtpSink::start();
    sink.reject(CONTACT);
    let Some(app) = spawn(backend, |s| to_sink(s, sink.port())).await else {
        return;
    };
    let (id, _) = accepted_request(&app).await;
    let row = eventually("the refused mail parked", || async {
        let row = row_of(&app, &id, "accepted").await;
        (row["status"] == "dead").then_some(row)
    })
    .await;
    assert_eq!(row["attempts"], 1, "a 5xx is not retried: {row}");
    assert!(row["last_error"].as_str().unwrap().contains("550"), "{row}");
    assert!(sink.received().is_empty());
}

/// Writes `n` mails straight to the outbox, as a lifecycle step's transaction would.
fn enqueue_directly(app: &TestApp, n: usize) {
    let url = DatabaseUrl::parse(&app.settings.database.url).unwrap();
    let mut conn = db::establish(&url, &app.settings.database).unwrap();
    let notices: Vec<Notice> = (0..n)
        .map(|i| Notice {
            request_id: None,
            recipient: format!("enterprise-{i}@example.com"),
            message: Message::Accepted,
            about: About {
                number: format!("PT20261128-{i:06}"),
                matter_zh: "企业设立登记".into(),
                matter_en: "Business establishment registration".into(),
            },
        })
        .collect();
    assert_eq!(enqueue(&mut conn, &notices, Utc::now()).unwrap(), n);
}

async fn two_senders_on_one_database_send_each_mail_once(backend: Backend) {
    // As many as one page of the listing shows.
    const MAILS: usize = 100;
    let sink = SmtpSink::start();
    // The first instance holds the database (and drops it at the end); no sender yet.
    let Some(first) = spawn(backend, |s| {
        to_sink(s, sink.port());
        s.mail.worker = false;
    })
    .await
    else {
        return;
    };
    enqueue_directly(&first, MAILS);
    let mut settings = first.settings.clone();
    settings.mail.worker = true;
    // Small batches: the two senders claim many times from the same backlog.
    settings.mail.batch = 7;
    let one = start(settings.clone(), None, None).await;
    let two = start(settings, None, None).await;
    let received = eventually("every mail", || async {
        let received = sink.received();
        (by_message_id(&received).len() == MAILS).then_some(received)
    })
    .await;
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    let counts = by_message_id(&sink.received());
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    assert_eq!(received.len(), MAILS);
    let rows = outbox(&first, "status=sent").await;
    assert_eq!(rows.len(), MAILS);
    assert!(rows.iter().all(|r| r["attempts"] == 1), "{rows:?}");
    // Each outcome was recorded by the sender that sent it, once.
    let mut sent = 0;
    for app in [&one, &two] {
        let metrics = app.get("/metrics", None).await.text().await.unwrap();
        sent += metrics
            .lines()
            .find_map(|l| l.strip_prefix("mashangban_mail_attempts_total{outcome=\"sent\"} "))
            .map_or(0, |n| n.parse::<usize>().unwrap());
    }
    assert_eq!(sent, MAILS);
    drop((one, two));
}

/// A batch in which the server accepts some mails, refuses one for good (550) and one for now
/// (450): each outcome is recorded on its own row.
async fn a_batch_records_each_outcome(backend: Backend) {
    let sink = SmtpSink::start();
    sink.reject("enterprise-1@example.com");
    sink.defer("enterprise-3@example.com");
    let Some(first) = spawn(backend, |s| {
        to_sink(s, sink.port());
        s.mail.worker = false;
    })
    .await
    else {
        return;
    };
    // Five mails, all due before the sender starts: one batch (the default batch is 20).
    enqueue_directly(&first, 5);
    let mut settings = first.settings.clone();
    settings.mail.worker = true;
    let sender = start(settings, None, None).await;
    let rows = eventually("every mail tried", || async {
        let rows = outbox(&first, "").await;
        rows.iter()
            .all(|r| r["attempts"].as_i64().unwrap() >= 1)
            .then_some(rows)
    })
    .await;
    let by_recipient: BTreeMap<String, Value> = rows
        .into_iter()
        .map(|r| (r["recipient"].as_str().unwrap().to_string(), r))
        .collect();
    for i in [0, 2, 4] {
        let row = &by_recipient[&format!("enterprise-{i}@example.com")];
        assert_eq!(row["status"], "sent", "{row}");
        assert_eq!(row["attempts"], 1, "{row}");
        assert!(
            row["sent_at"].is_string() && row["last_error"].is_null(),
            "{row}"
        );
    }
    let dead = &by_recipient["enterprise-1@example.com"];
    assert_eq!(dead["status"], "dead", "{dead}");
    assert_eq!(dead["attempts"], 1, "a 5xx is not retried: {dead}");
    assert!(
        dead["last_error"].as_str().unwrap().contains("550"),
        "{dead}"
    );
    assert!(dead["sent_at"].is_null());
    let waiting = &by_recipient["enterprise-3@example.com"];
    assert_eq!(waiting["status"], "pending", "a 4xx is retried: {waiting}");
    assert!(
        waiting["last_error"].as_str().unwrap().contains("450"),
        "{waiting}"
    );
    assert!(waiting["sent_at"].is_null());

    let mut to: Vec<String> = sink.received().iter().map(|m| m.to.join(",")).collect();
    to.sort();
    assert_eq!(
        to,
        [0, 2, 4].map(|i| format!("enterprise-{i}@example.com")),
        "the accepted mails, each once"
    );
    // The sender counts each outcome just after its chunk commits.
    eventually("the outcomes counted", || async {
        let metrics = sender.get("/metrics", None).await.text().await.unwrap();
        (metrics.contains("mashangban_mail_attempts_total{outcome=\"sent\"} 3")
            && metrics.contains("mashangban_mail_attempts_total{outcome=\"dead\"} 1")
            && metrics.contains("mashangban_mail_attempts_total{outcome=\"retry\"}"))
        .then_some(())
    })
    .await;
    drop(sender);
}

/// A connection of its own to `app`'s database.
fn connect(app: &TestApp) -> DbConnection {
    let url = DatabaseUrl::parse(&app.settings.database.url).unwrap();
    db::establish(&url, &app.settings.database).unwrap()
}

/// Row `id` as stored.
fn stored(conn: &mut DbConnection, id: &str) -> NotificationRow {
    notifications::table
        .find(id)
        .select(NotificationRow::as_select())
        .first(conn)
        .unwrap()
}

/// An instant a little after every row `enqueue_directly` writes, whole microseconds (as
/// stored).
fn soon() -> NaiveDateTime {
    Utc::now().trunc_subsecs(6).naive_utc() + TimeDelta::seconds(1)
}

/// The sender's lease with the default `[mail] timeout_secs`.
const LEASE: TimeDelta = TimeDelta::seconds(130);

/// Two claimers (threads with their own connections, as two server instances) take batches
/// from one backlog at once, until none is left: every mail is taken, by exactly one of them.
async fn two_claims_at_once_split_a_backlog(backend: Backend) {
    const MAILS: usize = 200;
    let Some(app) = spawn(backend, |s| s.mail.worker = false).await else {
        return;
    };
    enqueue_directly(&app, MAILS);
    let now = soon();
    let start = std::sync::Arc::new(std::sync::Barrier::new(2));
    let claimers: Vec<_> = (0..2)
        .map(|_| {
            let mut conn = connect(&app);
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut mine = Vec::new();
                // Empty only when no free row is left that another claim is not holding; the
                // last claimer to stop sees none left at all.
                loop {
                    let rows = claim(&mut conn, now, now + LEASE, 7).unwrap();
                    if rows.is_empty() {
                        return mine;
                    }
                    assert!(rows.len() <= 7);
                    mine.extend(rows.into_iter().map(|r| r.id));
                }
            })
        })
        .collect();
    let taken: Vec<Vec<String>> = claimers.into_iter().map(|c| c.join().unwrap()).collect();
    let mut all: Vec<String> = taken.concat();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "no mail taken twice");
    assert_eq!(all.len(), MAILS, "every mail taken");
    let mut conn = connect(&app);
    let held: i64 = notifications::table
        .filter(notifications::locked_until.eq(now + LEASE))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(held, MAILS as i64);
    assert!(claim(&mut conn, now, now + LEASE, 7).unwrap().is_empty());
}

/// The lease rules at the database: nobody takes a held mail until its lease has lapsed; then
/// another sender may, and the old sender's failure record no longer lands (it would overwrite
/// the new sender's hold), nor does its give-back; its success still does.
async fn a_lapsed_lease_is_not_overwritten_by_the_old_sender(backend: Backend) {
    let Some(app) = spawn(backend, |s| s.mail.worker = false).await else {
        return;
    };
    enqueue_directly(&app, 1);
    let mut conn = connect(&app);
    let t0 = soon();
    let old_lease = t0 + LEASE;
    let taken = claim(&mut conn, t0, old_lease, 20).unwrap();
    assert_eq!(taken.len(), 1);
    let id = taken[0].id.clone();
    assert_eq!(taken[0].locked_until, Some(old_lease));
    // Held up to the lease's last instant.
    assert!(
        claim(&mut conn, old_lease, old_lease + LEASE, 20)
            .unwrap()
            .is_empty()
    );

    let t1 = old_lease + TimeDelta::seconds(1);
    let new_lease = t1 + LEASE;
    let retaken = claim(&mut conn, t1, new_lease, 20).unwrap();
    assert_eq!(retaken.len(), 1, "free again once the lease lapsed");
    assert_eq!(retaken[0].id, id);

    let outcome = |attempt, at| Outcome {
        id: id.clone(),
        attempts: 1,
        attempt,
        at,
    };
    let retry = |retry_at| Attempt::Retry {
        error: "421 try later".into(),
        retry_at,
    };
    let dead = Attempt::Dead {
        error: "550 no".into(),
    };
    let late = [outcome(retry(t1 + LEASE), t1), outcome(dead, t1)];
    assert_eq!(
        record_all(&mut conn, old_lease, &late).unwrap(),
        [false, false],
        "the old sender's failures do not land"
    );
    assert_eq!(
        release(&mut conn, std::slice::from_ref(&id), old_lease).unwrap(),
        0
    );
    let row = stored(&mut conn, &id);
    assert_eq!(
        (
            row.status.as_str(),
            row.attempts,
            row.last_error,
            row.locked_until
        ),
        ("pending", 0, None, Some(new_lease)),
        "the new sender's hold stands"
    );

    // The new sender's own failure is recorded.
    let retry_at = t1 + TimeDelta::seconds(5);
    let failed = [outcome(retry(retry_at), t1)];
    assert_eq!(record_all(&mut conn, new_lease, &failed).unwrap(), [true]);
    let row = stored(&mut conn, &id);
    assert_eq!(
        (
            row.status.as_str(),
            row.attempts,
            row.next_attempt_at,
            row.locked_until
        ),
        ("pending", 1, retry_at, None)
    );
    assert_eq!(row.last_error.as_deref(), Some("421 try later"));

    // A success is recorded on any pending row, lease or not: it saves a resend.
    let sent = [outcome(Attempt::Sent, t1)];
    assert_eq!(record_all(&mut conn, old_lease, &sent).unwrap(), [true]);
    let row = stored(&mut conn, &id);
    assert_eq!((row.status.as_str(), row.sent_at), ("sent", Some(t1)));
    assert!(
        claim(&mut conn, retry_at, retry_at + LEASE, 20)
            .unwrap()
            .is_empty()
    );
}

/// Mails of a batch the sender will not send now (it stops, or too little lease is left) are
/// given back: free at once, not after the lease; the rest stay held.
async fn a_batch_not_sent_is_given_back(backend: Backend) {
    let Some(app) = spawn(backend, |s| s.mail.worker = false).await else {
        return;
    };
    enqueue_directly(&app, 3);
    let mut conn = connect(&app);
    let now = soon();
    let batch: Vec<String> = claim(&mut conn, now, now + LEASE, 20)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(batch.len(), 3);
    // Oldest due first; all three were written at the same instant, so by id.
    let mut sorted = batch.clone();
    sorted.sort();
    assert_eq!(batch, sorted);
    let other_lease = now + LEASE + TimeDelta::seconds(1);
    assert_eq!(
        release(&mut conn, &batch[1..], other_lease).unwrap(),
        0,
        "not its lease"
    );
    assert_eq!(release(&mut conn, &batch[1..], now + LEASE).unwrap(), 2);
    let again: Vec<String> = claim(&mut conn, now, other_lease, 20)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        again,
        batch[1..],
        "the given-back mails, and not the one still held"
    );
    assert_eq!(stored(&mut conn, &batch[0]).locked_until, Some(now + LEASE));
}

/// A backlog (after an outage) goes out over a few SMTP connections, each kept for many mails,
/// not one connection per mail; a kept connection the server drops is replaced at once, and no
/// mail is lost, repeated or delayed into a retry by it.
async fn a_backlog_drains_over_few_kept_connections(backend: Backend) {
    const MAILS: usize = 100;
    const PER_CONNECTION: usize = 40;
    let sink = SmtpSink::start();
    // The server drops each connection, unannounced, after 40 mails: the sender learns it
    // only when its next mail fails on the dead connection.
    sink.drop_connections_after(PER_CONNECTION);
    let Some(first) = spawn(backend, |s| {
        to_sink(s, sink.port());
        s.mail.worker = false;
    })
    .await
    else {
        return;
    };
    enqueue_directly(&first, MAILS);
    let mut settings = first.settings.clone();
    settings.mail.worker = true;
    let sender = start(settings, None, None).await;
    eventually("the whole backlog", || async {
        (by_message_id(&sink.received()).len() == MAILS).then_some(())
    })
    .await;
    let counts = by_message_id(&sink.received());
    assert!(
        counts.values().all(|&n| n == 1),
        "each mail once: {counts:?}"
    );
    // 100 mails, at most 40 per connection: 3 connections (one more for each time a look finds
    // the outbox empty, which cannot happen mid-backlog), not 120.
    assert_eq!(sink.connections(), MAILS.div_ceil(PER_CONNECTION));
    let rows = outbox(&first, "status=sent").await;
    assert_eq!(rows.len(), MAILS);
    assert!(
        rows.iter().all(|r| r["attempts"] == 1),
        "a dropped kept connection costs no attempt: {rows:?}"
    );
    drop(sender);
}

async fn the_outbox_is_listed_for_supervisors(backend: Backend) {
    // No sender: the rows stay as written.
    let Some(app) = spawn(backend, |s| s.mail.worker = false).await else {
        return;
    };
    let (first, _) = accepted_request(&app).await;
    let (second, _) = accepted_request(&app).await;

    let path = "/api/v1/notifications";
    assert_eq!(app.get(path, None).await.status(), 401);
    for actor in [
        Actor::Enterprise(mashangban::domain::Uscc::parse(crate::helpers::USCC_A).unwrap()),
        Actor::Clerk(UnitCode::Market),
    ] {
        problem(app.get(path, Some(&app.token(actor))).await, 403).await;
    }

    let page = |token: String, query: &'static str| {
        let app = &app;
        async move {
            let response = app.get(&format!("{path}{query}"), Some(&token)).await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let all = page(app.admin_token(), "").await;
    assert_eq!(all["total"], 2);
    let items = all["items"].as_array().unwrap();
    assert_eq!(items[0]["request_id"], second, "newest first");
    assert_eq!(items[1]["request_id"], first);
    let item = &items[0];
    assert_eq!(item["status"], "pending");
    assert_eq!(item["attempts"], 0);
    assert_eq!(item["kind"], "accepted");
    assert_eq!(item["recipient"], CONTACT);
    assert!(item["next_attempt_at"].is_string() && item["created_at"].is_string());
    assert!(item["sent_at"].is_null() && item["last_error"].is_null());
    assert!(
        item.get("body").is_none(),
        "the listing leaves the body out"
    );

    // Pages: one at a time, with the total on each.
    let one = page(app.admin_token(), "?limit=1").await;
    assert_eq!(
        (one["total"].clone(), one["items"].as_array().unwrap().len()),
        (json!(2), 1)
    );
    let cursor = one["next_cursor"].as_str().unwrap().to_string();
    let next = app
        .get(
            &format!("{path}?limit=1&cursor={cursor}"),
            Some(&app.admin_token()),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(next["items"][0]["request_id"], first);

    // Filters.
    let dead = page(app.admin_token(), "?status=dead").await;
    assert_eq!(dead["total"], 0);
    let completed = page(app.admin_token(), "?kind=completed").await;
    assert_eq!(completed["total"], 0);
    let one_request = outbox(&app, &format!("request_id={first}")).await;
    assert_eq!(one_request.len(), 1);

    // Supervisors: district-wide sees all, a unit supervisor the mails of its unit's requests.
    let district = page(app.token(Actor::Supervisor(None)), "").await;
    assert_eq!(district["total"], 2);
    let market = page(app.token(Actor::Supervisor(Some(UnitCode::Market))), "").await;
    assert_eq!(market["total"], 2);
    let tax = page(app.token(Actor::Supervisor(Some(UnitCode::Tax))), "").await;
    assert_eq!(tax["total"], 0);

    // Every wrong parameter is named.
    let body = problem(
        app.get(
            &format!("{path}?status=lost&kind=gossip&request_id=PT1&cursor=x&limit=500"),
            Some(&app.admin_token()),
        )
        .await,
        422,
    )
    .await;
    let named: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(named, ["status", "kind", "request_id", "cursor", "limit"]);
}

/// Mail over TLS, both ways (`STARTTLS` on a plain connection; TLS from the first byte), over
/// the sender's own socket, to a server for `localhost` whose certificate a throwaway CA signed:
/// refused (the certificate is not trusted, nothing arrives) until `[mail] smtp_ca_file` names
/// that CA, then delivered.
#[actix_web::test]
async fn mail_goes_over_starttls_and_implicit_tls_to_a_server_the_configured_ca_signed() {
    for tls in [MailTls::Starttls, MailTls::Tls] {
        let (ca_pem, chain, key) = crate::tls::intranet_ca();
        let sink = TlsSmtpSink::start(chain, key, tls == MailTls::Tls);
        let to_tls_sink = |s: &mut Settings| {
            to_sink(s, sink.port());
            s.mail.host = "localhost".into();
            s.mail.tls = tls;
        };

        let untrusting = spawn(Backend::Sqlite, to_tls_sink).await.unwrap();
        let (id, _) = accepted_request(&untrusting).await;
        let row = eventually("the failed attempt recorded", || async {
            let row = row_of(&untrusting, &id, "accepted").await;
            (row["attempts"].as_i64().unwrap() >= 1).then_some(row)
        })
        .await;
        assert_eq!(row["status"], "pending", "{tls:?}: {row}");
        let error = row["last_error"].as_str().unwrap().to_lowercase();
        assert!(error.contains("certificate"), "{tls:?}: {error}");
        assert!(sink.received().is_empty(), "{tls:?}");
        drop(untrusting);

        let ca = tempfile::tempdir().unwrap();
        let ca_file = ca.path().join("intranet-ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();
        let trusting = spawn(Backend::Sqlite, |s| {
            to_tls_sink(s);
            s.mail.smtp_ca_file = ca_file.display().to_string();
        })
        .await
        .unwrap();
        let (id, number) = accepted_request(&trusting).await;
        let mail = eventually("the mail over TLS", || async {
            sink.received().into_iter().next()
        })
        .await;
        let row = eventually("the row marked sent", || async {
            let row = row_of(&trusting, &id, "accepted").await;
            (row["status"] == "sent").then_some(row)
        })
        .await;
        check_accepted_mail(&mail, &row, &number);
        assert_eq!(row["attempts"], 1, "{tls:?}: {row}");
    }
}

#[actix_web::test]
async fn without_smtp_mails_become_eml_files() {
    let outbox_dir = tempfile::tempdir().unwrap();
    let folder = outbox_dir.path().join("outbox");
    let app = spawn(Backend::Sqlite, |s| {
        s.mail.host = String::new();
        s.mail.outbox_dir = folder.display().to_string();
        s.mail.tick_ms = 50;
        s.mail.worker = true;
    })
    .await
    .unwrap();
    let (id, number) = accepted_request(&app).await;
    let file = eventually("an .eml file", || async {
        std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "eml"))
    })
    .await;
    let row = eventually("the row marked sent", || async {
        let row = row_of(&app, &id, "accepted").await;
        (row["status"] == "sent").then_some(row)
    })
    .await;
    let mail = Received {
        from: "noreply@mashangban.test".into(),
        to: vec![CONTACT.into()],
        data: std::fs::read(&file).unwrap(),
    };
    assert_eq!(
        mail.header("Message-ID").as_deref(),
        row["message_id"].as_str()
    );
    let parsed = mail.parsed();
    assert_eq!(
        parsed.subject().unwrap(),
        format!("【马上办】{number} 已受理 / accepted")
    );
    assert!(parsed.body_text(0).unwrap().contains("has been accepted"));
}

#[actix_web::test]
async fn bad_mail_settings_stop_the_server_with_one_line() {
    for (change, key) in [
        (
            (|s: &mut Settings| s.mail.from = "not an address".into()) as fn(&mut Settings),
            "mail.from",
        ),
        (
            |s: &mut Settings| s.mail.max_attempts = 0,
            "mail.max_attempts",
        ),
        (
            |s: &mut Settings| s.mail.backoff_max_secs = 1,
            "mail.backoff_max_secs",
        ),
        (
            |s: &mut Settings| s.mail.username = "user".into(),
            "mail.username",
        ),
        (
            |s: &mut Settings| s.mail.host = "smtp://x".into(),
            "mail.host",
        ),
    ] {
        let (_dir, url) = fresh_sqlite();
        let mut settings = test_settings(&url);
        change(&mut settings);
        let error = mashangban::app::Application::build(settings)
            .await
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains(key) && !error.contains('\n'), "{error}");
    }
    // The password is a secret: never in a debug print of the settings.
    let mut settings = Settings::defaults();
    settings.mail.password = "hunter2-smtp-secret".into();
    assert!(!format!("{settings:?}").contains("hunter2"));
}
