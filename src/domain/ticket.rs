//! The window queue (叫号): tickets visitors hold in a unit's queue in the district hall.
//!
//! ```text
//!   issue (check-in, walk-in) ──► waiting ──call──► called ──done──► done
//!                                                  │   ▲
//!                                          no_answer   call (过号重呼: called again)
//!                                                  ▼   │
//!                                                 no_answer
//! ```
//!
//! - **Numbers** run per unit per day: the unit's letter ([`letter`]) and the day's sequence,
//!   `A017`. One letter per unit (not per kind), because the hall's screens show every unit's
//!   calls together and a visitor must see at a glance which queue a number belongs to.
//! - **Order** ([`order`]): an appointment whose slot has started comes first (in slot order,
//!   then check-in order), then walk-ins in check-in order, then appointments checked in early,
//!   in slot order (they move to the front when their slot starts).
//! - **Waiting time** ([`waiting_seconds`]) runs from check-in to the first call.
//!
//! Pure rules: no database, no HTTP, "now" is passed in.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Shanghai;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::UnitCode;
use super::request::text_enum;

text_enum! {
    /// How the visitor came.
    TicketKind {
        /// Checked in for a booked appointment (统一预约).
        Appointment = "appointment",
        /// Walked in without one.
        WalkIn = "walk_in",
    }
}

text_enum! {
    /// Where a ticket stands.
    TicketState {
        /// In the queue.
        Waiting = "waiting",
        /// Called to a counter.
        Called = "called",
        /// Served.
        Done = "done",
        /// Called, but nobody came (过号); may be called again.
        NoAnswer = "no_answer",
    }
}

text_enum! {
    /// What a clerk does with a ticket.
    TicketAction {
        /// Call it to the clerk's counter (again, after `no_answer`).
        Call = "call",
        /// The visit is over.
        Done = "done",
        /// Called, nobody came.
        NoAnswer = "no_answer",
    }
}

/// A step not possible in the ticket's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotNow {
    /// The ticket's state.
    pub state: TicketState,
    /// The actions its state allows.
    pub allowed: Vec<TicketAction>,
}

impl fmt::Display for NotNow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed: Vec<&str> = self.allowed.iter().map(|a| a.as_str()).collect();
        write!(
            f,
            "the ticket is {}; allowed now: {}",
            self.state,
            if allowed.is_empty() {
                "nothing (it is closed)".to_string()
            } else {
                allowed.join(", ")
            }
        )
    }
}

/// The actions `state` allows.
pub fn allowed(state: TicketState) -> Vec<TicketAction> {
    TicketAction::ALL
        .iter()
        .copied()
        .filter(|a| after(state, *a).is_some())
        .collect()
}

/// The state after `action` on a ticket in `state`.
pub fn next(state: TicketState, action: TicketAction) -> Result<TicketState, NotNow> {
    after(state, action).ok_or_else(|| NotNow {
        state,
        allowed: allowed(state),
    })
}

fn after(state: TicketState, action: TicketAction) -> Option<TicketState> {
    use TicketAction as A;
    use TicketState as S;
    match (state, action) {
        (S::Waiting | S::NoAnswer, A::Call) => Some(S::Called),
        (S::Called, A::Done) => Some(S::Done),
        (S::Called, A::NoAnswer) => Some(S::NoAnswer),
        _ => None,
    }
}

/// The letter of `unit`'s numbers. `I` and `O` are left out (they read as 1 and 0).
pub fn letter(unit: UnitCode) -> char {
    match unit {
        UnitCode::Market => 'A',
        UnitCode::Tax => 'B',
        UnitCode::Planning => 'C',
        UnitCode::Housing => 'D',
        UnitCode::Construction => 'E',
        UnitCode::ServiceCenter => 'F',
        UnitCode::Ndrc => 'G',
        UnitCode::Hrss => 'H',
        UnitCode::Commerce => 'J',
        UnitCode::Finance => 'K',
        UnitCode::Stc => 'L',
        UnitCode::Investment => 'M',
        UnitCode::Justice => 'N',
        UnitCode::Streets => 'P',
    }
}

/// The number shown for the `seq`-th ticket of `unit`'s day: `A017` (three digits at least).
pub fn number(unit: UnitCode, seq: i32) -> String {
    format!("{}{seq:03}", letter(unit))
}

/// The district day (Shanghai) `at` falls on, as `YYYYMMDD`: numbers start again each day.
pub fn day_of(at: DateTime<Utc>) -> String {
    at.with_timezone(&Shanghai).format("%Y%m%d").to_string()
}

/// Seconds from check-in to the first call, or to `now` while it waits.
pub fn waiting_seconds(
    issued_at: DateTime<Utc>,
    called_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> i64 {
    (called_at.unwrap_or(now) - issued_at).num_seconds().max(0)
}

/// What the order of a queue needs of one ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// Its kind.
    pub kind: TicketKind,
    /// The booked slot's start (appointments).
    pub slot_start: Option<DateTime<Utc>>,
    /// Check-in.
    pub issued_at: DateTime<Utc>,
    /// The day's sequence (ties).
    pub seq: i32,
}

/// The band of the queue a ticket is in at `now`: 0 an appointment in its slot, 1 a walk-in
/// (or an appointment without a slot), 2 an appointment checked in before its slot.
fn band(place: &Place, now: DateTime<Utc>) -> u8 {
    match (place.kind, place.slot_start) {
        (TicketKind::Appointment, Some(slot)) if slot <= now => 0,
        (TicketKind::Appointment, Some(_)) => 2,
        _ => 1,
    }
}

