//! The working calendar: which days are working days, the service hours of each, and the
//! deadlines of clock targets ([`Target`]) counted on them.
//!
//! A calendar is data (`config/calendars/<code>.toml`). [`Calendar::parse`] reads it and checks it
//! whole; a mistake stops the server with a message naming the file and the entry. Administrators
//! add or remove days at runtime ([`Calendar::set_day`], [`Calendar::clear_day`]), or load a whole
//! year when the State Council publishes it ([`YearDays::check`], [`Calendar::load_year`]); every
//! computation reads the current days, so clocks recomputed after a change follow it.
//!
//! The calendar knows its **horizon** ([`Calendar::horizon`]): the last day for which holidays
//! and working weekends are configured — 31 December of the last year of the file's `years`, or
//! of a year loaded since, counting only years without a gap from the first configured one. A
//! deadline after the horizon is *provisional* ([`Horizon::is_provisional`]): it was counted on
//! weekdays alone (1 January of an unconfigured year counts as a working day) and moves when
//! the year is loaded.
//!
//! The rules:
//! - A day is a working day when an explicit override says so ([`DayKind`]: the file's
//!   `holidays` and `working_weekends`, or [`Calendar::set_day`]); otherwise when its weekday
//!   has service hours.
//! - A working day is open during its weekday's service hours. A working day whose weekday has
//!   none (a working weekend, 调休上班) is open during Monday's hours, the *standard day*.
//! - Dates and hours are read in the calendar's time zone; instants in and out are UTC.
//!   Service minutes are minutes of the local clock.
//! - Nothing here reads the system clock: callers pass the instants.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::catalog::Target;

/// The Shanghai calendar as shipped in the repository (compiled in; a file may replace it).
pub const SHANGHAI_CALENDAR: &str = include_str!("../../config/calendars/cn-shanghai.toml");

/// How many consecutive days without service a computation crosses before giving up
/// ([`CalendarError::Unreachable`]): ten years.
pub const HORIZON_DAYS: u32 = 3660;

/// A service period of a day: opening (inclusive) and closing (exclusive), local time.
pub type Period = (NaiveTime, NaiveTime);

/// An explicit override of one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// Not a working day, whatever the weekday (a public holiday).
    Holiday,
    /// A working day, whatever the weekday (e.g. a working weekend, 调休上班).
    WorkingDay,
}

/// A calendar problem: a file that does not pass the checks, or a deadline that cannot be
/// reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The calendar file is wrong; names the file and the entry.
    #[error("calendar {file}: {entry}: {problem}")]
    Invalid {
        /// The file.
        file: String,
        /// The entry, e.g. `years.2025.working_weekends[2]` or `hours.monday[1]`.
        entry: String,
        /// What is wrong.
        problem: String,
    },
    /// A deadline that does not exist: no working day within [`HORIZON_DAYS`], or past the last
    /// date that can be represented.
    #[error("calendar {code}: no deadline from {start}: {problem}")]
    Unreachable {
        /// The calendar's code.
        code: String,
        /// The instant counting started from.
        start: DateTime<Utc>,
        /// Why.
        problem: String,
    },
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    code: String,
    time_zone: String,
    hours: HoursFile,
    #[serde(default)]
    years: BTreeMap<String, YearFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoursFile {
    monday: Vec<String>,
    tuesday: Vec<String>,
    wednesday: Vec<String>,
    thursday: Vec<String>,
    friday: Vec<String>,
    saturday: Vec<String>,
    sunday: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    working_weekends: Vec<String>,
}

/// A working calendar that passed every check, with the overrides set since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    code: String,
    zone: Tz,
    /// Service hours per weekday, Monday first; each list sorted, not overlapping or touching.
    hours: [Vec<Period>; 7],
    /// Explicit overrides: the file's holidays and working weekends, and runtime changes.
    days: BTreeMap<NaiveDate, DayKind>,
    /// Years whose holidays and working weekends are configured (the file's, and years loaded
    /// since).
    years: BTreeSet<i32>,
}

/// Which list of a year a date was given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayList {
    /// `holidays`.
    Holidays,
    /// `working_weekends` in the file, `working_days` in the API: Saturdays and Sundays that
    /// are working days (调休上班).
    WorkingDays,
}

/// One bad item of a year's lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearProblem {
    /// The list.
    pub list: DayList,
    /// The item's position in it, from 0.
    pub index: usize,
    /// What is wrong.
    pub problem: String,
}

/// The holidays and working weekend days of one year, checked whole: what
/// [`Calendar::load_year`] puts in place of whatever the year had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearDays {
    year: i32,
    days: BTreeMap<NaiveDate, DayKind>,
}

impl YearDays {
    /// Checks the `holidays` and `working_days` of `year`, each item a date `YYYY-MM-DD` or an
    /// inclusive range `YYYY-MM-DD..YYYY-MM-DD`. Every bad item is reported (at most one
    /// problem per item, in list order): a date that is not one, outside `year`, listed twice,
    /// in both lists, or a working day that is not a Saturday or Sunday.
    pub fn check(
        year: i32,
        holidays: &[String],
        working_days: &[String],
    ) -> Result<Self, Vec<YearProblem>> {
        let mut days = BTreeMap::new();
        let mut problems = Vec::new();
        let lists = [
            (DayList::Holidays, DayKind::Holiday, holidays),
            (DayList::WorkingDays, DayKind::WorkingDay, working_days),
        ];
        for (list, kind, items) in lists {
            for (index, item) in items.iter().enumerate() {
                if let Err(problem) = add_dates(&mut days, year, kind, item) {
                    problems.push(YearProblem {
                        list,
                        index,
                        problem,
                    });
                }
            }
        }
        if problems.is_empty() {
            Ok(Self { year, days })
        } else {
            Err(problems)
        }
    }

    /// The year.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// Its overrides, by date.
    pub fn days(&self) -> impl Iterator<Item = (NaiveDate, DayKind)> + '_ {
        self.days.iter().map(|(date, kind)| (*date, *kind))
    }

    /// The override of `date` this year sets (`None`: the weekday decides).
    pub fn kind(&self, date: NaiveDate) -> Option<DayKind> {
        self.days.get(&date).copied()
    }

    /// How many dates of `kind`.
    pub fn count(&self, kind: DayKind) -> usize {
        self.days.values().filter(|k| **k == kind).count()
    }
}

/// Adds the dates of one item (a date or a range) of `year`'s `kind` list to `days`; the first
/// problem of the item, if any (nothing of a bad item stays in `days`).
fn add_dates(
    days: &mut BTreeMap<NaiveDate, DayKind>,
    year: i32,
    kind: DayKind,
    item: &str,
) -> Result<(), String> {
    let (first, last) = parse_dates(item)?;
    let mut added = Vec::new();
    let mut outcome = Ok(());
    for date in first.iter_days().take_while(|d| *d <= last) {
        let problem = if date.year() != year {
            Some(format!("{date} is not in {year}"))
        } else if kind == DayKind::WorkingDay
            && !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
        {
            Some(format!(
                "{date} is a {}, not a Saturday or Sunday",
                weekday_name(date.weekday())
            ))
        } else {
            match days.get(&date) {
                Some(before) if *before == kind => Some(format!("{date} is listed twice")),
                Some(_) => Some(format!("{date} is both a holiday and a working weekend")),
                None => None,
            }
        };
        if let Some(problem) = problem {
            outcome = Err(problem);
            break;
        }
        days.insert(date, kind);
        added.push(date);
    }
    if outcome.is_err() {
        for date in added {
            days.remove(&date);
        }
    }
    outcome
}

