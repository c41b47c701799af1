//! What an enterprise may see of the record the units keep about its request: the units that
//! acted, never the officials' token subjects, and never the notes the units write for each
//! other. Pure: the stored events and cases are never changed (the hash chain stays as it is);
//! only what is shown to an enterprise is cut.
//!
//! Of an audit event, an enterprise sees:
//! - as `actor`, the party that acted ([`acting_party`]): `enterprise` for itself, the acting
//!   unit's code for an official of a unit, `system` for the SLA engine and administrators,
//!   `district` for a district-wide supervisor;
//! - the payload without the internal notes ([`INTERNAL_KEYS`], at any depth): co-units'
//!   opinion notes (`note`), the decision record of the opinions (`opinions`), a rectification
//!   case's contact note (`contact_note`) and the reason it was closed without a contact
//!   (`no_contact_reason`); and without the `reason` of a `return` or a `reroute` (routing
//!   between units). The closing note of a rectification case (`rectification.closed`) is what
//!   the enterprise is told, so it stays.
//!
//! Staff see everything.

use serde_json::Value;

use super::audit::Entry;

/// Who is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The units, supervisors and administrators: everything.
    Staff,
    /// The enterprise the request belongs to.
    Enterprise,
}

/// Payload keys that are internal wherever they appear.
pub const INTERNAL_KEYS: [&str; 4] = ["note", "opinions", "contact_note", "no_contact_reason"];

/// Actions whose `reason` is internal routing between units.
pub const INTERNAL_REASON_ACTIONS: [&str; 2] = ["return", "reroute"];

/// The party an enterprise is shown as having acted, from the event's role and unit.
pub fn acting_party(role: &str, unit: Option<&str>) -> String {
    match (role, unit) {
        ("enterprise", _) => "enterprise".into(),
        ("system" | "admin", _) => "system".into(),
        (_, Some(unit)) if !unit.is_empty() => unit.into(),
        _ => "district".into(),
    }
}

/// The event as `audience` may see it.
pub fn event_for(audience: Audience, entry: Entry) -> Entry {
    match audience {
        Audience::Staff => entry,
        Audience::Enterprise => event_for_enterprise(entry),
    }
}

/// The event as an enterprise may see it (see the module doc).
pub fn event_for_enterprise(mut entry: Entry) -> Entry {
    entry.actor = acting_party(&entry.role, entry.unit.as_deref());
    let closing_note = entry.action == "rectification.closed";
    if let Value::Object(map) = &mut entry.payload {
        if INTERNAL_REASON_ACTIONS.contains(&entry.action.as_str()) {
            map.remove("reason");
        }
        let kept = closing_note.then(|| map.remove("note")).flatten();
        strip_internal(&mut entry.payload);
        if let (Some(note), Value::Object(map)) = (kept, &mut entry.payload) {
            map.insert("note".into(), note);
        }
    }
    entry
}

/// A routing decision's explanation as an enterprise may see it: which rule sent it where,
/// not who re-routed it (`by`, an official's token subject) nor the units' internal `reason`.
pub fn routing_for_enterprise(mut explanation: Value) -> Value {
    if let Value::Object(map) = &mut explanation {
        map.remove("by");
        map.remove("reason");
    }
    strip_internal(&mut explanation);
    explanation
}

/// Removes [`INTERNAL_KEYS`] from `value`, at any depth.
fn strip_internal(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in INTERNAL_KEYS {
                map.remove(key);
            }
            map.values_mut().for_each(strip_internal);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_internal),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::json;

    use super::*;

    fn entry(action: &str, role: &str, unit: Option<&str>, payload: Value) -> Entry {
        Entry {
            request_id: "r".into(),
            actor: "zhang.wei@tax".into(),
            role: role.into(),
            unit: unit.map(str::to_string),
            action: action.into(),
            state_before: Some("under_review".into()),
            state_after: Some("under_review".into()),
            payload,
            at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_reroute_is_shown_without_who_and_why() {
        let seen = routing_for_enterprise(json!({
            "from": "market", "to": "tax", "by": "zhang.wei@service-center",
            "reason": "属税务事项", "rule": "the service centre arbitrated",
        }));
        assert_eq!(
            seen,
            json!({"from": "market", "to": "tax", "rule": "the service centre arbitrated"})
        );
    }

    #[test]
    fn the_actor_is_a_party_never_a_token_subject() {
        assert_eq!(acting_party("enterprise", None), "enterprise");
        assert_eq!(acting_party("clerk", Some("tax")), "tax");
        assert_eq!(acting_party("supervisor", Some("market")), "market");
        assert_eq!(acting_party("supervisor", None), "district");
        assert_eq!(acting_party("admin", None), "system");
        // Clock events carry the clock's unit but are the engine's doing.
        assert_eq!(acting_party("system", Some("tax")), "system");
        let seen = event_for_enterprise(entry("accept", "clerk", Some("tax"), json!({})));
        assert_eq!(seen.actor, "tax");
        assert_eq!(seen.role, "clerk");
        assert_eq!(seen.unit.as_deref(), Some("tax"));
    }

    #[test]
    fn internal_notes_are_cut_at_any_depth() {
        let opinion = entry(
            "give_opinion",
            "clerk",
            Some("planning"),
            json!({"opinion": "agree_with_conditions", "note": "消防意见待补"}),
        );
        assert_eq!(
            event_for_enterprise(opinion).payload,
            json!({"opinion": "agree_with_conditions"})
        );
        let decision = entry(
            "approve",
            "clerk",
            Some("construction"),
            json!({"reason": null, "opinions": [{"unit": "planning", "note": "x"}],
                   "detail": {"contact_note": "y", "kept": 1}}),
        );
        assert_eq!(
            event_for_enterprise(decision).payload,
            json!({"reason": null, "detail": {"kept": 1}})
        );
        let contacted = entry(
            "rectification.contacted",
            "clerk",
            Some("tax"),
            json!({"case": "c", "note": "企业负责人态度强硬"}),
        );
        assert_eq!(
            event_for_enterprise(contacted).payload,
            json!({"case": "c"})
        );
    }

    #[test]
    fn routing_reasons_are_internal_but_other_reasons_are_not() {
        for action in ["return", "reroute"] {
            let seen = event_for_enterprise(entry(
                action,
                "clerk",
                Some("tax"),
                json!({"reason": "不属于本单位", "unit": "market"}),
            ));
            assert_eq!(seen.payload, json!({"unit": "market"}), "{action}");
        }
        // A refusal's reason is what the enterprise is told.
        let refused = entry(
            "refuse",
            "clerk",
            Some("tax"),
            json!({"reason": "材料不齐"}),
        );
        assert_eq!(
            event_for_enterprise(refused).payload,
            json!({"reason": "材料不齐"})
        );
    }

    #[test]
    fn the_closing_note_is_what_the_enterprise_is_told() {
        let closed = entry(
            "rectification.closed",
            "supervisor",
            Some("tax"),
            json!({"case": "c", "note": "窗口增设引导员", "no_contact_reason": "电话空号"}),
        );
        assert_eq!(
            event_for_enterprise(closed).payload,
            json!({"case": "c", "note": "窗口增设引导员"})
        );
    }

    #[test]
    fn staff_see_everything() {
        let original = entry(
            "return",
            "clerk",
            Some("tax"),
            json!({"reason": "不属于本单位", "note": "n"}),
        );
        assert_eq!(event_for(Audience::Staff, original.clone()), original);
        assert_ne!(event_for(Audience::Enterprise, original.clone()), original);
    }
}
