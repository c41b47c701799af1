//! Single-window routing (一口受理、一处反馈): which units handle a request, who answers, and
//! which clocks it carries. Pure: the catalog in, the plan and its explanation out.
//!
//! Rules, in order:
//! 1. A matter goes to its lead unit (the one feedback point) and, in parallel, to each of its
//!    co-operating units: one task per unit.
//! 2. A bundle (一件事) goes to each of its matters' units in parallel, one task per matter
//!    (with the matter's co-units too); the bundle's lead unit gives the one reply, with a
//!    `coordinator` task of its own unless it already handles one of the matters.
//! 3. The channel never changes the units: a request accepted in another region is handled
//!    exactly as a local one (异地受理、无差别办); the region is recorded.
//!
//! Clocks (targets recorded at intake; the SLA engine runs them, `domain::clock`): the promised
//! limit runs from receipt; the window intake and, for
//! licensing matters, the 5-working-day supplement notice (Art. 32) on the request; the
//! promised, statutory and delivery limits of a matter on the request; for a bundle the joint
//! statutory limit of 45 working days (Art. 42) on the request and each matter's own limits on
//! its tasks.

use serde::Serialize;
use utoipa::ToSchema;

use super::UnitCode;
use super::catalog::{Catalog, Channel, Matter, Mode, Target};
use super::request::{ClockKind, RequestKind, TaskRole};

/// Art. 32: days to tell the applicant everything that is missing.
pub const SUPPLEMENT_NOTICE_DAYS: u32 = 5;
/// Art. 42: joint handling by several units.
pub const JOINT_STATUTORY_DAYS: u32 = 45;
/// 即办件 and 立等可取 when the catalog names no target: one visit of an hour.
pub const VISIT_MINUTES: u32 = 60;

/// One task of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PlannedTask {
    /// Responsible unit.
    pub unit: UnitCode,
    /// Matter it handles (the bundle code for a coordinator).
    pub matter: String,
    /// Category of that matter (of the first matter, for a coordinator).
    #[serde(skip)]
    pub category: String,
    /// Lead, co-operating unit or coordinator.
    pub role: TaskRole,
    /// The rule that put it here.
    pub rule: String,
}

/// One clock of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedClock {
    /// Kind.
    pub kind: ClockKind,
    /// Target.
    pub target: Target,
    /// Index into the plan's tasks, for a per-task clock.
    pub task: Option<usize>,
    /// Whether it starts at receipt (others start at a later step).
    pub starts_at_intake: bool,
}

/// The routing of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// The one feedback point.
    pub lead_unit: UnitCode,
    /// Tasks, lead first.
    pub tasks: Vec<PlannedTask>,
    /// Clocks.
    pub clocks: Vec<PlannedClock>,
    /// Why.
    pub explanation: Explanation,
}

/// The stored explanation of a routing decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Explanation {
    /// Catalog version applied.
    pub catalog_version: String,
    /// `matter` or `bundle`.
    pub kind: RequestKind,
    /// Its code.
    pub code: String,
    /// The one feedback point and why.
    pub lead_unit: UnitCode,
    /// Why the lead unit answers.
    pub lead_rule: String,
    /// Each task and the rule that made it.
    pub tasks: Vec<PlannedTask>,
    /// Channel notes (cross-region handling).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Routes a checked request. `code` must name a matter or bundle of `catalog`.
