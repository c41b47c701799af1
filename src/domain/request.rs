//! The vocabulary of a request (办件): its states, its tasks' roles, its clocks, its materials.
//! Stored as TEXT; each enum round-trips through [`as_str`](Status::as_str) and `FromStr`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares a TEXT-stored enum with its wire names.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        // `rename_all` rather than a per-variant `rename = $text`: utoipa does not see
        // literals passed through a macro, and the wire names are the snake_case of the
        // variants anyway (the tests check that they equal `as_str`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stored and wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "`{other}` is not one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

pub(crate) use text_enum;

text_enum! {
    /// Lifecycle state of a request or task, in the national vocabulary.
    Status {
        /// 已申报: received, not yet called.
        Submitted = "submitted",
        /// Being served at the window.
        Called = "called",
        /// 已受理.
        Accepted = "accepted",
        /// 不予受理.
        NotAccepted = "not_accepted",
        /// 待补正: one notice listing every missing item.
        SupplementRequired = "supplement_required",
        /// 审查中.
        UnderReview = "under_review",
        /// 准予.
        Approved = "approved",
        /// 不予.
        Denied = "denied",
        /// 办结.
        Completed = "completed",
        /// 送达/出件.
        Delivered = "delivered",
        /// 撤回.
        Withdrawn = "withdrawn",
        /// 退单: sent back by a unit, awaiting re-routing.
        Returned = "returned",
    }
}

text_enum! {
    /// A task's place in the routing.
    TaskRole {
        /// The lead unit of a matter: receives and answers.
        Lead = "lead",
        /// A co-operating unit.
        Co = "co",
        /// The unit coordinating a bundle and giving the one reply.
        Coordinator = "coordinator",
    }
}

text_enum! {
    /// Kinds of SLA clock.
    ClockKind {
        /// 20 minutes from `call` to the intake decision (wall clock).
        WindowIntake = "window_intake",
        /// 5 working days from receipt to acceptance or one supplement notice (Art. 32).
        SupplementNotice = "supplement_notice",
        /// The matter's published promised limit.
        Promised = "promised",
        /// The statutory limit from acceptance (Art. 42).
        Statutory = "statutory",
        /// From approval to delivery (Art. 44).
        Delivery = "delivery",
        /// A rectification case: contact the enterprise after a bad rating.
        RectificationContact = "rectification_contact",
        /// A rectification case: rectify and close it with a note.
        Rectification = "rectification",
        /// A co-unit's opinion on a matter it co-handles (联合会审), from acceptance.
        Opinion = "opinion",
        /// A deferred material (容缺后补), from acceptance to its supply.
        Material = "material",
        /// 立等可取: from acceptance to the certificate, in the same visit.
        OnTheSpot = "on_the_spot",
        /// 即办件: from the call at the window to completion, in the same visit.
        Immediate = "immediate",
    }
}

text_enum! {
    /// States of a clock.
    ClockState {
        /// Defined, not started (starts at a later step).
        Pending = "pending",
        /// Counting.
        Running = "running",
        /// Stopped for a while (supplement, special procedure).
        Paused = "paused",
        /// Stopped in time.
        Met = "met",
        /// Ran out.
        Breached = "breached",
        /// No longer applies.
        Cancelled = "cancelled",
    }
}

text_enum! {
    /// Whether a material is in hand.
    MaterialStatus {
        /// Declared at intake.
        Provided = "provided",
        /// Allowed missing at intake (容缺), due later.
        Pending = "pending",
    }
}

text_enum! {
    /// What a request is for.
    RequestKind {
        /// A single matter.
        Matter = "matter",
        /// A bundle of matters.
        Bundle = "bundle",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for k in ClockKind::ALL {
            assert_eq!(k.as_str().parse::<ClockKind>(), Ok(*k));
        }
        assert!(
            "approved!"
                .parse::<Status>()
                .unwrap_err()
                .contains("submitted")
        );
    }
}
