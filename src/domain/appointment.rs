//! Appointments (统一预约): the hall's counters, the slots they offer on the working calendar,
//! and the time rules of a booking.
//!
//! The hall is data (`config/appointments.toml`), checked whole by [`Hall::parse`] like the
//! catalog: every unit and matter code must exist in the catalog, counter codes are unique in
//! the hall, hours are `HH:MM-HH:MM` periods in order, a slot fits in every period, and
//! capacities are positive. A mistake stops the server with one line naming the entry.
//!
//! The rules:
//! - A unit's counters (windows, 窗口) open on **working days** of the calendar only: a holiday
//!   has no slot, a working weekend (调休上班) has them. On such a day a unit opens during its
//!   own `hours`, or, without any, during the calendar's service hours of that day (09:00–12:00
//!   and 13:00–17:00 in Shanghai; Monday's on a working weekend), read in the calendar's zone.
//! - Each period is cut into slots of the unit's `slot_minutes` from its opening; a remainder
//!   too short for a slot stays unused (so the lunch break has none). Each slot of each counter
//!   takes `capacity` bookings.
//! - A booking is for a slot that starts after "now" and on a date at most `days_ahead` days
//!   after today (local).
//! - It may be cancelled or moved until `cutoff` before its start ([`before_cutoff`]).
//! - It is a no-show once its end plus `grace` has passed without check-in ([`no_show_at`]).
//! - The reminder goes out at the opening of the working day before the slot's date
//!   ([`reminder_at`]); a booking made after that moment gets none (its confirmation is the
//!   reminder).
//! - A clerk checks a visitor in on the slot's date, from `early` before its start, until the
//!   no-show time ([`check_in_window`]).
//! - An enterprise holds at most `weekly_limit` bookings (not cancelled) whose slots fall in
//!   one week, Monday to Sunday ([`week_of`]).
//!
//! Nothing here reads the clock: every function takes "now".

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calendar::{Calendar, Period, parse_periods};
use super::catalog::Catalog;
use super::unit::UnitCode;

/// The hall as shipped in the repository (compiled in; a file may replace it).
pub const DEFAULT_HALL: &str = include_str!("../../config/appointments.toml");

/// Shortest and longest slot, in minutes.
const SLOT_MINUTES: std::ops::RangeInclusive<u32> = 5..=240;
/// Largest capacity of one counter's slot.
const MAX_CAPACITY: u32 = 1000;

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HallFile {
    #[serde(default)]
    units: Vec<UnitFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitFile {
    unit: String,
    slot_minutes: u32,
    capacity: u32,
    #[serde(default)]
    hours: Option<Vec<String>>,
    #[serde(default)]
    counters: Vec<CounterFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CounterFile {
    code: String,
    name: String,
    matters: Vec<String>,
}

/// One counter (window, 窗口) of the hall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// Code, unique in the hall, e.g. `A01`.
    pub code: String,
    /// Name shown to visitors.
    pub name: String,
    /// The unit it belongs to.
    pub unit: UnitCode,
    /// Matter codes it serves.
    pub matters: BTreeSet<String>,
}

/// One unit's part of the hall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitHall {
    /// The unit.
    pub unit: UnitCode,
    /// Length of a slot.
    pub slot_minutes: u32,
    /// Bookings one counter takes per slot.
    pub capacity: u32,
    /// Own opening hours; `None`: the calendar's service hours of the day.
    pub hours: Option<Vec<Period>>,
    /// Its counters, in file order.
    pub counters: Vec<Counter>,
}

/// A hall that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hall {
    units: BTreeMap<UnitCode, UnitHall>,
}

/// A hall problem, naming the file and the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("appointments {file}: {entry}: {problem}")]
pub struct HallError {
    /// The file.
    pub file: String,
    /// The entry, e.g. `units[market].counters[A01].matters[2]`.
    pub entry: String,
    /// What is wrong.
    pub problem: String,
}

/// One bookable slot of one counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The counter's unit.
    pub unit: UnitCode,
    /// The counter's code.
    pub counter: String,
    /// Local date.
    pub date: NaiveDate,
    /// Start (UTC).
    pub start: DateTime<Utc>,
    /// End (UTC).
    pub end: DateTime<Utc>,
    /// Bookings it takes.
    pub capacity: u32,
}

