//! Bearer-token authentication.
//!
//! Tokens are JWTs. Those without a `kid` are HS256 tokens signed with our own secret (the
//! ones `mashangban token` prints); those with a `kid` come from the city's unified identity
//! platform and are checked with the RS256 or EdDSA public key configured under that id. A
//! key is only ever used with its own algorithm, so a token cannot choose a weaker one.
//! Signature, `exp`, `nbf`, `iss`, `aud`, `sub` and `role` are required, and the role's own
//! claim (`uscc` for an enterprise, `unit` for a clerk) must be present and valid.
//!
//! Every token, ours or the platform's, must also carry `iat`, not issued in the future, and
//! live no longer than `jwt.max_ttl` (`exp` − `iat`): a stolen token is worth hours, not years.
//! Our own secret is never shipped: see [`secret`].

mod principal;
pub mod secret;

pub use self::principal::{Actor, Principal, Role, Verified};

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{JwtSettings, KeyAlgorithm};

/// Claims of a mashangban token, as on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Who: a person or system id at the issuer.
    pub sub: String,
    /// `enterprise`, `clerk`, `supervisor` or `admin`.
    pub role: Role,
    /// Unified social credit code, for enterprises.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uscc: Option<String>,
    /// Unit code, for clerks (required) and supervisors (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not before, seconds since the epoch.
    pub nbf: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
}

/// Why a token was refused; the text goes into `WWW-Authenticate` and the problem detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(pub String);

/// A configured key that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("jwt.keys.{kid}.public_key: {reason}")]
pub struct KeyError {
    kid: String,
    reason: String,
}

/// Checks bearer tokens.
pub struct Authenticator {
    /// `None` when built without a secret: then no HS256 token verifies (an empty HMAC key
    /// would accept tokens anyone can sign).
    own_key: Option<DecodingKey>,
    external: HashMap<String, (Algorithm, DecodingKey)>,
    issuer: String,
    audience: String,
    leeway: u64,
    max_ttl: i64,
}

impl Authenticator {
    /// Builds the verifier from `[jwt]`, parsing every configured public key.
    pub fn new(settings: &JwtSettings) -> Result<Self, KeyError> {
        let mut external = HashMap::new();
        for (kid, key) in &settings.keys {
            let pem = key.public_key.as_bytes();
            let parsed = match key.algorithm {
                KeyAlgorithm::RS256 => {
                    DecodingKey::from_rsa_pem(pem).map(|k| (Algorithm::RS256, k))
                }
                KeyAlgorithm::EdDSA => DecodingKey::from_ed_pem(pem).map(|k| (Algorithm::EdDSA, k)),
            }
            .map_err(|e| KeyError {
                kid: kid.clone(),
                reason: e.to_string(),
            })?;
            external.insert(kid.clone(), parsed);
        }
        Ok(Self {
            own_key: (!settings.secret.is_empty())
                .then(|| DecodingKey::from_secret(settings.secret.as_bytes())),
            external,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway: settings.leeway_secs,
            max_ttl: i64::try_from(settings.max_ttl().as_secs()).unwrap_or(i64::MAX),
        })
    }

    /// Verifies `token` and returns who it speaks for.
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenError(format!("malformed token: {e}")))?;
        let (algorithm, key) = match &header.kid {
            None => (
                Algorithm::HS256,
                self.own_key.as_ref().ok_or_else(|| {
                    TokenError("no secret is configured for our own tokens".into())
                })?,
            ),
            Some(kid) => {
                let (algorithm, key) = self
                    .external
                    .get(kid)
                    .ok_or_else(|| TokenError(format!("unknown key id `{kid}`")))?;
                (*algorithm, key)
            }
        };
        if header.alg != algorithm {
            return Err(TokenError(format!(
                "algorithm {:?} is not accepted for this key (expected {algorithm:?})",
                header.alg
            )));
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| TokenError(describe_jwt_error(&e)))?;
        self.check_lifetime(&data.claims, Utc::now().timestamp())?;
        Principal::from_claims(&data.claims)
    }

    /// Refuses a token issued in the future or living longer than `jwt.max_ttl`.
    fn check_lifetime(&self, claims: &Claims, now: i64) -> Result<(), TokenError> {
        let leeway = i64::try_from(self.leeway).unwrap_or(i64::MAX);
        if claims.iat > now.saturating_add(leeway) {
            return Err(TokenError("token is issued in the future (iat)".into()));
        }
        if claims.exp.saturating_sub(claims.iat) > self.max_ttl {
            return Err(TokenError(format!(
                "token lifetime (exp - iat) exceeds the {} seconds accepted",
                self.max_ttl
            )));
        }
        Ok(())
    }
}

