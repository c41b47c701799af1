//! Deferred materials (容缺后补): who may supply one after intake, and when a pending one holds
//! back delivery of the result.
//!
//! A material the catalog lets the enterprise leave out at intake (`deferrable_days`) is
//! recorded as pending, with a `material` clock of those working days. It is supplied later in
//! one of two ways:
//!
//! - **online**, by the enterprise that owns the request, or for it by an official holding a
//!   live 帮办 grant of the enterprise covering the request ([`Parties::assistant`], the same
//!   standing that lets the official `supplement` and `withdraw`; plan 帮办);
//! - **at the window**, recorded by a clerk of the request's **lead unit** (一口受理、一处反馈:
//!   the lead unit is the enterprise's one counterpart), who says so with
//!   `received_at_window: true`.
//!
//! Everyone else is refused as the rest of the API refuses them: a unit with nothing on the
//! request, or another enterprise, does not see it (404); a co-unit sees it but is not the
//! lead (403 `not_lead_unit`) for the window; an official who sees the request (or whose
//! lapsed grant named it) but holds no live grant is refused the online supply with the
//! grant's reason (403 `authorization_*`, as for the enterprise's lifecycle steps). The result
//! is not handed over while a deferred material is pending (plan (三)5: 容缺后补), unless the
//! matter's catalog entry says `deliver_before_materials`.

use super::assistance::{Lapse, Standing};
use super::catalog::Catalog;
use super::unit::UnitCode;

/// Who asks to supply a material, as plain facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    /// An enterprise, by its unified social credit code.
    Enterprise(&'a str),
    /// A clerk of a unit.
    Clerk(UnitCode),
    /// A supervisor (of a unit, or district-wide): they oversee, they do not take materials in
    /// at the window; with a 帮办 grant they supply online for the enterprise.
    Overseer(Option<UnitCode>),
    /// An administrator: holds no grants, takes no materials in.
    Administrator,
}

/// The request's parties.
#[derive(Debug, Clone, Copy)]
pub struct Parties<'a> {
    /// The owning enterprise's code.
    pub owner: &'a str,
    /// The lead unit.
    pub lead_unit: UnitCode,
    /// Every unit with a task on the request.
    pub units: &'a [UnitCode],
    /// The calling official's 帮办 standing for the owner on this request
    /// ([`super::assistance::standing`]); [`Standing::Without`] for anyone else.
    pub assistant: &'a Standing,
}

/// How a deferred material arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Supplied online by the enterprise.
    Online,
    /// Received at the window and recorded by a clerk of the lead unit.
    Window,
    /// Supplied online for the enterprise by an official under its 帮办 grant.
    Assisted {
        /// The grant.
        grant: String,
        /// 领导干部帮办.
        leader: bool,
    },
}

/// Why a supply is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller does not see the request: answer as if it did not exist.
    Hidden,
    /// A co-unit's clerk: only the lead unit takes materials in.
    NotLeadUnit,
    /// The caller sees the request but may not supply its materials.
    Forbidden(String),
    /// The `received_at_window` flag does not fit the caller.
    WrongFlag(String),
    /// An official supplying online for the enterprise without a live 帮办 grant: the grant's
    /// reason (`None`: no grant names them).
    NoGrant(Option<Lapse>),
}