impl Hall {
    /// Parses and checks `text`, read from `file` (used in messages only), against `catalog`.
    pub fn parse(file: &str, text: &str, catalog: &Catalog) -> Result<Self, HallError> {
        let fail = |entry: String, problem: String| HallError {
            file: file.to_string(),
            entry,
            problem,
        };
        let raw: HallFile = toml::from_str(text).map_err(|e| {
            let entry = e
                .span()
                .map(|s| format!("line {}", text[..s.start].matches('\n').count() + 1))
                .unwrap_or_else(|| "file".into());
            fail(entry, e.message().to_string())
        })?;
        let mut units = BTreeMap::new();
        let mut counter_codes = BTreeSet::new();
        for (i, unit) in raw.units.into_iter().enumerate() {
            let code: UnitCode = unit.unit.parse().map_err(|_| {
                fail(
                    format!("units[{i}].unit"),
                    format!("`{}` is not a unit code of the catalog", unit.unit),
                )
            })?;
            let entry = format!("units[{code}]");
            if units.contains_key(&code) {
                return Err(fail(entry, "unit listed twice".into()));
            }
            if !SLOT_MINUTES.contains(&unit.slot_minutes) {
                return Err(fail(
                    format!("{entry}.slot_minutes"),
                    format!(
                        "{} is not {} to {} minutes",
                        unit.slot_minutes,
                        SLOT_MINUTES.start(),
                        SLOT_MINUTES.end()
                    ),
                ));
            }
            if !(1..=MAX_CAPACITY).contains(&unit.capacity) {
                return Err(fail(
                    format!("{entry}.capacity"),
                    format!("{} is not 1 to {MAX_CAPACITY}", unit.capacity),
                ));
            }
            let hours = match &unit.hours {
                None => None,
                Some(items) if items.is_empty() => {
                    return Err(fail(
                        format!("{entry}.hours"),
                        "empty: leave `hours` out to open during the calendar's service hours"
                            .into(),
                    ));
                }
                Some(items) => {
                    let periods = parse_periods(items)
                        .map_err(|(j, problem)| fail(format!("{entry}.hours[{j}]"), problem))?;
                    for (j, (open, close)) in periods.iter().enumerate() {
                        if (*close - *open).num_minutes() < i64::from(unit.slot_minutes) {
                            return Err(fail(
                                format!("{entry}.hours[{j}]"),
                                format!("shorter than one slot of {} minutes", unit.slot_minutes),
                            ));
                        }
                    }
                    Some(periods)
                }
            };
            if unit.counters.is_empty() {
                return Err(fail(
                    format!("{entry}.counters"),
                    "a unit in the hall needs at least one counter".into(),
                ));
            }
            let mut counters = Vec::new();
            for (j, counter) in unit.counters.into_iter().enumerate() {
                let valid = !counter.code.is_empty()
                    && counter.code.len() <= 16
                    && counter
                        .code
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if !valid {
                    return Err(fail(
                        format!("{entry}.counters[{j}].code"),
                        format!("`{}` is not 1 to 16 letters, digits or `-`", counter.code),
                    ));
                }
                let centry = format!("{entry}.counters[{}]", counter.code);
                if !counter_codes.insert(counter.code.clone()) {
                    return Err(fail(centry, "counter code used twice in the hall".into()));
                }
                if counter.name.trim().is_empty() {
                    return Err(fail(format!("{centry}.name"), "empty".into()));
                }
                if counter.matters.is_empty() {
                    return Err(fail(
                        format!("{centry}.matters"),
                        "a counter serves at least one matter".into(),
                    ));
                }
                let mut matters = BTreeSet::new();
                for (k, matter) in counter.matters.iter().enumerate() {
                    if catalog.matter(matter).is_none() {
                        return Err(fail(
                            format!("{centry}.matters[{k}]"),
                            format!("`{matter}` is not a matter of the catalog"),
                        ));
                    }
                    if !matters.insert(matter.clone()) {
                        return Err(fail(
                            format!("{centry}.matters[{k}]"),
                            format!("`{matter}` listed twice"),
                        ));
                    }
                }
                counters.push(Counter {
                    code: counter.code,
                    name: counter.name.trim().to_string(),
                    unit: code,
                    matters,
                });
            }
            units.insert(
                code,
                UnitHall {
                    unit: code,
                    slot_minutes: unit.slot_minutes,
                    capacity: unit.capacity,
                    hours,
                    counters,
                },
            );
        }
        Ok(Self { units })
    }

