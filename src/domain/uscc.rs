//! The unified social credit code (统一社会信用代码) of GB 32100-2015: 18 characters from a
//! 31-character alphabet, the last one a check character over the first 17.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// The code alphabet: digits and capitals without I, O, S, V, Z. A character's value is its
/// position here.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weights of positions 1–17 (3^i mod 31).
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// A unified social credit code whose check character is right.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Uscc(String);

/// Why a string is not a unified social credit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    /// Not 18 characters long.
    #[error("a unified social credit code has 18 characters, this one has {0}")]
    Length(usize),
    /// A character outside the alphabet.
    #[error("character {position} (`{character}`) is not allowed in a unified social credit code")]
    Character {
        /// 1-based position.
        position: usize,
        /// The offending character.
        character: char,
    },
    /// The check character does not match.
    #[error("check character is `{found}`, expected `{expected}` (GB 32100-2015)")]
    Check {
        /// The 18th character given.
        found: char,
        /// The one the first 17 call for.
        expected: char,
    },
}

fn value_of(c: char) -> Option<u32> {
    ALPHABET
        .iter()
        .position(|&a| a as char == c)
        .map(|p| p as u32)
}

/// The check character for the first 17 characters (which must be in the alphabet).
fn check_character(body: &[u32]) -> char {
    let sum: u32 = body.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    let check = (31 - sum % 31) % 31;
    ALPHABET[check as usize] as char
}

impl Uscc {
    /// Parses and checks a code. Lower-case letters are accepted and upper-cased.
    pub fn parse(text: &str) -> Result<Self, UsccError> {
        let upper = text.trim().to_ascii_uppercase();
        let chars: Vec<char> = upper.chars().collect();
        if chars.len() != 18 {
            return Err(UsccError::Length(chars.len()));
        }
        let mut values = Vec::with_capacity(18);
        for (i, &c) in chars.iter().enumerate() {
            match value_of(c) {
                Some(v) => values.push(v),
                None => {
                    return Err(UsccError::Character {
                        position: i + 1,
                        character: c,
                    });
                }
            }
        }
        let expected = check_character(&values[..17]);
        if chars[17] != expected {
            return Err(UsccError::Check {
                found: chars[17],
                expected,
            });
        }
        Ok(Self(upper))
    }

    /// The code whose first 17 characters are `body`, completed with its check character
    /// (for generating codes: test and benchmark data).
    pub fn completing(body: &str) -> Result<Self, UsccError> {
        let mut code = body.trim().to_ascii_uppercase();
        code.push('0');
        match Self::parse(&code) {
            Err(UsccError::Check { expected, .. }) => {
                code.pop();
                code.push(expected);
                Self::parse(&code)
            }
            other => other,
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Uscc {
    type Err = UsccError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for Uscc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_completed_with_its_check_character() {
        assert_eq!(
            Uscc::completing("91310107MA0000004").unwrap().as_str(),
            "91310107MA0000004M"
        );
        assert_eq!(
            Uscc::completing("91350100M000100Y4").unwrap().as_str(),
            "91350100M000100Y43"
        );
        assert_eq!(Uscc::completing("9135").unwrap_err(), UsccError::Length(5));
    }

    #[test]
    fn accepts_published_codes() {
        // The standard's own example and codes printed on public business licences.
        for code in [
            "91350100M000100Y43",
            "91330100799655058B",
            "9144030071526726XG",
            "914403001922038216",
        ] {
            assert!(Uscc::parse(code).is_ok(), "{code}: {:?}", Uscc::parse(code));
        }
    }

    #[test]
    fn lowercase_is_normalised() {
        assert_eq!(
            Uscc::parse("91350100m000100y43").unwrap().as_str(),
            "91350100M000100Y43"
        );
    }

    #[test]
    fn wrong_check_character_is_refused() {
        assert_eq!(
            Uscc::parse("91350100M000100Y44"),
            Err(UsccError::Check {
                found: '4',
                expected: '3'
            })
        );
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert_eq!(Uscc::parse("9135"), Err(UsccError::Length(4)));
        assert!(matches!(
            Uscc::parse("91350100I000100Y43"),
            Err(UsccError::Character {
                position: 9,
                character: 'I'
            })
        ));
    }

    #[test]
    fn every_body_has_exactly_one_check_character() {
        let body = "9144030071526726X";
        let valid: Vec<char> = ALPHABET
            .iter()
            .map(|&c| c as char)
            .filter(|c| Uscc::parse(&format!("{body}{c}")).is_ok())
            .collect();
        assert_eq!(valid, vec!['G']);
    }
}