/// The last day of a calendar's configured years, and the zone its dates are read in: what
/// tells a provisional deadline (after the horizon) from a settled one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    last_day: Option<NaiveDate>,
    zone: Tz,
}

impl Horizon {
    /// The last configured day (31 December); `None` when no year is configured.
    pub fn last_day(&self) -> Option<NaiveDate> {
        self.last_day
    }

    /// Whether a due time is provisional: its local date is after the horizon (always, when no
    /// year is configured).
    pub fn is_provisional(&self, due: DateTime<Utc>) -> bool {
        let date = due.with_timezone(&self.zone).date_naive();
        self.last_day.is_none_or(|last| date > last)
    }

    /// Days from the local date of `now` to the horizon: 0 on the last configured day,
    /// negative after it; `None` when no year is configured.
    pub fn days_left(&self, now: DateTime<Utc>) -> Option<i64> {
        let today = now.with_timezone(&self.zone).date_naive();
        self.last_day.map(|last| (last - today).num_days())
    }

    /// Whether the administrators should be told at `now` that the horizon is near: it is at
    /// most `lead_days` days away (or passed, or there is none). `lead_days` 0 never tells.
    pub fn notice_due(&self, now: DateTime<Utc>, lead_days: u32) -> bool {
        lead_days > 0
            && self
                .days_left(now)
                .is_none_or(|left| left <= i64::from(lead_days))
    }
}

impl Calendar {
    /// Parses and checks `text`, read from `file` (used in messages only).
    ///
    /// Refused: unknown keys, a time zone that is not an IANA name, a service period that is not
    /// `HH:MM-HH:MM`, closes before it opens, or overlaps or touches another; Monday without
    /// hours (it is the standard day); a date that is not `YYYY-MM-DD` (or an inclusive range
    /// `YYYY-MM-DD..YYYY-MM-DD`), lies outside its year's section or is listed twice; a working
    /// weekend that is not a Saturday or Sunday, or is also a holiday.
    pub fn parse(file: &str, text: &str) -> Result<Self, CalendarError> {
        let fail = |entry: String, problem: String| CalendarError::Invalid {
            file: file.to_string(),
            entry,
            problem,
        };
        let raw: CalendarFile = toml::from_str(text).map_err(|e| {
            let entry = e
                .span()
                .map(|s| format!("line {}", text[..s.start].matches('\n').count() + 1))
                .unwrap_or_else(|| "file".into());
            fail(entry, e.message().to_string())
        })?;

        if raw.code.trim().is_empty() {
            return Err(fail("code".into(), "must not be empty".into()));
        }
        let zone: Tz = raw.time_zone.parse().map_err(|_| {
            fail(
                "time_zone".into(),
                format!("`{}` is not an IANA time zone name", raw.time_zone),
            )
        })?;

        let HoursFile {
            monday,
            tuesday,
            wednesday,
            thursday,
            friday,
            saturday,
            sunday,
        } = raw.hours;
        let mut hours: [Vec<Period>; 7] = Default::default();
        let weekly = [
            ("monday", monday),
            ("tuesday", tuesday),
            ("wednesday", wednesday),
            ("thursday", thursday),
            ("friday", friday),
            ("saturday", saturday),
            ("sunday", sunday),
        ];
        for (slot, (name, periods)) in hours.iter_mut().zip(weekly) {
            *slot = parse_periods(&periods)
                .map_err(|(i, problem)| fail(format!("hours.{name}[{i}]"), problem))?;
        }
        if hours[0].is_empty() {
            return Err(fail(
                "hours.monday".into(),
                "Monday's hours are the standard working day (working weekends, half days): \
                 they must not be empty"
                    .into(),
            ));
        }

        let mut days = BTreeMap::new();
        let mut years = BTreeSet::new();
        for (key, year) in &raw.years {
            let section = format!("years.{key}");
            let number: i32 = key
                .parse()
                .ok()
                .filter(|y| (1900..=9999).contains(y))
                .ok_or_else(|| fail(section.clone(), format!("`{key}` is not a year")))?;
            let checked = YearDays::check(number, &year.holidays, &year.working_weekends).map_err(
                |problems| {
                    let first = &problems[0];
                    let list = match first.list {
                        DayList::Holidays => "holidays",
                        DayList::WorkingDays => "working_weekends",
                    };
                    fail(
                        format!("{section}.{list}[{}]", first.index),
                        first.problem.clone(),
                    )
                },
            )?;
            days.extend(checked.days);
            years.insert(number);
        }

        Ok(Self {
            code: raw.code,
            zone,
            hours,
            days,
            years,
        })
    }

    /// The Shanghai calendar shipped with the code (`config/calendars/cn-shanghai.toml`).
    pub fn builtin_shanghai() -> Self {
        Self::parse("config/calendars/cn-shanghai.toml", SHANGHAI_CALENDAR)
            .expect("the shipped calendar is valid")
    }

    /// Stable identifier, e.g. `cn-shanghai`.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The zone in which dates and hours are read.
    pub fn time_zone(&self) -> Tz {
        self.zone
    }

    /// The configured weekly service hours of `weekday` (before any override).
    pub fn hours(&self, weekday: Weekday) -> &[Period] {
        &self.hours[weekday.num_days_from_monday() as usize]
    }

    /// Makes `date` a holiday or a working day, whatever the weekday, replacing any earlier
    /// override (from the file or from a previous call).
    pub fn set_day(&mut self, date: NaiveDate, kind: DayKind) {
        self.days.insert(date, kind);
    }

    /// Removes the override of `date` (from the file or from [`Calendar::set_day`]): the weekday
    /// decides again.
    pub fn clear_day(&mut self, date: NaiveDate) {
        self.days.remove(&date);
    }

    /// Puts `year`'s holidays and working weekend days in place of every override the year had
    /// (from the file or from earlier changes), and counts the year as configured: the
    /// horizon moves to its end when it follows the configured years without a gap.
    pub fn load_year(&mut self, year: &YearDays) {
        let (first, last) = year_bounds(year.year);
        let old: Vec<NaiveDate> = self.days.range(first..=last).map(|(d, _)| *d).collect();
        for date in old {
            self.days.remove(&date);
        }
        self.days.extend(year.days.iter().map(|(d, k)| (*d, *k)));
        self.years.insert(year.year);
    }

    /// Counts `year` as configured without changing its days (a year whose every day was
    /// decided by an administrator, as stored).
    pub fn mark_configured(&mut self, year: i32) {
        self.years.insert(year);
    }

    /// The configured years, in order.
    pub fn configured_years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    /// The horizon: 31 December of the last year of the unbroken run of configured years that
    /// starts at the first one (a year loaded after a gap does not move it).
    pub fn horizon(&self) -> Horizon {
        let mut years = self.years.iter().copied();
        let last_year = years.next().map(|first| {
            let mut last = first;
            for year in years {
                if year != last + 1 {
                    break;
                }
                last = year;
            }
            last
        });
        Horizon {
            last_day: last_year.and_then(|y| NaiveDate::from_ymd_opt(y, 12, 31)),
            zone: self.zone,
        }
    }

