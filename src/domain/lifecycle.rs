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
use super::actor::Actor;
use super::assistance::{Lapse, Standing};
use super::request::{Status, TaskRole};

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
    /// A co-unit gives its opinion on its own task (联合会审): agree, agree with conditions,
    /// or disagree.
    GiveOpinion,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 17] = [
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
        Action::GiveOpinion,
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
            Action::GiveOpinion => "give_opinion",
        }
    }

    /// Whether it is a unit's review step on its own work rather than a step on the request
    /// as a whole: review, special procedures, a decision, an opinion. On a bundle each unit
    /// takes them on its own task; a co-unit takes them on its opinion task; on a single
    /// matter the lead unit's review is the request's. The window steps (call, accept, refuse,
    /// request a supplement, return), completion and delivery stay with the request: one
    /// intake, one reply.
    pub fn per_task(self) -> bool {
        matches!(
            self,
            Action::StartReview
                | Action::BeginSpecialProcedure
                | Action::EndSpecialProcedure
                | Action::Approve
                | Action::Deny
                | Action::GiveOpinion
        )
    }

    /// Who may take it.
    pub fn taken_by(self) -> Taker {
        match self {
            Action::Withdraw | Action::Supplement => Taker::OwningEnterprise,
            Action::Reroute => Taker::ServiceCentre,
            Action::ApproveExtension => Taker::LeadSupervisor,
            a if a.per_task() => Taker::TaskClerk,
            _ => Taker::LeadClerk,
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
    /// A clerk of the lead unit (一口受理、一处反馈): the window steps, return, completion and
    /// delivery.
    LeadClerk,
    /// A clerk of a unit with a task of its own for the step: the lead's review of a single
    /// matter, a bundle unit's review and decision, a co-unit's opinion.
    TaskClerk,
    /// A `service-center` clerk, or a supervisor of `service-center` or of the district.
    ServiceCentre,
    /// A supervisor of the lead unit, or of the district.
    LeadSupervisor,
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

/// The machine of an opinion task (a co-unit's work on a matter another unit leads, 联合会审):
/// `accepted ─start_review─► under_review ─give_opinion─► completed`, with special procedures
/// on the way like any task. It never decides: approve and deny belong to the matter's lead.
pub fn apply_opinion(situation: Situation, action: Action) -> Result<Outcome, Illegal> {
    opinion_next(situation, action).ok_or_else(|| Illegal {
        action,
        state: situation.status,
        allowed: Action::ALL
            .into_iter()
            .filter(|a| opinion_next(situation, *a).is_some())
            .collect(),
    })
}

fn opinion_next(situation: Situation, action: Action) -> Option<Outcome> {
    match (situation.status, action) {
        (Status::UnderReview, Action::GiveOpinion) if !situation.special_procedure => {
            Some(Outcome {
                status: Status::Completed,
                special_procedure: false,
                extended: situation.extended,
            })
        }
        (_, Action::Approve | Action::Deny | Action::GiveOpinion) => None,
        (_, a) if a.per_task() => next(situation, a),
        _ => None,
    }
}

/// One task of a request, as the authority rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFacts {
    /// Its id.
    pub id: String,
    /// Its unit.
    pub unit: UnitCode,
    /// Lead of its matter, co-operating unit (an opinion task), or a bundle's coordinator.
    pub role: TaskRole,
    /// The matter (the bundle code for a coordinator).
    pub matter: String,
}

/// Who stands where on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parties {
    /// The enterprise that submitted it.
    pub owner: String,
    /// The lead unit: the enterprise's one counterpart.
    pub lead_unit: UnitCode,
    /// A bundle (一件事) rather than a single matter.
    pub bundle: bool,
    /// Every task.
    pub tasks: Vec<TaskFacts>,
    /// Returned (退单) and awaiting the service centre's arbitration.
    pub returned: bool,
    /// The acting official's 帮办 standing for the owner on this request
    /// ([`super::assistance::standing`]); [`Standing::Without`] for anyone else, and where the
    /// caller did not look because the step is not the enterprise's.
    pub assistant: Standing,
}

impl Parties {
    fn has_task(&self, unit: UnitCode) -> bool {
        self.tasks.iter().any(|t| t.unit == unit)
    }

    /// Whether the acting official's 帮办 standing can change [`authorize`]'s answer for
    /// `action`, so that the caller must look it up first: for the enterprise's own steps
    /// (the grant is what lets an official take them), and for an official whose unit neither
    /// holds a task nor leads (the grant is the only thing that shows them the request).
    /// A district supervisor sees every request, so only its enterprise steps; never the
    /// enterprise or an administrator.
    pub fn standing_matters(&self, actor: &Actor, action: Action) -> bool {
        match actor {
            Actor::Clerk(unit) | Actor::Supervisor(Some(unit)) => {
                action.taken_by() == Taker::OwningEnterprise
                    || (!self.has_task(*unit) && *unit != self.lead_unit)
            }
            Actor::Supervisor(None) => action.taken_by() == Taker::OwningEnterprise,
            Actor::Enterprise(_) | Actor::Admin => false,
        }
    }

    /// The unit that leads `matter` (decides it), or the request's lead unit.
    pub fn lead_of(&self, matter: &str) -> UnitCode {
        self.tasks
            .iter()
            .find(|t| t.role == TaskRole::Lead && t.matter == matter)
            .map_or(self.lead_unit, |t| t.unit)
    }
}

