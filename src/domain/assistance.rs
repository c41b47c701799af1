//! Assisted filing (帮办): officials who file and carry requests for an enterprise.
//!
//! Two ways in, both through the one intake check and routing:
//!
//! - **Walk-in filing** (窗口代办): a clerk of the request's lead unit files for the enterprise
//!   in front of them, after checking who they are ([`IdentityCheck`]: ID card, electronic
//!   business licence or face recognition, and the name verified). No grant is needed; the
//!   identity check is the authority, and it is recorded with the request.
//! - **Grants** (帮办授权): the enterprise grants an [`Assistant`] — a named official (the
//!   token's subject) or a unit's 帮办 desk (every clerk of that unit) — the right to act for
//!   it on one request or for a bounded period ([`Coverage`]). A grant may carry the leader
//!   flag (领导干部帮办). An official holding a live grant may file, supplement and withdraw
//!   for the enterprise; [`standing`] says whether they hold one, and if not, precisely why not.
//!
//! Everything here is pure: the caller passes the grants it read and "now".

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::UnitCode;
use super::uscc::Uscc;
use crate::error::FieldError;

/// The longest period a grant may cover.
pub const MAX_PERIOD: TimeDelta = TimeDelta::days(366);

/// Longest verified name, in characters.
pub const VERIFIED_NAME_MAX: usize = 100;

/// How the clerk verified the person at the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentityMethod {
    /// Resident identity card (居民身份证), read at the window.
    IdCard,
    /// Electronic business licence (电子营业执照).
    ELicense,
    /// Face recognition against the public-security photo (人脸识别).
    Face,
}

impl IdentityMethod {
    /// Every method.
    pub const ALL: [IdentityMethod; 3] = [
        IdentityMethod::IdCard,
        IdentityMethod::ELicense,
        IdentityMethod::Face,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityMethod::IdCard => "id_card",
            IdentityMethod::ELicense => "e_license",
            IdentityMethod::Face => "face",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// The identity check done at the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityCheck {
    /// How.
    pub method: IdentityMethod,
    /// The name the check confirmed (the person, or the enterprise on an e-licence).
    pub verified_name: String,
}

/// The `on_behalf_of` member of an intake by an official.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnBehalfOf {
    /// The enterprise the request will belong to.
    pub uscc: Uscc,
    /// Present: a walk-in filing at the window. Absent: filing under a grant.
    pub identity_check: Option<IdentityCheck>,
}

