//! The supervisors' SLA commands: `breaches`, `at-risk`, `stats`.
//!
//! They read `GET /api/v1/sla/…` (docs/sla.md): tables for people, the server's JSON with
//! `--json`, and for `breaches --csv` the server's CSV export, every part of it (the client
//! follows the `Link: rel="next"` header and writes the header line once).

use chrono::{DateTime, NaiveDate, TimeZone};
use chrono_tz::Asia::Shanghai;
use clap::Args;
use serde_json::Value;

use super::http::{Http, Reply};
use super::render::{Table, provisional, provisional_note, text, time};
use super::{Failure, problem};
use crate::domain::UnitCode;

/// Clock kinds, as the server names them.
const KINDS: [&str; 5] = [
    "window_intake",
    "supplement_notice",
    "promised",
    "statutory",
    "delivery",
];

/// `breaches` arguments.
#[derive(Debug, Args)]
pub struct BreachesArgs {
    /// Only clocks counting against this unit (market, tax, …).
    #[arg(long, value_name = "CODE")]
    pub unit: Option<UnitCode>,
    /// Only clocks of this matter or bundle code.
    #[arg(long, value_name = "CODE")]
    pub matter: Option<String>,
    /// Only this clock kind.
    #[arg(long, value_parser = KINDS)]
    pub kind: Option<String>,
    /// Only clocks still open (`--open`, `--open true`) or only stopped ones (`--open false`).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub open: Option<bool>,
    /// Breached at or after: an RFC 3339 time, or a day (YYYY-MM-DD, from 00:00 Shanghai time).
    #[arg(long, value_name = "TIME", value_parser = period_start)]
    pub from: Option<String>,
    /// Breached before: an RFC 3339 time, or a day (YYYY-MM-DD, that day included).
    #[arg(long, value_name = "TIME", value_parser = period_end)]
    pub to: Option<String>,
    /// Print every matching breach as CSV (the server's export) instead of a table.
    #[arg(long)]
    pub csv: bool,
    /// Rows per page, 1–100 (tables and --json; default 20).
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Continue after a previous page (the cursor it printed).
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
}

/// `at-risk` arguments.
#[derive(Debug, Args)]
pub struct AtRiskArgs {
    /// How far ahead to look, as an ISO 8601 duration (PT2H, PT30M, P1D).
    #[arg(long, value_name = "DURATION", default_value = "PT2H")]
    pub within: String,
    /// Only clocks counting against this unit.
    #[arg(long, value_name = "CODE")]
    pub unit: Option<UnitCode>,
    /// Only clocks of this matter or bundle code.
    #[arg(long, value_name = "CODE")]
    pub matter: Option<String>,
    /// Only this clock kind.
    #[arg(long, value_parser = KINDS)]
    pub kind: Option<String>,
    /// Rows per page, 1–100 (default 20).
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Continue after a previous page (the cursor it printed).
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
}

/// `stats` arguments.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Group by unit or by matter.
    #[arg(long, value_name = "GROUPING", value_parser = ["unit", "matter"], default_value = "unit")]
    pub group_by: String,
    /// Period start: an RFC 3339 time, or a day (YYYY-MM-DD, from 00:00 Shanghai time)
    /// [default: 30 days before --to].
    #[arg(long, value_name = "TIME", value_parser = period_start)]
    pub from: Option<String>,
    /// Period end: an RFC 3339 time, or a day (YYYY-MM-DD, that day included) [default: now].
    #[arg(long, value_name = "TIME", value_parser = period_end)]
    pub to: Option<String>,
    /// Only this clock kind.
    #[arg(long, value_parser = KINDS)]
    pub kind: Option<String>,
}

/// An RFC 3339 time as given, or the start of a Shanghai day.
fn period_start(text: &str) -> Result<String, String> {
    period_bound(text, 0)
}

/// An RFC 3339 time as given, or the end of a Shanghai day (the next day's start).
fn period_end(text: &str) -> Result<String, String> {
    period_bound(text, 1)
}