    /// The hall shipped with the code, checked against `catalog`.
    pub fn builtin(catalog: &Catalog) -> Result<Self, HallError> {
        Self::parse("config/appointments.toml (built in)", DEFAULT_HALL, catalog)
    }

    /// Every unit of the hall, by code.
    pub fn units(&self) -> impl Iterator<Item = &UnitHall> {
        self.units.values()
    }

    /// One unit's part, if it has counters in the hall.
    pub fn unit(&self, unit: UnitCode) -> Option<&UnitHall> {
        self.units.get(&unit)
    }

    /// One counter by code.
    pub fn counter(&self, code: &str) -> Option<(&UnitHall, &Counter)> {
        self.units.values().find_map(|unit| {
            unit.counters
                .iter()
                .find(|c| c.code == code)
                .map(|c| (unit, c))
        })
    }

    /// The counters serving `matter`, units in code order, counters in file order.
    pub fn counters_for(&self, matter: &str) -> Vec<(&UnitHall, &Counter)> {
        self.units
            .values()
            .flat_map(|unit| unit.counters.iter().map(move |c| (unit, c)))
            .filter(|(_, c)| c.matters.contains(matter))
            .collect()
    }

    /// Whether any counter serves `matter`.
    pub fn serves(&self, matter: &str) -> bool {
        !self.counters_for(matter).is_empty()
    }

    /// Every slot of `counter` on `date` (past ones too): none on a day that is not a working
    /// day.
    pub fn day_slots(
        &self,
        calendar: &Calendar,
        unit: &UnitHall,
        counter: &Counter,
        date: NaiveDate,
    ) -> Vec<Slot> {
        if !calendar.is_working_day(date) {
            return Vec::new();
        }
        let periods = match &unit.hours {
            Some(own) => own.clone(),
            None => calendar.service_periods(date),
        };
        let zone = calendar.time_zone();
        let step = TimeDelta::minutes(i64::from(unit.slot_minutes));
        let mut slots = Vec::new();
        for (open, close) in periods {
            let mut start = open;
            loop {
                let (end, wrapped) = start.overflowing_add_signed(step);
                if wrapped != 0 || end > close || end <= start {
                    break;
                }
                if let (Some(s), Some(e)) = (local(zone, date, start), local(zone, date, end)) {
                    slots.push(Slot {
                        unit: unit.unit,
                        counter: counter.code.clone(),
                        date,
                        start: s,
                        end: e,
                        capacity: unit.capacity,
                    });
                }
                start = end;
            }
        }
        slots
    }

    /// The slots for `matter` from `from` to `to` (local dates, inclusive) that start after
    /// `now`, by start then counter.
    pub fn slots(
        &self,
        calendar: &Calendar,
        matter: &str,
        from: NaiveDate,
        to: NaiveDate,
        now: DateTime<Utc>,
    ) -> Vec<Slot> {
        let counters = self.counters_for(matter);
        let mut slots = Vec::new();
        for date in from.iter_days().take_while(|d| *d <= to) {
            for (unit, counter) in &counters {
                slots.extend(
                    self.day_slots(calendar, unit, counter, date)
                        .into_iter()
                        .filter(|s| s.start > now),
                );
            }
        }
        slots.sort_by(|a, b| a.start.cmp(&b.start).then(a.counter.cmp(&b.counter)));
        slots
    }