/// Checks the `on_behalf_of` member, naming every wrong field at once.
pub fn check_on_behalf_of(value: &Value) -> Result<OnBehalfOf, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut add = |pointer: &str, message: String| {
        errors.push(FieldError {
            pointer: pointer.into(),
            message,
        })
    };
    let Some(object) = value.as_object() else {
        add(
            "/on_behalf_of",
            "must be an object: {\"uscc\": …, \"identity_check\": {\"method\": …, \"verified_name\": …}}".into(),
        );
        return Err(errors);
    };
    for key in object.keys() {
        if key != "uscc" && key != "identity_check" {
            add(
                &format!("/on_behalf_of/{}", crate::error::escape_pointer(key)),
                "unknown member; only `uscc` and `identity_check`".into(),
            );
        }
    }
    let uscc = match object.get("uscc") {
        Some(Value::String(text)) => match Uscc::parse(text) {
            Ok(uscc) => Some(uscc),
            Err(e) => {
                add("/on_behalf_of/uscc", e.to_string());
                None
            }
        },
        Some(_) => {
            add("/on_behalf_of/uscc", "must be a string".into());
            None
        }
        None => {
            add(
                "/on_behalf_of/uscc",
                "required: the enterprise's unified social credit code".into(),
            );
            None
        }
    };
    let identity_check = match object.get("identity_check") {
        None | Some(Value::Null) => None,
        Some(Value::Object(check)) => {
            for key in check.keys() {
                if key != "method" && key != "verified_name" {
                    add(
                        &format!(
                            "/on_behalf_of/identity_check/{}",
                            crate::error::escape_pointer(key)
                        ),
                        "unknown member; only `method` and `verified_name`".into(),
                    );
                }
            }
            let known = || {
                IdentityMethod::ALL
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let method = match check.get("method") {
                Some(Value::String(text)) => {
                    let method = IdentityMethod::parse(text);
                    if method.is_none() {
                        add(
                            "/on_behalf_of/identity_check/method",
                            format!("`{text}` is not an identity method; one of: {}", known()),
                        );
                    }
                    method
                }
                Some(_) => {
                    add(
                        "/on_behalf_of/identity_check/method",
                        format!("must be a string, one of: {}", known()),
                    );
                    None
                }
                None => {
                    add(
                        "/on_behalf_of/identity_check/method",
                        format!(
                            "required: how the identity was checked, one of: {}",
                            known()
                        ),
                    );
                    None
                }
            };
            let name = match check.get("verified_name") {
                Some(Value::String(text)) => {
                    let name = text.trim();
                    if name.is_empty() || name.chars().count() > VERIFIED_NAME_MAX {
                        add(
                            "/on_behalf_of/identity_check/verified_name",
                            format!(
                                "required: the name the check confirmed (1 to {VERIFIED_NAME_MAX} characters)"
                            ),
                        );
                        None
                    } else {
                        Some(name.to_string())
                    }
                }
                Some(_) => {
                    add(
                        "/on_behalf_of/identity_check/verified_name",
                        "must be a string".into(),
                    );
                    None
                }
                None => {
                    add(
                        "/on_behalf_of/identity_check/verified_name",
                        "required: the name the check confirmed".into(),
                    );
                    None
                }
            };
            method
                .zip(name)
                .map(|(method, verified_name)| IdentityCheck {
                    method,
                    verified_name,
                })
        }
        Some(_) => {
            add(
                "/on_behalf_of/identity_check",
                "must be an object: {\"method\": …, \"verified_name\": …}".into(),
            );
            None
        }
    };
    match uscc {
        Some(uscc) if errors.is_empty() => Ok(OnBehalfOf {
            uscc,
            identity_check,
        }),
        _ => Err(errors),
    }
}

/// Who a grant names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assistant {
    /// One official, by token subject (a clerk or a supervisor).
    Official(String),
    /// A unit's 帮办 desk: every clerk of the unit.
    Desk(UnitCode),
}

/// What a grant covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage<'a> {
    /// One existing request, by id.
    Request(&'a str),
    /// Every request of the enterprise, new or existing, from `from` until before `until`.
    Period {
        /// Start (inclusive).
        from: DateTime<Utc>,
        /// End (exclusive).
        until: DateTime<Utc>,
    },
}

/// A grant as the rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant<'a> {
    /// Its id.
    pub id: &'a str,
    /// The granting enterprise (USCC).
    pub enterprise: &'a str,
    /// Who it names.
    pub assistant: Assistant,
    /// What it covers.
    pub coverage: Coverage<'a>,
    /// 领导干部帮办.
    pub leader: bool,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The official who wants to act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Official<'a> {
    /// Token subject.
    pub subject: &'a str,
    /// Their unit when they are a clerk (a desk grant counts for clerks only).
    pub clerk_of: Option<UnitCode>,
}

impl Grant<'_> {
    /// Whether it names `official`.
    pub fn names(&self, official: &Official) -> bool {
        match &self.assistant {
            Assistant::Official(subject) => subject == official.subject,
            Assistant::Desk(unit) => official.clerk_of == Some(*unit),
        }
    }

    /// Whether it is live at `now` (not revoked; a period grant within its period).
    pub fn live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none_or(|at| at > now)
            && match self.coverage {
                Coverage::Request(_) => true,
                Coverage::Period { from, until } => from <= now && now < until,
            }
    }
}

/// Why a grant does not let an official act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lapse {
    /// The enterprise revoked it.
    Revoked(String),
    /// Its period is over.
    Expired(String),
    /// Its period has not begun.
    NotYet(String),
    /// It covers another request only.
    OtherRequest(String),
}

