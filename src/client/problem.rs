//! Turning an unsuccessful answer into the one line a clerk reads.
//!
//! The server answers every error as RFC 9457 `application/problem+json` with a stable
//! `code`; the line is `code: detail`, with the wrong fields of a `validation_failed` inline.
//! Two answers to an action get their own wording: 412 (someone else changed the request
//! first) and 409 (the action does not fit the request's state: here is what does).

use serde::Deserialize;
use serde_json::Value;

use super::Failure;
use super::http::Reply;
use super::render::{clean, cut};

/// The members of a problem the client reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Problem {
    /// Stable machine code.
    pub code: String,
    /// Short summary.
    pub title: String,
    /// What happened.
    pub detail: String,
    /// Wrong fields.
    pub errors: Vec<FieldError>,
    /// The request's state (409 `action_not_allowed`).
    pub state: Option<String>,
    /// Actions possible now (409 `action_not_allowed`).
    pub allowed: Option<Vec<String>>,
}

/// One wrong field.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FieldError {
    /// JSON pointer.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// The problem in `reply`, if it carries one.
    pub fn of(reply: &Reply) -> Option<Problem> {
        let looks_like_problem = reply.content_type == "application/problem+json"
            || reply.content_type.ends_with("json");
        if !looks_like_problem {
            return None;
        }
        serde_json::from_str::<Problem>(&reply.body)
            .ok()
            .filter(|p| !p.code.is_empty())
    }

    /// `code: detail (pointer: message; …)`; the fields are left out when the detail already
    /// names them all (the server does that for a single wrong field).
    pub fn line(&self) -> String {
        let detail = if self.detail.is_empty() {
            &self.title
        } else {
            &self.detail
        };
        let mut line = format!("{}: {detail}", self.code);
        let fields: Vec<String> = self
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.pointer, e.message))
            .collect();
        if !fields.is_empty() && !fields.iter().all(|f| detail.contains(f.as_str())) {
            line.push_str(&format!(" ({})", fields.join("; ")));
        }
        line
    }
}

/// The failure for any unsuccessful answer: 401 says to log in again (exit 2); anything else
/// is `code: detail` (exit 1).
pub fn failure(reply: &Reply, server: &str) -> Failure {
    if (300..400).contains(&reply.status) {
        return Failure::usage(match &reply.location {
            Some(to) => format!(
                "the server sends this client elsewhere (HTTP {} to {to}): log in with that address",
                reply.status
            ),
            None => format!("the server answered HTTP {} (a redirect)", reply.status),
        });
    }
    let Some(problem) = Problem::of(reply) else {
        let body = cut(&clean(reply.body.trim()), 200);
        return Failure::failed(if body.is_empty() {
            format!("the server answered HTTP {}", reply.status)
        } else {
            format!("the server answered HTTP {}: {body}", reply.status)
        });
    };
    if reply.status == 401 {
        return Failure::usage(format!(
            "{}; log in again: mashangban client login --server {server} --token NEW_TOKEN",
            problem.line()
        ));
    }
    Failure::failed(problem.line())
}

/// The client command that takes a wire action, for "what is possible now" lists.
pub fn command_for(action: &str) -> String {
    match action {
        "start_review" => "review".into(),
        "begin_special_procedure" => "special-procedure start".into(),
        "end_special_procedure" => "special-procedure end".into(),
        "withdraw" | "supplement" => format!("{action} (by the enterprise)"),
        other => other.replace('_', "-"),
    }
}