    /// The explicit override of `date`, if any.
    pub fn day_kind(&self, date: NaiveDate) -> Option<DayKind> {
        self.days.get(&date).copied()
    }

    /// Every override, by date.
    pub fn days(&self) -> impl Iterator<Item = (NaiveDate, DayKind)> + '_ {
        self.days.iter().map(|(date, kind)| (*date, *kind))
    }

    /// Whether `date` is a working day: its override if any, else whether its weekday has
    /// service hours.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        !self.periods(date).is_empty()
    }

    /// The service periods of `date`, in order; empty on a day that is not a working day.
    /// A working day whose weekday has no hours (a working weekend) uses Monday's.
    pub fn service_periods(&self, date: NaiveDate) -> Vec<Period> {
        self.periods(date).to_vec()
    }

    /// Minutes of service on `date` (0 on a day that is not a working day).
    pub fn service_minutes(&self, date: NaiveDate) -> i64 {
        total(self.periods(date)).num_minutes()
    }

    /// Minutes of service of the standard day (Monday's hours): 420 on cn-shanghai. Half a
    /// working day is half of it.
    pub fn standard_day_minutes(&self) -> i64 {
        total(&self.hours[0]).num_minutes()
    }

    /// The deadline of `target` counted from `start`, computed in the calendar's zone:
    ///
    /// - `Minutes(n)`: `start` + `n` minutes of wall-clock time; the calendar plays no part.
    /// - `WorkingMinutes(n)`: [`Calendar::add_working_minutes`].
    /// - `WorkingHalfDays(h)`, `h` even: [`Calendar::add_working_days`] with `h / 2` days: the
    ///   close of service on the `h / 2`-th working day after the day of `start`.
    /// - `WorkingHalfDays(h)`, `h` odd: `h` half days of working minutes counted from `start`,
    ///   a half day being half of the standard day (210 minutes on cn-shanghai): half a working
    ///   day from Monday 10:00 is Monday 14:30. Whole days end at a closing while half days
    ///   count from the instant, so for odd `h` ≥ 3 the deadline can come before that of `h - 1`
    ///   (1.5 days from Monday 09:00 is Tuesday 13:30; 1 day is Tuesday 17:00).
    ///
    /// A target of 0 is `start`. Fails only when the deadline does not exist
    /// ([`CalendarError::Unreachable`]).
    pub fn deadline(
        &self,
        start: DateTime<Utc>,
        target: Target,
    ) -> Result<DateTime<Utc>, CalendarError> {
        match target {
            Target::Minutes(n) => start
                .checked_add_signed(TimeDelta::minutes(i64::from(n)))
                .ok_or_else(|| self.unreachable(start, "past the last representable instant")),
            Target::WorkingMinutes(n) => self.add_working_minutes(start, i64::from(n)),
            Target::WorkingHalfDays(h) if h % 2 == 0 => self.add_working_days(start, h / 2),
            Target::WorkingHalfDays(h) => {
                let half_day = total(&self.hours[0]).num_seconds() / 2;
                self.add_working(start, TimeDelta::seconds(half_day * i64::from(h)))
            }
        }
    }

    /// The instant after `minutes` minutes of service counted forward from `start` (backward
    /// when negative; `start` itself when 0).
    ///
    /// Counting forward from outside service hours begins at the next opening; a deadline that
    /// falls exactly on a closing is that closing, not the next opening. Counting backward from
    /// outside service hours begins at the previous closing, and a result exactly on an opening
    /// is that opening. For every `start` and `n`,
    /// `working_minutes_between(start, add_working_minutes(start, n)) == n` when `n` ≥ 0.
    pub fn add_working_minutes(
        &self,
        start: DateTime<Utc>,
        minutes: i64,
    ) -> Result<DateTime<Utc>, CalendarError> {
        let amount = TimeDelta::try_minutes(minutes).ok_or_else(|| {
            self.unreachable(start, &format!("{minutes} minutes is out of range"))
        })?;
        self.add_working(start, amount)
    }

    /// The close of service (end of the last period) on the `days`-th working day after the
    /// calendar day of `start` in the calendar's zone. The day of `start` never counts,
    /// whatever the hour: one working day from Friday 08:00 or 20:00 is Monday's close (when
    /// Monday is a working day). 0 days is `start`.
    pub fn add_working_days(
        &self,
        start: DateTime<Utc>,
        days: u32,
    ) -> Result<DateTime<Utc>, CalendarError> {
        if days == 0 {
            return Ok(start);
        }
        let mut date = self.local(start).date();
        let mut counted = 0;
        let mut idle = 0;
        loop {
            date = date
                .succ_opt()
                .ok_or_else(|| self.unreachable(start, "past the last representable date"))?;
            match self.periods(date).last() {
                Some(&(_, close)) => {
                    idle = 0;
                    counted += 1;
                    if counted == days {
                        return Ok(self.to_utc(date.and_time(close)));
                    }
                }
                None => {
                    idle += 1;
                    if idle > HORIZON_DAYS {
                        return Err(self.no_working_day(start, date));
                    }
                }
            }
        }
    }

    /// Minutes of service elapsed between two instants (whole minutes, rounded down); 0 when
    /// `to` is not after `from`. The SLA clocks use it to recompute remaining time after pauses.
    pub fn working_minutes_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        let (from, to) = (self.local(from), self.local(to));
        let mut elapsed = TimeDelta::zero();
        let mut date = from.date();
        while date <= to.date() {
            for &(open, close) in self.periods(date) {
                let begin = date.and_time(open).max(from);
                let end = date.and_time(close).min(to);
                if end > begin {
                    elapsed += end - begin;
                }
            }
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
        elapsed.num_minutes()
    }

    /// The service periods of `date`, without copying.
    fn periods(&self, date: NaiveDate) -> &[Period] {
        let own = &self.hours[date.weekday().num_days_from_monday() as usize];
        match self.days.get(&date) {
            Some(DayKind::Holiday) => &[],
            Some(DayKind::WorkingDay) if own.is_empty() => &self.hours[0],
            Some(DayKind::WorkingDay) | None => own,
        }
    }

    /// Moves `amount` of service time from `start` (backward when negative).
    fn add_working(
        &self,
        start: DateTime<Utc>,
        amount: TimeDelta,
    ) -> Result<DateTime<Utc>, CalendarError> {
        if amount > TimeDelta::zero() {
            self.count_forward(start, amount)
        } else if amount < TimeDelta::zero() {
            self.count_backward(start, -amount)
        } else {
            Ok(start)
        }
    }

    fn count_forward(
        &self,
        start: DateTime<Utc>,
        mut remaining: TimeDelta,
    ) -> Result<DateTime<Utc>, CalendarError> {
        let from = self.local(start);
        let mut date = from.date();
        let mut idle = 0;
        loop {
            let periods = self.periods(date);
            if periods.is_empty() {
                idle += 1;
                if idle > HORIZON_DAYS {
                    return Err(self.no_working_day(start, date));
                }
            } else {
                idle = 0;
            }
            for &(open, close) in periods {
                let begin = date.and_time(open).max(from);
                let close = date.and_time(close);
                if begin >= close {
                    continue;
                }
                let available = close - begin;
                // `<=`: a deadline exactly on a closing stays there.
                if remaining <= available {
                    return Ok(self.to_utc(begin + remaining));
                }
                remaining -= available;
            }
            date = date
                .succ_opt()
                .ok_or_else(|| self.unreachable(start, "past the last representable date"))?;
        }
    }

    fn count_backward(
        &self,
        start: DateTime<Utc>,
        mut remaining: TimeDelta,
    ) -> Result<DateTime<Utc>, CalendarError> {
        let from = self.local(start);
        let mut date = from.date();
        let mut idle = 0;
        loop {
            let periods = self.periods(date);
            if periods.is_empty() {
                idle += 1;
                if idle > HORIZON_DAYS {
                    return Err(self.no_working_day(start, date));
                }
            } else {
                idle = 0;
            }
            for &(open, close) in periods.iter().rev() {
                let open = date.and_time(open);
                let end = date.and_time(close).min(from);
                if end <= open {
                    continue;
                }
                let available = end - open;
                if remaining <= available {
                    return Ok(self.to_utc(end - remaining));
                }
                remaining -= available;
            }
            date = date
                .pred_opt()
                .ok_or_else(|| self.unreachable(start, "before the first representable date"))?;
        }
    }

    /// The local wall-clock time of `instant`.
    fn local(&self, instant: DateTime<Utc>) -> NaiveDateTime {
        instant.with_timezone(&self.zone).naive_local()
    }

    /// The instant of a local wall-clock time. An ambiguous time (clocks turned back) is its
    /// earlier instant; a time that does not exist (clocks turned forward) is the first minute
    /// after the gap.
    fn to_utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let mut probe = local;
        for _ in 0..=24 * 60 {
            match self.zone.from_local_datetime(&probe) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                    return t.with_timezone(&Utc);
                }
                LocalResult::None => probe += TimeDelta::minutes(1),
            }
        }
        // No zone has a gap of a day; read the time as UTC rather than fail.
        local.and_utc()
    }

    fn unreachable(&self, start: DateTime<Utc>, problem: &str) -> CalendarError {
        CalendarError::Unreachable {
            code: self.code.clone(),
            start,
            problem: problem.to_string(),
        }
    }

    fn no_working_day(&self, start: DateTime<Utc>, last: NaiveDate) -> CalendarError {
        self.unreachable(
            start,
            &format!("no working day in the {HORIZON_DAYS} days up to {last}"),
        )
    }
}