/// What a step moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The request as a whole (every task follows, see `docs/workflow.md`).
    Request,
    /// One task: a bundle unit's review or decision, or a co-unit's opinion.
    Task(String),
}

/// Why an actor may not act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The request is not the actor's to see at all (another enterprise's, or a unit with no
    /// task on it): answer 404, as for a missing id.
    #[error("no such request")]
    Hidden,
    /// The actor sees it but may not take this action: answer 403.
    #[error("{0}")]
    Forbidden(String),
    /// The step is the lead unit's (一口受理、一处反馈): answer 403 `not_lead_unit` naming it.
    #[error("{message}")]
    NotLead {
        /// The unit that may take it.
        lead: UnitCode,
        /// Why, for people.
        message: String,
    },
    /// The step needs a task named, or names one that is not there: answer 422 at `/task`.
    #[error("{0}")]
    WhichTask(String),
    /// The step is the enterprise's, and the official holds no live 帮办 grant for it: answer
    /// 403 with the reason's own code (none, revoked, expired, not yet begun, another request).
    #[error("{message}")]
    NoGrant {
        /// Why the grants that name the official do not cover the step; `None`: none does.
        lapse: Option<Lapse>,
        /// Why, for people.
        message: String,
    },
}

impl Denied {
    /// The refusal of an enterprise's step to an official without a live grant.
    fn no_grant(action: Action, standing: &Standing) -> Self {
        let lapse = match standing {
            Standing::Lapsed(lapse) => Some(lapse.clone()),
            _ => None,
        };
        let why = match &lapse {
            None => "no 帮办 grant of the enterprise names you".to_string(),
            Some(Lapse::Revoked(g)) => format!("grant {g} was revoked by the enterprise"),
            Some(Lapse::Expired(g)) => format!("grant {g} has expired"),
            Some(Lapse::NotYet(g)) => format!("grant {g} has not begun"),
            Some(Lapse::OtherRequest(g)) => format!("grant {g} covers another request only"),
        };
        Denied::NoGrant {
            lapse,
            message: format!(
                "only the enterprise that submitted the request, or an official it authorised (帮办), may {action}: {why}"
            ),
        }
    }
}

/// Whether `actor` may take `action` on a request with these `parties`, and on what: the
/// request as a whole or one task (`task` names it when the actor's unit has several).
///
/// The rule (the table in `docs/workflow.md`):
/// - the owning enterprise withdraws and supplies; any other enterprise sees nothing;
/// - an official holding a live 帮办 grant of the owner for this request
///   ([`Parties::assistant`]) withdraws and supplies for it, and sees the request even when
///   the official's unit has no task on it; any other official is refused those two steps
///   with the reason ([`Denied::NoGrant`]), or sees nothing when the official's unit has no
///   task and no grant of the owner names the official;
/// - a clerk or unit supervisor of a unit with no task sees nothing (404), except that the
///   service centre sees a returned request, to re-route it;
/// - the lead unit's clerks take the window steps, return, completion and delivery, and on a
///   single matter its review and decision; a co-unit's clerk taking one gets `not_lead_unit`;
/// - review steps run on the actor's unit's own task: a bundle unit decides its own matter,
///   a co-unit gives its opinion; no unit moves another unit's task;
/// - the service centre re-routes; a supervisor of the lead unit (or of the district)
///   approves the extension.
pub fn authorize(
    actor: &Actor,
    action: Action,
    parties: &Parties,
    task: Option<&str>,
) -> Result<Target, Denied> {
    let forbidden = |why: String| Err(Denied::Forbidden(why));
    let not_lead = |lead: UnitCode, what: &str| {
        Err(Denied::NotLead {
            lead,
            message: format!(
                "only the lead unit `{lead}` may {what} (one intake, one feedback point)"
            ),
        })
    };
    // Who is it, and do they see the request at all?
    let unit = match actor {
        Actor::Enterprise(uscc) if uscc.as_str() != parties.owner => return Err(Denied::Hidden),
        Actor::Enterprise(_) => None,
        Actor::Clerk(unit) | Actor::Supervisor(Some(unit)) => {
            let arbitrates = *unit == UnitCode::ServiceCenter && parties.returned;
            let assists = matches!(parties.assistant, Standing::Holds { .. });
            if !parties.has_task(*unit) && *unit != parties.lead_unit && !arbitrates && !assists {
                // A lapsed grant is told as such: the official knew the request through it.
                let enterprise_step = action.taken_by() == Taker::OwningEnterprise;
                if enterprise_step && matches!(parties.assistant, Standing::Lapsed(_)) {
                    return Err(Denied::no_grant(action, &parties.assistant));
                }
                return Err(Denied::Hidden);
            }
            Some(*unit)
        }
        Actor::Supervisor(None) | Actor::Admin => None,
    };
    if task.is_some() && !action.per_task() {
        return Err(Denied::WhichTask(format!(
            "`task` is only for a unit's own review steps (start_review, begin/end_special_procedure, approve, deny, give_opinion), not for {action}"
        )));
    }
    match action.taken_by() {
        Taker::OwningEnterprise => match (actor, &parties.assistant) {
            (Actor::Enterprise(_), _) => Ok(Target::Request),
            (Actor::Admin, _) => forbidden(format!(
                "only the enterprise that submitted the request, or an official it authorised (帮办), may {action}"
            )),
            (_, Standing::Holds { .. }) => Ok(Target::Request),
            (_, standing) => Err(Denied::no_grant(action, standing)),
        },
        Taker::ServiceCentre => match actor {
            Actor::Clerk(UnitCode::ServiceCenter)
            | Actor::Supervisor(None | Some(UnitCode::ServiceCenter)) => Ok(Target::Request),
            _ => forbidden("only the service centre arbitrates re-routing".into()),
        },
        Taker::LeadSupervisor => match actor {
            Actor::Supervisor(None) => Ok(Target::Request),
            Actor::Supervisor(Some(u)) if *u == parties.lead_unit => Ok(Target::Request),
            Actor::Supervisor(Some(_)) => not_lead(parties.lead_unit, "approve an extension"),
            _ => forbidden(format!(
                "only a supervisor of `{}` (or of the district) may approve an extension",
                parties.lead_unit
            )),
        },
        Taker::LeadClerk => match actor {
            Actor::Clerk(u) if *u == parties.lead_unit => Ok(Target::Request),
            Actor::Clerk(_) => not_lead(parties.lead_unit, &action.to_string()),
            _ => forbidden(format!(
                "only a clerk of the lead unit `{}` may {action}",
                parties.lead_unit
            )),
        },
        Taker::TaskClerk => match (actor, unit) {
            (Actor::Clerk(_), Some(unit)) => own_task(unit, action, parties, task),
            _ => forbidden(format!(
                "only a clerk of a unit with a task on the request may {action}"
            )),
        },
    }
}

