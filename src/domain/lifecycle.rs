//! The request lifecycle (办件流程) as a pure state machine: which action is legal in which
//! state, what state it leads to, and who may take it.
//!
//! ```text
//! submitted ─call─► called ─accept─► accepted ─start_review─► under_review ─approve─► approved ─complete─► completed ─deliver─► delivered
//!     │               ├─refuse─► not_accepted                     │  ▲  (begin/end_special_procedure)  └─deny─► denied ─complete─┘
//!     │               └─request_supplement─► supplement_required ─supplement─► submitted
//!     ├─return─► returned ─reroute─► submitted            (called and accepted may be returned too)
//!     └─withdraw─► withdrawn   (from any state before a decision)
//! ```
//!
//! A special procedure (hearing, inspection, testing, expert review: Art. 45) is a flag on a
//! request under review, not a state of its own: the request stays `under_review`, the
//! statutory clock pauses, and no decision may be taken until the procedure ends. An
//! extension (Art. 42) may be approved once, while the request is accepted or under review.
//!
//! The same machine runs for each unit task of a bundle: review and decision steps
//! ([`Action::per_task`]) move one task, and the bundle's state is derived from all of them
//! ([`aggregate`]); the window steps, completion and delivery move the bundle as a whole.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::UnitCode;
use super::request::Status;
use crate::auth::Actor;

/// Every step someone can take on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Enterprise withdraws (撤回) before a decision.
    Withdraw,
    /// Enterprise provides the missing materials (补正).
    Supplement,
    /// Clerk starts serving it at the window.
    Call,
    /// Clerk accepts (受理).
    Accept,
    /// Clerk refuses to accept (不予受理); reason required.
    Refuse,
    /// Clerk lists every missing item in one notice (一次性告知).
    RequestSupplement,
    /// Back office starts the review.
    StartReview,
    /// A special procedure begins (hearing, inspection, testing, expert review); kind required.
    BeginSpecialProcedure,
    /// The special procedure ends.
    EndSpecialProcedure,
    /// Decision: approved (准予).
    Approve,
    /// Decision: denied (不予); reason required.
    Deny,
    /// Handling completed (办结).
    Complete,
    /// Result delivered (送达); certificate number for an approval.
    Deliver,
    /// Unit sends it back as not its matter (退单); reason required.
    Return,
    /// Service centre re-routes a returned request to another unit; reason required.
    Reroute,
    /// Unit supervisor approves the one statutory extension.
    ApproveExtension,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 16] = [
        Action::Withdraw,
        Action::Supplement,
        Action::Call,
        Action::Accept,
        Action::Refuse,
        Action::RequestSupplement,
        Action::StartReview,
        Action::BeginSpecialProcedure,
        Action::EndSpecialProcedure,
        Action::Approve,
        Action::Deny,
        Action::Complete,
        Action::Deliver,
        Action::Return,
        Action::Reroute,
        Action::ApproveExtension,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Withdraw => "withdraw",
            Action::Supplement => "supplement",
            Action::Call => "call",
            Action::Accept => "accept",
            Action::Refuse => "refuse",
            Action::RequestSupplement => "request_supplement",
            Action::StartReview => "start_review",
            Action::BeginSpecialProcedure => "begin_special_procedure",
            Action::EndSpecialProcedure => "end_special_procedure",
            Action::Approve => "approve",
            Action::Deny => "deny",
            Action::Complete => "complete",
            Action::Deliver => "deliver",
            Action::Return => "return",
            Action::Reroute => "reroute",
            Action::ApproveExtension => "approve_extension",
        }
    }

    /// Whether, on a bundle, the step belongs to one unit task rather than to the request:
    /// the back office's review and decision, taken by each unit on its own task. The window
    /// steps (call, accept, refuse, request a supplement, return), completion and delivery
    /// stay with the request: one intake, one reply.
    pub fn per_task(self) -> bool {
        matches!(
            self,
            Action::StartReview
                | Action::BeginSpecialProcedure
                | Action::EndSpecialProcedure
                | Action::Approve
                | Action::Deny
        )
    }

    /// Who may take it.
    pub fn taken_by(self) -> Taker {
        match self {
            Action::Withdraw | Action::Supplement => Taker::OwningEnterprise,
            Action::Reroute => Taker::ServiceCentre,
            Action::ApproveExtension => Taker::UnitSupervisor,
            _ => Taker::ResponsibleClerk,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not an action"))
    }
}

