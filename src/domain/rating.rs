//! Good/bad ratings (好差评) and the rectification they may open: collect, handle, feed back.
//! Pure rules; storage is `db::ratings`, the API `routes::ratings`.
//!
//! - The owning enterprise rates a request once it is finished for them: completed or
//!   delivered, not accepted, or denied. One rating per request.
//! - Levels 1 to 5, from 非常不满意 (very dissatisfied) to 非常满意 (very satisfied).
//! - A level of 1 or 2 is a bad rating (差评): it opens a rectification case for the unit
//!   responsible (the request's lead unit), with two clocks — contact the enterprise within
//!   `contact_days` working days, rectify within `rectify_days` — listed for supervisors and
//!   closed only with a note, whose outcome the enterprise is told. A case is closed after the
//!   contact is recorded, or with the reason the enterprise was not contacted.

use std::fmt;

use super::request::Status;

/// States in which the enterprise may rate.
pub const RATABLE: [Status; 4] = [
    Status::Completed,
    Status::Delivered,
    Status::NotAccepted,
    Status::Denied,
];

/// Highest level that counts as a bad rating.
pub const BAD_UP_TO: i32 = 2;

/// Longest comment, in characters.
pub const COMMENT_MAX_CHARS: usize = 1000;

/// A rating level, 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Level(i32);

impl Level {
    /// The level, if it is 1 to 5.
    pub fn new(level: i64) -> Option<Self> {
        (1..=5)
            .contains(&level)
            .then(|| Self(i32::try_from(level).expect("1 to 5")))
    }

    /// The number.
    pub fn get(self) -> i32 {
        self.0
    }

    /// A bad rating (差评) that opens a rectification case.
    pub fn is_bad(self) -> bool {
        self.0 <= BAD_UP_TO
    }

    /// The label of the national good/bad rating system.
    pub fn label_zh(self) -> &'static str {
        ["非常不满意", "不满意", "基本满意", "满意", "非常满意"][(self.0 - 1) as usize]
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.label_zh())
    }
}

/// Whether a request in `status` may be rated.
pub fn ratable(status: Status) -> bool {
    RATABLE.contains(&status)
}

/// States of a rectification case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStatus {
    /// Opened by the rating; the unit has not contacted the enterprise yet.
    Open,
    /// The unit contacted the enterprise.
    Contacted,
    /// Rectified and closed with a note.
    Closed,
}

impl CaseStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Contacted => "contacted",
            CaseStatus::Closed => "closed",
        }
    }

    /// From the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        [CaseStatus::Open, CaseStatus::Contacted, CaseStatus::Closed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A step on a rectification case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStep {
    /// The unit contacted the enterprise (stops the contact clock).
    Contact,
    /// Rectified: closed with a note (stops both clocks).
    Close,
}

/// The state `step` leads to from `status`, or `None` when it is not possible.
pub fn next(status: CaseStatus, step: CaseStep) -> Option<CaseStatus> {
    match (status, step) {
        (CaseStatus::Open, CaseStep::Contact) => Some(CaseStatus::Contacted),
        (CaseStatus::Open | CaseStatus::Contacted, CaseStep::Close) => Some(CaseStatus::Closed),
        _ => None,
    }
}

/// Why a case may not be closed as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseRefusal {
    /// No contact with the enterprise is recorded, and no reason for closing without one was
    /// given.
    NoContact,
    /// A contact is recorded: a reason for closing without one does not apply.
    ContactRecorded,
}

/// Whether a case in `status` may be closed, given whether a reason for closing it without a
/// contact (`no_contact_reason`) came with the step: closing needs the recorded contact (the
/// case is `contacted`) or, for an `open` case, that reason. Checked after [`next`].
pub fn may_close(status: CaseStatus, no_contact_reason: bool) -> Result<(), CloseRefusal> {
    match (status, no_contact_reason) {
        (CaseStatus::Open, false) => Err(CloseRefusal::NoContact),
        (CaseStatus::Contacted, true) => Err(CloseRefusal::ContactRecorded),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_one_to_five_and_two_or_less_is_bad() {
        assert_eq!(Level::new(0), None);
        assert_eq!(Level::new(6), None);
        assert!(Level::new(1).unwrap().is_bad());
        assert!(Level::new(2).unwrap().is_bad());
        assert!(!Level::new(3).unwrap().is_bad());
        assert_eq!(Level::new(5).unwrap().label_zh(), "非常满意");
        assert_eq!(Level::new(1).unwrap().label_zh(), "非常不满意");
    }

    #[test]
    fn only_finished_requests_are_rated() {
        assert!(ratable(Status::Completed));
        assert!(ratable(Status::NotAccepted));
        assert!(ratable(Status::Denied));
        assert!(!ratable(Status::UnderReview));
        assert!(!ratable(Status::Withdrawn));
    }

    #[test]
    fn a_case_is_contacted_then_closed_and_closed_is_final() {
        assert_eq!(
            next(CaseStatus::Open, CaseStep::Contact),
            Some(CaseStatus::Contacted)
        );
        assert_eq!(
            next(CaseStatus::Contacted, CaseStep::Close),
            Some(CaseStatus::Closed)
        );
        assert_eq!(
            next(CaseStatus::Open, CaseStep::Close),
            Some(CaseStatus::Closed)
        );
        assert_eq!(next(CaseStatus::Contacted, CaseStep::Contact), None);
        assert_eq!(next(CaseStatus::Closed, CaseStep::Close), None);
    }

    #[test]
    fn closing_needs_a_contact_or_a_reason_for_none() {
        assert_eq!(
            may_close(CaseStatus::Open, false),
            Err(CloseRefusal::NoContact)
        );
        assert_eq!(may_close(CaseStatus::Open, true), Ok(()));
        assert_eq!(may_close(CaseStatus::Contacted, false), Ok(()));
        assert_eq!(
            may_close(CaseStatus::Contacted, true),
            Err(CloseRefusal::ContactRecorded)
        );
    }
}