    /// The slots starting at `start` for `matter` (one per counter serving it, or only
    /// `counter`'s), checked against the booking window.
    pub fn slots_at(
        &self,
        calendar: &Calendar,
        matter: &str,
        start: DateTime<Utc>,
        counter: Option<&str>,
        now: DateTime<Utc>,
        days_ahead: u32,
    ) -> Result<Vec<Slot>, SlotRefusal> {
        let zone = calendar.time_zone();
        let date = start.with_timezone(&zone).date_naive();
        if start <= now {
            return Err(SlotRefusal::Past);
        }
        let (_, last) = booking_window(now, zone, days_ahead);
        if date > last {
            return Err(SlotRefusal::TooFar { last });
        }
        let mut counters = self.counters_for(matter);
        if let Some(code) = counter {
            counters.retain(|(_, c)| c.code == code);
            if counters.is_empty() {
                return Err(SlotRefusal::CounterNotServing);
            }
        }
        let found: Vec<Slot> = counters
            .iter()
            .flat_map(|(unit, c)| self.day_slots(calendar, unit, c, date))
            .filter(|s| s.start == start)
            .collect();
        if found.is_empty() {
            return Err(SlotRefusal::NotASlot);
        }
        Ok(found)
    }
}

/// The instant of local `time` on `date` in `zone` (the earlier one if ambiguous).
fn local(zone: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    zone.from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// Why a slot cannot be booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRefusal {
    /// It starts at or before now.
    Past,
    /// Its date is after the last bookable day.
    TooFar {
        /// The last bookable day.
        last: NaiveDate,
    },
    /// No counter serving the matter has a slot starting then (a holiday, the lunch break,
    /// closed hours, or a time between slot boundaries).
    NotASlot,
    /// The counter named does not serve the matter (or does not exist).
    CounterNotServing,
}

/// Today and the last bookable day (today plus `days_ahead`), local.
pub fn booking_window(now: DateTime<Utc>, zone: Tz, days_ahead: u32) -> (NaiveDate, NaiveDate) {
    let today = now.with_timezone(&zone).date_naive();
    let last = today
        .checked_add_days(chrono::Days::new(u64::from(days_ahead)))
        .unwrap_or(NaiveDate::MAX);
    (today, last)
}

/// Why a range of dates cannot be listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRefusal {
    /// `to` is before `from`.
    Reversed,
    /// `from` is before today.
    Past {
        /// Today, local.
        today: NaiveDate,
    },
    /// `to` is after the last bookable day.
    TooFar {
        /// The last bookable day.
        last: NaiveDate,
    },
}

/// The dates to list: `from` defaults to today, `to` to `from` plus 6 days (at most the last
/// bookable day).
pub fn listing_range(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    now: DateTime<Utc>,
    zone: Tz,
    days_ahead: u32,
) -> Result<(NaiveDate, NaiveDate), RangeRefusal> {
    let (today, last) = booking_window(now, zone, days_ahead);
    let from = from.unwrap_or(today);
    if from < today {
        return Err(RangeRefusal::Past { today });
    }
    let week_on = from
        .checked_add_days(chrono::Days::new(6))
        .unwrap_or(NaiveDate::MAX);
    let to = to.unwrap_or_else(|| week_on.min(last).max(from));
    if to < from {
        return Err(RangeRefusal::Reversed);
    }
    if to > last {
        return Err(RangeRefusal::TooFar { last });
    }
    Ok((from, to))
}

/// Whether a booking starting at `start` may still be cancelled or moved at `now`.
pub fn before_cutoff(start: DateTime<Utc>, now: DateTime<Utc>, cutoff: TimeDelta) -> bool {
    now < start - cutoff
}

/// When a booking that ends at `end` becomes a no-show.
pub fn no_show_at(end: DateTime<Utc>, grace: TimeDelta) -> DateTime<Utc> {
    end + grace
}

/// The Monday of `date`'s week (weeks run Monday to Sunday).
pub fn week_of(date: NaiveDate) -> NaiveDate {
    date - TimeDelta::days(i64::from(date.weekday().num_days_from_monday()))
}

/// When the reminder of a slot on `date` is due: the opening of the working day before it
/// (09:00 when that day has no service hours of its own). `None` when that moment is not after
/// `now` (booked too late for a reminder) or no working day lies within 31 days before.
pub fn reminder_at(
    calendar: &Calendar,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let day = date
        .pred_opt()?
        .iter_days()
        .rev()
        .take(31)
        .find(|d| calendar.is_working_day(*d))?;
    let opening = calendar
        .service_periods(day)
        .first()
        .map(|(open, _)| *open)
        .unwrap_or(NaiveTime::from_hms_opt(9, 0, 0).expect("valid"));
    local(calendar.time_zone(), day, opening).filter(|at| *at > now)
}