fn period_bound(text: &str, days_after: u64) -> Result<String, String> {
    if DateTime::parse_from_rfc3339(text).is_ok() {
        return Ok(text.to_string());
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| "give an RFC 3339 time (2026-11-28T09:00:00+08:00) or a day (2026-11-28)")?;
    let start = day
        .checked_add_days(chrono::Days::new(days_after))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| Shanghai.from_local_datetime(&t).single())
        .ok_or("not a day on the calendar")?;
    Ok(start.to_rfc3339())
}

/// `path?query` from the pairs that have a value.
fn with_query(path: &str, pairs: &[(&str, Option<String>)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if let Some(value) = value {
            query.append_pair(key, value);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

fn expect_ok(http: &Http, reply: Reply) -> Result<Reply, Failure> {
    if reply.ok() {
        Ok(reply)
    } else {
        Err(problem::failure(&reply, http.server()))
    }
}

/// The `cursor` of the `rel="next"` target of a `Link` header.
pub fn next_cursor(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        if !is_next {
            return None;
        }
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let (_, query) = target.split_once('?')?;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "cursor")
            .map(|(_, value)| value.into_owned())
    })
}

/// Minutes as `45m`, `2h 05m`, `3d 4h`.
pub fn span(minutes: i64) -> String {
    match minutes {
        m if m < 60 => format!("{m}m"),
        m if m < 24 * 60 => format!("{}h {:02}m", m / 60, m % 60),
        m => format!("{}d {}h", m / (24 * 60), m % (24 * 60) / 60),
    }
}

fn minutes(value: &Value, suffix: &str) -> String {
    value
        .as_i64()
        .map(|m| format!("{m}{suffix}"))
        .unwrap_or_else(|| "-".into())
}

/// `breaches`: a table of one page, its JSON, or the whole CSV export.
pub fn breaches(
    http: &Http,
    json: bool,
    width: u16,
    args: &BreachesArgs,
) -> Result<String, Failure> {
    if args.csv && json {
        return Err(Failure::usage("--csv and --json do not go together"));
    }
    let filters = |cursor: Option<String>, limit: Option<u32>| {
        with_query(
            "/api/v1/sla/breaches",
            &[
                ("unit", args.unit.map(|u| u.to_string())),
                ("matter", args.matter.clone()),
                ("kind", args.kind.clone()),
                ("open", args.open.map(|o| o.to_string())),
                ("from", args.from.clone()),
                ("to", args.to.clone()),
                ("cursor", cursor),
                ("limit", limit.map(|l| l.to_string())),
            ],
        )
    };
    if args.csv {
        let mut out = String::new();
        let mut cursor = args.cursor.clone();
        loop {
            let (reply, link) = http.get_as(&filters(cursor, None), "text/csv")?;
            let reply = expect_ok(http, reply)?;
            if reply.content_type != "text/csv" {
                return Err(Failure::failed(format!(
                    "the server answered {} instead of CSV",
                    reply.content_type
                )));
            }
            if out.is_empty() {
                out.push_str(&reply.body);
            } else if let Some((_, rows)) = reply.body.split_once("\r\n") {
                out.push_str(rows);
            }
            cursor = link.as_deref().and_then(next_cursor);
            if cursor.is_none() {
                return Ok(out);
            }
        }
    }
    let reply = expect_ok(http, http.get(&filters(args.cursor.clone(), args.limit))?)?;
    if json {
        return Ok(format!("{}\n", reply.body.trim_end()));
    }
    Ok(breach_table(&reply.json()?, width))
}