/// The task a review step of `unit` moves (see [`authorize`]).
fn own_task(
    unit: UnitCode,
    action: Action,
    parties: &Parties,
    named: Option<&str>,
) -> Result<Target, Denied> {
    let decides = matches!(action, Action::Approve | Action::Deny);
    // On a single matter the lead's review is the request's own.
    let lead_of_matter = !parties.bundle && unit == parties.lead_unit;
    let fits = |t: &TaskFacts| match t.role {
        TaskRole::Coordinator => false,
        TaskRole::Co => !decides,
        TaskRole::Lead => parties.bundle && action != Action::GiveOpinion,
    };
    let refusal = |t: &TaskFacts| -> Denied {
        if t.role == TaskRole::Co || (t.role == TaskRole::Coordinator && decides) {
            let lead = parties.lead_of(&t.matter);
            Denied::NotLead {
                lead,
                message: format!(
                    "unit `{unit}` gives an opinion on `{}`; only its lead unit `{lead}` may {action}",
                    t.matter
                ),
            }
        } else if action == Action::GiveOpinion {
            Denied::Forbidden(format!(
                "unit `{unit}` leads `{}`: it decides, co-operating units give opinions",
                t.matter
            ))
        } else {
            Denied::Forbidden(format!(
                "the coordinating task of `{}` takes no review steps: each unit reviews its own matter",
                t.matter
            ))
        }
    };
    if let Some(id) = named {
        let Some(t) = parties.tasks.iter().find(|t| t.id == id) else {
            return Err(Denied::WhichTask(format!("no task {id} on this request")));
        };
        if t.unit != unit {
            return Err(Denied::Forbidden(format!(
                "task {id} belongs to unit `{}`, not to `{unit}`: no unit moves another unit's task",
                t.unit
            )));
        }
        if lead_of_matter && t.role == TaskRole::Lead && action != Action::GiveOpinion {
            return Ok(Target::Request);
        }
        return if fits(t) {
            Ok(Target::Task(t.id.clone()))
        } else {
            Err(refusal(t))
        };
    }
    if lead_of_matter && action != Action::GiveOpinion {
        return Ok(Target::Request);
    }
    let mine: Vec<&TaskFacts> = parties.tasks.iter().filter(|t| t.unit == unit).collect();
    let fitting: Vec<&TaskFacts> = mine.iter().copied().filter(|t| fits(t)).collect();
    match (fitting.as_slice(), mine.first()) {
        ([only], _) => Ok(Target::Task(only.id.clone())),
        ([], Some(t)) => Err(refusal(t)),
        ([], None) => Err(Denied::NotLead {
            lead: parties.lead_unit,
            message: format!(
                "unit `{unit}` has no task of its own on this request; only the lead unit `{}` may {action}",
                parties.lead_unit
            ),
        }),
        (several, _) => Err(Denied::WhichTask(format!(
            "unit `{unit}` has several tasks here that could {action}; name one: {}",
            several
                .iter()
                .map(|t| t.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// One co-unit's opinion, as the lead's decision sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpinionOf {
    /// The co-unit.
    pub unit: UnitCode,
    /// `agree`, `agree_with_conditions` or `disagree`; none while outstanding.
    pub opinion: Option<Opinion>,
    /// Its note.
    pub note: Option<String>,
}

/// A co-unit's opinion (联合会审意见).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Opinion {
    /// 同意.
    Agree,
    /// 有条件同意: the note says the conditions.
    AgreeWithConditions,
    /// 不同意: the note says why.
    Disagree,
}

impl Opinion {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Opinion::Agree => "agree",
            Opinion::AgreeWithConditions => "agree_with_conditions",
            Opinion::Disagree => "disagree",
        }
    }

    /// Whether a note must go with it (the conditions, or why not).
    pub fn needs_note(self) -> bool {
        self != Opinion::Agree
    }
}

impl FromStr for Opinion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            Opinion::Agree,
            Opinion::AgreeWithConditions,
            Opinion::Disagree,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| format!("`{s}` is not an opinion"))
    }
}