fn describe_jwt_error(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "token has expired".into(),
        ErrorKind::ImmatureSignature => "token is not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "token issuer is not accepted".into(),
        ErrorKind::InvalidAudience => "token audience is not accepted".into(),
        ErrorKind::InvalidSignature => "token signature is invalid".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("token lacks the `{claim}` claim"),
        // `iat` is not one of the library's spec claims: serde notices its absence.
        ErrorKind::Json(e) if e.to_string().starts_with("missing field `iat`") => {
            "token lacks the `iat` claim".into()
        }
        ErrorKind::Json(e) => format!("token claims are invalid: {e}"),
        _ => format!("token is invalid: {error}"),
    }
}

/// Signs HS256 tokens with the configured secret (for `mashangban token`, tests and demos).
/// `settings.secret` must be the resolved one ([`secret::resolve`]), never empty.
pub struct TokenIssuer {
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl TokenIssuer {
    /// An issuer using `[jwt]`.
    pub fn new(settings: &JwtSettings) -> Self {
        assert!(
            !settings.secret.is_empty(),
            "TokenIssuer needs the resolved secret (auth::secret::resolve)"
        );
        Self {
            key: EncodingKey::from_secret(settings.secret.as_bytes()),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        }
    }

    /// The claims a token for `principal` valid from `now` for `ttl` carries.
    pub fn claims(&self, principal: &Principal, ttl: Duration, now: DateTime<Utc>) -> Claims {
        let (uscc, unit) = principal.actor.claim_values();
        let issued = now.timestamp();
        Claims {
            sub: principal.subject.clone(),
            role: principal.actor.role(),
            uscc,
            unit,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: issued + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
            nbf: issued,
            iat: issued,
        }
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// A signed token for `principal`, valid from `now` for `ttl`.
    pub fn issue(&self, principal: &Principal, ttl: Duration, now: DateTime<Utc>) -> String {
        self.sign(&self.claims(principal, ttl, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::domain::{UnitCode, Uscc};

    fn setup() -> (Authenticator, TokenIssuer) {
        let mut settings = Settings::defaults();
        settings.jwt.secret = "unit-test-secret-0123456789-abcdefgh".into();
        (
            Authenticator::new(&settings.jwt).unwrap(),
            TokenIssuer::new(&settings.jwt),
        )
    }

    fn enterprise() -> Principal {
        Principal {
            subject: "portal-user-1".into(),
            actor: Actor::Enterprise(Uscc::parse("91350100M000100Y43").unwrap()),
        }
    }

    #[test]
    fn issued_tokens_verify_to_the_same_principal() {
        let (auth, issuer) = setup();
        for principal in [
            enterprise(),
            Principal {
                subject: "clerk-7".into(),
                actor: Actor::Clerk(UnitCode::ServiceCenter),
            },
            Principal {
                subject: "head".into(),
                actor: Actor::Supervisor(None),
            },
            Principal {
                subject: "ops".into(),
                actor: Actor::Admin,
            },
        ] {
            let token = issuer.issue(&principal, Duration::from_secs(60), Utc::now());
            assert_eq!(auth.verify(&token), Ok(principal));
        }
    }

    #[test]
    fn expired_and_future_tokens_are_refused() {
        let (auth, issuer) = setup();
        let old = Utc::now() - chrono::Duration::hours(2);
        let token = issuer.issue(&enterprise(), Duration::from_secs(60), old);
        assert_eq!(auth.verify(&token).unwrap_err().0, "token has expired");
        let future = Utc::now() + chrono::Duration::hours(2);
        let token = issuer.issue(&enterprise(), Duration::from_secs(60), future);
        assert_eq!(
            auth.verify(&token).unwrap_err().0,
            "token is not valid yet (nbf)"
        );
    }

    #[test]
    fn lifetimes_beyond_the_cap_or_issued_in_the_future_are_refused() {
        let (auth, issuer) = setup();
        let now = Utc::now();
        let cap = Duration::from_secs(12 * 3600);
        assert!(auth.verify(&issuer.issue(&enterprise(), cap, now)).is_ok());
        let long = issuer.issue(&enterprise(), cap + Duration::from_secs(1), now);
        assert!(auth.verify(&long).unwrap_err().0.contains("lifetime"));
        let mut claims = issuer.claims(&enterprise(), Duration::from_secs(60), now);
        claims.iat += 3600;
        claims.exp += 3600;
        assert!(
            auth.verify(&issuer.sign(&claims))
                .unwrap_err()
                .0
                .contains("issued in the future")
        );
        let claims = issuer.claims(&enterprise(), Duration::from_secs(60), now);
        let mut value = serde_json::to_value(&claims).unwrap();
        value.as_object_mut().unwrap().remove("iat");
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &value, &issuer.key).unwrap();
        assert_eq!(
            auth.verify(&token).unwrap_err().0,
            "token lacks the `iat` claim"
        );
    }

    #[test]
    fn wrong_issuer_audience_or_secret_is_refused() {
        let (auth, issuer) = setup();
        let mut claims = issuer.claims(&enterprise(), Duration::from_secs(60), Utc::now());
        claims.iss = "someone-else".into();
        assert!(
            auth.verify(&issuer.sign(&claims))
                .unwrap_err()
                .0
                .contains("issuer")
        );
        let mut claims = issuer.claims(&enterprise(), Duration::from_secs(60), Utc::now());
        claims.aud = "another-api".into();
        assert!(
            auth.verify(&issuer.sign(&claims))
                .unwrap_err()
                .0
                .contains("audience")
        );

        let mut settings = Settings::defaults();
        settings.jwt.secret = "x".repeat(40);
        let forger = TokenIssuer::new(&settings.jwt);
        let token = forger.issue(&enterprise(), Duration::from_secs(60), Utc::now());
        assert_eq!(
            auth.verify(&token).unwrap_err().0,
            "token signature is invalid"
        );
    }

    #[test]
    fn role_claims_are_checked() {
        let (auth, issuer) = setup();
        let mut claims = issuer.claims(&enterprise(), Duration::from_secs(60), Utc::now());
        claims.uscc = Some("91350100M000100Y44".into());
        assert!(
            auth.verify(&issuer.sign(&claims))
                .unwrap_err()
                .0
                .contains("uscc")
        );
        claims.uscc = None;
        assert!(
            auth.verify(&issuer.sign(&claims))
                .unwrap_err()
                .0
                .contains("uscc")
        );

        let clerk = Principal {
            subject: "c".into(),
            actor: Actor::Clerk(UnitCode::Tax),
        };
        let mut claims = issuer.claims(&clerk, Duration::from_secs(60), Utc::now());
        claims.unit = Some("police".into());
        assert!(
            auth.verify(&issuer.sign(&claims))
                .unwrap_err()
                .0
                .contains("unit")
        );
        claims.unit = None;
        assert!(
            auth.verify(&issuer.sign(&claims))
                .unwrap_err()
                .0
                .contains("unit")
        );
    }

    #[test]
    fn unknown_kid_and_garbage_are_refused() {
        let (auth, _) = setup();
        assert!(
            auth.verify("not-a-jwt")
                .unwrap_err()
                .0
                .starts_with("malformed token")
        );
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("nobody".into());
        let token = jsonwebtoken::encode(
            &header,
            &serde_json::json!({"sub": "x"}),
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert_eq!(
            auth.verify(&token).unwrap_err().0,
            "unknown key id `nobody`"
        );
    }
}
