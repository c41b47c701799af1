//! Who is calling: the verified principal of a request, and the extractor that finds it.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::{Authenticator, Claims, TokenError};
pub use crate::domain::actor::{Actor, Role};
use crate::domain::{UnitCode, Uscc};
use crate::error::{ApiError, ErrorCode};

/// A caller verified earlier in this request (by the rate limiter), kept in the request's
/// extensions so that the token is verified once per request.
#[derive(Debug, Clone)]
pub struct Verified(pub Principal);

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub subject: String,
    /// Role and scope.
    pub actor: Actor,
}

impl Principal {
    /// Builds the principal from verified claims, checking the role's own claims.
    pub fn from_claims(claims: &Claims) -> Result<Self, TokenError> {
        if claims.sub.trim().is_empty() {
            return Err(TokenError("token `sub` claim is empty".into()));
        }
        let unit = |required: bool| -> Result<Option<UnitCode>, TokenError> {
            match &claims.unit {
                Some(code) => code
                    .parse()
                    .map(Some)
                    .map_err(|e| TokenError(format!("token `unit` claim: {e}"))),
                None if required => Err(TokenError(format!(
                    "a {} token needs a `unit` claim",
                    claims.role.as_str()
                ))),
                None => Ok(None),
            }
        };
        let actor = match claims.role {
            Role::Enterprise => {
                let code = claims
                    .uscc
                    .as_deref()
                    .ok_or_else(|| TokenError("an enterprise token needs a `uscc` claim".into()))?;
                Actor::Enterprise(
                    Uscc::parse(code)
                        .map_err(|e| TokenError(format!("token `uscc` claim: {e}")))?,
                )
            }
            Role::Clerk => Actor::Clerk(unit(true)?.expect("required")),
            Role::Supervisor => Actor::Supervisor(unit(false)?),
            Role::Admin => Actor::Admin,
        };
        Ok(Self {
            subject: claims.sub.clone(),
            actor,
        })
    }

    /// Refuses (403) unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        let role = self.actor.role();
        if roles.contains(&role) {
            Ok(())
        } else {
            let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::forbidden(format!(
                "role `{}` may not do this; allowed: {}",
                role.as_str(),
                allowed.join(", ")
            )))
        }
    }
}

/// 401 with an RFC 6750 challenge.
fn unauthorized(code: ErrorCode, detail: &str) -> ApiError {
    let challenge = match code {
        ErrorCode::InvalidToken => format!(
            "Bearer realm=\"mashangban\", error=\"invalid_token\", error_description=\"{}\"",
            detail.replace(['"', '\\'], "'")
        ),
        _ => "Bearer realm=\"mashangban\"".to_string(),
    };
    let value = HeaderValue::from_str(&challenge)
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"mashangban\""));
    ApiError::new(code, detail).with_header(header::WWW_AUTHENTICATE, value)
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Principal, ApiError> {
    if let Some(Verified(principal)) = req.extensions().get::<Verified>() {
        return Ok(principal.clone());
    }
    let authenticator = req
        .app_data::<web::Data<Authenticator>>()
        .ok_or_else(|| ApiError::internal("Authenticator missing from app data"))?;
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        unauthorized(
            ErrorCode::MissingToken,
            "send Authorization: Bearer <token>",
        )
    })?;
    let text = value
        .to_str()
        .map_err(|_| unauthorized(ErrorCode::InvalidToken, "Authorization header is not ASCII"))?;
    let token = text
        .strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            unauthorized(
                ErrorCode::InvalidToken,
                "Authorization header must be `Bearer <token>`",
            )
        })?;
    authenticator
        .verify(token)
        .map_err(|e| unauthorized(ErrorCode::InvalidToken, &e.0))
}
