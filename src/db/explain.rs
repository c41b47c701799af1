//! The query plans of what our code runs (issue 18): every statement a piece of database work
//! sends is captured through diesel's instrumentation, its bound values written into the SQL as
//! literals, and the result explained: `EXPLAIN (FORMAT JSON)` on PostgreSQL, `EXPLAIN QUERY
//! PLAN` on SQLite. A test (`tests/api/plans.rs`) asserts on a seeded database that the lists
//! a person waits for never read a big table whole; `examples/query_plans.rs` prints the plans
//! for docs/performance.md.
//!
//! Literal values give the plan the planner makes for those values (a custom plan), as the
//! first executions of a prepared statement get; they are only ever built from values our own
//! code bound, for explaining, never to run.

use std::sync::{Arc, Mutex};

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::DbConnection;

/// The big tables: a plan must reach them through an index.
pub const BIG_TABLES: [&str; 5] = [
    "requests",
    "clocks",
    "tasks",
    "audit_events",
    "notifications",
];

/// One statement as it was sent, its binds written in as literals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement(pub String);

/// The plan of one statement.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The statement explained.
    pub statement: Statement,
    /// PostgreSQL's `EXPLAIN (FORMAT JSON)` document, or SQLite's `EXPLAIN QUERY PLAN` lines
    /// (one per row, indented by depth).
    pub text: String,
    /// The big tables read whole (`Seq Scan` on PostgreSQL; `SCAN table` without an index on
    /// SQLite).
    pub full_scans: Vec<String>,
    /// Those of `full_scans` that no index can serve: on PostgreSQL, the `Seq Scan`s left when
    /// the statement is planned again with `enable_seqscan = off` (the others are the
    /// planner's choice at this table size); on SQLite, all of them.
    pub unavoidable_scans: Vec<String>,
}

/// Runs `work` on `conn`, answering its result and every statement it sent (reads and writes
/// alike; `BEGIN`/`COMMIT` and the like are left out).
pub fn capture<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> T,
) -> (T, Vec<Statement>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    conn.set_instrumentation(Recorder(Arc::clone(&seen)));
    let result = work(conn);
    conn.set_instrumentation(None::<Recorder>);
    let sent = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    let backend_is_pg = matches!(conn, DbConnection::Pg(_));
    let statements = sent
        .iter()
        .filter_map(|debug| with_literals(debug, backend_is_pg))
        .filter(|sql| {
            let head = sql.trim_start().to_ascii_uppercase();
            head.starts_with("SELECT") || head.starts_with("WITH")
        })
        .map(Statement)
        .collect();
    (result, statements)
}

/// Explains `statement` on `conn` and finds the big tables it reads whole.
pub fn explain(conn: &mut DbConnection, statement: &Statement) -> QueryResult<Plan> {
    let mut plan = explain_as_planned(conn, statement)?;
    // diesel writes `IN ()` of an empty list as `(1=0)`: SQLite still says `SCAN`, but the
    // statement stops before reading a row.
    if statement.0.ends_with("WHERE (1=0)") {
        plan.full_scans.clear();
    }
    plan.unavoidable_scans = plan.full_scans.clone();
    if !plan.full_scans.is_empty() && matches!(conn, DbConnection::Pg(_)) {
        plan.unavoidable_scans = conn.transaction(|conn| {
            conn.batch_execute("SET LOCAL enable_seqscan = off")?;
            explain_as_planned(conn, statement).map(|p| p.full_scans)
        })?;
    }
    Ok(plan)
}

