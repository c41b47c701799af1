//! The responsible units (责任单位) named in the district plan. Their codes are the stable
//! identifiers everywhere: catalog, tokens (a clerk's `unit` claim), URLs and filters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A responsible unit's code.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum UnitCode {
    /// 区市场监管局 Market Regulation.
    Market,
    /// 区税务局 Tax.
    Tax,
    /// 区规划资源局 Planning & Natural Resources.
    Planning,
    /// 区房管局 Housing.
    Housing,
    /// 区建管委 Construction.
    Construction,
    /// 区行政服务中心 Administrative Service Centre.
    ServiceCenter,
    /// 区发改委 Development & Reform.
    Ndrc,
    /// 区人社局 Human Resources & Social Security.
    Hrss,
    /// 区商务委 Commerce.
    Commerce,
    /// 区金融办 Finance Office.
    Finance,
    /// 区科委 Science & Technology.
    Stc,
    /// 区投促办 Investment Promotion.
    Investment,
    /// 区司法局 Justice.
    Justice,
    /// 各街镇 Sub-districts and towns.
    Streets,
}

impl UnitCode {
    /// Every unit, in the order of the plan.
    pub const ALL: [UnitCode; 14] = [
        UnitCode::Market,
        UnitCode::Tax,
        UnitCode::Planning,
        UnitCode::Housing,
        UnitCode::Construction,
        UnitCode::ServiceCenter,
        UnitCode::Ndrc,
        UnitCode::Hrss,
        UnitCode::Commerce,
        UnitCode::Finance,
        UnitCode::Stc,
        UnitCode::Investment,
        UnitCode::Justice,
        UnitCode::Streets,
    ];

    /// The code as written in URLs and tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitCode::Market => "market",
            UnitCode::Tax => "tax",
            UnitCode::Planning => "planning",
            UnitCode::Housing => "housing",
            UnitCode::Construction => "construction",
            UnitCode::ServiceCenter => "service-center",
            UnitCode::Ndrc => "ndrc",
            UnitCode::Hrss => "hrss",
            UnitCode::Commerce => "commerce",
            UnitCode::Finance => "finance",
            UnitCode::Stc => "stc",
            UnitCode::Investment => "investment",
            UnitCode::Justice => "justice",
            UnitCode::Streets => "streets",
        }
    }
}

impl fmt::Display for UnitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not one of the unit codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a unit code (one of: market, tax, planning, housing, construction, service-center, ndrc, hrss, commerce, finance, stc, investment, justice, streets)"
)]
pub struct UnknownUnit(pub String);

impl FromStr for UnitCode {
    type Err = UnknownUnit;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UnitCode::ALL
            .into_iter()
            .find(|u| u.as_str() == s)
            .ok_or_else(|| UnknownUnit(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_text_and_json() {
        for unit in UnitCode::ALL {
            assert_eq!(unit.as_str().parse::<UnitCode>(), Ok(unit));
            let json = serde_json::to_string(&unit).unwrap();
            assert_eq!(json, format!("\"{}\"", unit.as_str()));
        }
        assert!("Market".parse::<UnitCode>().is_err());
    }
}
