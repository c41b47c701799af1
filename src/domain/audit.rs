//! The tamper-evident audit trail (全程动态监管): every change is an [`Event`] in one
//! hash chain.
//!
//! Each event's hash is SHA-256 over the previous event's hash and a canonical encoding of the
//! event (JSON with sorted keys, no whitespace, times as RFC 3339 UTC with microseconds). The
//! chain is global, numbered by `seq` from 1, so editing, deleting or reordering any stored
//! event breaks a link that [`verify`] finds. Appends never fork: `seq` and `prev_hash` are
//! unique in the database, so of two writers that read the same head only one can insert.
//!
//! One thing the chain cannot show by itself: the removal of its *newest* events leaves a
//! shorter chain whose links all hold. So a verification reports the [`Head`] it reached, and
//! whoever keeps that head outside the database can give it back later as an anchor:
//! [`Verifier::anchored`] then also requires that event to be there, with that hash
//! ([`Fault::Truncated`] when the chain ends before it, [`Fault::Rewritten`] when it is
//! another event).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an event records, before it is linked into the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The request it concerns.
    pub request_id: String,
    /// Who: the token's subject.
    pub actor: String,
    /// Their role.
    pub role: String,
    /// Their unit, if any.
    pub unit: Option<String>,
    /// The action (`intake`, `accept`, `clock_breached`…).
    pub action: String,
    /// State before.
    pub state_before: Option<String>,
    /// State after.
    pub state_after: Option<String>,
    /// Reason and other details.
    pub payload: Value,
    /// When (UTC, microseconds).
    pub at: DateTime<Utc>,
}

/// An event linked into the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// The recorded facts.
    pub entry: Entry,
    /// Hash of the previous event ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

/// The canonical bytes of an entry at position `seq`.
pub fn canonical(seq: i64, entry: &Entry) -> String {
    // serde_json's map keeps keys sorted, so this encoding is canonical.
    json!({
        "seq": seq,
        "request_id": entry.request_id,
        "actor": entry.actor,
        "role": entry.role,
        "unit": entry.unit,
        "action": entry.action,
        "state_before": entry.state_before,
        "state_after": entry.state_after,
        "payload": entry.payload,
        "at": entry.at.to_rfc3339_opts(SecondsFormat::Micros, true),
    })
    .to_string()
}

/// The hash of `entry` at `seq` after `prev_hash`.
pub fn link_hash(prev_hash: &str, seq: i64, entry: &Entry) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical(seq, entry).as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Links `entry` after the event `head` (or as the first event).
pub fn append(head: Option<(i64, &str)>, entry: Entry) -> Event {
    let (seq, prev_hash) = match head {
        Some((seq, hash)) => (seq + 1, hash.to_string()),
        None => (1, GENESIS.to_string()),
    };
    let hash = link_hash(&prev_hash, seq, &entry);
    Event {
        seq,
        entry,
        prev_hash,
        hash,
    }
}

/// Links `entries`, in order, after the event `head` (or from the first event).
pub fn append_all(head: Option<(i64, &str)>, entries: Vec<Entry>) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::with_capacity(entries.len());
    for entry in entries {
        let previous = match events.last() {
            Some(last) => Some((last.seq, last.hash.as_str())),
            None => head,
        };
        let event = append(previous, entry);
        events.push(event);
    }
    events
}

/// The newest event of a chain as seen at one moment: its position and hash. Kept outside
/// the database, it anchors a later verification (see [`Verifier::anchored`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Position of the newest event (0 for an empty chain).
    pub seq: i64,
    /// Its hash ([`GENESIS`] for an empty chain).
    pub hash: String,
}

/// What kind of fault a verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A link does not hold: an event was edited, deleted, inserted or moved.
    Link,
    /// Every link holds, but the chain ends before the anchor: its newest events were removed.
    Truncated,
    /// Every link holds, but the anchored position holds another event: the chain was
    /// rewritten (and re-hashed) at or before it.
    Rewritten,
}

/// The first event whose link does not hold, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at seq {seq}: {problem}")]
pub struct Broken {
    /// Where the chain breaks (the expected position when an event is missing; the first
    /// missing position when the chain was truncated).
    pub seq: i64,
    /// What is wrong.
    pub problem: String,
    /// Its kind.
    pub fault: Fault,
}

impl Broken {
    fn link(seq: i64, problem: impl Into<String>) -> Self {
        Self {
            seq,
            problem: problem.into(),
            fault: Fault::Link,
        }
    }
}

/// Walks a chain in `seq` order, one event at a time (so a long chain can be read in pages).
#[derive(Debug, Clone)]
pub struct Verifier {
    expected_seq: i64,
    prev: String,
    anchor: Option<Head>,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev: GENESIS.to_string(),
            anchor: None,
        }
    }
}