/// Why a visitor cannot be checked in now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckInRefusal {
    /// The slot is on another day.
    NotToday,
    /// Too early: check-in opens at this instant.
    TooEarly {
        /// When check-in opens.
        opens_at: DateTime<Utc>,
    },
    /// The no-show time has passed.
    Closed,
}

/// Whether a booking of the slot `start`, becoming a no-show at `no_show`, can be checked in
/// at `now`: on the slot's local date, from `early` before its start, before the no-show time.
pub fn check_in_window(
    start: DateTime<Utc>,
    no_show: DateTime<Utc>,
    now: DateTime<Utc>,
    early: TimeDelta,
    zone: Tz,
) -> Result<(), CheckInRefusal> {
    if now >= no_show {
        return Err(CheckInRefusal::Closed);
    }
    if now.with_timezone(&zone).date_naive() != start.with_timezone(&zone).date_naive() {
        return Err(CheckInRefusal::NotToday);
    }
    let opens_at = start - early;
    if now < opens_at {
        return Err(CheckInRefusal::TooEarly { opens_at });
    }
    Ok(())
}

/// The state of a booking.
///
/// ```text
/// booked ──cancel──► cancelled
///   │ ├──check-in──► checked_in
///   │ └──(end + grace, not checked in)──► no_show
///   └──reschedule──► booked (another slot)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AppointmentStatus)]
pub enum Status {
    /// 已预约: holds a place in its slot.
    Booked,
    /// 已取消 by the enterprise.
    Cancelled,
    /// 已签到 at the hall.
    CheckedIn,
    /// 爽约: not checked in by the end of the slot plus the grace period.
    NoShow,
}