/// The failure for an unsuccessful action.
///
/// `label` names the request (its number); `command` is the client command that was run;
/// `current` is the request as it is now, fetched again after a 412 (if that worked).
pub fn action_failure(
    reply: &Reply,
    server: &str,
    command: &str,
    label: &str,
    current: Option<(&Value, Option<&str>)>,
) -> Failure {
    match reply.status {
        412 => {
            let now = match current {
                Some((view, etag)) => {
                    let state = view["status"].as_str().unwrap_or("?");
                    match super::render::revision(etag) {
                        Some(rev) => format!(": it is now {state} ({rev})"),
                        None => format!(": it is now {state}"),
                    }
                }
                None => String::new(),
            };
            Failure::failed(format!(
                "{command} not done: someone else changed request {label} first{now}; look at it again (mashangban client show ID) and decide"
            ))
        }
        409 => match Problem::of(reply) {
            Some(problem) if problem.code == "action_not_allowed" => {
                let state = problem.state.as_deref().unwrap_or("in another state");
                let allowed = match problem.allowed.as_deref() {
                    None => String::new(),
                    Some([]) => "; nothing more can be done (the request is closed)".into(),
                    Some(list) => format!(
                        "; possible now: {}",
                        list.iter()
                            .map(|a| command_for(a))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                Failure::failed(format!(
                    "action_not_allowed: cannot {command} request {label}: it is {state}{allowed}"
                ))
            }
            _ => failure(reply, server),
        },
        _ => failure(reply, server),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problem_reply(status: u16, body: Value) -> Reply {
        Reply {
            status,
            etag: None,
            content_type: "application/problem+json".into(),
            location: None,
            body: body.to_string(),
        }
    }

    const SERVER: &str = "http://127.0.0.1:8080";

    #[test]
    fn one_line_with_the_code_and_the_fields() {
        let reply = problem_reply(
            422,
            json!({"type": "urn:mashangban:problem:validation_failed", "title": "Invalid input",
                   "status": 422, "code": "validation_failed", "detail": "2 fields are invalid",
                   "errors": [{"pointer": "/reason", "message": "is required"},
                              {"pointer": "/items", "message": "must list at least one item"}]}),
        );
        let failure = failure(&reply, SERVER);
        assert_eq!(failure.exit, 1);
        assert_eq!(
            failure.message,
            "validation_failed: 2 fields are invalid (/reason: is required; /items: must list at least one item)"
        );
        // A single field the detail already names is not repeated.
        let reply = problem_reply(
            422,
            json!({"code": "validation_failed", "detail": "/reason: is required",
                   "errors": [{"pointer": "/reason", "message": "is required"}]}),
        );
        assert_eq!(
            super::failure(&reply, SERVER).message,
            "validation_failed: /reason: is required"
        );
    }

    #[test]
    fn an_expired_token_says_to_log_in_again() {
        let reply = problem_reply(
            401,
            json!({"code": "invalid_token", "title": "Invalid token", "detail": "the token has expired"}),
        );
        let failure = failure(&reply, SERVER);
        assert_eq!(failure.exit, 2);
        assert_eq!(
            failure.message,
            "invalid_token: the token has expired; log in again: mashangban client login --server http://127.0.0.1:8080 --token NEW_TOKEN"
        );
    }

    #[test]
    fn answers_that_are_not_problems() {
        let reply = Reply {
            status: 502,
            etag: None,
            content_type: "text/html".into(),
            location: None,
            body: "<html>\nBad gateway\n</html>".into(),
        };
        assert_eq!(
            failure(&reply, SERVER).message,
            "the server answered HTTP 502: <html> Bad gateway </html>"
        );
        let redirect = Reply {
            status: 308,
            location: Some("https://msb.example.gov.cn/api/v1/me".into()),
            ..reply
        };
        let failure = failure(&redirect, SERVER);
        assert_eq!(failure.exit, 2);
        assert!(failure.message.contains("https://msb.example.gov.cn"));
    }

    #[test]
    fn stale_etag_says_someone_else_changed_it_first() {
        let reply = problem_reply(
            412,
            json!({"code": "precondition_failed", "title": "Precondition failed",
                   "detail": "the request has changed (now \"r4\")"}),
        );
        let view = json!({"status": "accepted"});
        let failure = action_failure(
            &reply,
            SERVER,
            "accept",
            "PT20261128-000001",
            Some((&view, Some("\"r4\""))),
        );
        assert_eq!(failure.exit, 1);
        assert_eq!(
            failure.message,
            "accept not done: someone else changed request PT20261128-000001 first: it is now accepted (r4); look at it again (mashangban client show ID) and decide"
        );
        // Without the current state, still plain.
        let failure = action_failure(&reply, SERVER, "accept", "PT1", None);
        assert!(
            failure
                .message
                .contains("someone else changed request PT1 first;")
        );
    }

    #[test]
    fn action_not_allowed_names_the_state_and_the_commands_possible_now() {
        let reply = problem_reply(
            409,
            json!({"code": "action_not_allowed", "title": "Action not allowed",
                   "detail": "`approve` is not possible while the request is accepted",
                   "state": "accepted",
                   "allowed": ["withdraw", "start_review", "return", "approve_extension"]}),
        );
        let failure = action_failure(&reply, SERVER, "approve", "PT1", None);
        assert_eq!(failure.exit, 1);
        assert_eq!(
            failure.message,
            "action_not_allowed: cannot approve request PT1: it is accepted; possible now: withdraw (by the enterprise), review, return, approve-extension"
        );
        let closed = problem_reply(
            409,
            json!({"code": "action_not_allowed", "detail": "x", "state": "delivered", "allowed": []}),
        );
        assert!(
            action_failure(&closed, SERVER, "deliver", "PT1", None)
                .message
                .ends_with("it is delivered; nothing more can be done (the request is closed)")
        );
    }

    #[test]
    fn other_action_failures_are_plain_problems() {
        let reply = problem_reply(
            403,
            json!({"code": "forbidden", "detail": "unit `justice` is not responsible for this request"}),
        );
        assert_eq!(
            action_failure(&reply, SERVER, "accept", "PT1", None).message,
            "forbidden: unit `justice` is not responsible for this request"
        );
    }
}
