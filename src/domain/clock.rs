//! SLA clocks (时限): when each clock starts, pauses, resumes, extends, warns, falls due and
//! stops. Pure: the calendar and "now" are passed in; nothing here reads the system clock.
//!
//! A clock counts its target ([`Target`]) on the working calendar from its start. Its due time
//! is always *recomputed* from stored facts, never shifted, so a calendar change or a pause
//! gives the same answer as counting afresh:
//!
//! - never paused: `calendar.deadline(started_at, target)` — the exact semantics of minutes,
//!   working minutes and working days;
//! - after a pause: the remaining time measured when it paused (working minutes for working
//!   targets, seconds for wall-clock ones) counted forward from the resume;
//! - an approved extension (Art. 42) then adds its working days after that.
//!
//! The warning time is the instant when the configured share of the allowance (default 80 %)
//! is used: the due time minus the rest of the allowance, counted backward in the same kind of
//! time. A clock that passes its due time while running is marked breached and keeps counting
//! until the step that stops it; stopping it late leaves it breached.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::calendar::{Calendar, CalendarError};
use super::catalog::Target;
use super::lifecycle::Action;
use super::request::{ClockKind, ClockState};

/// Default share of the allowance after which a clock warns, in percent.
pub const DEFAULT_WARN_PERCENT: u32 = 80;

/// Art. 42: working days an approved extension adds, alone and for joint handling.
pub const EXTENSION_DAYS: u32 = 10;
/// Art. 42: working days an approved extension adds to a joint (bundle) statutory limit.
pub const JOINT_EXTENSION_DAYS: u32 = 15;

/// How clocks count: the calendar in force and the warning share.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The working calendar.
    pub calendar: &'a Calendar,
    /// Share of the allowance after which a clock warns, in percent (1 to 100).
    pub warn_percent: u32,
}

/// One pause and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// When it began.
    pub from: DateTime<Utc>,
    /// When it ended; open when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// Why (supplement required, a special procedure and its kind).
    pub reason: String,
}

/// An SLA clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    /// Kind.
    pub kind: ClockKind,
    /// Target.
    pub target: Target,
    /// State.
    pub state: ClockState,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it falls due (the last computed value while paused).
    pub due_at: Option<DateTime<Utc>>,
    /// When it warns.
    pub warn_at: Option<DateTime<Utc>>,
    /// When the warning was marked.
    pub warned_at: Option<DateTime<Utc>>,
    /// When the breach was marked.
    pub breached_at: Option<DateTime<Utc>>,
    /// When it stopped (met, stopped late, or cancelled).
    pub stopped_at: Option<DateTime<Utc>>,
    /// Start of the open pause.
    pub paused_at: Option<DateTime<Utc>>,
    /// Total wall-clock seconds paused.
    pub paused_seconds: i64,
    /// Every pause.
    pub pauses: Vec<Pause>,
    /// Counting restarted here after the last pause.
    pub resumed_at: Option<DateTime<Utc>>,
    /// Time left when it last paused: working seconds, or wall seconds for a wall clock.
    pub remaining_seconds: Option<i64>,
    /// Working days added by an extension.
    pub extended_days: u32,
    /// Handling time in working minutes, pauses excluded, once stopped.
    pub worked_minutes: Option<i64>,
    /// The unit that returned the request (退单) and is charged with the lost time.
    pub lost_to_unit: Option<String>,
    /// Working minutes lost to returns.
    pub lost_minutes: i64,
}

/// What happened to a clock: each is an event in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Started counting.
    Started,
    /// Paused, with the reason.
    Paused(String),
    /// Counting again, with a recomputed due time.
    Resumed,
    /// Stopped in time.
    Met,
    /// Stopped after its due time.
    StoppedLate,
    /// No longer applies.
    Cancelled,
    /// Extended by working days.
    Extended(u32),
    /// The warning share of the allowance is used.
    Warned,
    /// Ran out while running.
    Breached,
    /// Due time moved because the calendar changed.
    Moved,
    /// Time lost to a return charged to a unit (working minutes).
    LostToReturn(String, i64),
}