/// The breach table of one page.
pub fn breach_table(body: &Value, width: u16) -> String {
    let items = body["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        return "No breaches match.\n".into();
    }
    let mut table = Table::new(&[
        "NUMBER", "CLOCK", "UNIT", "MATTER", "DUE", "STOPPED", "OVERDUE", "LOST",
    ])
    .whole(0)
    .words(4)
    .words(5);
    for b in items {
        let lost = match (b["lost_minutes"].as_i64(), b["lost_to_unit"].as_str()) {
            (Some(m), Some(unit)) if m > 0 => format!("{} ({unit})", span(m)),
            (Some(m), None) if m > 0 => span(m),
            _ => "-".into(),
        };
        table.row(vec![
            text(b, "number"),
            text(b, "kind"),
            text(b, "unit"),
            text(b, "matter"),
            format!("{}{}", time(&b["due_at"]), provisional(b)),
            if b["stopped_at"].is_null() {
                "open".into()
            } else {
                time(&b["stopped_at"])
            },
            b["overdue_minutes"]
                .as_i64()
                .map(span)
                .unwrap_or_else(|| "-".into()),
            lost,
        ]);
    }
    let mut out = table.render(width);
    out.push_str(provisional_note(items));
    out.push_str(&format!(
        "{} of {} breach{} (times are Shanghai time)\n",
        items.len(),
        total(body),
        if body["total"].as_i64() == Some(1) {
            ""
        } else {
            "es"
        }
    ));
    if let Some(cursor) = body["next_cursor"].as_str() {
        out.push_str(&format!("More: add --cursor {cursor}\n"));
    }
    out
}

/// `at-risk`: open clocks falling due within the window.
pub fn at_risk(http: &Http, json: bool, width: u16, args: &AtRiskArgs) -> Result<String, Failure> {
    let path = with_query(
        "/api/v1/sla/at-risk",
        &[
            ("within", Some(args.within.clone())),
            ("unit", args.unit.map(|u| u.to_string())),
            ("matter", args.matter.clone()),
            ("kind", args.kind.clone()),
            ("cursor", args.cursor.clone()),
            ("limit", args.limit.map(|l| l.to_string())),
        ],
    );
    let reply = expect_ok(http, http.get(&path)?)?;
    if json {
        return Ok(format!("{}\n", reply.body.trim_end()));
    }
    Ok(at_risk_table(&reply.json()?, width))
}