/// The first and last day of `year`.
pub fn year_bounds(year: i32) -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(year, 1, 1).expect("a year of the calendar"),
        NaiveDate::from_ymd_opt(year, 12, 31).expect("a year of the calendar"),
    )
}

/// Total length of `periods`.
fn total(periods: &[Period]) -> TimeDelta {
    periods
        .iter()
        .fold(TimeDelta::zero(), |sum, &(open, close)| {
            sum + (close - open)
        })
}

/// Parses one weekday's `"HH:MM-HH:MM"` periods and sorts them; the error names the index.
/// (Also the appointment hall's opening hours, `crate::domain::appointment`.)
pub fn parse_periods(items: &[String]) -> Result<Vec<Period>, (usize, String)> {
    let mut periods = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let bad = || (i, format!("`{item}` is not a service period (HH:MM-HH:MM)"));
        let (open, close) = item.split_once('-').ok_or_else(bad)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        let (open, close) = (time(open)?, time(close)?);
        if close <= open {
            return Err((i, format!("`{item}` does not close after it opens")));
        }
        periods.push((i, open, close));
    }
    periods.sort_by_key(|&(_, open, _)| open);
    for pair in periods.windows(2) {
        let ((i, _, _), (j, open, _)) = (pair[0], pair[1]);
        if open <= pair[0].2 {
            return Err((
                j,
                format!(
                    "`{}` overlaps or touches `{}`: write them as one period",
                    items[j], items[i]
                ),
            ));
        }
    }
    Ok(periods
        .into_iter()
        .map(|(_, open, close)| (open, close))
        .collect())
}