/// The kind of actor an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taker {
    /// The enterprise that submitted it.
    OwningEnterprise,
    /// A clerk of a unit responsible for it.
    ResponsibleClerk,
    /// A `service-center` clerk, or a supervisor of `service-center` or of the district.
    ServiceCentre,
    /// A supervisor of the lead unit, or of the district.
    UnitSupervisor,
}

/// Where a request stands, as far as the machine cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Situation {
    /// Lifecycle state.
    pub status: Status,
    /// A special procedure is under way.
    pub special_procedure: bool,
    /// The one extension was already granted.
    pub extended: bool,
}

impl Situation {
    /// A plain situation in `status`.
    pub fn at(status: Status) -> Self {
        Self {
            status,
            special_procedure: false,
            extended: false,
        }
    }
}

/// What an action changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The state after.
    pub status: Status,
    /// Whether a special procedure is under way after.
    pub special_procedure: bool,
    /// Whether the extension has been granted after.
    pub extended: bool,
}

/// An action that is not legal now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{action}` is not possible while the request is {state}; possible now: {}", list(.allowed))]
pub struct Illegal {
    /// The action tried.
    pub action: Action,
    /// The state it was tried in.
    pub state: Status,
    /// What is possible in this situation.
    pub allowed: Vec<Action>,
}

fn list(actions: &[Action]) -> String {
    if actions.is_empty() {
        "nothing (the request is closed)".into()
    } else {
        actions
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// States before a decision, from which the enterprise may withdraw.
const UNDECIDED: [Status; 6] = [
    Status::Submitted,
    Status::Called,
    Status::Accepted,
    Status::SupplementRequired,
    Status::UnderReview,
    Status::Returned,
];

/// The state `action` leads to from `situation`, or why it cannot be taken.
pub fn apply(situation: Situation, action: Action) -> Result<Outcome, Illegal> {
    next(situation, action).ok_or_else(|| Illegal {
        action,
        state: situation.status,
        allowed: allowed(situation),
    })
}

/// Every action legal in `situation`, in [`Action::ALL`] order.
pub fn allowed(situation: Situation) -> Vec<Action> {
    Action::ALL
        .into_iter()
        .filter(|a| next(situation, *a).is_some())
        .collect()
}

/// The transition table.
fn next(situation: Situation, action: Action) -> Option<Outcome> {
    use Action as A;
    use Status as S;
    let Situation {
        status,
        special_procedure,
        extended,
    } = situation;
    let to = |status: Status| {
        Some(Outcome {
            status,
            special_procedure,
            extended,
        })
    };
    match (status, action) {
        (s, A::Withdraw) if UNDECIDED.contains(&s) => Some(Outcome {
            status: S::Withdrawn,
            special_procedure: false,
            extended,
        }),
        (S::SupplementRequired, A::Supplement) => to(S::Submitted),
        (S::Submitted, A::Call) => to(S::Called),
        (S::Called, A::Accept) => to(S::Accepted),
        (S::Called, A::Refuse) => to(S::NotAccepted),
        (S::Called, A::RequestSupplement) => to(S::SupplementRequired),
        (S::Accepted, A::StartReview) => to(S::UnderReview),
        (S::UnderReview, A::BeginSpecialProcedure) if !special_procedure => Some(Outcome {
            status,
            special_procedure: true,
            extended,
        }),
        (S::UnderReview, A::EndSpecialProcedure) if special_procedure => Some(Outcome {
            status,
            special_procedure: false,
            extended,
        }),
        (S::UnderReview, A::Approve) if !special_procedure => to(S::Approved),
        (S::UnderReview, A::Deny) if !special_procedure => to(S::Denied),
        (S::Approved | S::Denied, A::Complete) => to(S::Completed),
        (S::Completed, A::Deliver) => to(S::Delivered),
        (S::Submitted | S::Called | S::Accepted, A::Return) => to(S::Returned),
        (S::Returned, A::Reroute) => to(S::Submitted),
        (S::Accepted | S::UnderReview, A::ApproveExtension) if !extended => Some(Outcome {
            status,
            special_procedure,
            extended: true,
        }),
        _ => None,
    }
}

/// A bundle's situation in the back office, derived from its unit tasks (each of which ran
/// the same machine): decided once every task is decided — denied when any was denied,
/// approved otherwise — under review once any task moved past acceptance, accepted before
/// that. A special procedure on any task is one on the bundle. Only meaningful while the
/// bundle is accepted or under review; `extended` is the bundle's own.
pub fn aggregate(tasks: &[Situation], extended: bool) -> Situation {
    let decided = |s: &Situation| matches!(s.status, Status::Approved | Status::Denied);
    let status = if !tasks.is_empty() && tasks.iter().all(decided) {
        if tasks.iter().any(|s| s.status == Status::Denied) {
            Status::Denied
        } else {
            Status::Approved
        }
    } else if tasks.iter().any(|s| s.status != Status::Accepted) {
        Status::UnderReview
    } else {
        Status::Accepted
    };
    Situation {
        status,
        special_procedure: tasks.iter().any(|s| s.special_procedure),
        extended,
    }
}

/// What the actor is allowed to know about the request it acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parties {
    /// The enterprise that submitted it.
    pub owner: String,
    /// The lead unit.
    pub lead_unit: UnitCode,
    /// Every unit with a task on it.
    pub units: Vec<UnitCode>,
}

/// Why an actor may not act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The request is not the actor's to see at all (another enterprise's): answer 404.
    #[error("no such request")]
    Hidden,
    /// The actor sees it but may not take this action: answer 403.
    #[error("{0}")]
    Forbidden(String),
}