impl Change {
    /// The audit action name, e.g. `clock.paused`.
    pub fn action(&self) -> &'static str {
        match self {
            Change::Started => "clock.started",
            Change::Paused(_) => "clock.paused",
            Change::Resumed => "clock.resumed",
            Change::Met => "clock.met",
            Change::StoppedLate => "clock.stopped_late",
            Change::Cancelled => "clock.cancelled",
            Change::Extended(_) => "clock.extended",
            Change::Warned => "clock.warned",
            Change::Breached => "clock.breached",
            Change::Moved => "clock.moved",
            Change::LostToReturn(..) => "clock.lost_to_return",
        }
    }
}

/// What a lifecycle step does to a clock of a kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// Start it (if pending).
    Start,
    /// Stop it: met, or late.
    Stop,
    /// Pause it, with the reason.
    Pause(String),
    /// Resume it.
    Resume,
    /// It no longer applies.
    Cancel,
    /// Add working days (Art. 42).
    Extend(u32),
}

/// What `action` does to a clock of `kind`. `joint` is true for a bundle's request-level
/// clocks (joint handling); `detail` is the special procedure's kind, for the pause reason.
///
/// The law and the plan, as implemented:
/// - `call` starts the 20-minute window intake; `accept`, `refuse` and `request_supplement`
///   stop it, and stop the supplement-notice clock (the one notice was given, or no longer
///   needed);
/// - `accept` starts the statutory limit (Art. 42 counts from acceptance);
/// - `request_supplement` pauses the promised and statutory clocks, `supplement` resumes them;
/// - a special procedure pauses the statutory clock only (Art. 45);
/// - `approve` / `deny` stop the promised and statutory clocks; `approve` starts delivery
///   (Art. 44), `deny` cancels it; `deliver` stops it;
/// - `refuse` and `withdraw` cancel what still runs;
/// - `approve_extension` adds 10 working days to the statutory limit, 15 for joint handling;
/// - a `return` cancels the returning unit's visit clocks (window intake, 即办件, 立等可取) and
///   the co-units' opinion clocks: the unit it is re-routed to starts its own at its call;
/// - a co-unit's opinion clock starts at `accept`, pauses for its own special procedure and
///   stops at `give_opinion`;
/// - 立等可取 (`on_the_spot`) runs from `accept` to `deliver`; 即办件 (`immediate`) from `call`
///   to `complete`, and a supplement notice ends that visit (cancelled).
///
/// A visit clock that has already stopped is not started again: [`renews`] says when the
/// step opens a new one instead (the next call after a supplement, a re-routed request).
pub fn reaction(action: Action, kind: ClockKind, joint: bool, detail: &str) -> Option<Reaction> {
    use Action as A;
    use ClockKind as K;
    match (action, kind) {
        (A::Return, K::WindowIntake | K::Immediate | K::OnTheSpot | K::Opinion) => {
            Some(Reaction::Cancel)
        }
        (A::Call, K::WindowIntake | K::Immediate) => Some(Reaction::Start),
        (A::RequestSupplement, K::Immediate) => Some(Reaction::Cancel),
        (A::Complete, K::Immediate) => Some(Reaction::Stop),
        (A::Accept, K::OnTheSpot | K::Opinion) => Some(Reaction::Start),
        (A::Deliver, K::OnTheSpot) => Some(Reaction::Stop),
        (A::GiveOpinion, K::Opinion) => Some(Reaction::Stop),
        (A::BeginSpecialProcedure, K::Opinion) => {
            Some(Reaction::Pause(format!("special procedure: {detail}")))
        }
        (A::EndSpecialProcedure, K::Opinion) => Some(Reaction::Resume),
        (A::Accept | A::Refuse | A::RequestSupplement, K::WindowIntake | K::SupplementNotice) => {
            Some(Reaction::Stop)
        }
        (A::Accept, K::Statutory) => Some(Reaction::Start),
        (A::Refuse, _) => Some(Reaction::Cancel),
        (A::RequestSupplement, K::Promised | K::Statutory) => {
            Some(Reaction::Pause("supplement required (补正)".into()))
        }
        (A::Supplement, K::Promised | K::Statutory) => Some(Reaction::Resume),
        (A::BeginSpecialProcedure, K::Statutory) => {
            Some(Reaction::Pause(format!("special procedure: {detail}")))
        }
        (A::EndSpecialProcedure, K::Statutory) => Some(Reaction::Resume),
        (A::Approve | A::Deny, K::Promised | K::Statutory) => Some(Reaction::Stop),
        (A::Approve, K::Delivery) => Some(Reaction::Start),
        (A::Deny, K::Delivery | K::Material) => Some(Reaction::Cancel),
        (A::Deliver, K::Delivery) => Some(Reaction::Stop),
        (A::Withdraw, _) => Some(Reaction::Cancel),
        (A::ApproveExtension, K::Statutory) => Some(Reaction::Extend(if joint {
            JOINT_EXTENSION_DAYS
        } else {
            EXTENSION_DAYS
        })),
        _ => None,
    }
}