/// Parses `"YYYY-MM-DD"` or an inclusive range `"YYYY-MM-DD..YYYY-MM-DD"`.
fn parse_dates(item: &str) -> Result<(NaiveDate, NaiveDate), String> {
    let bad = || format!("`{item}` is not a date (YYYY-MM-DD) or a range (YYYY-MM-DD..YYYY-MM-DD)");
    let date = |t: &str| NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").map_err(|_| bad());
    match item.split_once("..") {
        None => {
            let day = date(item)?;
            Ok((day, day))
        }
        Some((first, last)) => {
            let (first, last) = (date(first)?, date(last)?);
            if last < first {
                return Err(format!("`{item}` ends before it starts"));
            }
            Ok((first, last))
        }
    }
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "config/calendars/cn-shanghai.toml";

    /// An instant written with its offset.
    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .with_timezone(&Utc)
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn hm(text: &str) -> NaiveTime {
        NaiveTime::parse_from_str(text, "%H:%M").unwrap()
    }

    fn sh() -> Calendar {
        Calendar::builtin_shanghai()
    }

    fn deadline(start: &str, target: Target) -> DateTime<Utc> {
        sh().deadline(at(start), target).unwrap()
    }

    fn working_minutes(start: &str, minutes: i64) -> DateTime<Utc> {
        sh().add_working_minutes(at(start), minutes).unwrap()
    }

    #[test]
    fn shipped_calendar_lists_the_published_days() {
        let cal = sh();
        assert_eq!(cal.code(), "cn-shanghai");
        assert_eq!(cal.time_zone(), chrono_tz::Asia::Shanghai);
        let count = |year: i32, kind: DayKind| {
            cal.days()
                .filter(|(d, k)| d.year() == year && *k == kind)
                .count()
        };
        // 2025: 1 + 8 + 3 + 5 + 3 + 8; 2026: 3 + 9 + 3 + 5 + 3 + 3 + 7.
        assert_eq!(count(2025, DayKind::Holiday), 28);
        assert_eq!(count(2026, DayKind::Holiday), 33);
        assert_eq!(count(2025, DayKind::WorkingDay), 5);
        assert_eq!(count(2026, DayKind::WorkingDay), 6);
        for d in [
            "2025-01-01",
            "2025-01-28",
            "2025-02-04",
            "2025-04-04",
            "2025-05-05",
            "2025-05-31",
            "2025-06-02",
            "2025-10-08",
            "2026-01-02",
            "2026-02-16",
            "2026-02-23",
            "2026-04-06",
            "2026-06-19",
            "2026-09-25",
            "2026-10-07",
        ] {
            assert_eq!(cal.day_kind(day(d)), Some(DayKind::Holiday), "{d}");
            assert!(!cal.is_working_day(day(d)), "{d}");
        }
        for d in [
            "2025-01-26",
            "2025-02-08",
            "2025-04-27",
            "2025-09-28",
            "2025-10-11",
            "2026-01-04",
            "2026-02-14",
            "2026-02-28",
            "2026-05-09",
            "2026-09-20",
            "2026-10-10",
        ] {
            assert_eq!(cal.day_kind(day(d)), Some(DayKind::WorkingDay), "{d}");
            assert!(cal.is_working_day(day(d)), "{d}");
        }
        // Ordinary days: no override, the weekday decides.
        assert_eq!(cal.day_kind(day("2025-02-05")), None);
        assert!(cal.is_working_day(day("2025-02-05"))); // Wednesday
        assert!(!cal.is_working_day(day("2025-02-09"))); // Sunday
        assert!(cal.is_working_day(day("2026-10-08"))); // Thursday after National Day
    }

    #[test]
    fn service_periods_follow_the_day() {
        let cal = sh();
        let standard = vec![(hm("09:00"), hm("12:00")), (hm("13:00"), hm("17:00"))];
        assert_eq!(cal.service_periods(day("2025-03-10")), standard); // Monday
        assert_eq!(cal.service_minutes(day("2025-03-10")), 420);
        assert_eq!(cal.service_periods(day("2025-03-08")), vec![]); // Saturday
        assert_eq!(cal.service_minutes(day("2025-03-08")), 0);
        assert_eq!(cal.service_periods(day("2025-10-03")), vec![]); // Friday, holiday
        assert_eq!(cal.service_periods(day("2025-10-11")), standard); // Saturday, working
        assert_eq!(cal.standard_day_minutes(), 420);
        assert!(cal.hours(Weekday::Sun).is_empty());
    }

    #[test]
    fn twenty_working_days_across_spring_festival_2026() {
        // From Monday 9 Feb: 10–13 Feb (4), Sat 14 Feb (5), 15–23 Feb holidays, 24–27 Feb (9),
        // Sat 28 Feb (10), 2–6 Mar (15), 9–13 Mar (20).
        assert_eq!(
            deadline("2026-02-09T10:00:00+08:00", Target::working_days(20)),
            at("2026-03-13T17:00:00+08:00")
        );
        // The same start written in UTC.
        assert_eq!(
            deadline("2026-02-09T02:00:00Z", Target::working_days(20)),
            at("2026-03-13T09:00:00Z")
        );
        // Five days: the fifth is the working Saturday before the festival.
        assert_eq!(
            deadline("2026-02-09T10:00:00+08:00", Target::working_days(5)),
            at("2026-02-14T17:00:00+08:00")
        );
        // Six days: the festival is skipped.
        assert_eq!(
            deadline("2026-02-09T10:00:00+08:00", Target::working_days(6)),
            at("2026-02-24T17:00:00+08:00")
        );
    }

    #[test]
    fn working_days_never_count_the_start_day() {
        // Friday evening: the next working day is Monday.
        assert_eq!(
            deadline("2025-03-07T20:00:00+08:00", Target::working_days(1)),
            at("2025-03-10T17:00:00+08:00")
        );
        // Friday early morning, before opening: still Monday.
        assert_eq!(
            deadline("2025-03-07T08:00:00+08:00", Target::working_days(1)),
            at("2025-03-10T17:00:00+08:00")
        );
        // Friday evening before National Day 2025: Sun 28 Sep (working), Mon 29, Tue 30,
        // 1–8 Oct holidays, Thu 9, Fri 10.
        assert_eq!(
            deadline("2025-09-26T19:30:00+08:00", Target::working_days(5)),
            at("2025-10-10T17:00:00+08:00")
        );
        // 10 working days (the delivery limit) from Tuesday 30 Sep 2025: 9, 10, Sat 11, 13–17,
        // 20, 21 Oct.
        assert_eq!(
            deadline("2025-09-30T11:00:00+08:00", Target::working_days(10)),
            at("2025-10-21T17:00:00+08:00")
        );
    }

    #[test]
    fn working_days_read_the_day_in_the_calendar_zone() {
        // 16:30 UTC on Sunday is 00:30 on Monday in Shanghai: Monday is the start day.
        assert_eq!(
            deadline("2025-03-09T16:30:00Z", Target::working_days(1)),
            at("2025-03-11T17:00:00+08:00")
        );
        // 15:59 UTC on Sunday is still Sunday in Shanghai.
        assert_eq!(
            deadline("2025-03-09T15:59:00Z", Target::working_days(1)),
            at("2025-03-10T17:00:00+08:00")
        );
    }

    #[test]
    fn working_minutes_skip_closed_time() {
        // Before opening.
        assert_eq!(
            working_minutes("2025-03-10T07:30:00+08:00", 30),
            at("2025-03-10T09:30:00+08:00")
        );
        // During the lunch break.
        assert_eq!(
            working_minutes("2025-03-10T12:20:00+08:00", 30),
            at("2025-03-10T13:30:00+08:00")
        );
        // Across the lunch break.
        assert_eq!(
            working_minutes("2025-03-10T11:30:00+08:00", 90),
            at("2025-03-10T14:00:00+08:00")
        );
        // After closing.
        assert_eq!(
            working_minutes("2025-03-10T18:00:00+08:00", 30),
            at("2025-03-11T09:30:00+08:00")
        );
        // Across a weekend: 30 on Friday, 30 on Monday.
        assert_eq!(
            working_minutes("2025-03-07T16:30:00+08:00", 60),
            at("2025-03-10T09:30:00+08:00")
        );
        // Across a holiday: 60 on Tue 30 Sep, 1–8 Oct closed, 60 on Thu 9 Oct.
        assert_eq!(
            working_minutes("2025-09-30T16:00:00+08:00", 120),
            at("2025-10-09T10:00:00+08:00")
        );
        // Into a working Saturday: 60 on Fri 13 Feb 2026, 30 on Sat 14 Feb.
        assert_eq!(
            working_minutes("2026-02-13T16:00:00+08:00", 90),
            at("2026-02-14T09:30:00+08:00")
        );
        // Starting on a holiday.
        assert_eq!(
            working_minutes("2026-02-20T10:00:00+08:00", 15),
            at("2026-02-24T09:15:00+08:00")
        );
        // Through the Target.
        assert_eq!(
            deadline("2025-03-10T07:30:00+08:00", Target::WorkingMinutes(30)),
            at("2025-03-10T09:30:00+08:00")
        );
    }

    #[test]
    fn a_deadline_on_a_closing_stays_there() {
        assert_eq!(
            working_minutes("2025-03-10T11:00:00+08:00", 60),
            at("2025-03-10T12:00:00+08:00")
        );
        assert_eq!(
            working_minutes("2025-03-10T16:00:00+08:00", 60),
            at("2025-03-10T17:00:00+08:00")
        );
        assert_eq!(
            working_minutes("2025-03-10T09:00:00+08:00", 180),
            at("2025-03-10T12:00:00+08:00")
        );
        assert_eq!(
            working_minutes("2025-03-10T09:00:00+08:00", 420),
            at("2025-03-10T17:00:00+08:00")
        );
        // From before opening, a whole day ends at the closing of the same day.
        assert_eq!(
            working_minutes("2025-03-10T06:00:00+08:00", 420),
            at("2025-03-10T17:00:00+08:00")
        );
        // One more minute goes to the next opening.
        assert_eq!(
            working_minutes("2025-03-10T16:00:00+08:00", 61),
            at("2025-03-11T09:01:00+08:00")
        );
    }

    #[test]
    fn half_a_working_day_is_210_minutes() {
        let half = Target::WorkingHalfDays(1);
        // 10:00–12:00 (120) + 13:00–14:30 (90).
        assert_eq!(
            deadline("2025-03-10T10:00:00+08:00", half),
            at("2025-03-10T14:30:00+08:00")
        );
        // 15:00–17:00 (120) + 09:00–10:30 (90).
        assert_eq!(
            deadline("2025-03-10T15:00:00+08:00", half),
            at("2025-03-11T10:30:00+08:00")
        );
        // 16:00–17:00 (60) + 09:00–11:30 (150).
        assert_eq!(
            deadline("2025-03-10T16:00:00+08:00", half),
            at("2025-03-11T11:30:00+08:00")
        );
        // Friday 15:00 before a weekend.
        assert_eq!(
            deadline("2025-03-07T15:00:00+08:00", half),
            at("2025-03-10T10:30:00+08:00")
        );
        // Written in UTC.
        assert_eq!(
            deadline("2025-03-10T02:00:00Z", half),
            at("2025-03-10T06:30:00Z")
        );
        // Written in New York time (UTC-04:00 in March 2025): 22:00 on Sunday there is
        // Monday 10:00 in Shanghai.
        assert_eq!(
            deadline("2025-03-09T22:00:00-04:00", half),
            at("2025-03-10T14:30:00+08:00")
        );
    }

    #[test]
    fn odd_half_days_count_working_minutes_from_start() {
        // 1.5 days = 630 minutes: Monday 420 + Tuesday 09:00–12:00 (180) + 13:00–13:30 (30).
        assert_eq!(
            deadline("2025-03-10T09:00:00+08:00", Target::WorkingHalfDays(3)),
            at("2025-03-11T13:30:00+08:00")
        );
        // Documented: earlier than one whole day from the same start.
        assert_eq!(
            deadline("2025-03-10T09:00:00+08:00", Target::WorkingHalfDays(2)),
            at("2025-03-11T17:00:00+08:00")
        );
        // 2.5 days = 1050 minutes from Wednesday 16:00: 60 + 420 (Thu) + 420 (Fri) + 150 (Mon).
        assert_eq!(
            deadline("2025-03-12T16:00:00+08:00", Target::WorkingHalfDays(5)),
            at("2025-03-17T11:30:00+08:00")
        );
    }

    #[test]
    fn minutes_ignore_the_calendar() {
        // Sunday night in a holiday week.
        assert_eq!(
            deadline("2025-10-05T23:50:00+08:00", Target::Minutes(20)),
            at("2025-10-06T00:10:00+08:00")
        );
        assert_eq!(
            deadline("2025-03-10T11:50:00Z", Target::Minutes(120)),
            at("2025-03-10T13:50:00Z")
        );
    }

    #[test]
    fn zero_targets_are_the_start() {
        let start = at("2025-03-08T10:00:00+08:00");
        let cal = sh();
        assert_eq!(cal.deadline(start, Target::Minutes(0)), Ok(start));
        assert_eq!(cal.deadline(start, Target::WorkingMinutes(0)), Ok(start));
        assert_eq!(cal.deadline(start, Target::WorkingHalfDays(0)), Ok(start));
    }

    #[test]
    fn working_minutes_between_counts_service_time() {
        let cal = sh();
        let between = |a: &str, b: &str| cal.working_minutes_between(at(a), at(b));
        assert_eq!(
            between("2025-03-10T11:30:00+08:00", "2025-03-10T13:30:00+08:00"),
            60
        );
        // Friday 16:00 to Monday 10:00.
        assert_eq!(
            between("2025-03-07T16:00:00+08:00", "2025-03-10T10:00:00+08:00"),
            120
        );
        // A whole week with a working Saturday: 6 × 420.
        assert_eq!(
            between("2026-02-09T00:00:00+08:00", "2026-02-15T00:00:00+08:00"),
            2520
        );
        // The Spring Festival holidays: nothing.
        assert_eq!(
            between("2026-02-15T00:00:00+08:00", "2026-02-24T00:00:00+08:00"),
            0
        );
        // Outside hours on both ends.
        assert_eq!(
            between("2025-03-10T18:00:00+08:00", "2025-03-11T08:00:00+08:00"),
            0
        );
        // Partial minutes round down.
        assert_eq!(
            between("2025-03-10T09:00:00+08:00", "2025-03-10T09:01:59+08:00"),
            1
        );
        // Mixed offsets.
        assert_eq!(
            between("2025-03-10T01:00:00Z", "2025-03-10T11:00:00+08:00"),
            120
        );
        // Reversed or empty.
        assert_eq!(
            between("2025-03-10T11:00:00+08:00", "2025-03-10T10:00:00+08:00"),
            0
        );
        assert_eq!(
            between("2025-03-10T11:00:00+08:00", "2025-03-10T11:00:00+08:00"),
            0
        );
    }

    #[test]
    fn between_is_the_inverse_of_add() {
        let cal = sh();
        let starts = [
            "2025-03-10T09:00:00+08:00",
            "2025-03-10T11:59:30+08:00",
            "2025-09-30T16:59:00+08:00",
            "2025-12-31T13:00:00+08:00",
            "2026-02-13T16:45:10+08:00",
            "2026-09-24T10:17:00+08:00",
            "2026-02-13T03:00:00Z",
        ];
        let amounts = [1, 59, 60, 179, 180, 181, 420, 421, 1000, 5000, 12_345];
        for start in starts {
            for n in amounts {
                let start = at(start);
                let end = cal.add_working_minutes(start, n).unwrap();
                assert_eq!(cal.working_minutes_between(start, end), n, "{start} + {n}");
                let back = cal.add_working_minutes(start, -n).unwrap();
                assert_eq!(cal.working_minutes_between(back, start), n, "{start} - {n}");
            }
        }
        // Pseudo-random starts anywhere in 2025–2026 (inside or outside hours, with seconds).
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let base = at("2025-01-01T00:00:00Z");
        for _ in 0..400 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let offset = (x >> 20) % (2 * 365 * 24 * 3600);
            let n = ((x >> 45) % 6000) as i64 + 1;
            let start = base + TimeDelta::seconds(offset as i64);
            let end = cal.add_working_minutes(start, n).unwrap();
            assert!(end > start);
            assert_eq!(cal.working_minutes_between(start, end), n, "{start} + {n}");
            let back = cal.add_working_minutes(start, -n).unwrap();
            assert_eq!(cal.working_minutes_between(back, start), n, "{start} - {n}");
        }
    }

    #[test]
    fn counting_backward() {
        // 30 minutes before Monday 09:30 is the opening, not Friday's closing.
        assert_eq!(
            working_minutes("2025-03-10T09:30:00+08:00", -30),
            at("2025-03-10T09:00:00+08:00")
        );
        assert_eq!(
            working_minutes("2025-03-10T09:30:00+08:00", -31),
            at("2025-03-07T16:59:00+08:00")
        );
        // From the lunch break, counting begins at 12:00.
        assert_eq!(
            working_minutes("2025-03-10T12:40:00+08:00", -60),
            at("2025-03-10T11:00:00+08:00")
        );
    }

    #[test]
    fn runtime_days_move_deadlines() {
        let mut cal = sh();
        let start = at("2026-12-31T10:00:00+08:00"); // Thursday
        let one_day = |cal: &Calendar| cal.deadline(start, Target::working_days(1)).unwrap();
        // 2027 not yet published: Friday 1 Jan is an ordinary Friday.
        assert_eq!(one_day(&cal), at("2027-01-01T17:00:00+08:00"));

        cal.set_day(day("2027-01-01"), DayKind::Holiday);
        assert_eq!(cal.day_kind(day("2027-01-01")), Some(DayKind::Holiday));
        assert_eq!(one_day(&cal), at("2027-01-04T17:00:00+08:00"));

        // A working Saturday takes Monday's hours.
        cal.set_day(day("2027-01-02"), DayKind::WorkingDay);
        assert_eq!(one_day(&cal), at("2027-01-02T17:00:00+08:00"));
        assert_eq!(
            cal.add_working_minutes(start, 420).unwrap(),
            at("2027-01-02T10:00:00+08:00")
        );

        cal.clear_day(day("2027-01-02"));
        cal.clear_day(day("2027-01-01"));
        assert_eq!(cal.day_kind(day("2027-01-01")), None);
        assert_eq!(one_day(&cal), at("2027-01-01T17:00:00+08:00"));

        // Clearing a shipped holiday makes it a working day again.
        assert!(!cal.is_working_day(day("2026-10-02")));
        cal.clear_day(day("2026-10-02"));
        assert!(cal.is_working_day(day("2026-10-02")));
        assert_eq!(
            cal.deadline(at("2026-09-30T10:00:00+08:00"), Target::working_days(1)),
            Ok(at("2026-10-02T17:00:00+08:00"))
        );
        // And an overridden shipped working Saturday goes back to its weekday.
        cal.clear_day(day("2026-10-10"));
        assert!(!cal.is_working_day(day("2026-10-10")));
    }

    #[test]
    fn weekday_hours_and_other_zones() {
        let text = r#"
            code = "de-berlin"
            time_zone = "Europe/Berlin"
            [hours]
            monday = ["08:00-16:00"]
            tuesday = ["08:00-16:00"]
            wednesday = ["08:00-16:00"]
            thursday = ["08:00-16:00"]
            friday = ["08:00-12:00"]
            saturday = []
            sunday = []
            [years.2026]
            working_weekends = ["2026-03-28"]
        "#;
        let cal = Calendar::parse("berlin.toml", text).unwrap();
        assert_eq!(cal.service_minutes(day("2026-03-27")), 240); // Friday
        assert_eq!(cal.service_minutes(day("2026-03-28")), 480); // Saturday, Monday's hours
        // Clocks go forward on Sunday 29 Mar 2026: Friday 11:00 +01:00, 60 minutes to Friday's
        // closing, 480 on Saturday, 60 on Monday from 08:00 +02:00.
        assert_eq!(
            cal.add_working_minutes(at("2026-03-27T11:00:00+01:00"), 600),
            Ok(at("2026-03-30T09:00:00+02:00"))
        );
        assert_eq!(
            cal.deadline(at("2026-03-27T11:00:00+01:00"), Target::working_days(2)),
            Ok(at("2026-03-30T16:00:00+02:00"))
        );
        // Half a day is half of Monday's hours: 240 minutes.
        assert_eq!(
            cal.deadline(at("2026-03-30T08:00:00+02:00"), Target::WorkingHalfDays(1)),
            Ok(at("2026-03-30T12:00:00+02:00"))
        );
    }

    #[test]
    fn gives_up_after_ten_years_without_a_working_day() {
        let text = r#"
            code = "mondays"
            time_zone = "UTC"
            [hours]
            monday = ["09:00-10:00"]
            tuesday = []
            wednesday = []
            thursday = []
            friday = []
            saturday = []
            sunday = []
        "#;
        let mut cal = Calendar::parse("mondays.toml", text).unwrap();
        let start = at("2030-01-01T00:00:00Z");
        for monday in day("2030-01-07").iter_weeks().take(1000) {
            cal.set_day(monday, DayKind::Holiday);
        }
        for target in [
            Target::WorkingMinutes(1),
            Target::working_days(1),
            Target::WorkingHalfDays(1),
        ] {
            let err = cal.deadline(start, target).unwrap_err();
            assert!(matches!(err, CalendarError::Unreachable { .. }), "{err}");
            assert!(
                err.to_string().contains("no working day in the 3660 days"),
                "{err}"
            );
        }
        // Backward from 2045, the last working Monday is 2029-12-31: more than ten years.
        assert!(
            cal.add_working_minutes(at("2045-01-01T00:00:00Z"), -1)
                .is_err()
        );
        // Between still answers: nothing elapsed.
        assert_eq!(
            cal.working_minutes_between(start, at("2035-01-01T00:00:00Z")),
            0
        );
        // A working Monday within ten years (3506 days away) is found.
        cal.clear_day(day("2039-08-08"));
        assert_eq!(
            cal.deadline(start, Target::WorkingMinutes(1)),
            Ok(at("2039-08-08T09:01:00Z"))
        );
    }

    /// A made-up 2027 (a test fixture, not the State Council's notice): 元旦 Jan 1–3, 春节
    /// Feb 6–14, 国庆 Oct 1–7, working Saturday Feb 20 and Sunday Sep 26.
    fn fixture_2027() -> YearDays {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        YearDays::check(
            2027,
            &list(&[
                "2027-01-01..2027-01-03",
                "2027-02-06..2027-02-14",
                "2027-10-01..2027-10-07",
            ]),
            &list(&["2027-02-20", "2027-09-26"]),
        )
        .unwrap()
    }

    #[test]
    fn the_horizon_is_the_end_of_the_last_configured_year() {
        let cal = sh();
        let horizon = cal.horizon();
        assert_eq!(horizon.last_day(), Some(day("2026-12-31")));
        assert_eq!(cal.configured_years().collect::<Vec<_>>(), vec![2025, 2026]);
        // Read in Shanghai: 23:59 on 31 Dec is settled, midnight is not.
        assert!(!horizon.is_provisional(at("2026-12-31T17:00:00+08:00")));
        assert!(!horizon.is_provisional(at("2026-12-31T15:59:00Z")));
        assert!(horizon.is_provisional(at("2026-12-31T16:00:00Z")));
        assert!(horizon.is_provisional(at("2027-01-01T17:00:00+08:00")));
        // Days left, with an injected now.
        assert_eq!(horizon.days_left(at("2026-11-29T10:00:00+08:00")), Some(32));
        assert_eq!(horizon.days_left(at("2026-12-31T23:00:00+08:00")), Some(0));
        assert_eq!(horizon.days_left(at("2027-01-02T09:00:00+08:00")), Some(-2));
        // The notice: from 60 days before, and after it passed; never with 0.
        assert!(!horizon.notice_due(at("2026-10-31T23:59:00+08:00"), 60));
        assert!(horizon.notice_due(at("2026-10-31T23:59:00+08:00"), 61));
        assert!(horizon.notice_due(at("2026-11-01T00:00:00+08:00"), 60));
        assert!(horizon.notice_due(at("2026-11-29T10:00:00+08:00"), 60));
        assert!(horizon.notice_due(at("2027-03-01T10:00:00+08:00"), 60));
        assert!(!horizon.notice_due(at("2026-12-31T10:00:00+08:00"), 0));
    }

    #[test]
    fn a_loaded_year_moves_the_horizon_and_the_deadlines_in_it() {
        let mut cal = sh();
        let start = at("2026-12-31T10:00:00+08:00");
        let one_day = |cal: &Calendar| cal.deadline(start, Target::working_days(1)).unwrap();
        // Before: 1 Jan 2027 counts as an ordinary Friday, and that is provisional.
        assert_eq!(one_day(&cal), at("2027-01-01T17:00:00+08:00"));
        assert!(cal.horizon().is_provisional(one_day(&cal)));

        cal.load_year(&fixture_2027());
        assert_eq!(cal.horizon().last_day(), Some(day("2027-12-31")));
        // Jan 1–3 are holidays: Monday 4 Jan, settled.
        assert_eq!(one_day(&cal), at("2027-01-04T17:00:00+08:00"));
        assert!(!cal.horizon().is_provisional(one_day(&cal)));
        assert_eq!(cal.day_kind(day("2027-02-20")), Some(DayKind::WorkingDay));
        assert!(cal.is_working_day(day("2027-02-20")));

        // Loading the year again replaces it whole: days it no longer lists are regular.
        let smaller = YearDays::check(2027, &["2027-01-01".to_string()], &[]).unwrap();
        cal.load_year(&smaller);
        assert_eq!(cal.day_kind(day("2027-01-02")), None);
        assert_eq!(cal.day_kind(day("2027-02-20")), None);
        assert_eq!(cal.day_kind(day("2027-01-01")), Some(DayKind::Holiday));
        // Other years are untouched.
        assert_eq!(cal.day_kind(day("2026-10-01")), Some(DayKind::Holiday));

        // A year after a gap does not move the horizon.
        let later = YearDays::check(2029, &["2029-01-01".to_string()], &[]).unwrap();
        cal.load_year(&later);
        assert_eq!(cal.horizon().last_day(), Some(day("2027-12-31")));
        cal.mark_configured(2028);
        assert_eq!(cal.horizon().last_day(), Some(day("2029-12-31")));

        // A calendar without years has no horizon: everything is provisional.
        let text = SHANGHAI_CALENDAR
            .split("# 国务院办公厅关于2025年")
            .next()
            .unwrap();
        let bare = Calendar::parse("bare.toml", text).unwrap();
        assert_eq!(bare.horizon().last_day(), None);
        assert!(
            bare.horizon()
                .is_provisional(at("2025-03-10T10:00:00+08:00"))
        );
        assert_eq!(
            bare.horizon().days_left(at("2025-03-10T10:00:00+08:00")),
            None
        );
    }

    #[test]
    fn a_year_is_checked_whole_and_every_bad_item_named() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let problems = YearDays::check(
            2027,
            &list(&[
                "2027-01-01",
                "2026-12-31",
                "2027-02-30",
                "2027-01-01",
                "2027-02-06..2027-02-14",
                "2027-03-05..2027-03-01",
            ]),
            &list(&["2027-02-20", "2027-02-19", "2027-02-07", "tomorrow"]),
        )
        .unwrap_err();
        let named: Vec<(DayList, usize, &str)> = problems
            .iter()
            .map(|p| (p.list, p.index, p.problem.as_str()))
            .collect();
        assert_eq!(
            named,
            vec![
                (DayList::Holidays, 1, "2026-12-31 is not in 2027"),
                (
                    DayList::Holidays,
                    2,
                    "`2027-02-30` is not a date (YYYY-MM-DD) or a range (YYYY-MM-DD..YYYY-MM-DD)"
                ),
                (DayList::Holidays, 3, "2027-01-01 is listed twice"),
                (
                    DayList::Holidays,
                    5,
                    "`2027-03-05..2027-03-01` ends before it starts"
                ),
                (
                    DayList::WorkingDays,
                    1,
                    "2027-02-19 is a Friday, not a Saturday or Sunday"
                ),
                (
                    DayList::WorkingDays,
                    2,
                    "2027-02-07 is both a holiday and a working weekend"
                ),
                (
                    DayList::WorkingDays,
                    3,
                    "`tomorrow` is not a date (YYYY-MM-DD) or a range (YYYY-MM-DD..YYYY-MM-DD)"
                ),
            ]
        );
        let year = fixture_2027();
        assert_eq!(year.year(), 2027);
        assert_eq!(year.count(DayKind::Holiday), 3 + 9 + 7);
        assert_eq!(year.count(DayKind::WorkingDay), 2);
    }

    /// Parses the shipped file with one edit and returns the message.
    fn broken(from: &str, to: &str) -> String {
        let text = SHANGHAI_CALENDAR.replacen(from, to, 1);
        assert_ne!(text, SHANGHAI_CALENDAR, "`{from}` not found");
        let err = Calendar::parse(FILE, &text).expect_err("accepted a broken calendar");
        assert!(matches!(err, CalendarError::Invalid { .. }));
        err.to_string()
    }

    #[test]
    fn parse_errors_name_the_file_and_the_entry() {
        let cases = [
            (
                r#""Asia/Shanghai""#,
                r#""Asia/Shangai""#,
                "time_zone: `Asia/Shangai` is not an IANA time zone name",
            ),
            (
                r#""2025-04-27""#,
                r#""2025-04-31""#,
                "years.2025.working_weekends[2]: `2025-04-31` is not a date",
            ),
            (
                r#"monday = ["09:00-12:00", "13:00-17:00"]"#,
                r#"monday = ["09:00-12:00", "17:00-13:00"]"#,
                "hours.monday[1]: `17:00-13:00` does not close after it opens",
            ),
            (
                r#"tuesday = ["09:00-12:00", "13:00-17:00"]"#,
                r#"tuesday = ["09:00-12:00", "11:30-17:00"]"#,
                "hours.tuesday[1]: `11:30-17:00` overlaps or touches `09:00-12:00`",
            ),
            (
                r#"wednesday = ["09:00-12:00", "13:00-17:00"]"#,
                r#"wednesday = ["12:00-17:00", "09:00-12:00"]"#,
                "hours.wednesday[0]: `12:00-17:00` overlaps or touches `09:00-12:00`",
            ),
            (
                r#"thursday = ["09:00-12:00", "13:00-17:00"]"#,
                r#"thursday = ["9h-12h"]"#,
                "hours.thursday[0]: `9h-12h` is not a service period",
            ),
            (
                r#"monday = ["09:00-12:00", "13:00-17:00"]"#,
                r#"monday = []"#,
                "hours.monday: Monday's hours are the standard working day",
            ),
            (
                r#""2025-10-11""#,
                r#""2025-10-10""#,
                "years.2025.working_weekends[4]: 2025-10-10 is a Friday, not a Saturday or Sunday",
            ),
            (
                r#""2026-01-04""#,
                r#""2026-01-03""#,
                "years.2026.working_weekends[0]: 2026-01-03 is both a holiday and a working weekend",
            ),
            (
                r#""2025-01-01","#,
                r#""2024-12-31","#,
                "years.2025.holidays[0]: 2024-12-31 is not in 2025",
            ),
            (
                r#""2025-01-28..2025-02-04""#,
                r#""2025-02-04..2025-01-28""#,
                "years.2025.holidays[1]: `2025-02-04..2025-01-28` ends before it starts",
            ),
            (
                r#""2025-04-04..2025-04-06""#,
                r#""2025-04-04..2025-05-01""#,
                "years.2025.holidays[3]: 2025-05-01 is listed twice",
            ),
            (
                "[years.2026]",
                "[years.next]",
                "years.next: `next` is not a year",
            ),
            (
                "saturday = []",
                "saturdy = []",
                "line 32: unknown field `saturdy`",
            ),
            (
                r#"code = "cn-shanghai""#,
                r#"code = """#,
                "code: must not be empty",
            ),
        ];
        for (from, to, expected) in cases {
            let message = broken(from, to);
            let expected = format!("calendar {FILE}: {expected}");
            assert!(
                message.starts_with(&expected),
                "{message}\nexpected: {expected}"
            );
        }
    }
}