pub fn route(
    catalog: &Catalog,
    kind: RequestKind,
    code: &str,
    channel: Channel,
    intake_region: Option<&str>,
) -> Routing {
    let mut tasks = Vec::new();
    let mut clocks = Vec::new();
    let (lead_unit, lead_rule) = match kind {
        RequestKind::Matter => {
            let matter = catalog.matter(code).expect("checked at intake");
            add_matter_tasks(matter, None, &mut tasks);
            request_clocks_of_matter(matter, &mut clocks);
            opinion_clocks(matter, 0, &mut clocks);
            (
                matter.lead_unit,
                format!(
                    "matter `{code}` names `{}` as its lead unit: one intake, one feedback point",
                    matter.lead_unit
                ),
            )
        }
        RequestKind::Bundle => {
            let bundle = catalog.bundle(code).expect("checked at intake");
            let matters: Vec<&Matter> = bundle
                .matters
                .iter()
                .filter_map(|m| catalog.matter(m))
                .collect();
            for matter in &matters {
                let first = tasks.len();
                add_matter_tasks(matter, Some(code), &mut tasks);
                opinion_clocks(matter, first, &mut clocks);
                for (kind, target) in [
                    (ClockKind::Promised, matter.clocks.promised),
                    (ClockKind::Statutory, matter.clocks.statutory),
                    (ClockKind::Delivery, matter.clocks.delivery),
                ] {
                    if let Some(target) = target {
                        clocks.push(PlannedClock {
                            kind,
                            target,
                            task: Some(first),
                            starts_at_intake: kind == ClockKind::Promised,
                        });
                    }
                }
            }
            if !tasks.iter().any(|t| t.unit == bundle.lead_unit) {
                tasks.insert(
                    0,
                    PlannedTask {
                        unit: bundle.lead_unit,
                        matter: code.to_string(),
                        category: matters
                            .first()
                            .map(|m| m.category.as_str().to_string())
                            .unwrap_or_default(),
                        role: TaskRole::Coordinator,
                        rule: format!(
                            "bundle `{code}` is coordinated by `{}`, which gives the one reply",
                            bundle.lead_unit
                        ),
                    },
                );
                for clock in &mut clocks {
                    clock.task = clock.task.map(|i| i + 1);
                }
            }
            if bundle.on_the_spot {
                clocks.push(PlannedClock {
                    kind: ClockKind::OnTheSpot,
                    target: bundle
                        .on_the_spot_target
                        .unwrap_or(Target::Minutes(VISIT_MINUTES)),
                    task: None,
                    starts_at_intake: false,
                });
            }
            if let Some(target) = matters
                .iter()
                .filter_map(|m| m.clocks.window_intake)
                .min_by_key(minutes_of)
            {
                clocks.push(PlannedClock {
                    kind: ClockKind::WindowIntake,
                    target,
                    task: None,
                    starts_at_intake: false,
                });
            }
            if matters.iter().any(|m| m.clocks.statutory.is_some()) {
                clocks.push(PlannedClock {
                    kind: ClockKind::SupplementNotice,
                    target: Target::working_days(SUPPLEMENT_NOTICE_DAYS),
                    task: None,
                    starts_at_intake: true,
                });
                clocks.push(PlannedClock {
                    kind: ClockKind::Statutory,
                    target: Target::working_days(JOINT_STATUTORY_DAYS),
                    task: None,
                    starts_at_intake: false,
                });
            }
            (
                bundle.lead_unit,
                format!(
                    "bundle `{code}` names `{}` as its lead unit: one intake and one reply for all its matters",
                    bundle.lead_unit
                ),
            )
        }
    };
    let mut notes = Vec::new();
    if channel == Channel::CrossRegion {
        notes.push(format!(
            "accepted in region `{}` and handled exactly as a local request (异地受理、无差别办)",
            intake_region.unwrap_or("unknown")
        ));
    }
    Routing {
        lead_unit,
        explanation: Explanation {
            catalog_version: catalog.version().to_string(),
            kind,
            code: code.to_string(),
            lead_unit,
            lead_rule,
            tasks: tasks.clone(),
            notes,
        },
        tasks,
        clocks,
    }
}

fn minutes_of(target: &Target) -> u32 {
    match *target {
        Target::Minutes(m) | Target::WorkingMinutes(m) => m,
        Target::WorkingHalfDays(h) => h * 210,
    }
}

/// The lead task of `matter` and one task per co-unit.
fn add_matter_tasks(matter: &Matter, bundle: Option<&str>, tasks: &mut Vec<PlannedTask>) {
    let category = matter.category.as_str().to_string();
    let context = match bundle {
        Some(b) => format!("bundle `{b}` includes matter `{}`, ", matter.code),
        None => format!("matter `{}` ", matter.code),
    };
    tasks.push(PlannedTask {
        unit: matter.lead_unit,
        matter: matter.code.clone(),
        category: category.clone(),
        role: TaskRole::Lead,
        rule: format!("{context}led by `{}` (catalog lead unit)", matter.lead_unit),
    });
    for unit in &matter.co_units {
        tasks.push(PlannedTask {
            unit: *unit,
            matter: matter.code.clone(),
            category: category.clone(),
            role: TaskRole::Co,
            rule: format!("{context}handled in parallel by co-operating unit `{unit}`"),
        });
    }
}

/// An opinion clock on each co-unit task of `matter` (its tasks start at `first`, lead first):
/// the catalog's opinion limit, else the promised, else the statutory one.
fn opinion_clocks(matter: &Matter, first: usize, clocks: &mut Vec<PlannedClock>) {
    let c = &matter.clocks;
    let Some(target) = c.opinion.or(c.promised).or(c.statutory) else {
        return;
    };
    for i in 0..matter.co_units.len() {
        clocks.push(PlannedClock {
            kind: ClockKind::Opinion,
            target,
            task: Some(first + 1 + i),
            starts_at_intake: false,
        });
    }
}