impl Status {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Booked => "booked",
            Status::Cancelled => "cancelled",
            Status::CheckedIn => "checked_in",
            Status::NoShow => "no_show",
        }
    }

    /// From the stored text.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Status::Booked,
            Status::Cancelled,
            Status::CheckedIn,
            Status::NoShow,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether the booking still counts against the enterprise's limits (every state but
    /// cancelled: a no-show used its place).
    pub fn counts(self) -> bool {
        self != Status::Cancelled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::DayKind;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn catalog() -> Catalog {
        Catalog::builtin()
    }

    const HALL: &str = r#"
[[units]]
unit = "market"
slot_minutes = 30
capacity = 2

[[units.counters]]
code = "A01"
name = "市场监管 1 号窗口"
matters = ["market.establish", "market.change"]

[[units.counters]]
code = "A02"
name = "市场监管 2 号窗口"
matters = ["market.establish"]

[[units]]
unit = "tax"
slot_minutes = 60
capacity = 1
hours = ["09:00-11:00"]

[[units.counters]]
code = "B01"
name = "税务窗口"
matters = ["tax.registration"]
"#;

    fn hall() -> Hall {
        Hall::parse("test.toml", HALL, &catalog()).unwrap()
    }

    fn calendar() -> Calendar {
        Calendar::builtin_shanghai()
    }

    #[test]
    fn the_shipped_hall_is_valid() {
        let hall = Hall::builtin(&catalog()).unwrap();
        assert!(hall.units().count() >= 3);
        assert!(hall.serves("market.establish"));
        assert!(!hall.serves("service-center.appointment"));
    }

    #[test]
    fn a_working_day_has_slots_in_the_service_hours_and_none_at_lunch() {
        let hall = hall();
        let cal = calendar();
        // Tuesday 2026-12-01, seen from the day before.
        let now = utc("2026-11-30T08:00:00+08:00");
        let slots = hall.slots(
            &cal,
            "market.change",
            date("2026-12-01"),
            date("2026-12-01"),
            now,
        );
        // 09:00–12:00 and 13:00–17:00 in 30 minutes on counter A01 only: 6 + 8.
        assert_eq!(slots.len(), 14);
        assert_eq!(slots[0].start, utc("2026-12-01T09:00:00+08:00"));
        assert_eq!(slots[5].end, utc("2026-12-01T12:00:00+08:00"));
        assert_eq!(slots[6].start, utc("2026-12-01T13:00:00+08:00"));
        assert!(slots.iter().all(|s| s.counter == "A01" && s.capacity == 2));
        let lunch_start = utc("2026-12-01T12:00:00+08:00");
        let lunch_end = utc("2026-12-01T13:00:00+08:00");
        assert!(
            slots
                .iter()
                .all(|s| s.end <= lunch_start || s.start >= lunch_end)
        );
        // Two counters serve establish: twice as many.
        let both = hall.slots(
            &cal,
            "market.establish",
            date("2026-12-01"),
            date("2026-12-01"),
            now,
        );
        assert_eq!(both.len(), 28);
    }

    #[test]
    fn a_holiday_has_no_slots_and_a_makeup_saturday_has_them() {
        let hall = hall();
        let now = utc("2026-09-01T08:00:00+08:00");
        let cal = calendar();
        // 2026-10-01 (Thursday) is National Day; 2026-10-10 (Saturday) is a working weekend.
        assert!(
            hall.slots(
                &cal,
                "market.change",
                date("2026-10-01"),
                date("2026-10-01"),
                now
            )
            .is_empty()
        );
        let saturday = hall.slots(
            &cal,
            "market.change",
            date("2026-10-10"),
            date("2026-10-10"),
            now,
        );
        assert_eq!(saturday.len(), 14, "Monday's hours open a working weekend");
        // An ordinary Sunday has none.
        assert!(
            hall.slots(
                &cal,
                "market.change",
                date("2026-10-11"),
                date("2026-10-11"),
                now
            )
            .is_empty()
        );
        // An administrator's change is followed.
        let mut changed = calendar();
        changed.set_day(date("2026-10-11"), DayKind::WorkingDay);
        changed.set_day(date("2026-10-12"), DayKind::Holiday);
        assert_eq!(
            hall.slots(
                &changed,
                "market.change",
                date("2026-10-11"),
                date("2026-10-11"),
                now
            )
            .len(),
            14
        );
        assert!(
            hall.slots(
                &changed,
                "market.change",
                date("2026-10-12"),
                date("2026-10-12"),
                now
            )
            .is_empty()
        );
    }

    #[test]
    fn the_past_has_no_slots() {
        let hall = hall();
        let cal = calendar();
        let now = utc("2026-12-01T10:15:00+08:00");
        let slots = hall.slots(
            &cal,
            "market.change",
            date("2026-12-01"),
            date("2026-12-01"),
            now,
        );
        // 10:30, 11:00, 11:30 and the eight afternoon slots.
        assert_eq!(slots.len(), 11);
        assert_eq!(slots[0].start, utc("2026-12-01T10:30:00+08:00"));
        assert_eq!(
            hall.slots_at(
                &cal,
                "market.change",
                utc("2026-12-01T10:00:00+08:00"),
                None,
                now,
                30
            ),
            Err(SlotRefusal::Past)
        );
    }

    #[test]
    fn own_hours_replace_the_calendars_and_never_open_a_holiday() {
        let hall = hall();
        let cal = calendar();
        let now = utc("2026-09-01T08:00:00+08:00");
        let slots = hall.slots(
            &cal,
            "tax.registration",
            date("2026-12-01"),
            date("2026-12-01"),
            now,
        );
        assert_eq!(slots.len(), 2);
        assert_eq!(slots[1].end, utc("2026-12-01T11:00:00+08:00"));
        assert!(
            hall.slots(
                &cal,
                "tax.registration",
                date("2026-10-02"),
                date("2026-10-02"),
                now
            )
            .is_empty()
        );
    }

    #[test]
    fn a_slot_is_found_only_at_a_slot_boundary_of_a_serving_counter() {
        let hall = hall();
        let cal = calendar();
        let now = utc("2026-11-30T08:00:00+08:00");
        let at = utc("2026-12-01T09:30:00+08:00");
        let found = hall
            .slots_at(&cal, "market.establish", at, None, now, 30)
            .unwrap();
        assert_eq!(
            found.iter().map(|s| s.counter.as_str()).collect::<Vec<_>>(),
            ["A01", "A02"]
        );
        let one = hall
            .slots_at(&cal, "market.establish", at, Some("A02"), now, 30)
            .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(
            hall.slots_at(&cal, "market.change", at, Some("A02"), now, 30),
            Err(SlotRefusal::CounterNotServing)
        );
        for off in [
            "2026-12-01T09:10:00+08:00",
            "2026-12-01T12:00:00+08:00",
            "2026-12-05T09:00:00+08:00",
        ] {
            assert_eq!(
                hall.slots_at(&cal, "market.establish", utc(off), None, now, 30),
                Err(SlotRefusal::NotASlot),
                "{off}"
            );
        }
        assert_eq!(
            hall.slots_at(
                &cal,
                "market.establish",
                utc("2027-01-05T09:00:00+08:00"),
                None,
                now,
                30
            ),
            Err(SlotRefusal::TooFar {
                last: date("2026-12-30")
            })
        );
    }

    #[test]
    fn listing_ranges_are_checked() {
        let zone = chrono_tz::Asia::Shanghai;
        // 23:30 UTC on 29 Nov is already 30 Nov in Shanghai.
        let now = utc("2026-11-29T23:30:00Z");
        assert_eq!(
            listing_range(None, None, now, zone, 30),
            Ok((date("2026-11-30"), date("2026-12-06")))
        );
        assert_eq!(
            listing_range(Some(date("2026-11-29")), None, now, zone, 30),
            Err(RangeRefusal::Past {
                today: date("2026-11-30")
            })
        );
        assert_eq!(
            listing_range(
                Some(date("2026-12-05")),
                Some(date("2026-12-04")),
                now,
                zone,
                30
            ),
            Err(RangeRefusal::Reversed)
        );
        assert_eq!(
            listing_range(None, Some(date("2026-12-31")), now, zone, 30),
            Err(RangeRefusal::TooFar {
                last: date("2026-12-30")
            })
        );
        assert_eq!(
            listing_range(Some(date("2026-12-28")), None, now, zone, 30),
            Ok((date("2026-12-28"), date("2026-12-30")))
        );
        // The last representable date is refused, not overflowed.
        assert_eq!(
            listing_range(Some(NaiveDate::MAX), None, now, zone, 30),
            Err(RangeRefusal::TooFar {
                last: date("2026-12-30")
            })
        );
    }

    #[test]
    fn cutoff_no_show_and_week() {
        let start = utc("2026-12-01T10:00:00+08:00");
        let two_hours = TimeDelta::hours(2);
        assert!(before_cutoff(
            start,
            utc("2026-12-01T07:59:59+08:00"),
            two_hours
        ));
        assert!(!before_cutoff(
            start,
            utc("2026-12-01T08:00:00+08:00"),
            two_hours
        ));
        assert_eq!(
            no_show_at(utc("2026-12-01T10:30:00+08:00"), TimeDelta::minutes(15)),
            utc("2026-12-01T10:45:00+08:00")
        );
        assert_eq!(week_of(date("2026-12-06")), date("2026-11-30"));
        assert_eq!(week_of(date("2026-11-30")), date("2026-11-30"));
    }

    #[test]
    fn the_reminder_is_due_the_working_day_before() {
        let cal = calendar();
        let early = utc("2026-09-01T08:00:00+08:00");
        // Tuesday's slot: Monday 09:00.
        assert_eq!(
            reminder_at(&cal, date("2026-12-01"), early),
            Some(utc("2026-11-30T09:00:00+08:00"))
        );
        // Monday's slot: the Friday before.
        assert_eq!(
            reminder_at(&cal, date("2026-12-07"), early),
            Some(utc("2026-12-04T09:00:00+08:00"))
        );
        // After the National Day holidays (1–7 October), Thursday 2026-10-08 works again.
        assert_eq!(
            reminder_at(&cal, date("2026-10-09"), early),
            Some(utc("2026-10-08T09:00:00+08:00"))
        );
        // The working Saturday 2026-10-10 is reminded on Friday 2026-10-09.
        assert_eq!(
            reminder_at(&cal, date("2026-10-12"), early),
            Some(utc("2026-10-10T09:00:00+08:00"))
        );
        // Booked after the reminder moment: none.
        assert_eq!(
            reminder_at(&cal, date("2026-12-01"), utc("2026-11-30T09:00:00+08:00")),
            None
        );
    }

    #[test]
    fn check_in_is_on_the_day_from_the_early_window_until_the_no_show() {
        let zone = chrono_tz::Asia::Shanghai;
        let start = utc("2026-12-01T10:00:00+08:00");
        let no_show = utc("2026-12-01T10:45:00+08:00");
        let early = TimeDelta::minutes(30);
        let at = |t: &str| check_in_window(start, no_show, utc(t), early, zone);
        assert_eq!(at("2026-12-01T09:30:00+08:00"), Ok(()));
        assert_eq!(at("2026-12-01T10:44:59+08:00"), Ok(()));
        assert_eq!(
            at("2026-12-01T09:29:00+08:00"),
            Err(CheckInRefusal::TooEarly {
                opens_at: utc("2026-12-01T09:30:00+08:00")
            })
        );
        assert_eq!(
            at("2026-11-30T10:00:00+08:00"),
            Err(CheckInRefusal::NotToday)
        );
        assert_eq!(at("2026-12-01T10:45:00+08:00"), Err(CheckInRefusal::Closed));
    }

    #[test]
    fn status_round_trips_and_only_cancelled_stops_counting() {
        for status in [
            Status::Booked,
            Status::Cancelled,
            Status::CheckedIn,
            Status::NoShow,
        ] {
            assert_eq!(Status::parse(status.as_str()), Some(status));
            assert_eq!(status.counts(), status != Status::Cancelled);
        }
        assert_eq!(Status::parse("gone"), None);
    }

    fn error(text: &str) -> String {
        Hall::parse("bad.toml", text, &catalog())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_bad_hall_names_the_entry() {
        let unit = |body: &str| format!("[[units]]\nunit = \"market\"\n{body}");
        let counter =
            "[[units.counters]]\ncode = \"A01\"\nname = \"窗口\"\nmatters = [\"market.change\"]\n";
        assert_eq!(
            error("[[units]]\nunit = \"moon\"\nslot_minutes = 30\ncapacity = 1\n"),
            "appointments bad.toml: units[0].unit: `moon` is not a unit code of the catalog"
        );
        assert_eq!(
            error(&unit(&format!("slot_minutes = 3\ncapacity = 1\n{counter}"))),
            "appointments bad.toml: units[market].slot_minutes: 3 is not 5 to 240 minutes"
        );
        assert_eq!(
            error(&unit(&format!(
                "slot_minutes = 30\ncapacity = 0\n{counter}"
            ))),
            "appointments bad.toml: units[market].capacity: 0 is not 1 to 1000"
        );
        assert_eq!(
            error(&unit(&format!(
                "slot_minutes = 30\ncapacity = 1\nhours = [\"13:00-12:00\"]\n{counter}"
            ))),
            "appointments bad.toml: units[market].hours[0]: `13:00-12:00` does not close after it opens"
        );
        assert_eq!(
            error(&unit(&format!(
                "slot_minutes = 60\ncapacity = 1\nhours = [\"09:00-09:30\"]\n{counter}"
            ))),
            "appointments bad.toml: units[market].hours[0]: shorter than one slot of 60 minutes"
        );
        assert_eq!(
            error(&unit(&format!(
                "slot_minutes = 30\ncapacity = 1\n{counter}{counter}"
            ))),
            "appointments bad.toml: units[market].counters[A01]: counter code used twice in the hall"
        );
        assert_eq!(
            error(&unit(
                "slot_minutes = 30\ncapacity = 1\n[[units.counters]]\ncode = \"A01\"\nname = \"窗口\"\nmatters = [\"market.nothing\"]\n"
            )),
            "appointments bad.toml: units[market].counters[A01].matters[0]: `market.nothing` is not a matter of the catalog"
        );
        assert_eq!(
            error(&unit("slot_minutes = 30\ncapacity = 1\n")),
            "appointments bad.toml: units[market].counters: a unit in the hall needs at least one counter"
        );
        assert!(error("units = 3").starts_with("appointments bad.toml: line 1:"));
        assert!(
            error(&unit(&format!(
                "slot_minutes = 30\ncapacity = 1\ncolour = \"red\"\n{counter}"
            )))
            .contains("unknown field")
        );
    }
}
