//! Tables and summaries for people.
//!
//! Everything is read from the server's JSON as [`Value`]s, so a field the server adds later
//! is ignored and a missing one shows as `-` rather than failing. Tables are laid out by
//! [`comfy_table`], which measures display width with [`unicode_width`] (a Chinese character
//! takes two columns) and fits each table into the width it is given ([`width`]): long cells
//! wrap, and the columns that carry request numbers and ids are never wrapped, so they can be
//! copied whole. Text from the server (an applicant's name, a reason) goes through [`clean`],
//! so a control character in it cannot move the cursor or recolour the clerk's terminal.

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Shanghai;
use comfy_table::{ColumnConstraint, ContentArrangement, Row, Width, presets};
use serde_json::Value;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Width at which a long cell is cut (with `…`) before it is wrapped.
const MAX_CELL: usize = 72;

/// Lines a wrapped cell may take; the rest is cut (with `…`).
const MAX_LINES: usize = 4;

/// A wrapped column is given at least this many columns when the table has room (a date,
/// `2026-11-28`, stays on one line).
const COMFORTABLE: usize = 10;

/// The width tables are fitted into when neither the terminal nor `COLUMNS` says.
pub const DEFAULT_WIDTH: u16 = 80;

/// The width tables are fitted into: the terminal's when stdout is a terminal, else
/// `COLUMNS` when it is set to a number, else [`DEFAULT_WIDTH`] (80).
pub fn width() -> u16 {
    // comfy-table asks the terminal (crossterm) only when stdout is one.
    let terminal = comfy_table::Table::new().width();
    width_from(terminal, std::env::var("COLUMNS").ok().as_deref())
}

/// The rule of [`width`], from what the terminal and `COLUMNS` said.
pub fn width_from(terminal: Option<u16>, columns: Option<&str>) -> u16 {
    terminal
        .filter(|w| *w > 0)
        .or_else(|| {
            columns
                .and_then(|c| c.trim().parse::<u16>().ok())
                .filter(|w| *w > 0)
        })
        .unwrap_or(DEFAULT_WIDTH)
}

/// A table: a header row and rows, two spaces between columns, no borders.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Columns never wrapped nor cut (request numbers, ids).
    whole: Vec<usize>,
    /// Columns wrapped only between words, when the table has room for that (times).
    words: Vec<usize>,
}

