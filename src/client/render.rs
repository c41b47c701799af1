//! Tables and summaries for people.
//!
//! Everything is read from the server's JSON as [`Value`]s, so a field the server adds later
//! is ignored and a missing one shows as `-` rather than failing. Columns are aligned by
//! display width ([`unicode_width`]): a Chinese character takes two columns. Text from the
//! server (an applicant's name, a reason) goes through [`clean`], so a control character in
//! it cannot move the cursor or recolour the clerk's terminal.

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Shanghai;
use serde_json::Value;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Width at which a long cell is cut (with `…`).
const MAX_CELL: usize = 72;

/// A table: a header row and rows, printed with two spaces between columns.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (cells are cleaned and cut to [`MAX_CELL`] columns).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.iter().map(|c| cut(&clean(c), MAX_CELL)).collect());
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, no trailing spaces.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.width()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.width());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.width())));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Replaces control characters (newlines, escapes) with spaces.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Cuts `text` to at most `max` display columns, ending with `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.width() <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max.saturating_sub(1) {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// The text of `value[key]`, or `-`.
pub fn text(value: &Value, key: &str) -> String {
    scalar(&value[key])
}

/// A JSON value as a short text: strings bare, arrays joined, null as `-`.
pub fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// An RFC 3339 time as Shanghai wall-clock time, `2026-11-28 09:30`; `-` when absent.
pub fn time(value: &Value) -> String {
    match value.as_str() {
        None => "-".into(),
        Some(raw) => match DateTime::parse_from_rfc3339(raw) {
            Ok(t) => t
                .with_timezone(&Shanghai)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            Err(_) => raw.to_string(),
        },
    }
}

/// A due time, marked `(overdue)` when past at `now`.
pub fn due(value: &Value, now: DateTime<Utc>) -> String {
    let shown = time(value);
    let overdue = value
        .as_str()
        .and_then(|raw| DateTime::parse_from_rfc3339(raw).ok())
        .is_some_and(|t| t < now);
    if overdue {
        format!("{shown} (overdue)")
    } else {
        shown
    }
}

/// The mark of a provisional due time (after the calendar's horizon): ` *`, else nothing.
pub fn provisional(item: &Value) -> &'static str {
    if item["provisional"] == Value::Bool(true) {
        " *"
    } else {
        ""
    }
}

/// The footnote of the ` *` mark, when any of `items` has it.
pub fn provisional_note(items: &[Value]) -> &'static str {
    if items.iter().any(|i| !provisional(i).is_empty()) {
        "* provisional: after the working calendar's last configured day; moves when that year is loaded\n"
    } else {
        ""
    }
}

/// `"r3"` → `r3`.
pub fn revision(etag: Option<&str>) -> Option<String> {
    etag.map(|t| t.trim_start_matches("W/").trim_matches('"').to_string())
}

/// The queue: one row per open task, earliest due first (the server's order).
pub fn queue(body: &Value, now: DateTime<Utc>) -> String {
    let items = body["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        return "The queue is empty.\n".into();
    }
    let mut table = Table::new(&[
        "NUMBER",
        "MATTER",
        "UNIT",
        "ROLE",
        "STATUS",
        "DUE",
        "CLAIMED BY",
        "REQUEST ID",
    ]);
    for item in items {
        table.row(vec![
            text(item, "number"),
            text(item, "matter"),
            text(item, "unit"),
            text(item, "role"),
            text(item, "status"),
            due(&item["due_at"], now),
            text(item, "claimed_by"),
            text(item, "request_id"),
        ]);
    }
    let count = items.len();
    format!(
        "{}{count} open task{} (times are Shanghai time)\n",
        table.render(),
        if count == 1 { "" } else { "s" }
    )
}

/// One request: the header facts, then tasks, materials, clocks and the form.
pub fn request(view: &Value, etag: Option<&str>, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let mut facts = Table::new(&["", ""]);
    let mut fact = |name: &str, value: String| facts.row(vec![name.into(), value]);
    fact("number", text(view, "number"));
    fact("id", text(view, "id"));
    fact("status", text(view, "status"));
    if let Some(rev) = revision(etag) {
        fact("revision", rev);
    }
    fact(text(view, "kind").as_str(), text(view, "code"));
    let applicant = &view["applicant"];
    fact(
        "applicant",
        format!("{} ({})", text(applicant, "name"), text(applicant, "uscc")),
    );
    fact("contact", text(view, "contact_email"));
    let mut channel = text(view, "channel");
    if let Some(region) = view["intake_region"].as_str() {
        channel.push_str(&format!(" (taken in {region})"));
    }
    fact("channel", channel);
    if view["commitment"].as_bool() == Some(true) {
        fact("commitment", "yes (告知承诺)".into());
    }
    fact("lead unit", text(view, "lead_unit"));
    fact("submitted", time(&view["created_at"]));
    fact("updated", time(&view["updated_at"]));
    // The facts table has no header row: drop its (blank) first line.
    let rendered = facts.render();
    out.push_str(
        rendered
            .split_once('\n')
            .map(|(_, rest)| rest)
            .unwrap_or(""),
    );

    let empty = Vec::new();
    let list = |key: &str| view[key].as_array().unwrap_or(&empty).clone();

    let tasks = list("tasks");
    if !tasks.is_empty() {
        let mut table = Table::new(&["UNIT", "MATTER", "ROLE", "STATUS", "OPINION", "TASK ID"]);
        for t in &tasks {
            // A co-unit's opinion (联合会审): `-` while outstanding.
            let opinion = match (t["role"].as_str(), t["opinion"]["opinion"].as_str()) {
                (_, Some(opinion)) => opinion.to_string(),
                (Some("co"), None) => "-".into(),
                _ => String::new(),
            };
            table.row(vec![
                text(t, "unit"),
                text(t, "matter"),
                text(t, "role"),
                text(t, "status"),
                opinion,
                text(t, "id"),
            ]);
        }
        out.push_str("\nTasks\n");
        out.push_str(&table.render());
    }

    let materials = list("materials");
    if !materials.is_empty() {
        let mut table = Table::new(&["MATERIAL", "FILE", "STATUS", "DUE", "SUPPLIED"]);
        for m in &materials {
            // A deferred material (容缺) once it arrived: at the window or online.
            let supplied = match (
                m["supplied_at"].is_string(),
                m["received_at_window"].as_bool(),
            ) {
                (true, Some(true)) => "at the window",
                (true, _) => "online",
                (false, _) => "-",
            };
            table.row(vec![
                text(m, "code"),
                text(m, "name"),
                text(m, "status"),
                due(&m["due_at"], now),
                supplied.to_string(),
            ]);
        }
        out.push_str("\nMaterials\n");
        out.push_str(&table.render());
    }

    let clocks = list("clocks");
    if !clocks.is_empty() {
        let mut table = Table::new(&["CLOCK", "TARGET", "STATE", "STARTED", "DUE"]);
        for c in &clocks {
            table.row(vec![
                text(c, "kind"),
                text(c, "target"),
                text(c, "state"),
                time(&c["started_at"]),
                format!("{}{}", due(&c["due_at"], now), provisional(c)),
            ]);
        }
        out.push_str("\nClocks (Shanghai time)\n");
        out.push_str(&table.render());
        out.push_str(provisional_note(&clocks));
    }

    if let Some(form) = view["form"].as_object().filter(|f| !f.is_empty()) {
        let mut table = Table::new(&["FIELD", "VALUE"]);
        for (name, value) in form {
            let value = match value {
                Value::Object(_) => value.to_string(),
                other => scalar(other),
            };
            table.row(vec![name.clone(), value]);
        }
        out.push_str("\nForm\n");
        out.push_str(&table.render());
    }
    out
}

/// A request's timeline.
pub fn events(body: &Value) -> String {
    let items = body["events"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        return "No events.\n".into();
    }
    let mut table = Table::new(&["SEQ", "TIME", "ACTION", "BY", "STATE", "DETAILS", "HASH"]);
    for e in items {
        let by = match e["unit"].as_str() {
            Some(unit) => format!("{} ({}, {unit})", text(e, "actor"), text(e, "role")),
            None => format!("{} ({})", text(e, "actor"), text(e, "role")),
        };
        let state = match (e["state_before"].as_str(), e["state_after"].as_str()) {
            (Some(before), Some(after)) if before != after => format!("{before} → {after}"),
            (None, Some(after)) => format!("→ {after}"),
            (Some(same), _) => same.to_string(),
            (None, None) => "-".into(),
        };
        table.row(vec![
            text(e, "seq"),
            time(&e["at"]),
            text(e, "action"),
            by,
            state,
            details(&e["payload"]),
            cut(&text(e, "hash"), 13),
        ]);
    }
    format!("{}(times are Shanghai time)\n", table.render())
}

/// An event payload as `key: value; key: value`, empty members left out (the full payload
/// is in `--json`).
pub fn details(payload: &Value) -> String {
    match payload {
        Value::Object(map) if map.values().all(Value::is_null) => "-".into(),
        Value::Object(map) => map
            .iter()
            .filter(|(key, value)| !value.is_null() && key.as_str() != "catalog_version")
            .map(|(key, value)| format!("{key}: {}", scalar(value)))
            .collect::<Vec<_>>()
            .join("; "),
        other => scalar(other),
    }
}

/// A unit's window queue (`GET /api/v1/tickets`).
pub fn tickets(body: &Value) -> String {
    let items = body["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        return format!(
            "Nobody is in the window queue of {} on {}.\n",
            text(body, "unit"),
            text(body, "date")
        );
    }
    let mut table = Table::new(&[
        "TICKET",
        "KIND",
        "STATE",
        "WAITED",
        "SLOT",
        "COUNTER",
        "MATTER",
        "REQUEST ID",
    ]);
    for item in items {
        table.row(vec![
            text(item, "number"),
            text(item, "kind"),
            text(item, "state"),
            minutes(&item["waiting_seconds"]),
            time(&item["slot_start"]),
            match item["called_counter"].as_str() {
                Some(counter) => counter.to_string(),
                None => text(item, "counter"),
            },
            text(item, "matter"),
            text(item, "request_id"),
        ]);
    }
    let waiting = items.iter().filter(|t| t["state"] == "waiting").count();
    format!(
        "{}{} on {}: {waiting} waiting of {} ticket{} (times are Shanghai time)\n",
        table.render(),
        text(body, "unit"),
        text(body, "date"),
        items.len(),
        if items.len() == 1 { "" } else { "s" }
    )
}

/// `12m` from a number of seconds.
fn minutes(value: &Value) -> String {
    match value.as_i64() {
        Some(seconds) => format!("{}m", seconds / 60),
        None => String::new(),
    }
}

/// A ticket called (`POST /api/v1/tickets/next`), with its request when the call moved it.
pub fn called(body: &Value, now: DateTime<Utc>) -> String {
    let ticket = &body["ticket"];
    let mut out = format!(
        "Called {} ({}, waited {}){}.\n",
        text(ticket, "number"),
        text(ticket, "kind"),
        minutes(&ticket["waiting_seconds"]),
        match ticket["called_counter"].as_str() {
            Some(counter) => format!(" to counter {}", clean(counter)),
            None => String::new(),
        }
    );
    if body["request"].is_object() {
        out.push('\n');
        out.push_str(&request(&body["request"], None, now));
    } else if let Some(id) = ticket["request_id"].as_str() {
        out.push_str(&format!(
            "Request {}: not waiting to be called.\n",
            clean(id)
        ));
    }
    out
}

/// An appointment checked in: what the server sent (the appointment, and its ticket once the
/// check-in issues one).
pub fn checked_in(body: &Value) -> String {
    let mut out = format!(
        "Checked in appointment {} ({}).\n",
        text(body, "id"),
        text(body, "status")
    );
    let ticket = &body["ticket"];
    if ticket.is_object() {
        out.push_str(&format!(
            "Ticket {} in the queue of {}.\n",
            text(ticket, "number"),
            text(ticket, "unit")
        ));
    }
    out
}

/// The returned requests waiting for the service centre to re-route them.
pub fn returned(body: &Value) -> String {
    let items = body["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        return "No returned request is waiting to be re-routed.\n".into();
    }
    let mut table = Table::new(&["NUMBER", "MATTER", "RETURNED BY", "APPLICANT", "REQUEST ID"]);
    for item in items {
        table.row(vec![
            text(item, "number"),
            text(item, "code"),
            text(item, "lead_unit"),
            text(&item["applicant"], "name"),
            text(item, "id"),
        ]);
    }
    format!(
        "{}{} returned request{} waiting to be re-routed\n",
        table.render(),
        items.len(),
        if items.len() == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-12-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn columns_align_by_display_width_with_chinese_text() {
        let mut table = Table::new(&["NAME", "STATUS"]);
        table.row(vec!["上海马上办科技有限公司".into(), "submitted".into()]);
        table.row(vec!["ACME Ltd".into(), "called".into()]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        // The second column starts at the same display column on every line:
        // 11 Chinese characters are 22 columns wide, plus two spaces.
        for line in &lines {
            let (first, _) = line.split_at(line.rfind(' ').unwrap() + 1);
            assert_eq!(first.width(), 24, "{line:?}");
        }
        assert_eq!(lines[2], format!("ACME Ltd{}called", " ".repeat(16)));
        assert!(text.lines().all(|l| !l.ends_with(' ')));
    }

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        let mut table = Table::new(&["A"]);
        table.row(vec!["evil\u{1b}[2Jname\nsecond line".into()]);
        let text = table.render();
        assert!(!text.contains('\u{1b}'));
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn long_cells_are_cut_by_width() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("马上办事", 5), "马上…");
        assert_eq!(cut("马上", 4), "马上");
    }

    #[test]
    fn times_show_in_shanghai_and_overdue_is_marked() {
        assert_eq!(time(&json!("2026-11-28T01:30:00Z")), "2026-11-28 09:30");
        assert_eq!(time(&Value::Null), "-");
        assert_eq!(
            due(&json!("2026-11-28T01:30:00Z"), now()),
            "2026-11-28 09:30 (overdue)"
        );
        assert_eq!(
            due(&json!("2026-12-02T01:30:00Z"), now()),
            "2026-12-02 09:30"
        );
        assert_eq!(revision(Some("\"r12\"")).as_deref(), Some("r12"));
    }

    #[test]
    fn queue_table() {
        let body = json!({"items": [
            {"task_id": "t1", "request_id": "0193a", "number": "PT20261128-000001",
             "matter": "tax.registration", "unit": "tax", "role": "lead", "status": "submitted",
             "due_at": "2026-11-28T02:00:00Z"},
            {"task_id": "t2", "request_id": "0193b", "number": "PT20261128-000002",
             "matter": "tax.registration", "unit": "tax", "role": "lead", "status": "called",
             "claimed_by": "clerk-tax"}
        ]});
        let text = queue(&body, now());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NUMBER             MATTER"), "{text}");
        assert!(lines[1].contains("2026-11-28 10:00 (overdue)"), "{text}");
        assert!(lines[2].contains("clerk-tax"), "{text}");
        assert_eq!(lines[3], "2 open tasks (times are Shanghai time)");
        assert_eq!(queue(&json!({"items": []}), now()), "The queue is empty.\n");
    }

    #[test]
    fn request_summary() {
        let view = json!({
            "id": "0193a", "number": "PT20261128-000001", "status": "called", "kind": "matter",
            "code": "tax.registration", "channel": "online",
            "applicant": {"name": "上海马上办科技有限公司", "uscc": "91350100M000100Y43"},
            "contact_email": "office@example.com", "form": {"taxpayer_type": "small_scale"},
            "commitment": false, "lead_unit": "tax",
            "tasks": [{"id": "t1", "unit": "tax", "matter": "tax.registration", "role": "lead", "status": "called"}],
            "materials": [{"matter": "tax.registration", "code": "business_licence", "name": "licence.pdf", "status": "provided"}],
            "clocks": [{"id": "c1", "kind": "window_intake", "target": "PT20M", "state": "running",
                        "started_at": "2026-11-28T01:30:00Z", "due_at": "2026-11-28T01:50:00Z"}],
            "catalog_version": "abc", "created_at": "2026-11-28T01:00:00Z", "updated_at": "2026-11-28T01:30:00Z"
        });
        let text = request(&view, Some("\"r2\""), now());
        assert!(text.starts_with("number     PT20261128-000001\n"), "{text}");
        for expected in [
            "revision   r2",
            "matter     tax.registration",
            "applicant  上海马上办科技有限公司 (91350100M000100Y43)",
            "\nTasks\nUNIT  MATTER            ROLE  STATUS  OPINION  TASK ID\ntax   tax.registration  lead  called           t1\n",
            "window_intake  PT20M   running  2026-11-28 09:30  2026-11-28 09:50 (overdue)",
            "taxpayer_type  small_scale",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn events_table() {
        let body = json!({"request_id": "0193a", "events": [
            {"seq": 7, "action": "intake", "actor": "91350100M000100Y43", "role": "enterprise",
             "state_after": "submitted", "payload": {"number": "PT1", "catalog_version": "ffff"},
             "at": "2026-11-28T01:00:00Z", "hash": "0123456789abcdef0123"},
            {"seq": 9, "action": "refuse", "actor": "clerk-tax", "role": "clerk", "unit": "tax",
             "state_before": "called", "state_after": "not_accepted",
             "payload": {"reason": "材料不齐\n请补", "certificate": null}, "at": "2026-11-28T02:00:00Z", "hash": "ab"}
        ]});
        let text = events(&body);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("SEQ  TIME"), "{text}");
        assert!(lines[1].contains("→ submitted"), "{text}");
        assert!(lines[1].contains("number: PT1"), "{text}");
        assert!(!lines[1].contains("ffff"), "{text}");
        assert!(lines[1].ends_with("0123456789ab…"), "{text}");
        assert!(lines[2].contains("clerk-tax (clerk, tax)"), "{text}");
        assert!(lines[2].contains("called → not_accepted"), "{text}");
        assert!(lines[2].contains("  reason: 材料不齐 请补  "), "{text}");
        assert_eq!(details(&json!({"reason": null, "items": null})), "-");
        // DETAILS starts at the same display column on both rows.
        let column = |line: &str, needle: &str| line[..line.find(needle).unwrap()].width();
        assert_eq!(column(lines[1], "number:"), column(lines[2], "reason:"));
    }
}
