//! Issue 18: the lists a person waits for read the big tables through indexes, on a seeded
//! database, on both backends; and their totals stop counting at the cap.

use chrono::NaiveDate;
use mashangban::auth::Actor;
use mashangban::db::explain::{self, ListPlans, Plan};
use mashangban::db::requests::{self, Filters, Scope};
use mashangban::db::{TOTAL_CAP, Total};
use serde_json::Value;

use crate::helpers::{TestApp, connect};
use crate::on_both_backends;

/// Enough requests that the planners prefer indexes (and more than the count's cap).
const SEEDED: u32 = 20_000;

/// The statements whose plans read a big table whole (`which` picks the scans), described.
fn described(lists: &[ListPlans], which: fn(&Plan) -> &Vec<String>) -> String {
    lists
        .iter()
        .flat_map(|list| {
            list.plans.iter().filter(|p| !which(p).is_empty()).map(|p| {
                format!(
                    "{}: reads {:?} whole\n{}\n{}",
                    list.name,
                    which(p),
                    p.statement.0,
                    p.text
                )
            })
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

async fn the_hot_lists_never_read_a_big_table_whole(app: &TestApp) {
    let mut conn = connect(app);
    explain::seed(&mut conn, SEEDED).unwrap();
    // Inside the seeded history, where open statutory and promised clocks fall due.
    let now = NaiveDate::from_ymd_opt(2025, 3, 20)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let lists = explain::hot_lists(&mut conn, now).unwrap();
    assert!(lists.len() >= 20);
    for list in &lists {
        assert!(!list.plans.is_empty(), "{} sent no statement", list.name);
    }
    // Every statement has an index to read the big tables through...
    let missing = described(&lists, |p| &p.unavoidable_scans);
    assert!(missing.is_empty(), "no index serves:\n{missing}");
    // ...and SQLite takes it. PostgreSQL may prefer a `Seq Scan` of 20,000 rows to 1,400
    // index probes (a unit's share of the requests), its right choice at this size
    // (docs/performance.md, "Query plans (issue 18)").
    if app.settings.database.url.starts_with("sqlite") {
        let scans = described(&lists, |p| &p.full_scans);
        assert!(scans.is_empty(), "full scans of big tables:\n{scans}");
    }
}

async fn a_long_list_counts_up_to_the_cap_and_says_so(app: &TestApp) {
    let mut conn = connect(app);
    explain::seed(&mut conn, TOTAL_CAP as u32 + 1).unwrap();
    let (page, total) =
        requests::list(&mut conn, &Scope::All, &Filters::default(), None, 5).unwrap();
    assert_eq!(page.len(), 5);
    assert_eq!(
        total,
        Total {
            count: TOTAL_CAP,
            capped: true
        }
    );
    // Exactly at the cap: exact.
    let one_less = Filters {
        channel: Some("online".into()),
        ..Filters::default()
    };
    let (_, online) = requests::list(&mut conn, &Scope::All, &one_less, None, 5).unwrap();
    assert!(!online.capped && online.count < TOTAL_CAP, "{online:?}");
    let (_, tax) = requests::list(
        &mut conn,
        &Scope::Unit(mashangban::domain::UnitCode::Tax),
        &Filters::default(),
        None,
        5,
    )
    .unwrap();
    assert_eq!(
        tax,
        Total {
            count: 72,
            capped: false
        }
    );

    // Through the API: the total and the flag.
    let token = app.token(Actor::Supervisor(None));
    let body: Value = app
        .get("/api/v1/requests?limit=1", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (body["total"].clone(), body["total_capped"].clone()),
        (1000.into(), true.into()),
        "{body}"
    );
    let mails: Value = app
        .get("/api/v1/notifications?limit=1", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (mails["total"].clone(), mails["total_capped"].clone()),
        (1000.into(), true.into()),
        "{mails}"
    );
    let dead: Value = app
        .get("/api/v1/notifications?status=dead", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (dead["total"].clone(), dead["total_capped"].clone()),
        (11.into(), false.into()),
        "{dead}"
    );
}

/// Every page of a list, `limit` at a time through the cursor, and its total.
fn all_pages(
    conn: &mut mashangban::db::DbConnection,
    scope: &Scope,
    filters: &Filters,
    limit: i64,
) -> (Vec<String>, Total) {
    let (first, total) = requests::list(conn, scope, filters, None, limit).unwrap();
    let mut ids: Vec<String> = first.iter().map(|r| r.request.id.clone()).collect();
    let mut last = first.len() as i64;
    while last == limit {
        let after = ids.last().cloned();
        let (page, again) = requests::list(conn, scope, filters, after.as_deref(), limit).unwrap();
        assert_eq!(again, total, "the total does not move with the cursor");
        ids.extend(page.iter().map(|r| r.request.id.clone()));
        last = page.len() as i64;
    }
    (ids, total)
}

async fn a_unit_list_read_from_its_tasks_matches_the_one_read_from_the_requests(app: &TestApp) {
    use diesel::RunQueryDsl;
    let mut conn = connect(app);
    explain::seed(&mut conn, 600).unwrap();
    // Tax gets a second task in each of its requests and a co-task in each of market's: a
    // request is listed once however many of the unit's tasks it holds.
    for (prefix, from_unit) in [("seed-x", "tax"), ("seed-y", "market")] {
        diesel::sql_query(format!(
            "INSERT INTO tasks (id, request_id, unit, matter_code, category, role, status, \
             created_at, special_procedure) SELECT '{prefix}' || id, request_id, 'tax', \
             matter_code, category, 'co', status, created_at, special_procedure FROM tasks \
             WHERE unit = '{from_unit}' AND id LIKE 'seed-%'"
        ))
        .execute(&mut conn)
        .unwrap();
    }
    let tax_requests: Vec<String> = {
        use diesel::prelude::*;
        use mashangban::db::schema::tasks;
        let mut ids: Vec<String> = tasks::table
            .filter(tasks::unit.eq("tax"))
            .select(tasks::request_id)
            .distinct()
            .load(&mut conn)
            .unwrap();
        ids.sort_by(|a, b| b.cmp(a));
        ids
    };
    assert!(tax_requests.len() > 80, "{}", tax_requests.len());
    // A created-from filter that every request passes makes the list read from the requests.
    let from_the_requests = |mut filters: Filters| {
        filters.created_from =
            NaiveDate::from_ymd_opt(2000, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
        filters
    };
    for status in [None, Some("delivered"), Some("submitted")] {
        for scope in [Scope::Unit(mashangban::domain::UnitCode::Tax), Scope::All] {
            let filters = Filters {
                status: status.map(str::to_string),
                unit: (scope == Scope::All).then(|| "tax".to_string()),
                ..Filters::default()
            };
            let read = all_pages(&mut conn, &scope, &filters, 7);
            let reference = all_pages(&mut conn, &scope, &from_the_requests(filters.clone()), 7);
            assert_eq!(read, reference, "{scope:?} {status:?}");
            assert_eq!(read.1.count as usize, read.0.len(), "{scope:?} {status:?}");
            if status.is_none() {
                assert_eq!(read.0, tax_requests, "{scope:?}");
            }
        }
    }
}

on_both_backends!(
    the_hot_lists_never_read_a_big_table_whole,
    a_long_list_counts_up_to_the_cap_and_says_so,
    a_unit_list_read_from_its_tasks_matches_the_one_read_from_the_requests,
);