impl Lapse {
    /// The grant concerned.
    pub fn grant(&self) -> &str {
        match self {
            Lapse::Revoked(g) | Lapse::Expired(g) | Lapse::NotYet(g) | Lapse::OtherRequest(g) => g,
        }
    }
}

/// An official's standing as assistant of one enterprise, for one act.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Standing {
    /// No grant of the enterprise names them.
    #[default]
    Without,
    /// They hold a live grant covering the act.
    Holds {
        /// The grant the act is taken under.
        grant: String,
        /// 领导干部帮办.
        leader: bool,
    },
    /// Grants name them, but none covers the act now: the most telling reason.
    Lapsed(Lapse),
}

/// The standing of `official` to act for `enterprise` on `request` (an existing request's id,
/// or `None` to file a new one) at `now`, given the enterprise's grants.
///
/// A live grant wins; a grant for the request itself comes before a period grant, and a
/// leader grant before another, so the act is recorded under the most specific grant. With
/// no live grant, the reason told is the one about the grant closest to covering the act:
/// revoked, then expired, then not yet begun, then a grant for another request.
pub fn standing(
    grants: &[Grant],
    official: &Official,
    enterprise: &str,
    request: Option<&str>,
    now: DateTime<Utc>,
) -> Standing {
    let mine = || {
        grants
            .iter()
            .filter(|g| g.enterprise == enterprise && g.names(official))
    };
    let applies = |g: &&Grant| match g.coverage {
        Coverage::Request(id) => Some(id) == request,
        Coverage::Period { .. } => true,
    };
    let best = mine()
        .filter(applies)
        .filter(|g| g.live(now))
        .min_by_key(|g| {
            (
                !matches!(g.coverage, Coverage::Request(_)),
                !g.leader,
                g.id.to_string(),
            )
        });
    if let Some(grant) = best {
        return Standing::Holds {
            grant: grant.id.into(),
            leader: grant.leader,
        };
    }
    let lapse = |g: &Grant| -> (u8, Lapse) {
        let id = g.id.to_string();
        if !applies(&g) {
            return (3, Lapse::OtherRequest(id));
        }
        if g.revoked_at.is_some_and(|at| at <= now) {
            return (0, Lapse::Revoked(id));
        }
        match g.coverage {
            Coverage::Period { from, .. } if now < from => (2, Lapse::NotYet(id)),
            _ => (1, Lapse::Expired(id)),
        }
    };
    mine()
        .map(lapse)
        .min_by_key(|(rank, l)| (*rank, l.grant().to_string()))
        .map_or(Standing::Without, |(_, l)| Standing::Lapsed(l))
}

/// The terms of a new grant, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// Who.
    pub assistant: Assistant,
    /// One request (its id), or a period.
    pub request: Option<String>,
    /// Period start (set when `request` is not).
    pub from: Option<DateTime<Utc>>,
    /// Period end.
    pub until: Option<DateTime<Utc>>,
    /// 领导干部帮办.
    pub leader: bool,
}

/// What an enterprise asks to grant, as sent.
#[derive(Debug, Clone, Default)]
pub struct Asked<'a> {
    /// A named official's token subject.
    pub official: Option<&'a str>,
    /// A unit's desk.
    pub desk: Option<UnitCode>,
    /// One request.
    pub request: Option<&'a str>,
    /// Period start (default: now).
    pub from: Option<DateTime<Utc>>,
    /// Period end.
    pub until: Option<DateTime<Utc>>,
    /// Leader flag.
    pub leader: bool,
}