/// Whether `caller` may supply a deferred material of a request with `parties`, saying
/// `received_at_window`; the route it arrives by.
pub fn may_supply(
    caller: Caller<'_>,
    parties: Parties<'_>,
    received_at_window: bool,
) -> Result<Route, Refusal> {
    // A live grant shows the request to an official of any unit, as for the lifecycle steps.
    let assists = matches!(parties.assistant, Standing::Holds { .. });
    let has_task =
        |unit: UnitCode| parties.units.contains(&unit) || unit == parties.lead_unit || assists;
    let official = matches!(caller, Caller::Clerk(_) | Caller::Overseer(_));
    // Online, an official supplies for the enterprise: only under its grant.
    if official && !received_at_window {
        match parties.assistant {
            Standing::Holds { grant, leader } => {
                return Ok(Route::Assisted {
                    grant: grant.clone(),
                    leader: *leader,
                });
            }
            // The official knew the request through the lapsed grant: tell why.
            Standing::Lapsed(lapse) => return Err(Refusal::NoGrant(Some(lapse.clone()))),
            Standing::Without => {}
        }
    }
    match caller {
        Caller::Enterprise(uscc) if uscc != parties.owner => Err(Refusal::Hidden),
        Caller::Enterprise(_) if received_at_window => Err(Refusal::WrongFlag(
            "an enterprise supplies online; only a clerk of the lead unit records a material received at the window".into(),
        )),
        Caller::Enterprise(_) => Ok(Route::Online),
        Caller::Clerk(unit) if !has_task(unit) => Err(Refusal::Hidden),
        Caller::Clerk(unit) if unit != parties.lead_unit && !received_at_window => {
            Err(Refusal::NoGrant(None))
        }
        Caller::Clerk(unit) if unit != parties.lead_unit => Err(Refusal::NotLeadUnit),
        Caller::Clerk(_) if !received_at_window => Err(Refusal::WrongFlag(
            "a clerk records a material received at the window: send `received_at_window: true` (online, only an official holding the enterprise's 帮办 grant supplies for it)".into(),
        )),
        Caller::Clerk(_) => Ok(Route::Window),
        Caller::Overseer(Some(unit)) if !has_task(unit) => Err(Refusal::Hidden),
        Caller::Overseer(_) if !received_at_window => Err(Refusal::NoGrant(None)),
        Caller::Overseer(_) | Caller::Administrator => Err(Refusal::Forbidden(
            "only the enterprise (online, or an official it authorised: 帮办) or a clerk of the lead unit (at the window) supplies a material".into(),
        )),
    }
}