impl Verifier {
    /// A verifier that also requires the event `anchor` (a head seen earlier) to be in the
    /// chain with the same hash.
    pub fn anchored(anchor: Head) -> Self {
        Self {
            anchor: Some(anchor),
            ..Self::default()
        }
    }

    /// Checks the next event.
    pub fn push(&mut self, event: &Event) -> Result<(), Broken> {
        let expected = self.expected_seq;
        if event.seq != expected {
            return Err(Broken::link(
                expected,
                format!("event {expected} is missing (next stored is {})", event.seq),
            ));
        }
        if event.prev_hash != self.prev {
            return Err(Broken::link(
                event.seq,
                "its previous-hash does not match the event before it",
            ));
        }
        if link_hash(&self.prev, event.seq, &event.entry) != event.hash {
            return Err(Broken::link(
                event.seq,
                "its contents do not match its hash (edited)",
            ));
        }
        if let Some(anchor) = self.anchor.as_ref().filter(|a| a.seq == event.seq) {
            if anchor.hash != event.hash {
                return Err(Broken {
                    seq: event.seq,
                    problem: format!(
                        "event {} is not the event seen there before (hash {}…, the anchor says {}…): the chain was rewritten at or before it",
                        event.seq,
                        short(&event.hash),
                        short(&anchor.hash)
                    ),
                    fault: Fault::Rewritten,
                });
            }
        }
        self.prev = event.hash.clone();
        self.expected_seq += 1;
        Ok(())
    }

    /// Ends the walk: the head reached, or [`Fault::Truncated`] when the chain ends before
    /// the anchor.
    pub fn finish(&self) -> Result<Head, Broken> {
        let count = self.count();
        if let Some(anchor) = self.anchor.as_ref().filter(|a| a.seq > count) {
            let first = count + 1;
            let lost = if first == anchor.seq {
                format!("event {first} was removed")
            } else {
                format!("events {first} to {} at least were removed", anchor.seq)
            };
            return Err(Broken {
                seq: first,
                problem: format!(
                    "the chain ends at event {count}, but event {} (hash {}…) was there before: {lost}",
                    anchor.seq,
                    short(&anchor.hash)
                ),
                fault: Fault::Truncated,
            });
        }
        Ok(Head {
            seq: count,
            hash: self.prev.clone(),
        })
    }

    /// How many events held so far.
    pub fn count(&self) -> i64 {
        self.expected_seq - 1
    }

    /// The last verified position and hash.
    pub fn head(&self) -> (i64, &str) {
        (self.expected_seq - 1, &self.prev)
    }
}

/// Checks a whole chain given in `seq` order; returns how many events hold.
pub fn verify<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<i64, Broken> {
    let mut verifier = Verifier::default();
    for event in events {
        verifier.push(event)?;
    }
    verifier.finish().map(|head| head.seq)
}