impl Table {
    /// A table with these column titles; all blank: no header row.
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            ..Self::default()
        }
    }

    /// Marks a column (counted from 0) as never wrapped nor cut: numbers and ids.
    pub fn whole(mut self, column: usize) -> Self {
        self.whole.push(column);
        self
    }

    /// Marks a column (counted from 0) as wrapped only between words while the table has room
    /// for its longest word: times (`2026-11-28` and `09:30` are never split).
    pub fn words(mut self, column: usize) -> Self {
        self.words.push(column);
        self
    }

    /// Adds a row (cells are cleaned; in a wrapped column cut to [`MAX_CELL`] columns).
    pub fn row(&mut self, cells: Vec<String>) {
        let row = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let c = clean(c);
                if self.whole.contains(&i) {
                    c
                } else {
                    cut(&c, MAX_CELL)
                }
            })
            .collect();
        self.rows.push(row);
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The width of each column's content so that the table fits `width`: whole columns
    /// as wide as their content; the others as wide as theirs if all fit, else each first
    /// gets a floor (the longest word of its title, so titles never break inside a word, and
    /// up to [`COMFORTABLE`] columns as far as the room allows) and the rest of the room is
    /// shared fairly (a column never gets more than its content needs).
    fn widths(&self, width: usize) -> Vec<usize> {
        let columns = self.headers.len();
        let natural: Vec<usize> = (0..columns)
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.width())
                    .chain(std::iter::once(self.headers[i].width()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let wrapped: Vec<usize> = (0..columns).filter(|i| !self.whole.contains(i)).collect();
        let whole: usize = (0..columns)
            .filter(|i| self.whole.contains(i))
            .map(|i| natural[i])
            .sum();
        let room = width.saturating_sub(whole + 2 * columns.saturating_sub(1));
        if wrapped.iter().map(|i| natural[*i]).sum::<usize>() <= room {
            return natural;
        }
        let longest_word = |text: &str| text.split(' ').map(UnicodeWidthStr::width).max();
        let title_word = |i: usize| longest_word(&self.headers[i]).unwrap_or(0).max(1);
        // The title's longest word; in a `words` column, the content's longest word too.
        let word = |i: usize| {
            let content = self
                .rows
                .iter()
                .filter_map(|r| r.get(i))
                .filter_map(|c| longest_word(c))
                .max()
                .filter(|_| self.words.contains(&i))
                .unwrap_or(0);
            title_word(i).max(content)
        };
        // The floor of column i when every floor is at least `least` (the longest word at
        // least, `word`'s or only the title's, the content's width at most).
        let floor = |i: usize, least: usize, word: &dyn Fn(usize) -> usize| {
            natural[i].min(least.max(word(i)))
        };
        let fits = |least: usize, word: &dyn Fn(usize) -> usize| {
            wrapped
                .iter()
                .map(|i| floor(*i, least, word))
                .sum::<usize>()
                <= room
        };
        let words: &dyn Fn(usize) -> usize = &word;
        let titles: &dyn Fn(usize) -> usize = &title_word;
        let chosen = [words, titles]
            .into_iter()
            .flat_map(|word| (1..=COMFORTABLE).rev().map(move |least| (least, word)))
            .find(|(least, word)| fits(*least, *word));
        let mut widths = natural.clone();
        for i in &wrapped {
            widths[*i] = match chosen {
                Some((least, word)) => floor(*i, least, word),
                None => 1,
            };
        }
        // Share what is left fairly: the columns needing less than an equal share get what
        // they need, the others split the rest.
        let mut left = room.saturating_sub(wrapped.iter().map(|i| widths[*i]).sum());
        let mut hungry: Vec<usize> = wrapped
            .iter()
            .copied()
            .filter(|i| natural[*i] > widths[*i])
            .collect();
        while left > 0 && !hungry.is_empty() {
            let share = (left / hungry.len()).max(1);
            let mut next = Vec::new();
            for i in hungry {
                let give = share.min(natural[i] - widths[i]).min(left);
                widths[i] += give;
                left -= give;
                if natural[i] > widths[i] {
                    next.push(i);
                }
            }
            hungry = next;
        }
        widths
    }

    /// The table fitted into `width` display columns, one line per row (more where a long
    /// cell wraps), no trailing spaces.
    pub fn render(&self, width: u16) -> String {
        let columns = self.headers.len();
        let mut table = comfy_table::Table::new();
        table
            .load_style(presets::NOTHING)
            .force_no_tty()
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(width);
        if self.headers.iter().any(|h| !h.is_empty()) {
            table.set_header(self.headers.clone());
        }
        for cells in &self.rows {
            let mut row = Row::from(cells.iter().take(columns).cloned().collect::<Vec<_>>());
            row.max_height(MAX_LINES);
            table.add_row(row);
        }
        let widths = self.widths(usize::from(width));
        for (i, column) in table.column_iter_mut().enumerate() {
            // Two spaces between columns, none before the first or after the last.
            let padding = if i + 1 < columns { 2 } else { 0 };
            column.set_padding((0, padding));
            if self.whole.contains(&i) {
                column.set_constraint(ColumnConstraint::ContentWidth);
            } else if let Some(w) = widths.get(i) {
                // Absolute widths include the padding.
                let w = u16::try_from(w + usize::from(padding)).unwrap_or(u16::MAX);
                column.set_constraint(ColumnConstraint::Absolute(Width::Fixed(w)));
            }
        }
        let mut out = String::new();
        for line in table.lines() {
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

/// An RFC 3339 time as Shanghai wall-clock time of day, `09:30` (for a day's tables).
pub fn time_of_day(value: &Value) -> String {
    time(value)
        .split_once(' ')
        .map(|(_, hm)| hm.to_string())
        .unwrap_or_else(|| time(value))
}

/// Width of a short request id ([`short_id`]).
pub const SHORT_ID: usize = 13;

/// The start of a request id that names it in an 80-column table: `0193a4c2-7c1e`, the
/// first 12 hex digits. Every command takes it (a unique id prefix); 8 digits would not do,
/// since a UUID v7 begins with its time and all ids made within the same minute share them.
pub fn short_id(id: &str) -> String {
    id.get(..SHORT_ID).unwrap_or(id).to_string()
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
        "* provisional: after the working calendar's last configured day;\n  moves when that year is loaded\n"
    } else {
        ""
    }
}

/// `"r3"` → `r3`.
pub fn revision(etag: Option<&str>) -> Option<String> {
    etag.map(|t| t.trim_start_matches("W/").trim_matches('"').to_string())
}

/// The queue: one row per open task, earliest due first (the server's order). The request
/// number names the request (every command takes it); the id is in `--json`. All tasks are
/// of the clerk's unit, named once below the table.
pub fn queue(body: &Value, now: DateTime<Utc>, width: u16) -> String {
    let items = body["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        return "The queue is empty.\n".into();
    }
    let mut table = Table::new(&["NUMBER", "MATTER", "ROLE", "STATUS", "DUE", "CLAIMED BY"])
        .whole(0)
        .words(4);
    for item in items {
        table.row(vec![
            text(item, "number"),
            text(item, "matter"),
            text(item, "role"),
            text(item, "status"),
            due(&item["due_at"], now),
            text(item, "claimed_by"),
        ]);
    }
    let count = items.len();
    format!(
        "{}{count} open task{} of {} (times are Shanghai time)\n",
        table.render(width),
        if count == 1 { "" } else { "s" },
        text(&items[0], "unit")
    )
}

/// One request: the header facts, then tasks, materials, clocks and the form.
pub fn request(view: &Value, etag: Option<&str>, now: DateTime<Utc>, width: u16) -> String {
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
    out.push_str(&facts.render(width));

    let empty = Vec::new();
    let list = |key: &str| view[key].as_array().unwrap_or(&empty).clone();

    let tasks = list("tasks");
    if !tasks.is_empty() {
        let mut table =
            Table::new(&["UNIT", "MATTER", "ROLE", "STATUS", "OPINION", "TASK ID"]).whole(5);
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
        out.push_str(&table.render(width));
    }

    let materials = list("materials");
    if !materials.is_empty() {
        let mut table = Table::new(&["MATERIAL", "FILE", "STATUS", "DUE", "SUPPLIED"]).words(3);
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
        out.push_str(&table.render(width));
    }

    let clocks = list("clocks");
    if !clocks.is_empty() {
        let mut table = Table::new(&["CLOCK", "TARGET", "STATE", "STARTED", "DUE"])
            .words(3)
            .words(4);
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
        out.push_str(&table.render(width));
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
        out.push_str(&table.render(width));
    }
    out
}

/// A request's timeline.
pub fn events(body: &Value, width: u16) -> String {
    let items = body["events"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        return "No events.\n".into();
    }
    let mut table = Table::new(&["SEQ", "TIME", "ACTION", "BY", "STATE", "DETAILS", "HASH"])
        .whole(0)
        .whole(6)
        .words(1);
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
    format!("{}(times are Shanghai time)\n", table.render(width))
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

/// A unit's window queue (`GET /api/v1/tickets`): slots as times of the day, requests by
/// their [`short_id`] (a ticket does not carry the request's number).
pub fn tickets(body: &Value, width: u16) -> String {
    let items = body["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        return format!(
            "Nobody is in the window queue of {} on {}.\n",
            text(body, "unit"),
            text(body, "date")
        );
    }
    let mut table = Table::new(&[
        "TICKET", "KIND", "STATE", "WAITED", "SLOT", "COUNTER", "MATTER", "REQUEST",
    ])
    .whole(0)
    .whole(7);
    for item in items {
        table.row(vec![
            text(item, "number"),
            text(item, "kind"),
            text(item, "state"),
            minutes(&item["waiting_seconds"]),
            time_of_day(&item["slot_start"]),
            match item["called_counter"].as_str() {
                Some(counter) => counter.to_string(),
                None => text(item, "counter"),
            },
            text(item, "matter"),
            item["request_id"]
                .as_str()
                .map(short_id)
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    let waiting = items.iter().filter(|t| t["state"] == "waiting").count();
    format!(
        "{}{} on {}: {waiting} waiting of {} ticket{} (times are Shanghai time)\n",
        table.render(width),
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
pub fn called(body: &Value, now: DateTime<Utc>, width: u16) -> String {
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
        out.push_str(&request(&body["request"], None, now, width));
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

/// The returned requests waiting for the service centre to re-route them (named by number;
/// the ids are in `--json`).
pub fn returned(body: &Value, width: u16) -> String {
    let items = body["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        return "No returned request is waiting to be re-routed.\n".into();
    }
    let mut table = Table::new(&["NUMBER", "MATTER", "RETURNED BY", "APPLICANT"]).whole(0);
    for item in items {
        table.row(vec![
            text(item, "number"),
            text(item, "code"),
            text(item, "lead_unit"),
            text(&item["applicant"], "name"),
        ]);
    }
    format!(
        "{}{} returned request{} waiting to be re-routed\n",
        table.render(width),
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
        let text = table.render(80);
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
        let text = table.render(80);
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
        // Wide enough for every cell on one line.
        let text = queue(&body, now(), 200);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NUMBER             MATTER"), "{text}");
        assert!(lines[1].contains("2026-11-28 10:00 (overdue)"), "{text}");
        assert!(lines[2].contains("clerk-tax"), "{text}");
        assert_eq!(lines[3], "2 open tasks of tax (times are Shanghai time)");
        assert_eq!(
            queue(&json!({"items": []}), now(), 80),
            "The queue is empty.\n"
        );
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
        let text = request(&view, Some("\"r2\""), now(), 80);
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
        let text = events(&body, 200);
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

    #[test]
    fn the_width_is_the_terminals_else_columns_else_80() {
        assert_eq!(width_from(Some(132), Some("100")), 132);
        assert_eq!(width_from(None, Some("100")), 100);
        assert_eq!(width_from(None, Some(" 60 ")), 60);
        assert_eq!(width_from(None, Some("wide")), 80);
        assert_eq!(width_from(None, Some("0")), 80);
        assert_eq!(width_from(None, None), 80);
    }

    /// Every line of `text` fits `width` display columns.
    pub(crate) fn assert_fits(text: &str, width: usize) {
        for line in text.lines() {
            assert!(
                line.width() <= width,
                "{} columns: {line:?} in\n{text}",
                line.width()
            );
        }
    }

    const NAME: &str = "上海市普陀区马上办智能科技发展有限公司第一分公司";
    const REASON: &str = "申请材料中营业执照副本与法定代表人身份证明不一致，请携带原件至综合窗口核对后重新提交，逾期视为撤回申请";
    const ID: &str = "0193a4c2-7c1e-7d2a-9b3c-1a2b3c4d5e6f";

    #[test]
    fn a_long_cell_wraps_and_a_whole_column_does_not() {
        let mut table = Table::new(&["NUMBER", "REASON", "ID"]).whole(0).whole(2);
        table.row(vec!["PT20261128-000001".into(), REASON.into(), ID.into()]);
        let text = table.render(80);
        assert_fits(&text, 80);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() > 2, "the reason wraps:\n{text}");
        assert!(lines[1].starts_with("PT20261128-000001  "), "{text}");
        assert!(lines[1].ends_with(ID), "{text}");
        // Cut after three lines, with the mark.
        assert_eq!(lines.len(), 1 + MAX_LINES, "{text}");
        assert!(text.contains('…'), "{text}");
    }

    #[test]
    fn every_table_fits_80_columns_with_chinese_names_and_long_reasons() {
        let queue_body = json!({"items": [
            {"task_id": ID, "request_id": ID, "number": "PT20261128-000001",
             "matter": "construction.completion_acceptance", "unit": "service-center",
             "role": "lead", "status": "supplement_required", "due_at": "2026-11-28T02:00:00Z",
             "claimed_by": "clerk-service-center-window-07"}]});
        let text = queue(&queue_body, now(), 80);
        assert_fits(&text, 80);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("PT20261128-000001  "),
            "{text}"
        );

        let view = json!({
            "id": ID, "number": "PT20261128-000001", "status": "supplement_required",
            "kind": "bundle", "code": "bundle.one_industry_one_permit.restaurant",
            "channel": "window", "intake_region": "江苏省苏州市吴江区",
            "applicant": {"name": NAME, "uscc": "91350100M000100Y43"},
            "contact_email": "legal-department.office@shanghai-mashangban-tech.example.com",
            "form": {"reason": REASON, "address": NAME},
            "commitment": true, "lead_unit": "service-center",
            "tasks": [{"id": ID, "unit": "service-center", "matter": "market.registration.establish",
                       "role": "co", "status": "under_review",
                       "opinion": {"opinion": "agree_with_conditions", "note": REASON}}],
            "materials": [{"code": "fire_safety_inspection_certificate",
                           "name": "消防安全检查合格证明及现场照片（含平面布置图）.pdf",
                           "status": "deferred", "due_at": "2026-11-28T01:50:00Z",
                           "supplied_at": "2026-11-28T01:40:00Z", "received_at_window": false}],
            "clocks": [{"kind": "statutory_joint", "target": "45 working_days", "state": "paused",
                        "started_at": "2026-11-28T01:30:00Z", "due_at": "2027-02-28T01:50:00Z",
                        "provisional": true}],
            "created_at": "2026-11-28T01:00:00Z", "updated_at": "2026-11-28T01:30:00Z"
        });
        let text = request(&view, Some("\"r12\""), now(), 80);
        assert_fits(&text, 80);
        assert!(text.contains(&format!("id          {ID}\n")), "{text}");
        assert!(
            text.contains(&format!("  {ID}\n")),
            "task id whole:\n{text}"
        );

        let events_body = json!({"events": [
            {"seq": 1234, "action": "request_supplement", "actor": "clerk-service-center-window-07",
             "role": "clerk", "unit": "service-center", "state_before": "called",
             "state_after": "supplement_required",
             "payload": {"reason": REASON, "items": [REASON, NAME]},
             "at": "2026-11-28T01:00:00Z", "hash": "0123456789abcdef".repeat(4)}]});
        let text = events(&events_body, 80);
        assert_fits(&text, 80);
        assert!(text.lines().nth(1).unwrap().starts_with("1234  "), "{text}");
        assert!(text.contains("0123456789ab…"), "{text}");

        let tickets_body = json!({"unit": "service-center", "date": "2026-11-28", "items": [
            {"number": "A017", "kind": "appointment", "state": "waiting", "waiting_seconds": 4000,
             "slot_start": "2026-11-28T01:30:00Z", "counter": "综合窗口12号",
             "matter": "construction.completion_acceptance", "request_id": ID}]});
        let text = tickets(&tickets_body, 80);
        assert_fits(&text, 80);
        assert!(text.lines().nth(1).unwrap().starts_with("A017  "), "{text}");
        assert!(
            text.lines().nth(1).unwrap().ends_with("  0193a4c2-7c1e"),
            "{text}"
        );
        assert!(text.contains("  09:30  "), "{text}");

        let called_body = json!({"ticket": tickets_body["items"][0].clone(), "request": view});
        assert_fits(&called(&called_body, now(), 80), 80);

        let returned_body = json!({"items": [
            {"id": ID, "number": "PT20261128-000001", "code": "construction.completion_acceptance",
             "lead_unit": "construction", "applicant": {"name": NAME}}]});
        let text = returned(&returned_body, 80);
        assert_fits(&text, 80);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("PT20261128-000001  "),
            "{text}"
        );
    }
}
