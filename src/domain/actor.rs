//! Who acts: the four roles of the system and the scope each role's claims give it. The
//! rules of `domain` decide by these; `auth` finds them in a verified token.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::UnitCode;
use super::Uscc;

/// The four roles of the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An enterprise, through the city portal.
    Enterprise,
    /// A window clerk or back-office officer of one unit.
    Clerk,
    /// A unit head, or the district when no unit is given.
    Supervisor,
    /// An administrator of the system.
    Admin,
}

impl Role {
    /// The role as written in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Enterprise => "enterprise",
            Role::Clerk => "clerk",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }
}

/// A role together with the scope its claims give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An enterprise, by its unified social credit code.
    Enterprise(Uscc),
    /// A clerk of one unit.
    Clerk(UnitCode),
    /// A supervisor of one unit, or district-wide (`None`).
    Supervisor(Option<UnitCode>),
    /// An administrator.
    Admin,
}

impl Actor {
    /// The plain role.
    pub fn role(&self) -> Role {
        match self {
            Actor::Enterprise(_) => Role::Enterprise,
            Actor::Clerk(_) => Role::Clerk,
            Actor::Supervisor(_) => Role::Supervisor,
            Actor::Admin => Role::Admin,
        }
    }

    /// The `uscc` and `unit` claims this actor carries.
    pub fn claim_values(&self) -> (Option<String>, Option<String>) {
        match self {
            Actor::Enterprise(uscc) => (Some(uscc.to_string()), None),
            Actor::Clerk(unit) => (None, Some(unit.to_string())),
            Actor::Supervisor(unit) => (None, unit.map(|u| u.to_string())),
            Actor::Admin => (None, None),
        }
    }
}