fn explain_as_planned(conn: &mut DbConnection, statement: &Statement) -> QueryResult<Plan> {
    match conn {
        DbConnection::Pg(pg) => {
            #[derive(QueryableByName)]
            struct Line {
                #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
                line: String,
            }
            let lines: Vec<Line> =
                diesel::sql_query(format!("EXPLAIN (FORMAT JSON) {}", statement.0)).load(pg)?;
            let text: String = lines.into_iter().map(|l| l.line).collect();
            let document: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
            let mut full_scans = Vec::new();
            pg_seq_scans(&document, &mut full_scans);
            full_scans.retain(|t| BIG_TABLES.contains(&t.as_str()));
            Ok(Plan {
                statement: statement.clone(),
                text: serde_json::to_string_pretty(&document).unwrap_or(text),
                full_scans,
                unavoidable_scans: Vec::new(),
            })
        }
        DbConnection::Sqlite(sqlite) => {
            #[derive(QueryableByName)]
            struct Row {
                #[diesel(sql_type = diesel::sql_types::Integer)]
                id: i32,
                #[diesel(sql_type = diesel::sql_types::Integer)]
                parent: i32,
                #[diesel(sql_type = Text)]
                detail: String,
            }
            let rows: Vec<Row> =
                diesel::sql_query(format!("EXPLAIN QUERY PLAN {}", statement.0)).load(sqlite)?;
            let mut depth = std::collections::HashMap::new();
            let mut text = String::new();
            let mut full_scans = Vec::new();
            for row in &rows {
                let level = depth.get(&row.parent).map_or(0, |d| d + 1);
                depth.insert(row.id, level);
                text.push_str(&format!("{}{}\n", "  ".repeat(level), row.detail));
                if let Some(table) = sqlite_full_scan(&row.detail) {
                    if BIG_TABLES.contains(&table) {
                        full_scans.push(table.to_string());
                    }
                }
            }
            Ok(Plan {
                statement: statement.clone(),
                text,
                full_scans,
                unavoidable_scans: Vec::new(),
            })
        }
    }
}

/// The units the seeded history spreads over.
const SEED_UNITS: [&str; 14] = [
    "market",
    "tax",
    "planning",
    "housing",
    "construction",
    "service-center",
    "ndrc",
    "hrss",
    "commerce",
    "finance",
    "stc",
    "investment",
    "justice",
    "streets",
];