/// Whether `actor` may take `action` on a request with these `parties`.
pub fn authorize(actor: &Actor, action: Action, parties: &Parties) -> Result<(), Denied> {
    let forbidden = |why: String| Err(Denied::Forbidden(why));
    if let Actor::Enterprise(uscc) = actor {
        if uscc.as_str() != parties.owner {
            return Err(Denied::Hidden);
        }
    }
    match (action.taken_by(), actor) {
        (Taker::OwningEnterprise, Actor::Enterprise(_)) => Ok(()),
        (Taker::OwningEnterprise, _) => forbidden(format!(
            "only the enterprise that submitted the request may {action}"
        )),
        (Taker::ResponsibleClerk, Actor::Clerk(unit)) if parties.units.contains(unit) => Ok(()),
        (Taker::ResponsibleClerk, Actor::Clerk(unit)) => {
            forbidden(format!("unit `{unit}` is not responsible for this request"))
        }
        (Taker::ResponsibleClerk, _) => {
            forbidden(format!("only a clerk of a responsible unit may {action}"))
        }
        (Taker::ServiceCentre, Actor::Clerk(UnitCode::ServiceCenter))
        | (Taker::ServiceCentre, Actor::Supervisor(None | Some(UnitCode::ServiceCenter))) => Ok(()),
        (Taker::ServiceCentre, _) => {
            forbidden("only the service centre arbitrates re-routing".into())
        }
        (Taker::UnitSupervisor, Actor::Supervisor(None)) => Ok(()),
        (Taker::UnitSupervisor, Actor::Supervisor(Some(unit))) if *unit == parties.lead_unit => {
            Ok(())
        }
        (Taker::UnitSupervisor, _) => forbidden(format!(
            "only a supervisor of `{}` (or of the district) may approve an extension",
            parties.lead_unit
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Uscc;

    /// The whole table: for each state, the actions that are legal and where they lead.
    fn expected(status: Status, action: Action) -> Option<Status> {
        use Action as A;
        use Status as S;
        let table: &[(Status, &[(Action, Status)])] = &[
            (
                S::Submitted,
                &[
                    (A::Withdraw, S::Withdrawn),
                    (A::Call, S::Called),
                    (A::Return, S::Returned),
                ],
            ),
            (
                S::Called,
                &[
                    (A::Withdraw, S::Withdrawn),
                    (A::Accept, S::Accepted),
                    (A::Refuse, S::NotAccepted),
                    (A::RequestSupplement, S::SupplementRequired),
                    (A::Return, S::Returned),
                ],
            ),
            (
                S::Accepted,
                &[
                    (A::Withdraw, S::Withdrawn),
                    (A::StartReview, S::UnderReview),
                    (A::Return, S::Returned),
                    (A::ApproveExtension, S::Accepted),
                ],
            ),
            (S::NotAccepted, &[]),
            (
                S::SupplementRequired,
                &[(A::Withdraw, S::Withdrawn), (A::Supplement, S::Submitted)],
            ),
            (
                S::UnderReview,
                &[
                    (A::Withdraw, S::Withdrawn),
                    (A::BeginSpecialProcedure, S::UnderReview),
                    (A::Approve, S::Approved),
                    (A::Deny, S::Denied),
                    (A::ApproveExtension, S::UnderReview),
                ],
            ),
            (S::Approved, &[(A::Complete, S::Completed)]),
            (S::Denied, &[(A::Complete, S::Completed)]),
            (S::Completed, &[(A::Deliver, S::Delivered)]),
            (S::Delivered, &[]),
            (S::Withdrawn, &[]),
            (
                S::Returned,
                &[(A::Withdraw, S::Withdrawn), (A::Reroute, S::Submitted)],
            ),
        ];
        let (_, row) = table
            .iter()
            .find(|(s, _)| *s == status)
            .expect("every state is in the table");
        row.iter().find(|(a, _)| *a == action).map(|(_, to)| *to)
    }

    #[test]
    fn every_state_and_action_pair() {
        for status in Status::ALL {
            for action in Action::ALL {
                let got = apply(Situation::at(*status), action);
                match expected(*status, action) {
                    Some(to) => assert_eq!(got.map(|o| o.status), Ok(to), "{status} + {action}"),
                    None => {
                        let err = got.expect_err(&format!("{status} + {action} must be refused"));
                        assert_eq!(err.state, *status);
                        assert!(!err.allowed.contains(&action));
                    }
                }
            }
            // `allowed` lists exactly the legal ones.
            let legal: Vec<Action> = Action::ALL
                .into_iter()
                .filter(|a| expected(*status, *a).is_some())
                .collect();
            assert_eq!(allowed(Situation::at(*status)), legal, "{status}");
        }
    }

    #[test]
    fn special_procedure_blocks_decisions_until_it_ends() {
        let review = Situation::at(Status::UnderReview);
        let during = apply(review, Action::BeginSpecialProcedure).unwrap();
        assert!(during.special_procedure);
        let during = Situation {
            status: during.status,
            special_procedure: true,
            extended: false,
        };
        for action in [Action::Approve, Action::Deny, Action::BeginSpecialProcedure] {
            let err = apply(during, action).unwrap_err();
            assert!(err.allowed.contains(&Action::EndSpecialProcedure), "{err}");
        }
        let after = apply(during, Action::EndSpecialProcedure).unwrap();
        assert!(!after.special_procedure);
        assert_eq!(
            apply(review, Action::EndSpecialProcedure)
                .unwrap_err()
                .action,
            Action::EndSpecialProcedure
        );
    }

    #[test]
    fn the_extension_is_granted_once() {
        let first = apply(Situation::at(Status::UnderReview), Action::ApproveExtension).unwrap();
        assert!(first.extended);
        let again = Situation {
            status: Status::UnderReview,
            special_procedure: false,
            extended: true,
        };
        assert!(apply(again, Action::ApproveExtension).is_err());
        // The grant survives later steps.
        assert!(apply(again, Action::Approve).unwrap().extended);
    }

    #[test]
    fn refusals_name_the_state_and_the_choices() {
        let err = apply(Situation::at(Status::Submitted), Action::Approve).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`approve` is not possible while the request is submitted; possible now: withdraw, call, return"
        );
        let err = apply(Situation::at(Status::Delivered), Action::Withdraw).unwrap_err();
        assert!(
            err.to_string().ends_with("nothing (the request is closed)"),
            "{err}"
        );
    }

    fn parties() -> Parties {
        Parties {
            owner: "91350100M000100Y43".into(),
            lead_unit: UnitCode::Market,
            units: vec![UnitCode::Market, UnitCode::Tax],
        }
    }

    #[test]
    fn role_action_and_ownership_matrix() {
        let own = Actor::Enterprise(Uscc::parse("91350100M000100Y43").unwrap());
        let other = Actor::Enterprise(Uscc::parse("9144030071526726XG").unwrap());
        let clerk = Actor::Clerk(UnitCode::Tax);
        let stranger = Actor::Clerk(UnitCode::Justice);
        let centre = Actor::Clerk(UnitCode::ServiceCenter);
        let lead_head = Actor::Supervisor(Some(UnitCode::Market));
        let tax_head = Actor::Supervisor(Some(UnitCode::Tax));
        let district = Actor::Supervisor(None);
        let admin = Actor::Admin;
        for action in Action::ALL {
            let ok = |actor: &Actor| authorize(actor, action, &parties()).is_ok();
            assert_eq!(
                authorize(&other, action, &parties()),
                Err(Denied::Hidden),
                "{action}"
            );
            match action.taken_by() {
                Taker::OwningEnterprise => {
                    assert!(ok(&own));
                    assert!(
                        ![&clerk, &centre, &district, &admin].into_iter().any(ok),
                        "{action}"
                    );
                }
                Taker::ResponsibleClerk => {
                    assert!(ok(&clerk));
                    assert!(
                        ![&own, &stranger, &centre, &lead_head, &district, &admin]
                            .into_iter()
                            .any(ok),
                        "{action}"
                    );
                }
                Taker::ServiceCentre => {
                    assert!(
                        ok(&centre)
                            && ok(&district)
                            && ok(&Actor::Supervisor(Some(UnitCode::ServiceCenter)))
                    );
                    assert!(
                        ![&own, &clerk, &lead_head, &admin].into_iter().any(ok),
                        "{action}"
                    );
                }
                Taker::UnitSupervisor => {
                    assert!(ok(&lead_head) && ok(&district));
                    assert!(
                        ![&own, &clerk, &tax_head, &centre, &admin]
                            .into_iter()
                            .any(ok),
                        "{action}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_bundle_is_decided_when_every_task_is() {
        let task = |status| Situation::at(status);
        let accepted = [task(Status::Accepted), task(Status::Accepted)];
        assert_eq!(aggregate(&accepted, false).status, Status::Accepted);
        let one_reviewing = [task(Status::UnderReview), task(Status::Accepted)];
        assert_eq!(aggregate(&one_reviewing, false).status, Status::UnderReview);
        let one_decided = [task(Status::Approved), task(Status::Accepted)];
        assert_eq!(aggregate(&one_decided, false).status, Status::UnderReview);
        let approved = [task(Status::Approved), task(Status::Approved)];
        assert_eq!(
            aggregate(&approved, true),
            Situation {
                status: Status::Approved,
                special_procedure: false,
                extended: true
            }
        );
        let one_denied = [task(Status::Approved), task(Status::Denied)];
        assert_eq!(aggregate(&one_denied, false).status, Status::Denied);
        let mut hearing = task(Status::UnderReview);
        hearing.special_procedure = true;
        assert!(aggregate(&[hearing, task(Status::Approved)], false).special_procedure);
    }

    #[test]
    fn review_and_decisions_are_per_task() {
        let per_task: Vec<Action> = Action::ALL.into_iter().filter(|a| a.per_task()).collect();
        assert_eq!(
            per_task,
            [
                Action::StartReview,
                Action::BeginSpecialProcedure,
                Action::EndSpecialProcedure,
                Action::Approve,
                Action::Deny
            ]
        );
    }

    #[test]
    fn action_names_round_trip() {
        for action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>(), Ok(action));
            assert_eq!(serde_json::to_value(action).unwrap(), action.as_str());
        }
    }
}