/// The pending deferred materials that hold back delivery: those of matters whose catalog
/// entry does not say `deliver_before_materials` (a matter the catalog no longer has holds
/// back too). `pending` are `(matter code, material code)` of the request's pending
/// materials; the answer is their material codes, in order.
pub fn holding_delivery<'a>(
    catalog: &Catalog,
    pending: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<String> {
    pending
        .into_iter()
        .filter(|(matter, _)| {
            !catalog
                .matter(matter)
                .is_some_and(|m| m.deliver_before_materials)
        })
        .map(|(_, code)| code.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use UnitCode::*;

    const OWNER: &str = "91350100M000100Y43";
    const OTHER: &str = "9144030071526726XG";

    const WITHOUT: &Standing = &Standing::Without;

    fn parties(units: &[UnitCode]) -> Parties<'_> {
        Parties {
            owner: OWNER,
            lead_unit: Construction,
            units,
            assistant: WITHOUT,
        }
    }

    #[test]
    fn who_may_supply_and_how() {
        let units = [Construction, Planning];
        let p = parties(&units);
        let cases: [(Caller, bool, Result<Route, &str>); 15] = [
            (Caller::Enterprise(OWNER), false, Ok(Route::Online)),
            (Caller::Enterprise(OWNER), true, Err("flag")),
            (Caller::Enterprise(OTHER), false, Err("hidden")),
            (Caller::Enterprise(OTHER), true, Err("hidden")),
            (Caller::Clerk(Construction), true, Ok(Route::Window)),
            (Caller::Clerk(Construction), false, Err("flag")),
            (Caller::Clerk(Planning), true, Err("not_lead")),
            // Online is the enterprise's act: an official needs its grant.
            (Caller::Clerk(Planning), false, Err("no_grant")),
            (Caller::Clerk(Market), true, Err("hidden")),
            (Caller::Clerk(Market), false, Err("hidden")),
            (Caller::Overseer(Some(Market)), false, Err("hidden")),
            (Caller::Overseer(Some(Construction)), true, Err("forbidden")),
            (Caller::Overseer(Some(Construction)), false, Err("no_grant")),
            (Caller::Overseer(None), false, Err("no_grant")),
            (Caller::Administrator, false, Err("forbidden")),
        ];
        for (caller, flag, expected) in cases {
            let got = may_supply(caller, p, flag).map_err(|r| match r {
                Refusal::Hidden => "hidden",
                Refusal::NotLeadUnit => "not_lead",
                Refusal::Forbidden(_) => "forbidden",
                Refusal::WrongFlag(_) => "flag",
                Refusal::NoGrant(_) => "no_grant",
            });
            assert_eq!(got, expected, "{caller:?} with received_at_window={flag}");
        }
    }

    #[test]
    fn a_grant_holder_supplies_online_for_the_enterprise() {
        let holds = Standing::Holds {
            grant: "g1".into(),
            leader: true,
        };
        let revoked = Standing::Lapsed(Lapse::Revoked("g1".into()));
        let units = [Construction, Planning];
        let with = |assistant| Parties {
            assistant,
            ..parties(&units)
        };
        let assisted = Ok(Route::Assisted {
            grant: "g1".into(),
            leader: true,
        });
        // Any official the grant names, whatever their unit: online, for the enterprise.
        for caller in [
            Caller::Clerk(Market),
            Caller::Clerk(Planning),
            Caller::Clerk(Construction),
            Caller::Overseer(None),
            Caller::Overseer(Some(Market)),
        ] {
            assert_eq!(
                may_supply(caller, with(&holds), false),
                assisted,
                "{caller:?}"
            );
        }
        // The window stays the lead unit's clerks'.
        assert_eq!(
            may_supply(Caller::Clerk(Construction), with(&holds), true),
            Ok(Route::Window)
        );
        assert_eq!(
            may_supply(Caller::Clerk(Market), with(&holds), true),
            Err(Refusal::NotLeadUnit)
        );
        // A revoked grant is told as such, even to an official of a unit with no task.
        for caller in [Caller::Clerk(Market), Caller::Clerk(Construction)] {
            assert_eq!(
                may_supply(caller, with(&revoked), false),
                Err(Refusal::NoGrant(Some(Lapse::Revoked("g1".into())))),
                "{caller:?}"
            );
        }
        // The enterprise and the administrator are not officials: a grant changes nothing.
        assert_eq!(
            may_supply(Caller::Enterprise(OWNER), with(&holds), false),
            Ok(Route::Online)
        );
        assert!(matches!(
            may_supply(Caller::Administrator, with(&holds), false),
            Err(Refusal::Forbidden(_))
        ));
    }

    #[test]
    fn the_lead_unit_counts_even_without_a_task_row() {
        // After a reroute the lead is the new unit; it speaks for the request.
        assert_eq!(
            may_supply(Caller::Clerk(Construction), parties(&[]), true),
            Ok(Route::Window)
        );
    }

    #[test]
    fn pending_materials_hold_delivery_unless_the_matter_allows() {
        let catalog = Catalog::builtin();
        assert_eq!(
            holding_delivery(&catalog, [("market.establish", "premises_proof")]),
            vec!["premises_proof".to_string()]
        );
        assert!(
            holding_delivery(&catalog, [("market.multi-site-filing", "premises_proof")]).is_empty()
        );
        // A bundle: any pending material of a matter without the flag holds it.
        assert_eq!(
            holding_delivery(
                &catalog,
                [
                    ("market.multi-site-filing", "premises_proof"),
                    ("construction.permit", "supervision_contract"),
                    ("gone.matter", "x"),
                ]
            ),
            vec!["supervision_contract".to_string(), "x".to_string()]
        );
        assert!(holding_delivery(&catalog, []).is_empty());
    }
}
