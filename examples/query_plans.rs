//! The query plans of the lists a person waits for (issue 18), for docs/performance.md.
//!
//! Opens the database the server opens (`Database::open`: default settings, the given URL,
//! migrations included). With `--seed N` it first adds the synthetic history of
//! `db::explain::seed` (N requests, one task, three clocks, one mail and one audit event each;
//! then `ANALYZE`) — into an empty database only, never one that holds real data. Then it runs
//! every list of `db::explain::hot_lists` as the endpoints call it, captures the statements
//! diesel sends, and prints each with its plan: `EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on
//! PostgreSQL, with the big tables read whole flagged.
//!
//! ```text
//! cargo run --example query_plans -- sqlite:///tmp/msb-plans/plans.db --seed 20000
//! createdb -h 127.0.0.1 -U postgres msb_plans
//! cargo run --example query_plans -- postgres://postgres@127.0.0.1:5432/msb_plans --seed 20000
//! # A database seeded by examples/sla_bench (1,000,000 requests): leave out --seed.
//! ```

use std::process::ExitCode;

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::Text;
use mashangban::config::Settings;
use mashangban::db::{Database, DbConnection, explain, schema};

#[derive(QueryableByName)]
struct PgLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, seed) = match args.as_slice() {
        [url] => (url.clone(), None),
        [url, flag, n] if flag == "--seed" => match n.parse::<u32>() {
            Ok(n) => (url.clone(), Some(n)),
            Err(_) => {
                eprintln!("--seed takes a whole number of requests");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: query_plans <database-url> [--seed N]");
            return ExitCode::from(2);
        }
    };
    match run(&url, seed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("query_plans: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(url: &str, seed: Option<u32>) -> Result<(), String> {
    let mut settings = Settings::defaults();
    settings.database.url = url.to_string();
    let database = Database::open(&settings.database).map_err(|e| e.to_string())?;
    let mut conn = database.pool_get().map_err(|e| e.to_string())?;
    let conn: &mut DbConnection = &mut conn;
    if let Some(count) = seed {
        let present: i64 = schema::requests::table
            .count()
            .get_result(conn)
            .map_err(|e| e.to_string())?;
        if present > 0 {
            return Err(format!(
                "--seed adds a synthetic history to an empty database only; this one holds \
                 {present} requests"
            ));
        }
        explain::seed(conn, count).map_err(|e| e.to_string())?;
    }
    let requests: i64 = schema::requests::table
        .count()
        .get_result(conn)
        .map_err(|e| e.to_string())?;
    let clocks: i64 = schema::clocks::table
        .count()
        .get_result(conn)
        .map_err(|e| e.to_string())?;
    println!("database: {requests} requests, {clocks} clocks\n");
    // Inside the seeded history, where open clocks fall due.
    let now = NaiveDate::from_ymd_opt(2025, 3, 20)
        .and_then(|d| d.and_hms_opt(10, 0, 0))
        .expect("a valid time");
    let lists = explain::hot_lists(conn, now).map_err(|e| e.to_string())?;
    // A plan printed once is named, not repeated (every request list loads its page's tasks,
    // materials and clocks the same way).
    let mut printed = std::collections::HashSet::new();
    for list in lists {
        println!("#### {}\n", list.name);
        for plan in list.plans {
            let text = match conn {
                DbConnection::Pg(_) => {
                    let lines: Vec<PgLine> =
                        diesel::sql_query(format!("EXPLAIN {}", plan.statement.0))
                            .load(conn)
                            .map_err(|e| e.to_string())?;
                    lines
                        .into_iter()
                        .map(|l| without_costs(&l.line) + "\n")
                        .collect::<String>()
                }
                DbConnection::Sqlite(_) => plan.text.clone(),
            };
            let shape = shortened(&plan.statement.0);
            let key = (
                shape.split(" WHERE ").next().unwrap_or("").to_string(),
                text.clone(),
            );
            if !printed.insert(key) {
                println!("`{}`: the same plan as above.\n", shape);
                continue;
            }
            println!("```sql\n{shape}\n```");
            println!("```text\n{text}```");
            if !plan.full_scans.is_empty() {
                println!(
                    "**reads whole: {:?}** (no index can serve: {:?})",
                    plan.full_scans, plan.unavoidable_scans
                );
            }
            println!();
        }
    }
    Ok(())
}

/// The statement with a long select list written `…` and a long `IN`/`ANY` list cut.
fn shortened(sql: &str) -> String {
    let mut out = sql.to_string();
    if let (Some(from), true) = (out.find(" FROM "), out.starts_with("SELECT ")) {
        if from > 80 {
            out = format!("SELECT …{}", &out[from..]);
        }
    }
    for (open, close) in [("ANY('{", "}')"), ("IN (", ")")] {
        if let Some(start) = out.find(open) {
            if let Some(len) = out[start..].find(close) {
                if len > 80 {
                    out = format!("{}{open}…{}", &out[..start], &out[start + len..]);
                }
            }
        }
    }
    out
}

/// A PostgreSQL plan line without its `(cost=… rows=… width=…)`.
fn without_costs(line: &str) -> String {
    match line.find("  (cost=") {
        Some(start) => match line[start..].find(')') {
            Some(end) => format!("{}{}", &line[..start], &line[start + end + 1..]),
            None => line.to_string(),
        },
        None => line.to_string(),
    }
}