/// The first characters of a hash, enough to tell two apart in a message.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(n: u32) -> Entry {
        Entry {
            request_id: format!("req-{}", n % 3),
            actor: "clerk-7".into(),
            role: "clerk".into(),
            unit: Some("market".into()),
            action: "accept".into(),
            state_before: Some("called".into()),
            state_after: Some("accepted".into()),
            payload: json!({"reason": format!("step {n}"), "items": ["a", "b"]}),
            at: Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, n).unwrap(),
        }
    }

    fn chain(n: u32) -> Vec<Event> {
        let mut events: Vec<Event> = Vec::new();
        for i in 0..n {
            let head = events.last().map(|e| (e.seq, e.hash.as_str()));
            let event = append(head, entry(i));
            events.push(event);
        }
        events
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(5)), Ok(5));
        assert_eq!(verify(&[]), Ok(0));
        assert_eq!(chain(1)[0].prev_hash, GENESIS);
    }

    #[test]
    fn the_encoding_is_canonical_and_stable() {
        let e = entry(1);
        assert_eq!(canonical(3, &e), canonical(3, &e.clone()));
        let text = canonical(3, &e);
        assert!(text.starts_with("{\"action\":\"accept\",\"actor\":\"clerk-7\",\"at\":\"2026-11-27T09:00:01.000000Z\""), "{text}");
        // Computed independently (Python: json.dumps(sort_keys=True, separators=(',', ':'))
        // and hashlib.sha256), so a change of the encoding cannot pass unnoticed.
        assert_eq!(
            link_hash(GENESIS, 1, &entry(0)),
            "9b96aa663585a22b1821b3be09ae1880a4480c2f04b7821dd84ad80d55a3975e"
        );
        assert_ne!(
            link_hash(GENESIS, 1, &entry(0)),
            link_hash(GENESIS, 2, &entry(0))
        );
    }

    #[test]
    fn an_edit_is_found_where_it_is() {
        let mut events = chain(5);
        events[2].entry.payload = json!({"reason": "nothing to see"});
        let broken = verify(&events).unwrap_err();
        assert_eq!(broken.seq, 3);
        assert!(broken.problem.contains("edited"));
    }

    #[test]
    fn a_rehashed_edit_breaks_the_next_link() {
        let mut events = chain(5);
        events[2].entry.state_after = Some("approved".into());
        events[2].hash = link_hash(&events[2].prev_hash, 3, &events[2].entry);
        assert_eq!(verify(&events).unwrap_err().seq, 4);
    }

    #[test]
    fn a_deletion_is_found() {
        let mut events = chain(5);
        events.remove(1);
        let broken = verify(&events).unwrap_err();
        assert_eq!(broken.seq, 2);
        assert!(broken.problem.contains("missing"));
    }

    #[test]
    fn a_swap_is_found() {
        let mut events = chain(4);
        events.swap(1, 2);
        assert_eq!(verify(&events).unwrap_err().seq, 2);
    }

    #[test]
    fn append_all_chains_like_one_append_at_a_time() {
        let one_by_one = chain(7);
        let head = Some((one_by_one[2].seq, one_by_one[2].hash.as_str()));
        let rest = append_all(head, (3..7).map(entry).collect());
        assert_eq!(rest, one_by_one[3..]);
        assert_eq!(append_all(None, (0..7).map(entry).collect()), one_by_one);
        assert!(append_all(head, Vec::new()).is_empty());
    }

    fn verify_anchored(events: &[Event], anchor: Head) -> Result<Head, Broken> {
        let mut verifier = Verifier::anchored(anchor);
        for event in events {
            verifier.push(event)?;
        }
        verifier.finish()
    }

    fn head_of(events: &[Event]) -> Head {
        let last = events.last().unwrap();
        Head {
            seq: last.seq,
            hash: last.hash.clone(),
        }
    }

    #[test]
    fn a_head_seen_before_anchors_a_later_verification() {
        let events = chain(6);
        let anchor = head_of(&events[..4]);
        // Still there (and the chain grew): the head reached is the newest event.
        assert_eq!(
            verify_anchored(&events, anchor.clone()),
            Ok(head_of(&events))
        );
        assert_eq!(
            verify_anchored(&events[..4], anchor.clone()),
            Ok(anchor.clone())
        );
        // An empty chain's head is the genesis.
        assert_eq!(
            Verifier::default().finish(),
            Ok(Head {
                seq: 0,
                hash: GENESIS.into()
            })
        );
    }

    #[test]
    fn removing_the_newest_events_is_found_with_an_anchor_only() {
        let events = chain(6);
        let anchor = head_of(&events);
        // Without the anchor, the shorter chain is valid.
        assert_eq!(verify(&events[..3]), Ok(3));
        let broken = verify_anchored(&events[..3], anchor.clone()).unwrap_err();
        assert_eq!(broken.fault, Fault::Truncated);
        assert_eq!(broken.seq, 4);
        assert!(
            broken.problem.contains("ends at event 3")
                && broken
                    .problem
                    .contains("events 4 to 6 at least were removed"),
            "{}",
            broken.problem
        );
        let broken = verify_anchored(&events[..5], anchor).unwrap_err();
        assert!(
            broken.problem.contains("event 6 was removed"),
            "{}",
            broken.problem
        );
    }

    #[test]
    fn a_rewritten_chain_is_found_at_the_anchor() {
        let events = chain(6);
        let anchor = head_of(&events[..5]);
        // Truncated to 3, then re-grown with other events past the anchor: every link holds.
        let head = Some((events[2].seq, events[2].hash.as_str()));
        let mut forged = events[..3].to_vec();
        forged.extend(append_all(head, (10..13).map(entry).collect()));
        assert_eq!(verify(&forged), Ok(6));
        let broken = verify_anchored(&forged, anchor).unwrap_err();
        assert_eq!(broken.fault, Fault::Rewritten);
        assert_eq!(broken.seq, 5);
        assert!(broken.problem.contains("rewritten"), "{}", broken.problem);
        // A link fault still comes first, as without an anchor.
        let mut edited = events.clone();
        edited[1].entry.actor = "someone".into();
        let broken = verify_anchored(&edited, head_of(&events)).unwrap_err();
        assert_eq!((broken.seq, broken.fault), (2, Fault::Link));
    }
}