/// Compares two waiting tickets by their place in the queue at `now` (see the module doc).
pub fn order(a: &Place, b: &Place, now: DateTime<Utc>) -> Ordering {
    let (band_a, band_b) = (band(a, now), band(b, now));
    band_a.cmp(&band_b).then_with(|| {
        let by_slot = if band_a == 1 {
            Ordering::Equal
        } else {
            a.slot_start.cmp(&b.slot_start)
        };
        by_slot
            .then(a.issued_at.cmp(&b.issued_at))
            .then(a.seq.cmp(&b.seq))
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Shanghai
            .with_ymd_and_hms(2026, 12, 2, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn walk_in(seq: i32, issued: DateTime<Utc>) -> Place {
        Place {
            kind: TicketKind::WalkIn,
            slot_start: None,
            issued_at: issued,
            seq,
        }
    }

    fn booked(seq: i32, issued: DateTime<Utc>, slot: DateTime<Utc>) -> Place {
        Place {
            kind: TicketKind::Appointment,
            slot_start: Some(slot),
            issued_at: issued,
            seq,
        }
    }

    #[test]
    fn numbers_carry_the_unit_letter_and_three_digits() {
        assert_eq!(number(UnitCode::Market, 17), "A017");
        assert_eq!(number(UnitCode::Tax, 1), "B001");
        assert_eq!(number(UnitCode::Streets, 1234), "P1234");
    }

    #[test]
    fn every_unit_has_its_own_letter_and_none_is_i_or_o() {
        let mut letters: Vec<char> = UnitCode::ALL.iter().map(|u| letter(*u)).collect();
        assert!(!letters.contains(&'I') && !letters.contains(&'O'));
        letters.sort_unstable();
        letters.dedup();
        assert_eq!(letters.len(), UnitCode::ALL.len());
    }

    #[test]
    fn the_day_is_the_shanghai_day() {
        // 23:30 UTC on 1 December is 07:30 on 2 December in Shanghai.
        let late = Utc.with_ymd_and_hms(2026, 12, 1, 23, 30, 0).unwrap();
        assert_eq!(day_of(late), "20261202");
        let early = Utc.with_ymd_and_hms(2026, 12, 1, 15, 59, 59).unwrap();
        assert_eq!(day_of(early), "20261201");
    }

    #[test]
    fn waiting_runs_from_check_in_to_the_call_or_now() {
        assert_eq!(waiting_seconds(at(9, 0), Some(at(9, 12)), at(10, 0)), 720);
        assert_eq!(waiting_seconds(at(9, 0), None, at(9, 5)), 300);
        assert_eq!(waiting_seconds(at(9, 5), None, at(9, 0)), 0);
    }

    #[test]
    fn appointments_in_their_slot_go_first_then_walk_ins_then_early_appointments() {
        let now = at(10, 0);
        let mut queue = [
            walk_in(1, at(9, 0)),
            booked(2, at(9, 10), at(11, 0)), // early: its slot is later
            walk_in(3, at(9, 20)),
            booked(4, at(9, 50), at(10, 0)), // in its slot
            booked(5, at(9, 40), at(9, 30)), // in its slot, an earlier one
        ];
        queue.sort_by(|a, b| order(a, b, now));
        let seqs: Vec<i32> = queue.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, vec![5, 4, 1, 3, 2]);
        // At 11:00 the early appointment's slot has started: it goes first.
        queue.sort_by(|a, b| order(a, b, at(11, 0)));
        let seqs: Vec<i32> = queue.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, vec![5, 4, 2, 1, 3]);
    }

    #[test]
    fn walk_ins_keep_check_in_order_and_the_sequence_breaks_ties() {
        let now = at(12, 0);
        let mut queue = [
            walk_in(3, at(9, 1)),
            walk_in(2, at(9, 0)),
            walk_in(1, at(9, 0)),
        ];
        queue.sort_by(|a, b| order(a, b, now));
        let seqs: Vec<i32> = queue.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    #[test]
    fn every_state_and_action() {
        use TicketAction as A;
        use TicketState as S;
        let table = [
            (S::Waiting, A::Call, Some(S::Called)),
            (S::Waiting, A::Done, None),
            (S::Waiting, A::NoAnswer, None),
            (S::Called, A::Call, None),
            (S::Called, A::Done, Some(S::Done)),
            (S::Called, A::NoAnswer, Some(S::NoAnswer)),
            (S::Done, A::Call, None),
            (S::Done, A::Done, None),
            (S::Done, A::NoAnswer, None),
            (S::NoAnswer, A::Call, Some(S::Called)),
            (S::NoAnswer, A::Done, None),
            (S::NoAnswer, A::NoAnswer, None),
        ];
        assert_eq!(table.len(), S::ALL.len() * A::ALL.len());
        for (state, action, after) in table {
            assert_eq!(next(state, action).ok(), after, "{state} × {action}");
            if let Err(not_now) = next(state, action) {
                assert_eq!(not_now.allowed, allowed(state));
                assert!(!not_now.allowed.contains(&action));
            }
        }
        assert!(allowed(S::Done).is_empty());
    }

    #[test]
    fn wire_names_round_trip() {
        for kind in TicketKind::ALL {
            assert_eq!(kind.as_str().parse::<TicketKind>(), Ok(*kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        for state in TicketState::ALL {
            assert_eq!(state.as_str().parse::<TicketState>(), Ok(*state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        for action in TicketAction::ALL {
            assert_eq!(serde_json::to_value(action).unwrap(), action.as_str());
        }
    }
}