/// Why the lead may not decide yet, or not like this (joint review: every opinion first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionBlocked {
    /// Some co-units have not given their opinion.
    #[error("the opinions of {} are still outstanding: every co-operating unit's opinion is needed before the decision (联合会审)", units(.0))]
    Outstanding(Vec<UnitCode>),
    /// Approving against a `disagree` without a reason that names the disagreeing units.
    #[error("{} disagreed; a decision against an opinion needs a reason that names {}", units(.0), if .0.len() == 1 { "that unit" } else { "each of them" })]
    Unanswered(Vec<UnitCode>),
}

fn units(list: &[UnitCode]) -> String {
    list.iter()
        .map(|u| format!("`{u}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the lead may take the decision `action` (approve or deny) given the co-units'
/// `opinions` on the matter and the decision's `reason`. Every opinion must be in; approving
/// against a `disagree` needs a reason that names each disagreeing unit (by its code or one
/// of `names`, its Chinese or English name), so the decision record answers the opinion.
pub fn may_decide(
    action: Action,
    opinions: &[OpinionOf],
    reason: Option<&str>,
    names: impl Fn(UnitCode) -> Vec<String>,
) -> Result<(), DecisionBlocked> {
    let outstanding: Vec<UnitCode> = opinions
        .iter()
        .filter(|o| o.opinion.is_none())
        .map(|o| o.unit)
        .collect();
    if !outstanding.is_empty() {
        return Err(DecisionBlocked::Outstanding(outstanding));
    }
    if action != Action::Approve {
        return Ok(());
    }
    let reason = reason.unwrap_or_default();
    let unanswered: Vec<UnitCode> = opinions
        .iter()
        .filter(|o| o.opinion == Some(Opinion::Disagree))
        .map(|o| o.unit)
        .filter(|u| {
            let mut named = names(*u);
            named.push(u.to_string());
            !named
                .iter()
                .any(|n| !n.is_empty() && reason.contains(n.as_str()))
        })
        .collect();
    if unanswered.is_empty() {
        Ok(())
    } else {
        Err(DecisionBlocked::Unanswered(unanswered))
    }
}

/// A task as it stands, for planning a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// Who and what.
    pub facts: TaskFacts,
    /// Where it stands.
    pub situation: Situation,
    /// An opinion task's opinion, once given.
    pub opinion: Option<Opinion>,
    /// Its note.
    pub note: Option<String>,
}

/// What a step does, planned before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The request after the step.
    pub outcome: Outcome,
    /// The task the step moved, and the task after it.
    pub task: Option<(String, Outcome)>,
    /// Steps the bundle as a whole took because of a task step (its decision, the start or
    /// end of a special procedure on it), for its own clocks.
    pub derived: Vec<Action>,
    /// The co-units' opinions a decision weighed (the decision record).
    pub opinions: Vec<OpinionOf>,
}

/// Why a step cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not legal in this state; with the task when the step was on one.
    Illegal(Illegal, Option<String>),
    /// A decision before every opinion is in, or against one without answering it.
    Blocked(DecisionBlocked),
}