/// Whether `action` opens a new clock of `kind` when the last one has stopped: every window
/// visit is timed (the call after a supplement, the first call of the unit a request was
/// re-routed to), and an acceptance after a re-routing starts fresh opinion and 立等可取
/// clocks. The stopped clocks stay as they were, in history.
pub fn renews(action: Action, kind: ClockKind) -> bool {
    matches!(
        (action, kind),
        (Action::Call, ClockKind::WindowIntake | ClockKind::Immediate)
            | (Action::Accept, ClockKind::Opinion | ClockKind::OnTheSpot)
    )
}

impl Clock {
    /// A pending clock.
    pub fn new(kind: ClockKind, target: Target) -> Self {
        Self {
            kind,
            target,
            state: ClockState::Pending,
            started_at: None,
            due_at: None,
            warn_at: None,
            warned_at: None,
            breached_at: None,
            stopped_at: None,
            paused_at: None,
            paused_seconds: 0,
            pauses: Vec::new(),
            resumed_at: None,
            remaining_seconds: None,
            extended_days: 0,
            worked_minutes: None,
            lost_to_unit: None,
            lost_minutes: 0,
        }
    }

    /// Counts wall-clock time (the calendar plays no part).
    pub fn is_wall_clock(&self) -> bool {
        matches!(self.target, Target::Minutes(_))
    }

    /// Still counting or able to count again: running (breached or not) or paused.
    pub fn is_open(&self) -> bool {
        self.stopped_at.is_none()
            && matches!(
                self.state,
                ClockState::Running | ClockState::Paused | ClockState::Breached
            )
    }

    /// The next instant the detection worker must look at it: the warning, then the due time;
    /// none when paused, stopped, or both are marked.
    pub fn check_at(&self) -> Option<DateTime<Utc>> {
        if self.state != ClockState::Running || self.stopped_at.is_some() {
            return None;
        }
        match (self.warned_at, self.warn_at) {
            (None, Some(warn)) if Some(warn) < self.due_at => Some(warn),
            _ if self.breached_at.is_none() => self.due_at,
            _ => None,
        }
    }