/// Checks a new grant at `now`: exactly one assistant (a leader grant names one official),
/// exactly one of a request and a period, and a period that ends in the future, after it
/// starts, within [`MAX_PERIOD`], and does not start in the past.
pub fn check_terms(asked: &Asked, now: DateTime<Utc>) -> Result<Terms, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut add = |pointer: &str, message: &str| {
        errors.push(FieldError {
            pointer: pointer.into(),
            message: message.into(),
        })
    };
    let official = asked.official.map(str::trim);
    let assistant = match (official, asked.desk) {
        (Some(subject), None) if !subject.is_empty() && subject.chars().count() <= 255 => {
            Some(Assistant::Official(subject.to_string()))
        }
        (Some(_), None) => {
            add(
                "/assistant/official",
                "the official's token subject, 1 to 255 characters",
            );
            None
        }
        (None, Some(unit)) => Some(Assistant::Desk(unit)),
        _ => {
            add(
                "/assistant",
                "exactly one of `official` (a token subject) and `desk` (a unit code)",
            );
            None
        }
    };
    if asked.leader && matches!(assistant, Some(Assistant::Desk(_))) {
        add(
            "/leader",
            "a leader grant (领导干部帮办) names one official, not a unit's desk",
        );
    }
    let request = asked.request.map(str::trim);
    let (from, until) = match (request, asked.from, asked.until) {
        (Some(id), None, None) => {
            if id.is_empty() {
                add("/request", "the id of one of your requests");
            }
            (None, None)
        }
        (Some(_), _, _) => {
            add(
                "/request",
                "a grant covers one request or a period (`from`/`until`), not both",
            );
            (None, None)
        }
        (None, _, None) => {
            add(
                "/until",
                "required unless the grant is for one `request`: when the period ends (RFC 3339)",
            );
            (None, None)
        }
        (None, from, Some(until)) => {
            let from = from.unwrap_or(now);
            // A minute's grace: a portal's clock may lag ours a little.
            if from < now - TimeDelta::minutes(1) {
                add("/from", "may not lie in the past");
            }
            if until <= from {
                add("/until", "must come after `from`");
            } else if until - from > MAX_PERIOD {
                add("/until", "a period grant lasts at most 366 days");
            }
            (Some(from), Some(until))
        }
    };
    if errors.is_empty() {
        Ok(Terms {
            assistant: assistant.expect("checked"),
            request: request.map(str::to_string),
            from,
            until,
            leader: asked.leader,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "91350100M000100Y43";
    const B: &str = "9144030071526726XG";

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn pointers(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.pointer).collect()
    }

    #[test]
    fn a_walk_in_names_the_enterprise_and_the_identity_check() {
        let ok = check_on_behalf_of(&json!({
            "uscc": A,
            "identity_check": {"method": "face", "verified_name": " 张三 "}
        }))
        .unwrap();
        assert_eq!(ok.uscc.as_str(), A);
        assert_eq!(
            ok.identity_check,
            Some(IdentityCheck {
                method: IdentityMethod::Face,
                verified_name: "张三".into()
            })
        );
        // Without a check it is a filing under a grant.
        let grant = check_on_behalf_of(&json!({"uscc": A})).unwrap();
        assert_eq!(grant.identity_check, None);
    }

    #[test]
    fn every_wrong_member_of_on_behalf_of_is_named() {
        let err = |v| pointers(check_on_behalf_of(&v).unwrap_err());
        assert_eq!(err(json!("x")), ["/on_behalf_of"]);
        assert_eq!(
            err(
                json!({"uscc": "91350100M000100Y44", "identity_check": {"method": "fax", "verified_name": " "}})
            ),
            [
                "/on_behalf_of/uscc",
                "/on_behalf_of/identity_check/method",
                "/on_behalf_of/identity_check/verified_name"
            ]
        );
        assert_eq!(
            err(json!({"uscc": A, "identity_check": {"verified_name": "张三"}})),
            ["/on_behalf_of/identity_check/method"]
        );
        assert_eq!(
            err(json!({"uscc": A, "identity_check": {"method": 1, "verified_name": 2}})),
            [
                "/on_behalf_of/identity_check/method",
                "/on_behalf_of/identity_check/verified_name"
            ]
        );
        assert_eq!(
            err(json!({"identity_check": [], "x": 1})),
            [
                "/on_behalf_of/x",
                "/on_behalf_of/uscc",
                "/on_behalf_of/identity_check"
            ]
        );
        let long = "名".repeat(VERIFIED_NAME_MAX + 1);
        assert_eq!(
            err(json!({"uscc": A, "identity_check": {"method": "id_card", "verified_name": long}})),
            ["/on_behalf_of/identity_check/verified_name"]
        );
    }

    fn grant<'a>(id: &'a str, assistant: Assistant, coverage: Coverage<'a>) -> Grant<'a> {
        Grant {
            id,
            enterprise: A,
            assistant,
            coverage,
            leader: false,
            revoked_at: None,
        }
    }

    const ZHANG: Official = Official {
        subject: "zhang",
        clerk_of: Some(UnitCode::Market),
    };

    #[test]
    fn a_live_grant_names_the_official_or_their_desk() {
        let now = at("2026-12-01T10:00:00Z");
        let period = Coverage::Period {
            from: at("2026-11-01T00:00:00Z"),
            until: at("2027-01-01T00:00:00Z"),
        };
        let named = [grant("g1", Assistant::Official("zhang".into()), period)];
        assert_eq!(
            standing(&named, &ZHANG, A, None, now),
            Standing::Holds {
                grant: "g1".into(),
                leader: false
            }
        );
        // Another enterprise's grant does not speak for A.
        assert_eq!(standing(&named, &ZHANG, B, None, now), Standing::Without);
        // Another official is not named.
        let li = Official {
            subject: "li",
            clerk_of: Some(UnitCode::Tax),
        };
        assert_eq!(standing(&named, &li, A, None, now), Standing::Without);
        // A desk grant: every clerk of the unit, no supervisor.
        let desk = [grant("g2", Assistant::Desk(UnitCode::Market), period)];
        let wang = Official {
            subject: "wang",
            clerk_of: Some(UnitCode::Market),
        };
        assert!(matches!(
            standing(&desk, &wang, A, Some("r1"), now),
            Standing::Holds { .. }
        ));
        let head = Official {
            subject: "head",
            clerk_of: None,
        };
        assert_eq!(standing(&desk, &head, A, None, now), Standing::Without);
    }

    #[test]
    fn a_request_grant_covers_that_request_only_and_wins_over_a_period() {
        let now = at("2026-12-01T10:00:00Z");
        let zhang = || Assistant::Official("zhang".into());
        let grants = [
            grant(
                "g-period",
                zhang(),
                Coverage::Period {
                    from: at("2026-11-01T00:00:00Z"),
                    until: at("2026-11-30T00:00:00Z"),
                },
            ),
            grant("g-x", zhang(), Coverage::Request("x")),
        ];
        assert_eq!(
            standing(&grants, &ZHANG, A, Some("x"), now),
            Standing::Holds {
                grant: "g-x".into(),
                leader: false
            }
        );
        // On y the period grant is the closer one, and it has expired.
        assert_eq!(
            standing(&grants, &ZHANG, A, Some("y"), now),
            Standing::Lapsed(Lapse::Expired("g-period".into()))
        );
        assert_eq!(
            standing(&grants[1..], &ZHANG, A, Some("y"), now),
            Standing::Lapsed(Lapse::OtherRequest("g-x".into()))
        );
        // Filing a new request is no act on request x.
        assert_eq!(
            standing(&grants[1..], &ZHANG, A, None, now),
            Standing::Lapsed(Lapse::OtherRequest("g-x".into()))
        );
    }

    #[test]
    fn revoked_expired_and_future_grants_say_so() {
        let now = at("2026-12-01T10:00:00Z");
        let zhang = || Assistant::Official("zhang".into());
        let mut revoked = grant("g1", zhang(), Coverage::Request("x"));
        revoked.revoked_at = Some(at("2026-12-01T09:00:00Z"));
        assert_eq!(
            standing(std::slice::from_ref(&revoked), &ZHANG, A, Some("x"), now),
            Standing::Lapsed(Lapse::Revoked("g1".into()))
        );
        // Revoked from the instant it was revoked, not before.
        assert!(matches!(
            standing(
                std::slice::from_ref(&revoked),
                &ZHANG,
                A,
                Some("x"),
                at("2026-12-01T08:59:59Z")
            ),
            Standing::Holds { .. }
        ));
        let until = at("2026-12-01T10:00:00Z");
        let ended = grant(
            "g2",
            zhang(),
            Coverage::Period {
                from: at("2026-11-01T00:00:00Z"),
                until,
            },
        );
        // The end is exclusive.
        assert_eq!(
            standing(std::slice::from_ref(&ended), &ZHANG, A, None, until),
            Standing::Lapsed(Lapse::Expired("g2".into()))
        );
        let future = grant(
            "g3",
            zhang(),
            Coverage::Period {
                from: at("2026-12-02T00:00:00Z"),
                until: at("2026-12-09T00:00:00Z"),
            },
        );
        assert_eq!(
            standing(std::slice::from_ref(&future), &ZHANG, A, None, now),
            Standing::Lapsed(Lapse::NotYet("g3".into()))
        );
        // The revocation is the most telling reason.
        assert_eq!(
            standing(&[future, ended, revoked], &ZHANG, A, Some("x"), now),
            Standing::Lapsed(Lapse::Revoked("g1".into()))
        );
    }

    #[test]
    fn a_leader_grant_is_preferred_so_the_act_counts_as_leader_assistance() {
        let now = at("2026-12-01T10:00:00Z");
        let period = Coverage::Period {
            from: at("2026-11-01T00:00:00Z"),
            until: at("2027-01-01T00:00:00Z"),
        };
        let mut leader = grant("g2", Assistant::Official("zhang".into()), period);
        leader.leader = true;
        let plain = grant("g1", Assistant::Desk(UnitCode::Market), period);
        assert_eq!(
            standing(&[plain, leader], &ZHANG, A, None, now),
            Standing::Holds {
                grant: "g2".into(),
                leader: true
            }
        );
    }

    #[test]
    fn new_grants_are_bounded_and_name_one_assistant() {
        let now = at("2026-12-01T10:00:00Z");
        let ok = check_terms(
            &Asked {
                official: Some("zhang"),
                until: Some(at("2027-06-01T00:00:00Z")),
                leader: true,
                ..Asked::default()
            },
            now,
        )
        .unwrap();
        assert_eq!(ok.from, Some(now));
        assert_eq!(ok.assistant, Assistant::Official("zhang".into()));
        let err = |asked: Asked| pointers(check_terms(&asked, now).unwrap_err());
        assert_eq!(
            err(Asked {
                request: Some("x"),
                ..Asked::default()
            }),
            ["/assistant"]
        );
        assert_eq!(
            err(Asked {
                official: Some("zhang"),
                desk: Some(UnitCode::Tax),
                request: Some("x"),
                ..Asked::default()
            }),
            ["/assistant"]
        );
        assert_eq!(
            err(Asked {
                desk: Some(UnitCode::Tax),
                request: Some("x"),
                leader: true,
                ..Asked::default()
            }),
            ["/leader"]
        );
        assert_eq!(
            err(Asked {
                official: Some(" "),
                request: Some("x"),
                until: Some(at("2027-01-01T00:00:00Z")),
                ..Asked::default()
            }),
            ["/assistant/official", "/request"]
        );
        assert_eq!(
            err(Asked {
                official: Some("zhang"),
                ..Asked::default()
            }),
            ["/until"]
        );
        assert_eq!(
            err(Asked {
                official: Some("zhang"),
                until: Some(at("2028-01-01T00:00:00Z")),
                ..Asked::default()
            }),
            ["/until"]
        );
        assert_eq!(
            err(Asked {
                official: Some("zhang"),
                from: Some(at("2026-11-01T00:00:00Z")),
                until: Some(at("2026-10-01T00:00:00Z")),
                ..Asked::default()
            }),
            ["/from", "/until"]
        );
        // Exactly a year and a day is the most.
        assert!(
            check_terms(
                &Asked {
                    official: Some("zhang"),
                    until: Some(now + MAX_PERIOD),
                    ..Asked::default()
                },
                now
            )
            .is_ok()
        );
    }
}