/// Seeds a synthetic history of `count` requests (ids `seed-…`), enough rows for the planners
/// to prefer indexes, in a few statements: one lead task each; three clocks each (window
/// intake met; promised and statutory running while the request is open, else met, 4 % of
/// them breached); one mail each; one audit event each (outside the hash chain: for plans
/// only, never on a database whose chain is verified). Spread like a year of the district: 2,000
/// enterprises, 14 units, one request in fifty still open, the rest delivered. Then `ANALYZE`.
pub fn seed(conn: &mut DbConnection, count: u32) -> QueryResult<()> {
    let pg = matches!(conn, DbConnection::Pg(_));
    let at = |minutes: &str| {
        if pg {
            format!("(TIMESTAMP '2025-01-01 00:00:00' + ({minutes}) * INTERVAL '1 minute')")
        } else {
            format!("datetime('2025-01-01 00:00:00', '+' || ({minutes}) || ' minutes')")
        }
    };
    let no = if pg { "FALSE" } else { "0" };
    let unit = format!(
        "(CASE n % 14 {} END)",
        SEED_UNITS
            .iter()
            .enumerate()
            .map(|(i, u)| format!("WHEN {i} THEN '{u}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    // 51 is prime to 14: every unit has open requests.
    let status = "(CASE n % 51 WHEN 0 THEN (CASE n % 153 WHEN 0 THEN 'submitted' WHEN 51 \
                  THEN 'accepted' ELSE 'under_review' END) ELSE 'delivered' END)";
    let open = "(n % 51 = 0)";
    let id = |prefix: &str| format!("'seed-{prefix}' || CAST(100000000 + n AS TEXT)");
    let created = at("n * 7");
    let series = format!(
        "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {count})"
    );
    let request_id = id("");
    let sql = format!(
        "INSERT INTO catalog_versions (version, matters, bundles, first_loaded_at) \
         SELECT 'seed', 0, 0, {epoch} WHERE NOT EXISTS \
         (SELECT 1 FROM catalog_versions WHERE version = 'seed');
         {series} INSERT INTO requests (id, number, uscc, applicant_name, kind, code, channel, \
         contact_email, form, commitment, status, lead_unit, catalog_version, revision, \
         created_at, updated_at, special_procedure, extended, delivered_at) \
         SELECT {request_id}, 'PT2025SEED-' || CAST(100000000 + n AS TEXT), \
         '91310000SEED' || CAST(n % 2000 AS TEXT), 'seed', 'matter', {unit} || '.seed', \
         (CASE n % 10 WHEN 1 THEN 'window' WHEN 2 THEN 'self_service' WHEN 3 THEN \
         'cross_region' ELSE 'online' END), 'seed@example.com', '{{}}', {no}, {status}, {unit}, \
         'seed', 1, {created}, {created}, {no}, {no}, \
         (CASE WHEN {open} THEN NULL ELSE {delivered} END) FROM g;
         {series} INSERT INTO tasks (id, request_id, unit, matter_code, category, role, status, \
         created_at, special_procedure) \
         SELECT {task_id}, {request_id}, {unit}, {unit} || '.seed', \
         (CASE n % 3 WHEN 0 THEN 'registration' WHEN 1 THEN 'license' ELSE 'filing' END), \
         'lead', {status}, {created}, {no} FROM g;
         {series}, k(k, kind, target) AS (SELECT 1, 'window_intake', 'PT20M' UNION ALL \
         SELECT 2, 'promised', '5 working_days' UNION ALL SELECT 3, 'statutory', \
         '20 working_days') \
         INSERT INTO clocks (id, request_id, kind, target, state, started_at, due_at, unit, \
         matter, check_at, breached_at, stopped_at) \
         SELECT 'seed-c' || CAST(k AS TEXT) || '-' || CAST(100000000 + n AS TEXT), {request_id}, \
         kind, target, \
         (CASE WHEN k > 1 AND {open} THEN 'running' WHEN k = 3 AND n % 25 = 4 THEN 'breached' \
         ELSE 'met' END), {created}, {due}, {unit}, {unit} || '.seed', \
         (CASE WHEN k > 1 AND {open} THEN {due} ELSE NULL END), \
         (CASE WHEN k = 3 AND n % 25 = 4 THEN {due} ELSE NULL END), \
         (CASE WHEN k > 1 AND {open} THEN NULL ELSE {delivered} END) FROM g, k;
         {series} INSERT INTO notifications (id, request_id, kind, recipient, subject, body, \
         message_id, status, attempts, next_attempt_at, created_at, sent_at) \
         SELECT {mail_id}, {request_id}, (CASE n % 5 WHEN 0 THEN 'clock_breached' ELSE \
         'accepted' END), 'seed@example.com', 'seed', 'seed', {mail_id} || '@seed', \
         (CASE n % 100 WHEN 0 THEN 'pending' WHEN 1 THEN 'dead' ELSE 'sent' END), 1, {created}, \
         {created}, {created} FROM g;
         {series} INSERT INTO audit_events (seq, request_id, actor, role, unit, action, \
         payload, at, prev_hash, hash) \
         SELECT 1000000000 + n, {request_id}, 'seed', 'clerk', {unit}, 'seed', '{{}}', \
         {created}, {event_id}, {event_id} FROM g;
         ANALYZE;",
        epoch = at("0"),
        task_id = id("t"),
        mail_id = id("m"),
        event_id = id("e"),
        due = at("n * 7 + 28800"),
        delivered = at("n * 7 + 7200"),
    );
    conn.batch_execute(&sql)
}

/// A list a person waits for, and the plans of the statements it sends.
#[derive(Debug)]
pub struct ListPlans {
    /// Which list, for whom, filtered how.
    pub name: String,
    /// The statements it sent, explained.
    pub plans: Vec<Plan>,
}

/// Runs every list a person waits for on `conn` (a database [`seed`]ed or real), as the
/// endpoints call them, and explains each statement sent: the clerk's queue; the request
/// list of an enterprise, a clerk, the service centre and a district supervisor, with and
/// without filters, first and next page; at-risk and breaches, district and one unit; the
/// outbox listing; the rectification cases. `now` places the at-risk window.
pub fn hot_lists(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<Vec<ListPlans>> {
    use super::requests::{self, Filters, Scope};
    use super::{notifications, ratings, sla, workflow};
    use crate::domain::UnitCode;

    type Work<'a> = Box<dyn FnOnce(&mut DbConnection) -> QueryResult<()> + 'a>;
    fn list(scope: Scope, filters: Filters, after: Option<&'static str>) -> Work<'static> {
        Box::new(move |conn| requests::list(conn, &scope, &filters, after, 20).map(drop))
    }
    let enterprise = || Scope::Enterprise("91310000SEED7".into());
    let filter = |f: fn(&mut Filters)| {
        let mut filters = Filters::default();
        f(&mut filters);
        filters
    };
    let until = now + chrono::TimeDelta::hours(2);
    let unit_clocks = || sla::ClockFilters {
        unit: Some("tax".into()),
        ..Default::default()
    };
    let lists: Vec<(&str, Work<'_>)> = vec![
        (
            "queue: a clerk of tax",
            Box::new(|conn| workflow::queue(conn, UnitCode::Tax, 50).map(drop)),
        ),
        (
            "requests: an enterprise",
            list(enterprise(), Filters::default(), None),
        ),
        (
            "requests: an enterprise, status=delivered",
            list(
                enterprise(),
                filter(|f| f.status = Some("delivered".into())),
                None,
            ),
        ),
        (
            "requests: a clerk of tax",
            list(Scope::Unit(UnitCode::Tax), Filters::default(), None),
        ),
        (
            "requests: a clerk of tax, status=submitted",
            list(
                Scope::Unit(UnitCode::Tax),
                filter(|f| f.status = Some("submitted".into())),
                None,
            ),
        ),
        (
            "requests: a clerk of tax, status=delivered",
            list(
                Scope::Unit(UnitCode::Tax),
                filter(|f| f.status = Some("delivered".into())),
                None,
            ),
        ),
        (
            "requests: a clerk of tax, next page",
            list(
                Scope::Unit(UnitCode::Tax),
                Filters::default(),
                Some("seed-100010000"),
            ),
        ),
        (
            "requests: the service centre (its unit and every returned request)",
            list(
                Scope::Unit(UnitCode::ServiceCenter),
                Filters::default(),
                None,
            ),
        ),
        (
            "requests: a district supervisor",
            list(Scope::All, Filters::default(), None),
        ),
        (
            "requests: a district supervisor, next page",
            list(Scope::All, Filters::default(), Some("seed-100010000")),
        ),
        (
            "requests: a district supervisor, status=submitted",
            list(
                Scope::All,
                filter(|f| f.status = Some("submitted".into())),
                None,
            ),
        ),
        (
            "requests: a district supervisor, status=delivered",
            list(
                Scope::All,
                filter(|f| f.status = Some("delivered".into())),
                None,
            ),
        ),
        (
            "requests: a district supervisor, unit=tax",
            list(Scope::All, filter(|f| f.unit = Some("tax".into())), None),
        ),
        (
            "requests: a district supervisor, unit=tax, status=submitted",
            list(
                Scope::All,
                filter(|f| {
                    f.unit = Some("tax".into());
                    f.status = Some("submitted".into());
                }),
                None,
            ),
        ),
        (
            "requests: a district supervisor, category=license",
            list(
                Scope::All,
                filter(|f| f.category = Some("license".into())),
                None,
            ),
        ),
        (
            "requests: a district supervisor, matter=tax.seed",
            list(
                Scope::All,
                filter(|f| f.matter = Some("tax.seed".into())),
                None,
            ),
        ),
        (
            "requests: a district supervisor, channel=window",
            list(
                Scope::All,
                filter(|f| f.channel = Some("window".into())),
                None,
            ),
        ),
        (
            "requests: a district supervisor, created in one day",
            list(
                Scope::All,
                filter(|f| {
                    f.created_from = chrono::NaiveDate::from_ymd_opt(2025, 2, 1)
                        .and_then(|d| d.and_hms_opt(0, 0, 0));
                    f.created_to = chrono::NaiveDate::from_ymd_opt(2025, 2, 2)
                        .and_then(|d| d.and_hms_opt(0, 0, 0));
                }),
                None,
            ),
        ),
        (
            "requests: a district supervisor, number=…",
            list(
                Scope::All,
                filter(|f| f.number = Some("PT2025SEED-100000042".into())),
                None,
            ),
        ),
        (
            "at-risk (PT2H): district",
            Box::new(move |conn| {
                sla::at_risk(
                    conn,
                    &Default::default(),
                    now,
                    until,
                    None,
                    20,
                    super::TOTAL_CAP,
                )
                .map(drop)
            }),
        ),
        (
            "at-risk (PT2H): a supervisor of tax",
            Box::new(move |conn| {
                sla::at_risk(conn, &unit_clocks(), now, until, None, 20, super::TOTAL_CAP).map(drop)
            }),
        ),
        (
            "breaches: district",
            Box::new(|conn| {
                sla::breaches(conn, &Default::default(), None, 20, super::TOTAL_CAP).map(drop)
            }),
        ),
        (
            "breaches: a supervisor of tax",
            Box::new(move |conn| {
                let filters = sla::BreachFilters {
                    clocks: unit_clocks(),
                    ..Default::default()
                };
                sla::breaches(conn, &filters, None, 20, super::TOTAL_CAP).map(drop)
            }),
        ),
        (
            "notifications: district",
            Box::new(|conn| {
                notifications::list(conn, None, &Default::default(), None, 20).map(drop)
            }),
        ),
        (
            "notifications: a supervisor of tax",
            Box::new(|conn| {
                notifications::list(conn, Some(UnitCode::Tax), &Default::default(), None, 20)
                    .map(drop)
            }),
        ),
        (
            "notifications: district, status=dead",
            Box::new(|conn| {
                let filters = notifications::Filters {
                    status: Some("dead".into()),
                    ..Default::default()
                };
                notifications::list(conn, None, &filters, None, 20).map(drop)
            }),
        ),
        (
            "rectifications: district",
            Box::new(|conn| ratings::cases(conn, &Default::default(), None, 20, 0).map(drop)),
        ),
        (
            "rectifications: a unit",
            Box::new(|conn| {
                let scope = ratings::CaseScope {
                    unit: Some(UnitCode::Tax),
                    uscc: None,
                };
                ratings::cases(conn, &scope, None, 20, 0).map(drop)
            }),
        ),
    ];
    let mut out = Vec::new();
    for (name, work) in lists {
        let (result, statements) = capture(conn, work);
        result?;
        let plans = statements
            .iter()
            .map(|statement| explain(conn, statement))
            .collect::<QueryResult<Vec<_>>>()?;
        out.push(ListPlans {
            name: name.to_string(),
            plans,
        });
    }
    Ok(out)
}

/// The relations of every `Seq Scan` node in a PostgreSQL JSON plan.
fn pg_seq_scans(node: &serde_json::Value, found: &mut Vec<String>) {
    match node {
        serde_json::Value::Array(items) => items.iter().for_each(|n| pg_seq_scans(n, found)),
        serde_json::Value::Object(fields) => {
            if fields.get("Node Type").and_then(|t| t.as_str()) == Some("Seq Scan") {
                if let Some(table) = fields.get("Relation Name").and_then(|t| t.as_str()) {
                    found.push(table.to_string());
                }
            }
            fields.values().for_each(|n| pg_seq_scans(n, found));
        }
        _ => {}
    }
}

/// The table of an SQLite plan line that reads a table whole: `SCAN requests` (no index), not
/// `SCAN requests USING [COVERING] INDEX …` (an index read in order), nor `SEARCH …`.
fn sqlite_full_scan(detail: &str) -> Option<&str> {
    let rest = detail.strip_prefix("SCAN ")?;
    if rest.contains(" USING ") {
        return None;
    }
    rest.split_whitespace().next()
}

/// Records what diesel sends.
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Instrumentation for Recorder {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("{query:?}"));
        }
    }
}

/// `Query { sql: "…", binds: [..] }` (diesel's debug form) as SQL with the binds written in as
/// literals: `$1`… on PostgreSQL, `?` on SQLite.
fn with_literals(debug: &str, pg: bool) -> Option<String> {
    let rest = debug.strip_prefix("Query { sql: ")?;
    let (sql, rest) = rust_string(rest)?;
    let binds = rest.strip_prefix(", binds: [")?.strip_suffix("] }")?;
    let literals = split_binds(binds)?
        .iter()
        .map(|b| literal(b, pg))
        .collect::<Option<Vec<_>>>()?;
    if pg {
        let mut out = sql;
        // Highest first, so `$1` never eats the start of `$10`.
        for (i, value) in literals.iter().enumerate().rev() {
            out = out.replace(&format!("${}", i + 1), value);
        }
        Some(out)
    } else {
        let mut out = String::with_capacity(sql.len());
        let mut values = literals.iter();
        for c in sql.chars() {
            if c == '?' {
                out.push_str(values.next()?);
            } else {
                out.push(c);
            }
        }
        Some(out)
    }
}

/// A Rust string literal (`"…"` with `\"`, `\\`, `\n`, `\'` escapes) at the start of `text`:
/// its value and what follows it.
fn rust_string(text: &str) -> Option<(String, &str)> {
    let mut chars = text.strip_prefix('"')?.char_indices();
    let mut value = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 2..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'r' => value.push('\r'),
                '0' => value.push('\0'),
                other => value.push(other),
            },
            other => value.push(other),
        }
    }
    None
}