    /// Applies a lifecycle reaction at `now`.
    pub fn react(
        &mut self,
        reaction: &Reaction,
        rules: Rules<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<Change>, CalendarError> {
        match reaction {
            Reaction::Start => self.start(rules, now),
            Reaction::Stop => self.stop(rules, now),
            Reaction::Pause(reason) => self.pause(rules, now, reason),
            Reaction::Resume => self.resume(rules, now),
            Reaction::Cancel => Ok(self.cancel(rules, now)),
            Reaction::Extend(days) => self.extend(rules, now, *days),
        }
    }

    /// Starts a pending clock at `now`.
    pub fn start(
        &mut self,
        rules: Rules<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<Change>, CalendarError> {
        if self.state != ClockState::Pending {
            return Ok(None);
        }
        self.state = ClockState::Running;
        self.started_at = Some(now);
        self.recompute(rules)?;
        Ok(Some(Change::Started))
    }

    /// Stops an open clock at `now`: met when not past its due time, otherwise late (breached).
    pub fn stop(
        &mut self,
        rules: Rules<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<Change>, CalendarError> {
        if !self.is_open() {
            return Ok(None);
        }
        self.close_pause(now);
        self.stopped_at = Some(now);
        self.worked_minutes = Some(self.worked(rules, now));
        let late = self.breached_at.is_some() || self.due_at.is_some_and(|due| now > due);
        if late {
            self.state = ClockState::Breached;
            self.breached_at.get_or_insert(now);
            Ok(Some(Change::StoppedLate))
        } else {
            self.state = ClockState::Met;
            Ok(Some(Change::Met))
        }
    }

    /// Cancels a clock that has not stopped. A clock already breached stays breached (the
    /// breach happened) but stops.
    pub fn cancel(&mut self, rules: Rules<'_>, now: DateTime<Utc>) -> Option<Change> {
        if self.stopped_at.is_some()
            || matches!(self.state, ClockState::Met | ClockState::Cancelled)
        {
            return None;
        }
        self.close_pause(now);
        if self.started_at.is_some() {
            self.worked_minutes = Some(self.worked(rules, now));
        }
        self.stopped_at = Some(now);
        if self.state != ClockState::Breached {
            self.state = ClockState::Cancelled;
        }
        Some(Change::Cancelled)
    }

    /// Pauses a running clock that has not run out; measures the time left.
    pub fn pause(
        &mut self,
        rules: Rules<'_>,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Option<Change>, CalendarError> {
        if self.state != ClockState::Running {
            return Ok(None);
        }
        let base = self.base_due(rules)?;
        self.remaining_seconds = Some(if self.is_wall_clock() {
            (base - now).num_seconds().max(0)
        } else {
            rules.calendar.working_minutes_between(now, base) * 60
        });
        self.state = ClockState::Paused;
        self.paused_at = Some(now);
        self.pauses.push(Pause {
            from: now,
            to: None,
            reason: reason.to_string(),
        });
        Ok(Some(Change::Paused(reason.to_string())))
    }

    /// Resumes a paused clock: the time left when it paused counts again from `now`.
    pub fn resume(
        &mut self,
        rules: Rules<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<Change>, CalendarError> {
        if self.state != ClockState::Paused {
            return Ok(None);
        }
        self.close_pause(now);
        self.state = ClockState::Running;
        self.resumed_at = Some(now);
        self.recompute(rules)?;
        Ok(Some(Change::Resumed))
    }

    /// Adds working days once (the caller checks the "once": the request's extension flag).
    pub fn extend(
        &mut self,
        rules: Rules<'_>,
        now: DateTime<Utc>,
        days: u32,
    ) -> Result<Option<Change>, CalendarError> {
        if !self.is_open() && self.state != ClockState::Pending {
            return Ok(None);
        }
        self.extended_days += days;
        if self.state == ClockState::Running {
            self.recompute(rules)?;
            // An extension granted in time puts the warning back in the future.
            if self.warn_at.is_some_and(|warn| warn > now) {
                self.warned_at = None;
            }
        }
        Ok(Some(Change::Extended(days)))
    }

    /// Marks the warning and the breach that are due at `now`, in that order.
    pub fn detect(&mut self, now: DateTime<Utc>) -> Vec<Change> {
        let mut changes = Vec::new();
        if self.state != ClockState::Running || self.stopped_at.is_some() {
            return changes;
        }
        if self.warned_at.is_none() && self.warn_at.is_some_and(|warn| warn <= now) {
            self.warned_at = Some(now);
            changes.push(Change::Warned);
        }
        if self.breached_at.is_none() && self.due_at.is_some_and(|due| due <= now) {
            self.state = ClockState::Breached;
            self.breached_at = Some(now);
            changes.push(Change::Breached);
        }
        changes
    }

    /// Recomputes a running clock's times after a calendar change; `Moved` when the due time
    /// changed.
    pub fn follow(&mut self, rules: Rules<'_>) -> Result<Option<Change>, CalendarError> {
        if self.state != ClockState::Running || self.stopped_at.is_some() {
            return Ok(None);
        }
        let before = self.due_at;
        self.recompute(rules)?;
        Ok((self.due_at != before).then_some(Change::Moved))
    }

    /// Charges the working minutes between a return and now to `unit` (退单).
    pub fn charge_return(
        &mut self,
        rules: Rules<'_>,
        unit: &str,
        returned_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<Change> {
        if !self.is_open() {
            return None;
        }
        let lost = rules.calendar.working_minutes_between(returned_at, now);
        self.lost_to_unit = Some(unit.to_string());
        self.lost_minutes += lost;
        Some(Change::LostToReturn(unit.to_string(), lost))
    }

    /// The due time before any extension.
    fn base_due(&self, rules: Rules<'_>) -> Result<DateTime<Utc>, CalendarError> {
        let calendar = rules.calendar;
        match (self.resumed_at, self.remaining_seconds) {
            (Some(resumed), Some(left)) if self.is_wall_clock() => {
                Ok(resumed + TimeDelta::seconds(left))
            }
            (Some(resumed), Some(left)) => calendar.add_working_minutes(resumed, left / 60),
            _ => calendar.deadline(self.counting_since()?, self.target),
        }
    }

    /// Due and warning times from the stored facts.
    fn recompute(&mut self, rules: Rules<'_>) -> Result<(), CalendarError> {
        let calendar = rules.calendar;
        let base = self.base_due(rules)?;
        let due = if self.extended_days > 0 {
            calendar.add_working_days(base, self.extended_days)?
        } else {
            base
        };
        let start = self.counting_since()?;
        let spare = 100 - rules.warn_percent.clamp(1, 100);
        let warn = if self.is_wall_clock() {
            let allowance = due - start - TimeDelta::seconds(self.paused_seconds);
            due - allowance * spare as i32 / 100
        } else {
            // The whole allowance in working minutes, as if never paused.
            let unpaused = calendar.deadline(start, self.target)?;
            let unpaused = if self.extended_days > 0 {
                calendar.add_working_days(unpaused, self.extended_days)?
            } else {
                unpaused
            };
            let allowance = calendar.working_minutes_between(start, unpaused);
            calendar.add_working_minutes(due, -(allowance * i64::from(spare) / 100))?
        };
        self.due_at = Some(due);
        self.warn_at = Some(warn.min(due));
        Ok(())
    }

    /// The start of a clock that is counting; a stored clock without one is refused, not
    /// guessed.
    fn counting_since(&self) -> Result<DateTime<Utc>, CalendarError> {
        self.started_at.ok_or_else(|| CalendarError::Unreachable {
            code: String::new(),
            start: DateTime::<Utc>::MIN_UTC,
            problem: format!("the {} clock is counting but has no start", self.kind),
        })
    }

    fn close_pause(&mut self, now: DateTime<Utc>) {
        if let Some(from) = self.paused_at.take() {
            self.paused_seconds += (now - from).num_seconds().max(0);
            if let Some(open) = self.pauses.iter_mut().rev().find(|p| p.to.is_none()) {
                open.to = Some(now);
            }
        }
    }

    /// Working minutes counted while running, from the start to `now`, pauses excluded.
    fn worked(&self, rules: Rules<'_>, now: DateTime<Utc>) -> i64 {
        let Some(mut from) = self.started_at else {
            return 0;
        };
        let calendar = rules.calendar;
        let mut total = 0;
        for pause in &self.pauses {
            total += calendar.working_minutes_between(from, pause.from);
            from = pause.to.unwrap_or(now);
        }
        total + calendar.working_minutes_between(from, now)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use chrono_tz::Asia::Shanghai;

    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Shanghai
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn rules(calendar: &Calendar) -> Rules<'_> {
        Rules {
            calendar,
            warn_percent: DEFAULT_WARN_PERCENT,
        }
    }

    #[test]
    fn window_intake_is_twenty_wall_minutes_and_warns_at_sixteen() {
        let cal = Calendar::builtin_shanghai();
        let mut clock = Clock::new(ClockKind::WindowIntake, Target::Minutes(20));
        let now = at(2026, 11, 27, 16, 50);
        assert_eq!(clock.start(rules(&cal), now), Ok(Some(Change::Started)));
        assert_eq!(clock.due_at, Some(at(2026, 11, 27, 17, 10)));
        assert_eq!(clock.warn_at, Some(at(2026, 11, 27, 17, 6)));
        assert_eq!(clock.check_at(), clock.warn_at);
        assert_eq!(
            clock.stop(rules(&cal), at(2026, 11, 27, 17, 5)),
            Ok(Some(Change::Met))
        );
        assert_eq!(clock.state, ClockState::Met);
        assert_eq!(clock.check_at(), None);
        // 16:50 to 17:00 are service minutes; 17:00 to 17:05 are not.
        assert_eq!(clock.worked_minutes, Some(10));
    }

    #[test]
    fn statutory_twenty_working_days_cross_national_day() {
        let cal = Calendar::builtin_shanghai();
        let mut clock = Clock::new(ClockKind::Statutory, Target::working_days(20));
        clock.start(rules(&cal), at(2026, 9, 25, 10, 0)).unwrap();
        let due = clock.due_at.unwrap();
        assert_eq!(
            due,
            cal.deadline(at(2026, 9, 25, 10, 0), Target::working_days(20))
                .unwrap()
        );
        assert!(due > at(2026, 10, 20, 0, 0), "holidays do not count: {due}");
    }

    #[test]
    fn pause_and_resume_keep_the_remaining_working_time() {
        let cal = Calendar::builtin_shanghai();
        let r = rules(&cal);
        // Half a working day from Monday 2026-11-23 09:00: 210 working minutes, due 13:30.
        let mut clock = Clock::new(ClockKind::Promised, Target::WorkingMinutes(210));
        clock.start(r, at(2026, 11, 23, 9, 0)).unwrap();
        assert_eq!(clock.due_at, Some(at(2026, 11, 23, 13, 30)));
        // Paused at 10:00 with 150 minutes left, resumed Wednesday 14:00: due 16:30.
        assert_eq!(
            clock.pause(r, at(2026, 11, 23, 10, 0), "supplement required"),
            Ok(Some(Change::Paused("supplement required".into())))
        );
        assert_eq!(clock.remaining_seconds, Some(150 * 60));
        assert_eq!(clock.check_at(), None);
        assert_eq!(clock.detect(at(2026, 11, 25, 9, 0)), vec![]);
        assert_eq!(
            clock.resume(r, at(2026, 11, 25, 14, 0)),
            Ok(Some(Change::Resumed))
        );
        assert_eq!(clock.due_at, Some(at(2026, 11, 25, 16, 30)));
        assert_eq!(clock.paused_seconds, 2 * 86_400 + 4 * 3600);
        assert_eq!(clock.pauses.len(), 1);
        assert_eq!(clock.pauses[0].to, Some(at(2026, 11, 25, 14, 0)));
        // Warning at 80 % of 210 = 168 minutes used: 42 left, 15:48.
        assert_eq!(clock.warn_at, Some(at(2026, 11, 25, 15, 48)));
        clock.stop(r, at(2026, 11, 25, 16, 0)).unwrap();
        assert_eq!(clock.state, ClockState::Met);
        assert_eq!(clock.worked_minutes, Some(60 + 120));
    }

    #[test]
    fn detection_warns_then_breaches_once() {
        let cal = Calendar::builtin_shanghai();
        let mut clock = Clock::new(ClockKind::WindowIntake, Target::Minutes(20));
        clock.start(rules(&cal), at(2026, 11, 27, 9, 0)).unwrap();
        assert_eq!(clock.detect(at(2026, 11, 27, 9, 15)), vec![]);
        assert_eq!(clock.detect(at(2026, 11, 27, 9, 16)), vec![Change::Warned]);
        assert_eq!(clock.check_at(), Some(at(2026, 11, 27, 9, 20)));
        assert_eq!(
            clock.detect(at(2026, 11, 27, 9, 20)),
            vec![Change::Breached]
        );
        assert_eq!(clock.state, ClockState::Breached);
        assert_eq!(clock.check_at(), None);
        assert_eq!(clock.detect(at(2026, 11, 27, 9, 30)), vec![]);
        // Stopped later: it stays breached.
        assert_eq!(
            clock.stop(rules(&cal), at(2026, 11, 27, 9, 40)),
            Ok(Some(Change::StoppedLate))
        );
        assert_eq!(clock.state, ClockState::Breached);
        assert_eq!(clock.breached_at, Some(at(2026, 11, 27, 9, 20)));
    }

    #[test]
    fn a_worker_that_was_down_catches_up_with_both_marks() {
        let cal = Calendar::builtin_shanghai();
        let mut clock = Clock::new(ClockKind::WindowIntake, Target::Minutes(20));
        clock.start(rules(&cal), at(2026, 11, 27, 9, 0)).unwrap();
        assert_eq!(
            clock.detect(at(2026, 11, 27, 11, 0)),
            vec![Change::Warned, Change::Breached]
        );
    }

    #[test]
    fn stopping_late_without_detection_is_a_breach() {
        let cal = Calendar::builtin_shanghai();
        let mut clock = Clock::new(ClockKind::WindowIntake, Target::Minutes(20));
        clock.start(rules(&cal), at(2026, 11, 27, 9, 0)).unwrap();
        assert_eq!(
            clock.stop(rules(&cal), at(2026, 11, 27, 9, 21)),
            Ok(Some(Change::StoppedLate))
        );
        assert_eq!(clock.state, ClockState::Breached);
        assert_eq!(clock.breached_at, Some(at(2026, 11, 27, 9, 21)));
        // Exactly on the due time is in time.
        let mut clock = Clock::new(ClockKind::WindowIntake, Target::Minutes(20));
        clock.start(rules(&cal), at(2026, 11, 27, 9, 0)).unwrap();
        assert_eq!(
            clock.stop(rules(&cal), at(2026, 11, 27, 9, 20)),
            Ok(Some(Change::Met))
        );
    }

    #[test]
    fn extension_adds_working_days_after_the_due_time() {
        let cal = Calendar::builtin_shanghai();
        let r = rules(&cal);
        let mut clock = Clock::new(ClockKind::Statutory, Target::working_days(20));
        let start = at(2026, 11, 2, 10, 0);
        clock.start(r, start).unwrap();
        let due = clock.due_at.unwrap();
        assert_eq!(clock.extend(r, start, 10), Ok(Some(Change::Extended(10))));
        assert_eq!(clock.due_at, Some(cal.add_working_days(due, 10).unwrap()));
        assert_eq!(clock.extended_days, 10);
    }

    #[test]
    fn extension_while_paused_applies_on_resume() {
        let cal = Calendar::builtin_shanghai();
        let r = rules(&cal);
        let mut clock = Clock::new(ClockKind::Statutory, Target::working_days(20));
        clock.start(r, at(2026, 11, 2, 9, 0)).unwrap();
        clock
            .pause(r, at(2026, 11, 2, 9, 0), "special procedure: hearing")
            .unwrap();
        clock.extend(r, at(2026, 11, 3, 9, 0), 10).unwrap();
        clock.resume(r, at(2026, 11, 9, 9, 0)).unwrap();
        let left = clock.remaining_seconds.unwrap() / 60;
        let base = cal
            .add_working_minutes(at(2026, 11, 9, 9, 0), left)
            .unwrap();
        assert_eq!(clock.due_at, Some(cal.add_working_days(base, 10).unwrap()));
    }

    #[test]
    fn cancel_keeps_a_breach_and_ignores_stopped_clocks() {
        let cal = Calendar::builtin_shanghai();
        let r = rules(&cal);
        let mut pending = Clock::new(ClockKind::Delivery, Target::working_days(10));
        assert_eq!(
            pending.cancel(r, at(2026, 11, 2, 9, 0)),
            Some(Change::Cancelled)
        );
        assert_eq!(pending.state, ClockState::Cancelled);
        assert_eq!(pending.cancel(r, at(2026, 11, 2, 9, 0)), None);
        let mut late = Clock::new(ClockKind::WindowIntake, Target::Minutes(20));
        late.start(r, at(2026, 11, 2, 9, 0)).unwrap();
        late.detect(at(2026, 11, 2, 9, 30));
        assert_eq!(
            late.cancel(r, at(2026, 11, 2, 9, 40)),
            Some(Change::Cancelled)
        );
        assert_eq!(late.state, ClockState::Breached);
        assert!(late.stopped_at.is_some());
    }

    #[test]
    fn following_a_new_holiday_moves_the_due_time() {
        let mut cal = Calendar::builtin_shanghai();
        let mut clock = Clock::new(ClockKind::Statutory, Target::working_days(1));
        clock.start(rules(&cal), at(2026, 11, 23, 10, 0)).unwrap();
        assert_eq!(clock.due_at, Some(at(2026, 11, 24, 17, 0)));
        cal.set_day(
            chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
            super::super::calendar::DayKind::Holiday,
        );
        assert_eq!(clock.follow(rules(&cal)), Ok(Some(Change::Moved)));
        assert_eq!(clock.due_at, Some(at(2026, 11, 25, 17, 0)));
        assert_eq!(clock.follow(rules(&cal)), Ok(None));
    }

    #[test]
    fn a_return_charges_the_lost_working_minutes() {
        let cal = Calendar::builtin_shanghai();
        let mut clock = Clock::new(ClockKind::Promised, Target::working_days(5));
        clock.start(rules(&cal), at(2026, 11, 23, 9, 0)).unwrap();
        let change = clock.charge_return(
            rules(&cal),
            "tax",
            at(2026, 11, 23, 10, 0),
            at(2026, 11, 23, 14, 0),
        );
        assert_eq!(change, Some(Change::LostToReturn("tax".into(), 180)));
        assert_eq!(clock.lost_minutes, 180);
    }

    #[test]
    fn visits_opinions_and_on_the_spot_promises_have_their_clocks() {
        use Action as A;
        use ClockKind as K;
        for kind in [K::WindowIntake, K::Immediate, K::OnTheSpot, K::Opinion] {
            assert_eq!(reaction(A::Return, kind, false, ""), Some(Reaction::Cancel));
        }
        assert_eq!(reaction(A::Return, K::Statutory, false, ""), None);
        assert_eq!(reaction(A::Return, K::Material, false, ""), None);
        // A denial hands nothing over: a material owed for the result is no longer due.
        assert_eq!(
            reaction(A::Deny, K::Material, false, ""),
            Some(Reaction::Cancel)
        );
        assert_eq!(reaction(A::Approve, K::Material, false, ""), None);
        assert_eq!(
            reaction(A::Call, K::Immediate, false, ""),
            Some(Reaction::Start)
        );
        assert_eq!(
            reaction(A::Complete, K::Immediate, false, ""),
            Some(Reaction::Stop)
        );
        assert_eq!(
            reaction(A::RequestSupplement, K::Immediate, false, ""),
            Some(Reaction::Cancel)
        );
        assert_eq!(
            reaction(A::Accept, K::OnTheSpot, false, ""),
            Some(Reaction::Start)
        );
        assert_eq!(
            reaction(A::Deliver, K::OnTheSpot, false, ""),
            Some(Reaction::Stop)
        );
        assert_eq!(
            reaction(A::Accept, K::Opinion, false, ""),
            Some(Reaction::Start)
        );
        assert_eq!(
            reaction(A::GiveOpinion, K::Opinion, false, ""),
            Some(Reaction::Stop)
        );
        assert!(matches!(
            reaction(A::BeginSpecialProcedure, K::Opinion, false, "appraisal"),
            Some(Reaction::Pause(reason)) if reason.contains("appraisal")
        ));
        assert_eq!(
            reaction(A::EndSpecialProcedure, K::Opinion, false, ""),
            Some(Reaction::Resume)
        );
        // A decision is the lead's: it does not touch a co-unit's opinion clock.
        assert_eq!(reaction(A::Approve, K::Opinion, false, ""), None);
        // Every call opens a new visit; an acceptance after re-routing new opinion clocks.
        assert!(renews(A::Call, K::WindowIntake) && renews(A::Call, K::Immediate));
        assert!(renews(A::Accept, K::Opinion) && renews(A::Accept, K::OnTheSpot));
        assert!(!renews(A::Call, K::Statutory) && !renews(A::Accept, K::Statutory));
        assert!(!renews(A::Supplement, K::WindowIntake));
    }

    #[test]
    fn reactions_follow_the_law() {
        use Action as A;
        use ClockKind as K;
        assert_eq!(
            reaction(A::Call, K::WindowIntake, false, ""),
            Some(Reaction::Start)
        );
        assert_eq!(
            reaction(A::Accept, K::Statutory, false, ""),
            Some(Reaction::Start)
        );
        assert_eq!(
            reaction(A::Accept, K::SupplementNotice, false, ""),
            Some(Reaction::Stop)
        );
        assert!(matches!(
            reaction(A::RequestSupplement, K::Promised, false, ""),
            Some(Reaction::Pause(_))
        ));
        assert_eq!(
            reaction(A::BeginSpecialProcedure, K::Promised, false, ""),
            None
        );
        assert!(matches!(
            reaction(A::BeginSpecialProcedure, K::Statutory, false, "hearing"),
            Some(Reaction::Pause(reason)) if reason.contains("hearing")
        ));
        assert_eq!(
            reaction(A::Approve, K::Delivery, false, ""),
            Some(Reaction::Start)
        );
        assert_eq!(
            reaction(A::Deny, K::Delivery, false, ""),
            Some(Reaction::Cancel)
        );
        assert_eq!(
            reaction(A::ApproveExtension, K::Statutory, false, ""),
            Some(Reaction::Extend(10))
        );
        assert_eq!(
            reaction(A::ApproveExtension, K::Statutory, true, ""),
            Some(Reaction::Extend(15))
        );
        for kind in ClockKind::ALL {
            assert_eq!(
                reaction(A::Withdraw, *kind, false, ""),
                Some(Reaction::Cancel)
            );
        }
    }
}