fn request_clocks_of_matter(matter: &Matter, clocks: &mut Vec<PlannedClock>) {
    let c = &matter.clocks;
    if matter.mode == Mode::Immediate {
        clocks.push(PlannedClock {
            kind: ClockKind::Immediate,
            target: c.immediate.unwrap_or(Target::Minutes(VISIT_MINUTES)),
            task: None,
            starts_at_intake: false,
        });
    }
    if let Some(target) = c.window_intake {
        clocks.push(PlannedClock {
            kind: ClockKind::WindowIntake,
            target,
            task: None,
            starts_at_intake: false,
        });
    }
    if c.statutory.is_some() {
        clocks.push(PlannedClock {
            kind: ClockKind::SupplementNotice,
            target: Target::working_days(SUPPLEMENT_NOTICE_DAYS),
            task: None,
            starts_at_intake: true,
        });
    }
    for (kind, target) in [
        (ClockKind::Promised, c.promised),
        (ClockKind::Statutory, c.statutory),
        (ClockKind::Delivery, c.delivery),
    ] {
        if let Some(target) = target {
            clocks.push(PlannedClock {
                kind,
                target,
                task: None,
                starts_at_intake: kind == ClockKind::Promised,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::builtin()
    }

    #[test]
    fn co_units_get_opinion_clocks_and_visits_their_promises() {
        let opinions = |code: &str| -> Vec<(UnitCode, Target)> {
            let routing = route(&catalog(), RequestKind::Matter, code, Channel::Online, None);
            routing
                .clocks
                .iter()
                .filter(|c| c.kind == ClockKind::Opinion)
                .map(|c| {
                    let task = &routing.tasks[c.task.expect("on a task")];
                    assert_eq!(task.role, TaskRole::Co);
                    assert!(!c.starts_at_intake, "starts at acceptance");
                    (task.unit, c.target)
                })
                .collect()
        };
        // The catalog's own opinion limit, else the promised one.
        assert_eq!(
            opinions("construction.joint-review"),
            [(UnitCode::Planning, Target::working_days(5))]
        );
        assert_eq!(
            opinions("market.ip-dispute"),
            [(UnitCode::Justice, Target::working_days(5))]
        );
        assert!(opinions("market.establish").is_empty());
        // 即办件 for an immediate matter, 立等可取 for an on-the-spot bundle: an hour each.
        let immediate = route(
            &catalog(),
            RequestKind::Matter,
            "tax.invoice-issue",
            Channel::Online,
            None,
        );
        assert!(
            immediate
                .clocks
                .iter()
                .any(|c| c.kind == ClockKind::Immediate
                    && c.target == Target::Minutes(VISIT_MINUTES)
                    && c.task.is_none())
        );
        let spot = route(
            &catalog(),
            RequestKind::Bundle,
            "bundle.property-transfer",
            Channel::Window,
            None,
        );
        assert!(
            spot.clocks
                .iter()
                .any(|c| c.kind == ClockKind::OnTheSpot && c.task.is_none())
        );
        let plain = route(
            &catalog(),
            RequestKind::Bundle,
            "bundle.open-business",
            Channel::Online,
            None,
        );
        assert!(!plain.clocks.iter().any(|c| c.kind == ClockKind::OnTheSpot));
    }

    #[test]
    fn a_matter_goes_to_its_lead_unit_with_its_clocks() {
        let routing = route(
            &catalog(),
            RequestKind::Matter,
            "market.establish",
            Channel::Online,
            None,
        );
        assert_eq!(routing.lead_unit, UnitCode::Market);
        assert_eq!(routing.tasks.len(), 1);
        assert_eq!(routing.tasks[0].role, TaskRole::Lead);
        let kinds: Vec<ClockKind> = routing.clocks.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            vec![
                ClockKind::WindowIntake,
                ClockKind::SupplementNotice,
                ClockKind::Promised,
                ClockKind::Statutory,
                ClockKind::Delivery
            ]
        );
        let promised = routing
            .clocks
            .iter()
            .find(|c| c.kind == ClockKind::Promised)
            .unwrap();
        assert_eq!(promised.target, Target::WorkingHalfDays(1));
        assert!(
            routing
                .clocks
                .iter()
                .filter(|c| c.starts_at_intake)
                .all(|c| matches!(c.kind, ClockKind::SupplementNotice | ClockKind::Promised))
        );
        assert!(routing.explanation.lead_rule.contains("lead unit"));
    }

    #[test]
    fn a_bundle_goes_to_every_unit_in_parallel_with_one_reply() {
        let routing = route(
            &catalog(),
            RequestKind::Bundle,
            "bundle.open-business",
            Channel::Window,
            None,
        );
        assert_eq!(routing.lead_unit, UnitCode::Market);
        let units: Vec<UnitCode> = routing.tasks.iter().map(|t| t.unit).collect();
        assert!(
            units.contains(&UnitCode::Market)
                && units.contains(&UnitCode::Tax)
                && units.contains(&UnitCode::Hrss)
        );
        let joint = routing
            .clocks
            .iter()
            .find(|c| c.kind == ClockKind::Statutory && c.task.is_none())
            .unwrap();
        assert_eq!(joint.target, Target::working_days(JOINT_STATUTORY_DAYS));
        // Per-task clocks point at real tasks of the matter they come from.
        for clock in routing.clocks.iter().filter(|c| c.task.is_some()) {
            let task = &routing.tasks[clock.task.unwrap()];
            assert_eq!(task.role, TaskRole::Lead);
        }
    }

    #[test]
    fn cross_region_requests_are_routed_like_local_ones() {
        let local = route(
            &catalog(),
            RequestKind::Matter,
            "market.establish",
            Channel::Online,
            None,
        );
        let remote = route(
            &catalog(),
            RequestKind::Matter,
            "market.establish",
            Channel::CrossRegion,
            Some("jiangsu-suzhou"),
        );
        assert_eq!(local.tasks, remote.tasks);
        assert_eq!(local.clocks, remote.clocks);
        assert!(remote.explanation.notes[0].contains("jiangsu-suzhou"));
    }
}