/// The at-risk table.
pub fn at_risk_table(body: &Value, width: u16) -> String {
    let items = body["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let within = text(body, "within");
    if items.is_empty() {
        return format!("No open clock falls due within {within}.\n");
    }
    let mut table = Table::new(&[
        "NUMBER",
        "CLOCK",
        "UNIT",
        "MATTER",
        "DUE",
        "LEFT",
        "WORKING LEFT",
    ])
    .whole(0)
    .words(4);
    for c in items {
        table.row(vec![
            text(c, "number"),
            text(c, "kind"),
            text(c, "unit"),
            text(c, "matter"),
            format!("{}{}", time(&c["due_at"]), provisional(c)),
            c["remaining_minutes"]
                .as_i64()
                .map(span)
                .unwrap_or_else(|| "-".into()),
            minutes(&c["remaining_working_minutes"], " min"),
        ]);
    }
    let mut out = table.render(width);
    out.push_str(provisional_note(items));
    out.push_str(&format!(
        "{} of {} clock{} due within {within} (times are Shanghai time)\n",
        items.len(),
        total(body),
        if body["total"].as_i64() == Some(1) {
            ""
        } else {
            "s"
        }
    ));
    if let Some(cursor) = body["next_cursor"].as_str() {
        out.push_str(&format!("More: add --cursor {cursor}\n"));
    }
    out
}

/// `stats`: the on-time statistics per unit or matter.
pub fn stats(http: &Http, json: bool, width: u16, args: &StatsArgs) -> Result<String, Failure> {
    let path = with_query(
        "/api/v1/sla/stats",
        &[
            ("group_by", Some(args.group_by.clone())),
            ("from", args.from.clone()),
            ("to", args.to.clone()),
            ("kind", args.kind.clone()),
        ],
    );
    let reply = expect_ok(http, http.get(&path)?)?;
    if json {
        return Ok(format!("{}\n", reply.body.trim_end()));
    }
    Ok(stats_table(&reply.json()?, width))
}

/// The statistics table, one row per group and one for all.
pub fn stats_table(body: &Value, width: u16) -> String {
    let mut out = format!(
        "Period {} – {} (Shanghai time)",
        time(&body["from"]),
        time(&body["to"])
    );
    out.push('\n');
    match (body["kind"].as_str(), body["unit"].as_str()) {
        (Some(kind), Some(unit)) => out.push_str(&format!("{kind} clocks, unit {unit}\n")),
        (Some(kind), None) => out.push_str(&format!("{kind} clocks\n")),
        (None, Some(unit)) => out.push_str(&format!("unit {unit}\n")),
        (None, None) => {}
    }
    let groups = body["groups"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if groups.is_empty() {
        out.push_str("No clock stopped or fell overdue in the period.\n");
        return out;
    }
    let grouping = text(body, "group_by").to_ascii_uppercase();
    let mut table = Table::new(&[
        grouping.as_str(),
        "COUNTED",
        "MET",
        "BREACHED",
        "OPEN OVERDUE",
        "ON TIME",
        "MEDIAN",
        "P95",
        "LOST",
    ]);
    let mut row = |key: String, f: &Value| {
        table.row(vec![
            key,
            text(f, "counted"),
            text(f, "met"),
            text(f, "breached"),
            text(f, "open_overdue"),
            f["on_time_rate"]
                .as_f64()
                .map(|r| format!("{:.1}%", r * 100.0))
                .unwrap_or_else(|| "-".into()),
            minutes(&f["median_worked_minutes"], " min"),
            minutes(&f["p95_worked_minutes"], " min"),
            minutes(&f["lost_minutes"], " min"),
        ]);
    };
    for g in groups {
        row(text(g, "key"), g);
    }
    row("(all)".into(), &body["overall"]);
    out.push_str(&table.render(width));
    out.push_str("Handling times (median, 95th percentile) and lost time are working minutes.\n");
    out
}

/// A list's total as the server counted it: "more than 1000" when the count stopped at its cap.
fn total(body: &Value) -> String {
    if body["total_capped"].as_bool() == Some(true) {
        format!("more than {}", text(body, "total"))
    } else {
        text(body, "total")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn days_become_shanghai_period_bounds() {
        assert_eq!(
            period_start("2026-11-28").unwrap(),
            "2026-11-28T00:00:00+08:00"
        );
        assert_eq!(
            period_end("2026-11-28").unwrap(),
            "2026-11-29T00:00:00+08:00"
        );
        assert_eq!(
            period_end("2026-11-28T10:00:00Z").unwrap(),
            "2026-11-28T10:00:00Z"
        );
        assert!(period_start("yesterday").is_err());
    }

    #[test]
    fn the_next_cursor_comes_from_the_link_header() {
        assert_eq!(
            next_cursor("</api/v1/sla/breaches?unit=tax&cursor=17_0193a>; rel=\"next\"").as_deref(),
            Some("17_0193a")
        );
        assert_eq!(next_cursor("</x?cursor=1>; rel=\"prev\""), None);
        assert_eq!(next_cursor("garbage"), None);
    }

    #[test]
    fn spans_read_like_a_person_would_say_them() {
        assert_eq!(span(0), "0m");
        assert_eq!(span(45), "45m");
        assert_eq!(span(125), "2h 05m");
        assert_eq!(span(3 * 1440 + 250), "3d 4h");
    }

    #[test]
    fn tables() {
        let page = json!({"items": [{
            "clock_id": "c1", "request_id": "0193a", "number": "PT20261128-000001",
            "kind": "promised", "unit": "tax", "matter": "tax.registration",
            "target": "210 working_minutes", "due_at": "2026-11-28T05:00:00Z",
            "breached_at": "2026-11-28T05:00:01Z", "stopped_at": null, "open": true,
            "overdue_minutes": 125, "lost_to_unit": "market", "lost_minutes": 30,
            "provisional": true}],
            "total": 3, "next_cursor": "1_0193a"});
        let text = breach_table(&page, 200);
        assert!(text.contains("2026-11-28 13:00 *"), "{text}");
        assert!(
            text.contains("* provisional: after the working calendar"),
            "{text}"
        );
        assert!(text.contains("open"), "{text}");
        assert!(text.contains("2h 05m"), "{text}");
        assert!(text.contains("30m (market)"), "{text}");
        assert!(text.contains("1 of 3 breaches"), "{text}");
        assert!(text.ends_with("More: add --cursor 1_0193a\n"), "{text}");

        let stats = json!({"group_by": "unit", "from": "2026-11-01T00:00:00Z",
            "to": "2026-12-01T00:00:00Z", "kind": null, "unit": null,
            "groups": [{"key": "tax", "counted": 4, "met": 2, "breached": 1, "open_overdue": 1,
                        "cancelled": 1, "on_time_rate": 0.6666, "median_worked_minutes": 30,
                        "p95_worked_minutes": 90, "lost_minutes": 0}],
            "overall": {"counted": 4, "met": 2, "breached": 1, "open_overdue": 1,
                        "cancelled": 1, "on_time_rate": 0.6666, "median_worked_minutes": 30,
                        "p95_worked_minutes": 90, "lost_minutes": 0}});
        let text = stats_table(&stats, 80);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("UNIT   COUNTED"), "{text}");
        assert!(lines[2].contains("66.7%"), "{text}");
        assert!(lines[3].starts_with("(all)"), "{text}");
    }

    #[test]
    fn the_tables_fit_80_columns_with_the_number_whole() {
        let fits = |text: &str| {
            use unicode_width::UnicodeWidthStr;
            for line in text.lines() {
                assert!(line.width() <= 80, "{line:?} in\n{text}");
            }
        };
        let breach = json!({
            "request_id": "0193a4c2-7c1e-7d2a-9b3c-1a2b3c4d5e6f", "number": "PT20261128-000001",
            "kind": "statutory_joint", "unit": "service-center",
            "matter": "construction.completion_acceptance", "due_at": "2026-11-28T05:00:00Z",
            "breached_at": "2026-11-28T05:00:01Z", "stopped_at": "2026-12-28T05:00:01Z",
            "overdue_minutes": 43210, "lost_to_unit": "service-center", "lost_minutes": 4321,
            "remaining_minutes": 4321, "remaining_working_minutes": 1234, "provisional": true});
        let page = json!({"items": [breach], "total": 1, "within": "3d"});
        for text in [breach_table(&page, 80), at_risk_table(&page, 80)] {
            fits(&text);
            assert!(
                text.lines().any(|l| l.starts_with("PT20261128-000001  ")),
                "{text}"
            );
        }
        let figures = json!({"counted": 12345, "met": 12000, "breached": 300,
            "open_overdue": 45, "on_time_rate": 0.97, "median_worked_minutes": 12345,
            "p95_worked_minutes": 123456, "lost_minutes": 1234567});
        let stats = json!({"group_by": "matter", "from": "2026-11-01T00:00:00Z",
            "to": "2026-12-01T00:00:00Z", "kind": "statutory_joint", "unit": "service-center",
            "groups": [{"key": "construction.completion_acceptance", "counted": 12345,
                        "met": 12000, "breached": 300, "open_overdue": 45, "on_time_rate": 0.97,
                        "median_worked_minutes": 12345, "p95_worked_minutes": 123456,
                        "lost_minutes": 1234567}],
            "overall": figures});
        let text = stats_table(&stats, 80);
        fits(&text);
        assert!(text.contains("statutory_joint clocks, unit service-center\n"));
    }

    #[test]
    fn a_capped_total_reads_more_than() {
        assert_eq!(
            total(&json!({"total": 1000, "total_capped": true})),
            "more than 1000"
        );
        assert_eq!(total(&json!({"total": 3, "total_capped": false})), "3");
        assert_eq!(total(&json!({"total": 3})), "3");
    }
}
