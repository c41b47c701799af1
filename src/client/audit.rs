//! `mashangban client verify`: the audit chain checked against the head seen last time.
//!
//! The chain's links show an edited or deleted event, but not the removal of the newest
//! events: what is left is a shorter chain that holds. So each intact verification's head
//! (the newest event's position and hash) is saved in the login file, outside the server's
//! database, and sent back as the anchor of the next verification; the server then also
//! checks that this event is still there, unchanged. When it is not, the command says so in
//! one line and exits 3, and keeps the saved head, so every later run says it again until
//! someone has looked (`--reset-anchor` accepts the chain as it is now).

use std::path::Path;

use serde_json::Value;

use super::config::{self, AuditHead};
use super::render::text;
use super::{Failure, problem};

/// Runs `verify` with the login in `path`; `reset_anchor` leaves the saved head out.
/// `ca_file` is the global `--ca-file`, overriding the login's.
pub fn verify(
    path: &Path,
    reset_anchor: bool,
    ca_file: Option<&Path>,
    json: bool,
) -> Result<String, Failure> {
    let mut login = config::load(path)?;
    let anchor = match &login.audit_head {
        Some(head) if !reset_anchor => Some(checked(path, head)?.clone()),
        _ => None,
    };
    let http = super::connect(&login, ca_file)?;
    let query = match &anchor {
        Some(head) => format!("?anchor_seq={}&anchor_hash={}", head.seq, head.hash),
        None => String::new(),
    };
    let reply = http.get(&format!("/api/v1/audit/verify{query}"))?;
    if !reply.ok() {
        return Err(problem::failure(&reply, http.server()));
    }
    let body = reply.json()?;
    let problem = text(&body, "problem");
    let kept = if anchor.is_some() {
        "; your saved head is kept, so every verify says this until it is explained (then \
         `mashangban client verify --reset-anchor` accepts the chain as it is now)"
    } else {
        ""
    };
    match body["status"].as_str() {
        Some("ok") => {}
        Some("truncated") => {
            return Err(Failure::alarm(format!(
                "the audit chain has lost events: {problem}{kept}"
            )));
        }
        Some("broken") => {
            return Err(Failure::alarm(format!(
                "the audit chain is broken at event {}: {problem}{kept}",
                text(&body, "broken_at_seq")
            )));
        }
        _ => {
            return Err(Failure::failed(format!(
                "the server's verification has an unknown status: {}",
                body["status"]
            )));
        }
    }
    let head = head_of(&body)?;
    if head != login.audit_head {
        login.audit_head = head.clone();
        config::save(path, &login)?;
    }
    if json {
        return Ok(format!("{}\n", reply.body.trim_end()));
    }
    let Some(head) = head else {
        return Ok("The audit chain is empty: nothing to verify yet.\n".into());
    };
    let checked = match (anchor, reset_anchor) {
        (Some(anchor), _) => format!(
            "The head you saw last (event {}, {}…) is still there, unchanged.",
            anchor.seq,
            short(&anchor.hash)
        ),
        (None, true) => "Not checked against the head saved before (--reset-anchor).".into(),
        // Two lines: every line of the client's output fits 80 columns.
        (None, false) => "No head saved before: from now on each verify checks that\n\
                          the head of the one before is still there."
            .into(),
    };
    Ok(format!(
        "The audit chain is intact: {} events.\n{checked}\nSaved its head (event {}, {}…) in {}.\n",
        text(&body, "count"),
        head.seq,
        short(&head.hash),
        path.display()
    ))
}

/// The saved head, if it could be a head (the file may have been edited by hand).
fn checked<'a>(path: &Path, head: &'a AuditHead) -> Result<&'a AuditHead, Failure> {
    let hex = head.hash.len() == 64
        && head
            .hash
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if head.seq >= 1 && hex {
        Ok(head)
    } else {
        Err(Failure::usage(format!(
            "{}: [audit_head] is not a head the server gave (seq from 1, hash of 64 hex digits); \
             run `mashangban client verify --reset-anchor`",
            path.display()
        )))
    }
}

/// `head` of an intact verification (none for an empty chain).
fn head_of(body: &Value) -> Result<Option<AuditHead>, Failure> {
    let head = &body["head"];
    if head.is_null() {
        return Ok(None);
    }
    match (head["seq"].as_i64(), head["hash"].as_str()) {
        (Some(seq), Some(hash)) => Ok(Some(AuditHead {
            seq,
            hash: hash.to_string(),
        })),
        _ => Err(Failure::failed(format!(
            "the server's verification has a malformed head: {head}"
        ))),
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