/// Plans `action` on `target` (from [`authorize`]) of a request in `request` with `tasks`.
///
/// A step on the request moves it (and its tasks follow, see `docs/workflow.md`). A step on a
/// task moves that task only, while the request is accepted or under review: an opinion task
/// runs [`apply_opinion`], a bundle unit's task the lifecycle; a bundle's state is then derived
/// from its units' decision tasks ([`aggregate`]; opinion tasks inform decisions, they do not
/// make them). A decision — the lead's on a single matter, a unit's on its bundle task — needs
/// every opinion on its matter ([`may_decide`]).
pub fn plan(
    request: Situation,
    bundle: bool,
    tasks: &[TaskState],
    target: &Target,
    action: Action,
    reason: Option<&str>,
    names: impl Fn(UnitCode) -> Vec<String>,
) -> Result<Planned, Refused> {
    let opinions_on = |matter: Option<&str>| -> Vec<OpinionOf> {
        tasks
            .iter()
            .filter(|t| t.facts.role == TaskRole::Co)
            .filter(|t| matter.is_none_or(|m| t.facts.matter == m))
            .map(|t| OpinionOf {
                unit: t.facts.unit,
                opinion: t.opinion,
                note: t.note.clone(),
            })
            .collect()
    };
    let decides = matches!(action, Action::Approve | Action::Deny);
    let Target::Task(id) = target else {
        let outcome = apply(request, action).map_err(|i| Refused::Illegal(i, None))?;
        let opinions = if decides && !bundle {
            let opinions = opinions_on(None);
            may_decide(action, &opinions, reason, names).map_err(Refused::Blocked)?;
            opinions
        } else {
            Vec::new()
        };
        return Ok(Planned {
            outcome,
            task: None,
            derived: Vec::new(),
            opinions,
        });
    };
    let task = tasks
        .iter()
        .find(|t| &t.facts.id == id)
        .expect("authorize names a task of the request");
    if !matches!(request.status, Status::Accepted | Status::UnderReview) {
        return Err(Refused::Illegal(
            Illegal {
                action,
                state: request.status,
                allowed: allowed(request),
            },
            None,
        ));
    }
    let before = Situation {
        extended: request.extended,
        ..task.situation
    };
    let after = if task.facts.role == TaskRole::Co {
        apply_opinion(before, action)
    } else {
        apply(before, action)
    }
    .map_err(|i| Refused::Illegal(i, Some(id.clone())))?;
    let opinions = if decides {
        let opinions = opinions_on(Some(&task.facts.matter));
        may_decide(action, &opinions, reason, names).map_err(Refused::Blocked)?;
        opinions
    } else {
        Vec::new()
    };
    let (outcome, derived) = if bundle {
        let decisions: Vec<Situation> = tasks
            .iter()
            .filter(|t| t.facts.role == TaskRole::Lead)
            .map(|t| {
                if &t.facts.id == id {
                    Situation {
                        status: after.status,
                        special_procedure: after.special_procedure,
                        extended: request.extended,
                    }
                } else {
                    t.situation
                }
            })
            .collect();
        let derived_situation = aggregate(&decisions, request.extended);
        let mut derived = Vec::new();
        if derived_situation.special_procedure != request.special_procedure {
            derived.push(if derived_situation.special_procedure {
                Action::BeginSpecialProcedure
            } else {
                Action::EndSpecialProcedure
            });
        }
        match derived_situation.status {
            Status::Approved if request.status != Status::Approved => derived.push(Action::Approve),
            Status::Denied if request.status != Status::Denied => derived.push(Action::Deny),
            _ => {}
        }
        (
            Outcome {
                status: derived_situation.status,
                special_procedure: derived_situation.special_procedure,
                extended: request.extended,
            },
            derived,
        )
    } else {
        // A co-unit's opinion on a single matter: the request itself does not move.
        (
            Outcome {
                status: request.status,
                special_procedure: request.special_procedure,
                extended: request.extended,
            },
            Vec::new(),
        )
    };
    Ok(Planned {
        outcome,
        task: Some((id.clone(), after)),
        derived,
        opinions,
    })
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

    const OWNER: &str = "91350100M000100Y43";

    /// A single matter led by `market` with `justice` as co-unit (like `market.ip-dispute`).
    fn single(status: Status) -> Parties {
        Parties {
            owner: OWNER.into(),
            lead_unit: UnitCode::Market,
            bundle: false,
            tasks: vec![
                task(
                    "lead",
                    UnitCode::Market,
                    TaskRole::Lead,
                    "market.ip-dispute",
                ),
                task("co", UnitCode::Justice, TaskRole::Co, "market.ip-dispute"),
            ],
            returned: status == Status::Returned,
            assistant: Standing::Without,
        }
    }

    fn task(id: &str, unit: UnitCode, role: TaskRole, matter: &str) -> TaskFacts {
        TaskFacts {
            id: id.into(),
            unit,
            role,
            matter: matter.into(),
        }
    }

    /// What a cell of the matrix answers.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    enum Cell {
        /// 404.
        Hidden,
        /// 403.
        Forbidden,
        /// 403 `not_lead_unit`.
        NotLead,
        /// 403: an enterprise's step, and no live 帮办 grant (`authorization_required`).
        NoGrant,
        /// 403: an enterprise's step, and the grant was revoked (`authorization_revoked`).
        Revoked,
        /// Authorised, but not legal in this state: 409.
        Illegal,
        /// Taken on the request.
        OnRequest,
        /// Taken on the co-unit's own task.
        OnOwnTask,
    }

    /// The authority half of the table: who may take what, whatever the state.
    fn authority(who: &str, action: Action, returned: bool) -> Cell {
        use Action as A;
        use Cell::*;
        let lead_step = matches!(action.taken_by(), Taker::LeadClerk);
        let enterprise_step = matches!(action, A::Withdraw | A::Supplement);
        match who {
            // A live grant lets an official of any unit take the enterprise's steps; it sees
            // the request, and is told whose the other steps are.
            "assistant" | "lead assistant" if enterprise_step => OnRequest,
            "assistant" if lead_step || action.per_task() => NotLead,
            "assistant" => Forbidden,
            // A revoked grant is told as such, and shows nothing else.
            "revoked assistant" if enterprise_step => Revoked,
            "revoked assistant" => Hidden,
            "other enterprise" | "unrelated clerk" | "unrelated supervisor" => Hidden,
            "centre clerk" if !returned => Hidden,
            // Officials who see the request but hold no grant: the enterprise's steps need one.
            "centre clerk"
            | "lead clerk"
            | "co clerk"
            | "lead supervisor"
            | "co supervisor"
            | "district supervisor"
                if enterprise_step =>
            {
                NoGrant
            }
            "centre clerk" if action == A::Reroute => OnRequest,
            // It sees a returned request to arbitrate it, and is told whose steps the rest are.
            "centre clerk" if lead_step || action.per_task() => NotLead,
            "centre clerk" => Forbidden,
            "enterprise" if enterprise_step => OnRequest,
            "lead assistant" => authority("lead clerk", action, returned),
            "lead clerk" if action == A::GiveOpinion => Forbidden,
            "lead clerk" if lead_step || action.per_task() => OnRequest,
            "co clerk" if lead_step || matches!(action, A::Approve | A::Deny) => NotLead,
            "co clerk" if action.per_task() => OnOwnTask,
            "lead supervisor" if action == A::ApproveExtension => OnRequest,
            "co supervisor" if action == A::ApproveExtension => NotLead,
            "district supervisor" if matches!(action, A::Reroute | A::ApproveExtension) => {
                OnRequest
            }
            _ => Forbidden,
        }
    }

    /// The state half: whether the step is legal where it lands. A co-unit's task follows
    /// the request until its opinion is given, and is worked only while the request is
    /// accepted or under review.
    fn legal(cell: Cell, status: Status, action: Action) -> Cell {
        let ok = match cell {
            Cell::OnRequest => expected(status, action).is_some(),
            Cell::OnOwnTask => {
                matches!(
                    (status, action),
                    (Status::Accepted, Action::StartReview)
                        | (
                            Status::UnderReview,
                            Action::BeginSpecialProcedure | Action::GiveOpinion
                        )
                )
            }
            other => return other,
        };
        if ok { cell } else { Cell::Illegal }
    }

    /// What the code answers for one cell.
    fn answer(actor: &Actor, standing: &Standing, action: Action, status: Status) -> Cell {
        let parties = Parties {
            assistant: standing.clone(),
            ..single(status)
        };
        let target = match authorize(actor, action, &parties, None) {
            Err(Denied::Hidden) => return Cell::Hidden,
            Err(Denied::Forbidden(_)) => return Cell::Forbidden,
            Err(Denied::NoGrant { lapse: None, .. }) => return Cell::NoGrant,
            Err(Denied::NoGrant {
                lapse: Some(Lapse::Revoked(_)),
                ..
            }) => return Cell::Revoked,
            Err(Denied::NoGrant { lapse, .. }) => panic!("only revoked grants here: {lapse:?}"),
            Err(Denied::NotLead { lead, .. }) => {
                assert_eq!(lead, UnitCode::Market);
                return Cell::NotLead;
            }
            Err(Denied::WhichTask(why)) => panic!("one task each: {why}"),
            Ok(target) => target,
        };
        let states: Vec<TaskState> = parties
            .tasks
            .iter()
            .map(|facts| TaskState {
                facts: facts.clone(),
                situation: Situation::at(status),
                opinion: None,
                note: None,
            })
            .collect();
        // Decisions wait for opinions; here the co-unit agreed already, so only the
        // state decides (opinions have their own tests).
        let states: Vec<TaskState> = states
            .into_iter()
            .map(|mut t| {
                if t.facts.role == TaskRole::Co && matches!(action, Action::Approve | Action::Deny)
                {
                    t.opinion = Some(Opinion::Agree);
                }
                t
            })
            .collect();
        match plan(
            Situation::at(status),
            false,
            &states,
            &target,
            action,
            Some("reason"),
            |_| vec![],
        ) {
            Ok(planned) => {
                assert_eq!(planned.task.is_some(), target != Target::Request);
                if target == Target::Request {
                    Cell::OnRequest
                } else {
                    Cell::OnOwnTask
                }
            }
            Err(Refused::Illegal(..)) => Cell::Illegal,
            Err(Refused::Blocked(b)) => panic!("{b}"),
        }
    }

    /// Where [`Parties::standing_matters`] says the standing cannot matter, `authorize` gives
    /// the same answer whatever the standing: the handler may skip looking it up.
    #[test]
    fn the_standing_is_looked_up_wherever_it_can_change_the_answer() {
        let actors = [
            Actor::Enterprise(Uscc::parse(OWNER).unwrap()),
            Actor::Clerk(UnitCode::Market),
            Actor::Clerk(UnitCode::Justice),
            Actor::Clerk(UnitCode::Tax),
            Actor::Clerk(UnitCode::ServiceCenter),
            Actor::Supervisor(Some(UnitCode::Market)),
            Actor::Supervisor(Some(UnitCode::Tax)),
            Actor::Supervisor(None),
            Actor::Admin,
        ];
        let standings = [
            Standing::Without,
            Standing::Holds {
                grant: "g".into(),
                leader: true,
            },
            Standing::Lapsed(Lapse::Revoked("g".into())),
            Standing::Lapsed(Lapse::Expired("g".into())),
        ];
        let mut skipped = 0;
        for status in Status::ALL {
            for actor in &actors {
                for action in Action::ALL.iter() {
                    let parties = single(*status);
                    if parties.standing_matters(actor, *action) {
                        continue;
                    }
                    skipped += 1;
                    let without = authorize(actor, *action, &parties, None);
                    for standing in &standings {
                        let with = Parties {
                            assistant: standing.clone(),
                            ..single(*status)
                        };
                        assert_eq!(
                            authorize(actor, *action, &with, None),
                            without,
                            "{actor:?} {action} in {status:?} with {standing:?}"
                        );
                    }
                }
            }
        }
        // The lead and co-units' own steps, and the district's, skip the lookup.
        assert!(skipped > 100, "{skipped}");
        let parties = single(Status::Accepted);
        assert!(parties.standing_matters(&Actor::Clerk(UnitCode::Tax), Action::Accept));
        assert!(parties.standing_matters(&Actor::Clerk(UnitCode::Market), Action::Withdraw));
        assert!(!parties.standing_matters(&Actor::Clerk(UnitCode::Market), Action::Accept));
        assert!(!parties.standing_matters(&Actor::Clerk(UnitCode::Justice), Action::GiveOpinion));
    }

    /// State × action × role × (lead | co-unit | unrelated): every cell of the single-window
    /// rule, on a matter led by `market` with `justice` giving an opinion.
    #[test]
    fn the_whole_authority_matrix() {
        let own = Actor::Enterprise(Uscc::parse(OWNER).unwrap());
        let actors = [
            ("enterprise", own),
            (
                "other enterprise",
                Actor::Enterprise(Uscc::parse("9144030071526726XG").unwrap()),
            ),
            ("lead clerk", Actor::Clerk(UnitCode::Market)),
            ("co clerk", Actor::Clerk(UnitCode::Justice)),
            ("unrelated clerk", Actor::Clerk(UnitCode::Tax)),
            ("centre clerk", Actor::Clerk(UnitCode::ServiceCenter)),
            ("lead supervisor", Actor::Supervisor(Some(UnitCode::Market))),
            ("co supervisor", Actor::Supervisor(Some(UnitCode::Justice))),
            (
                "unrelated supervisor",
                Actor::Supervisor(Some(UnitCode::Tax)),
            ),
            ("district supervisor", Actor::Supervisor(None)),
            ("admin", Actor::Admin),
            // 帮办: a clerk of an unrelated unit holding a live grant of the owner, one whose
            // grant was revoked, and a lead-unit clerk holding one.
            ("assistant", Actor::Clerk(UnitCode::Tax)),
            ("revoked assistant", Actor::Clerk(UnitCode::Tax)),
            ("lead assistant", Actor::Clerk(UnitCode::Market)),
        ];
        let holds = Standing::Holds {
            grant: "g1".into(),
            leader: false,
        };
        let standing_of = |who: &str| match who {
            "assistant" | "lead assistant" => holds.clone(),
            "revoked assistant" => Standing::Lapsed(Lapse::Revoked("g1".into())),
            _ => Standing::Without,
        };
        let mut cells = 0;
        let mut seen = std::collections::HashSet::new();
        for status in Status::ALL {
            for action in Action::ALL {
                for (who, actor) in &actors {
                    let want = legal(
                        authority(who, action, *status == Status::Returned),
                        *status,
                        action,
                    );
                    assert_eq!(
                        answer(actor, &standing_of(who), action, *status),
                        want,
                        "{who} {action} while {status}"
                    );
                    seen.insert(want);
                    cells += 1;
                }
            }
        }
        assert_eq!(cells, Status::ALL.len() * Action::ALL.len() * actors.len());
        assert_eq!(seen.len(), 8, "every kind of answer occurs: {seen:?}");
    }

    #[test]
    fn a_bundle_unit_decides_its_own_task_and_names_one_when_it_has_several() {
        // Market leads one matter and gives an opinion on another; tax leads that other.
        let parties = Parties {
            owner: OWNER.into(),
            lead_unit: UnitCode::ServiceCenter,
            bundle: true,
            tasks: vec![
                task(
                    "coord",
                    UnitCode::ServiceCenter,
                    TaskRole::Coordinator,
                    "bundle.x",
                ),
                task("m1", UnitCode::Market, TaskRole::Lead, "market.establish"),
                task("t1", UnitCode::Tax, TaskRole::Lead, "tax.registration"),
                task("m2", UnitCode::Market, TaskRole::Co, "tax.registration"),
            ],
            returned: false,
            assistant: Standing::Without,
        };
        let market = Actor::Clerk(UnitCode::Market);
        let tax = Actor::Clerk(UnitCode::Tax);
        let centre = Actor::Clerk(UnitCode::ServiceCenter);
        let on = |actor: &Actor, action, task| authorize(actor, action, &parties, task);
        // Only one of market's tasks decides, only one gives an opinion.
        assert_eq!(
            on(&market, Action::Approve, None),
            Ok(Target::Task("m1".into()))
        );
        assert_eq!(
            on(&market, Action::GiveOpinion, None),
            Ok(Target::Task("m2".into()))
        );
        // Both could start a review: name one.
        assert!(matches!(
            on(&market, Action::StartReview, None),
            Err(Denied::WhichTask(why)) if why.contains("m1") && why.contains("m2")
        ));
        assert_eq!(
            on(&market, Action::StartReview, Some("m2")),
            Ok(Target::Task("m2".into()))
        );
        // No unit moves another unit's task; a co-unit never decides the matter.
        assert!(matches!(
            on(&market, Action::Approve, Some("t1")),
            Err(Denied::Forbidden(_))
        ));
        assert!(matches!(
            on(&market, Action::Approve, Some("m2")),
            Err(Denied::NotLead {
                lead: UnitCode::Tax,
                ..
            })
        ));
        assert!(matches!(
            on(&tax, Action::GiveOpinion, None),
            Err(Denied::Forbidden(_))
        ));
        assert!(matches!(
            on(&market, Action::Approve, Some("nope")),
            Err(Denied::WhichTask(_))
        ));
        // The window steps, completion and delivery are the coordinator's alone.
        assert_eq!(on(&centre, Action::Call, None), Ok(Target::Request));
        assert_eq!(on(&centre, Action::Deliver, None), Ok(Target::Request));
        assert!(matches!(
            on(&market, Action::Complete, None),
            Err(Denied::NotLead {
                lead: UnitCode::ServiceCenter,
                ..
            })
        ));
        // The coordinator decides nothing itself.
        assert!(matches!(
            on(&centre, Action::Approve, None),
            Err(Denied::NotLead { .. })
        ));
        assert!(matches!(
            on(&centre, Action::Call, Some("coord")),
            Err(Denied::WhichTask(_))
        ));
    }

    fn opinion(unit: UnitCode, opinion: Option<Opinion>) -> OpinionOf {
        OpinionOf {
            unit,
            opinion,
            note: opinion.filter(|o| o.needs_note()).map(|_| "note".into()),
        }
    }

    #[test]
    fn the_lead_decides_after_every_opinion_and_answers_a_disagreement() {
        let names = |u: UnitCode| match u {
            UnitCode::Justice => vec!["区司法局".to_string()],
            _ => vec![],
        };
        let waiting = [
            opinion(UnitCode::Justice, None),
            opinion(UnitCode::Tax, Some(Opinion::Agree)),
        ];
        assert_eq!(
            may_decide(Action::Approve, &waiting, Some("ok"), names),
            Err(DecisionBlocked::Outstanding(vec![UnitCode::Justice]))
        );
        assert!(may_decide(Action::Deny, &waiting, Some("no"), names).is_err());
        let against = [
            opinion(UnitCode::Justice, Some(Opinion::Disagree)),
            opinion(UnitCode::Tax, Some(Opinion::AgreeWithConditions)),
        ];
        assert_eq!(
            may_decide(Action::Approve, &against, None, names),
            Err(DecisionBlocked::Unanswered(vec![UnitCode::Justice]))
        );
        assert_eq!(
            may_decide(Action::Approve, &against, Some("理由充分"), names),
            Err(DecisionBlocked::Unanswered(vec![UnitCode::Justice]))
        );
        assert_eq!(
            may_decide(
                Action::Approve,
                &against,
                Some("区司法局的意见已核实，不影响许可"),
                names
            ),
            Ok(())
        );
        assert_eq!(
            may_decide(Action::Approve, &against, Some("justice: checked"), names),
            Ok(())
        );
        // A denial agrees with the disagreement: nothing to answer.
        assert_eq!(
            may_decide(Action::Deny, &against, Some("no"), names),
            Ok(())
        );
        assert_eq!(may_decide(Action::Approve, &[], None, names), Ok(()));
    }

    #[test]
    fn an_opinion_task_reviews_and_gives_its_opinion_but_never_decides() {
        let accepted = Situation::at(Status::Accepted);
        let review = apply_opinion(accepted, Action::StartReview).unwrap();
        assert_eq!(review.status, Status::UnderReview);
        let reviewing = Situation::at(Status::UnderReview);
        for decision in [Action::Approve, Action::Deny] {
            assert!(apply_opinion(reviewing, decision).is_err());
        }
        let given = apply_opinion(reviewing, Action::GiveOpinion).unwrap();
        assert_eq!(given.status, Status::Completed);
        let during = Situation {
            special_procedure: true,
            ..reviewing
        };
        let err = apply_opinion(during, Action::GiveOpinion).unwrap_err();
        assert_eq!(err.allowed, [Action::EndSpecialProcedure]);
        // The request's own machine has no opinion step.
        assert!(apply(reviewing, Action::GiveOpinion).is_err());
        assert_eq!(
            apply_opinion(accepted, Action::GiveOpinion)
                .unwrap_err()
                .allowed,
            [Action::StartReview]
        );
    }

    #[test]
    fn a_bundle_state_comes_from_its_decisions_not_its_opinions() {
        let facts = [
            task("a", UnitCode::Market, TaskRole::Lead, "m"),
            task("b", UnitCode::Tax, TaskRole::Lead, "t"),
            task("c", UnitCode::Justice, TaskRole::Co, "t"),
        ];
        let state = |i: usize, status, opinion| TaskState {
            facts: facts[i].clone(),
            situation: Situation::at(status),
            opinion,
            note: None,
        };
        let tasks = [
            state(0, Status::Approved, None),
            state(1, Status::UnderReview, None),
            state(2, Status::UnderReview, None),
        ];
        let bundle = Situation::at(Status::UnderReview);
        let names = |_| vec![];
        // Tax may not decide before justice's opinion on its matter.
        let blocked = plan(
            bundle,
            true,
            &tasks,
            &Target::Task("b".into()),
            Action::Approve,
            None,
            names,
        );
        assert_eq!(
            blocked,
            Err(Refused::Blocked(DecisionBlocked::Outstanding(vec![
                UnitCode::Justice
            ])))
        );
        // The opinion moves justice's task only; the bundle stays under review.
        let given = plan(
            bundle,
            true,
            &tasks,
            &Target::Task("c".into()),
            Action::GiveOpinion,
            None,
            names,
        )
        .unwrap();
        assert_eq!(given.outcome.status, Status::UnderReview);
        assert_eq!(given.task.unwrap().1.status, Status::Completed);
        assert!(given.derived.is_empty());
        // With the opinion in, tax's approval decides the bundle.
        let mut tasks = tasks;
        tasks[2] = state(2, Status::Completed, Some(Opinion::Agree));
        let decided = plan(
            bundle,
            true,
            &tasks,
            &Target::Task("b".into()),
            Action::Approve,
            None,
            names,
        )
        .unwrap();
        assert_eq!(decided.outcome.status, Status::Approved);
        assert_eq!(decided.derived, [Action::Approve]);
        assert_eq!(
            decided.opinions,
            [opinion(UnitCode::Justice, Some(Opinion::Agree))]
        );
        // Nothing on a task before the bundle is accepted.
        let early = plan(
            Situation::at(Status::Called),
            true,
            &tasks,
            &Target::Task("b".into()),
            Action::StartReview,
            None,
            names,
        );
        assert!(matches!(early, Err(Refused::Illegal(i, None)) if i.state == Status::Called));
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
                Action::Deny,
                Action::GiveOpinion
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