/// The items of a debug list, strings and nested lists kept whole.
fn split_binds(list: &str) -> Option<Vec<String>> {
    let mut items = Vec::new();
    let mut current = String::new();
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in list.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '[' | '(' if !quoted => depth += 1,
            ']' | ')' if !quoted => depth = depth.checked_sub(1)?,
            ',' if !quoted && depth == 0 => {
                items.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        items.push(current.trim().to_string());
    }
    Some(items)
}

/// One debug-printed bind as an SQL literal.
fn literal(bind: &str, pg: bool) -> Option<String> {
    if bind == "None" {
        return Some("NULL".into());
    }
    if let Some(inner) = bind.strip_prefix("Some(").and_then(|b| b.strip_suffix(')')) {
        return literal(inner, pg);
    }
    if let Some(inner) = bind.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
        let items = split_binds(inner)?
            .iter()
            .map(|item| literal(item, pg))
            .collect::<Option<Vec<_>>>()?;
        // An empty `ARRAY[]` has no type; the untyped `'{}'` takes the column's.
        return Some(if items.is_empty() {
            "'{}'".into()
        } else {
            format!("ARRAY[{}]", items.join(", "))
        });
    }
    if bind.starts_with('"') {
        let (value, _) = rust_string(bind)?;
        return Some(format!("'{}'", value.replace('\'', "''")));
    }
    match bind {
        "true" => return Some(if pg { "TRUE" } else { "1" }.into()),
        "false" => return Some(if pg { "FALSE" } else { "0" }.into()),
        _ => {}
    }
    if bind.parse::<f64>().is_ok() {
        return Some(bind.into());
    }
    // chrono's debug form of a time: 2026-11-29T10:00:00(.fraction)
    if bind.len() >= 19 && bind.as_bytes()[4] == b'-' && bind.as_bytes()[10] == b'T' {
        return Some(format!("'{}'", bind.replacen('T', " ", 1)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_become_literals() {
        let debug = r#"Query { sql: "SELECT a FROM t WHERE b = $1 AND c < $2 AND d IN ($3, $4) LIMIT $10", binds: ["x, 'y'", 2026-11-29T10:00:00.5, Some("z"), None, 1, 2, 3, 4, 5, 20] }"#;
        assert_eq!(
            with_literals(debug, true).unwrap(),
            "SELECT a FROM t WHERE b = 'x, ''y''' AND c < '2026-11-29 10:00:00.5' AND d IN ('z', NULL) LIMIT 20"
        );
        let debug = r#"Query { sql: "SELECT a FROM t WHERE b = ANY($1) LIMIT $2", binds: [["x", "y, z"], 5] }"#;
        assert_eq!(
            with_literals(debug, true).unwrap(),
            "SELECT a FROM t WHERE b = ANY(ARRAY['x', 'y, z']) LIMIT 5"
        );
        let debug =
            r#"Query { sql: "SELECT \"a\" FROM t WHERE b = ? AND c = ?", binds: [true, "\"q\""] }"#;
        assert_eq!(
            with_literals(debug, false).unwrap(),
            "SELECT \"a\" FROM t WHERE b = 1 AND c = '\"q\"'"
        );
    }

    #[test]
    fn only_unindexed_sqlite_scans_count() {
        assert_eq!(sqlite_full_scan("SCAN requests"), Some("requests"));
        assert_eq!(
            sqlite_full_scan("SCAN requests USING INDEX requests_status"),
            None
        );
        assert_eq!(sqlite_full_scan("SCAN r USING COVERING INDEX x"), None);
        assert_eq!(
            sqlite_full_scan("SEARCH clocks USING INDEX clocks_request (request_id=?)"),
            None
        );
    }
}
