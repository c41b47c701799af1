//! Checking an enterprise's submission against the catalog.
//!
//! The body is read as plain JSON and checked field by field, so that every wrong field is
//! reported at once with a JSON pointer (RFC 6901), not only the first serde error. Fields an
//! enterprise may not set (status, units, due dates, numbers…) are refused by name: there is
//! no mass assignment. The result, [`Intake`], is what the request will be made of.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::catalog::{Catalog, Channel, Field, FieldType, Matter, Relief};
use super::request::RequestKind;
use super::uscc::Uscc;
use crate::error::{FieldError, escape_pointer as escape};

/// Top-level keys a submission may carry.
const KEYS: &[&str] = &[
    "matter",
    "bundle",
    "channel",
    "intake_region",
    "applicant",
    "contact_email",
    "form",
    "materials",
    "commitment",
];

/// Most materials one submission may declare (the largest bundle asks for far fewer).
pub const MATERIALS_MAX: usize = 50;

/// Default longest `string` field, in characters.
const STRING_MAX: usize = 200;
/// Default longest `text` field, in characters.
const TEXT_MAX: usize = 4000;

/// A checked submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Intake {
    /// Matter or bundle.
    pub kind: RequestKind,
    /// Its code.
    pub code: String,
    /// Channel.
    pub channel: Channel,
    /// Region of intake, for `cross_region`.
    pub intake_region: Option<String>,
    /// Enterprise name as given.
    pub applicant_name: String,
    /// Contact e-mail.
    pub contact_email: String,
    /// The form as submitted (checked).
    pub form: Value,
    /// Notification-commitment chosen.
    pub commitment: bool,
    /// Declared and pending materials.
    pub materials: Vec<DeclaredMaterial>,
}

/// A material of the request.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredMaterial {
    /// The matter asking for it.
    pub matter_code: String,
    /// Catalog code.
    pub code: String,
    /// Name (as declared, or the catalog's when pending).
    pub name: String,
    /// SHA-256, hex, when provided.
    pub sha256: Option<String>,
    /// Size in bytes, when provided.
    pub size_bytes: Option<i64>,
    /// Working days allowed to supply it, when missing at intake (容缺).
    pub pending_days: Option<u32>,
}

/// Collects violations with their pointers.
#[derive(Default)]
struct Violations(Vec<FieldError>);

impl Violations {
    fn add(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            pointer: pointer.into(),
            message: message.into(),
        });
    }
}

/// Checks `body` against `catalog` for the enterprise `uscc`.
pub fn check(catalog: &Catalog, body: &Value, uscc: &Uscc) -> Result<Intake, Vec<FieldError>> {
    let mut v = Violations::default();
    let Some(object) = body.as_object() else {
        v.add("", "the body must be a JSON object");
        return Err(v.0);
    };
    for key in object.keys() {
        if !KEYS.contains(&key.as_str()) {
            v.add(
                format!("/{}", escape(key)),
                format!(
                    "unknown field `{key}`; a submission may set only: {}",
                    KEYS.join(", ")
                ),
            );
        }
    }

    // What is being asked for.
    let matter_code = optional_string(object, "matter", &mut v);
    let bundle_code = optional_string(object, "bundle", &mut v);
    let (kind, code, matters, channels): (RequestKind, String, Vec<&Matter>, Vec<Channel>) =
        match (matter_code, bundle_code) {
            (Some(code), None) => match catalog.matter(&code) {
                Some(m) => (RequestKind::Matter, code, vec![m], m.channels.clone()),
                None => {
                    v.add("/matter", format!("unknown matter `{code}`"));
                    (RequestKind::Matter, code, vec![], vec![])
                }
            },
            (None, Some(code)) => match catalog.bundle(&code) {
                Some(b) => {
                    let ms = b.matters.iter().filter_map(|m| catalog.matter(m)).collect();
                    (RequestKind::Bundle, code, ms, b.channels.clone())
                }
                None => {
                    v.add("/bundle", format!("unknown bundle `{code}`"));
                    (RequestKind::Bundle, code, vec![], vec![])
                }
            },
            (Some(_), Some(_)) => {
                v.add("/bundle", "give either `matter` or `bundle`, not both");
                (RequestKind::Matter, String::new(), vec![], vec![])
            }
            (None, None) => {
                // `null` is not given: `{"bundle": null}` without a matter names nothing to
                // route (a non-string already has its own error).
                let given = |key: &str| object.get(key).is_some_and(|value| !value.is_null());
                if !given("matter") && !given("bundle") {
                    v.add(
                        "/matter",
                        "required: the code of a matter (or `bundle` for a bundle)",
                    );
                }
                (RequestKind::Matter, String::new(), vec![], vec![])
            }
        };
    let known = !matters.is_empty();

    // Channel and region.
    let channel = match object.get("channel") {
        None => {
            v.add(
                "/channel",
                "required: online, window, self_service or cross_region",
            );
            None
        }
        Some(value) => match serde_json::from_value::<Channel>(value.clone()) {
            Ok(c) => {
                if known && !channels.contains(&c) {
                    let allowed: Vec<&str> = channels.iter().map(|c| c.as_str()).collect();
                    v.add(
                        "/channel",
                        format!(
                            "`{}` is not offered for `{code}`; offered: {}",
                            c.as_str(),
                            allowed.join(", ")
                        ),
                    );
                }
                Some(c)
            }
            Err(_) => {
                v.add(
                    "/channel",
                    "must be one of: online, window, self_service, cross_region",
                );
                None
            }
        },
    };
    let intake_region = optional_string(object, "intake_region", &mut v);
    match (channel, &intake_region) {
        (Some(Channel::CrossRegion), None) => v.add(
            "/intake_region",
            "required for cross_region: the region that took the request",
        ),
        (Some(Channel::CrossRegion), Some(r)) if r.trim().is_empty() || r.chars().count() > 64 => {
            v.add("/intake_region", "must be 1 to 64 characters")
        }
        (Some(c), Some(_)) if c != Channel::CrossRegion => v.add(
            "/intake_region",
            "only cross_region requests have an intake region",
        ),
        _ => {}
    }

    // Applicant.
    let applicant_name = check_applicant(object.get("applicant"), uscc, &mut v);

    // Contact.
    let contact_email = match object.get("contact_email") {
        Some(Value::String(e)) if is_email(e) => e.trim().to_string(),
        Some(Value::String(_)) => {
            v.add(
                "/contact_email",
                "must be an e-mail address such as office@example.com",
            );
            String::new()
        }
        Some(_) => {
            v.add("/contact_email", "must be a string");
            String::new()
        }
        None => {
            v.add(
                "/contact_email",
                "required: where the enterprise hears about the request",
            );
            String::new()
        }
    };

    // Commitment (告知承诺).
    let commitment = match object.get("commitment") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            v.add("/commitment", "must be true or false");
            false
        }
    };
    if commitment && known && !matters.iter().all(|m| m.commitment_allowed) {
        v.add(
            "/commitment",
            format!("`{code}` does not allow approval on a signed commitment (告知承诺)"),
        );
    }

    // Form.
    let form = object
        .get("form")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    if known {
        match kind {
            RequestKind::Matter => check_form(matters[0], &form, "/form", &mut v),
            RequestKind::Bundle => match form.as_object() {
                Some(by_matter) => {
                    for key in by_matter.keys() {
                        if !matters.iter().any(|m| &m.code == key) {
                            v.add(
                                format!("/form/{}", escape(key)),
                                format!("`{key}` is not a matter of `{code}`"),
                            );
                        }
                    }
                    for m in &matters {
                        let part = by_matter
                            .get(&m.code)
                            .cloned()
                            .unwrap_or(Value::Object(Map::new()));
                        check_form(m, &part, &format!("/form/{}", escape(&m.code)), &mut v);
                    }
                }
                None => v.add(
                    "/form",
                    "must be an object with one form per matter of the bundle",
                ),
            },
        }
    }

    // Materials.
    let materials = if known {
        check_materials(object.get("materials"), &matters, kind, &mut v)
    } else {
        Vec::new()
    };

    if known {
        check_rules(&matters, kind, &form, commitment, &materials, &mut v);
    }

    if !v.0.is_empty() {
        return Err(v.0);
    }
    Ok(Intake {
        kind,
        code,
        channel: channel.expect("checked"),
        intake_region,
        applicant_name,
        contact_email,
        form,
        commitment,
        materials,
    })
}

fn optional_string(object: &Map<String, Value>, key: &str, v: &mut Violations) -> Option<String> {
    match object.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            v.add(format!("/{key}"), "must be a string");
            None
        }
    }
}

fn check_applicant(value: Option<&Value>, uscc: &Uscc, v: &mut Violations) -> String {
    let Some(value) = value else {
        v.add("/applicant", "required: {\"name\": …, \"uscc\": …}");
        return String::new();
    };
    let Some(object) = value.as_object() else {
        v.add("/applicant", "must be an object with `name` and `uscc`");
        return String::new();
    };
    for key in object.keys() {
        if key != "name" && key != "uscc" {
            v.add(
                format!("/applicant/{}", escape(key)),
                format!("unknown field `{key}`"),
            );
        }
    }
    let name = match object.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 200 => {
            n.trim().to_string()
        }
        Some(_) => {
            v.add(
                "/applicant/name",
                "must be the enterprise name, 1 to 200 characters",
            );
            String::new()
        }
        None => {
            v.add("/applicant/name", "required");
            String::new()
        }
    };
    match object.get("uscc") {
        Some(Value::String(code)) => match Uscc::parse(code) {
            Ok(parsed) if &parsed == uscc => {}
            Ok(_) => v.add(
                "/applicant/uscc",
                "must be the unified social credit code of the authenticated enterprise",
            ),
            Err(e) => v.add("/applicant/uscc", e.to_string()),
        },
        Some(_) => v.add("/applicant/uscc", "must be a string"),
        None => v.add("/applicant/uscc", "required"),
    }
    name
}

/// Checks one matter's form object.
fn check_form(matter: &Matter, form: &Value, base: &str, v: &mut Violations) {
    let Some(object) = form.as_object() else {
        v.add(base, "must be an object");
        return;
    };
    for key in object.keys() {
        if !matter.fields.iter().any(|f| &f.name == key) {
            let known: Vec<&str> = matter.fields.iter().map(|f| f.name.as_str()).collect();
            v.add(
                format!("{base}/{}", escape(key)),
                format!(
                    "`{key}` is not a field of `{}`; fields: {}",
                    matter.code,
                    known.join(", ")
                ),
            );
        }
    }
    for field in &matter.fields {
        let pointer = format!("{base}/{}", escape(&field.name));
        match object.get(&field.name) {
            None | Some(Value::Null) => {
                if field.required {
                    v.add(
                        pointer,
                        format!("required: {} ({})", field.label_en, field.label_zh),
                    );
                }
            }
            Some(value) => {
                if let Err(message) = check_field(field, value) {
                    v.add(pointer, message);
                }
            }
        }
    }
}

/// Checks one value against its field's type and constraints.
pub fn check_field(field: &Field, value: &Value) -> Result<(), String> {
    let text = |value: &Value| {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or("must be a string".to_string())
    };
    let length = |s: &str, default_max: usize| -> Result<(), String> {
        let n = s.chars().count();
        let min = field
            .min_length
            .unwrap_or(if field.required { 1 } else { 0 }) as usize;
        let max = field.max_length.map(|m| m as usize).unwrap_or(default_max);
        if n < min || n > max {
            Err(format!("must be {min} to {max} characters long, is {n}"))
        } else {
            Ok(())
        }
    };
    let range = |x: f64| -> Result<(), String> {
        if field.min.is_some_and(|m| x < m) || field.max.is_some_and(|m| x > m) {
            let min = field.min.map(|m| m.to_string()).unwrap_or("-∞".into());
            let max = field.max.map(|m| m.to_string()).unwrap_or("∞".into());
            Err(format!("must be between {min} and {max}, is {x}"))
        } else {
            Ok(())
        }
    };
    match field.field_type {
        FieldType::String => length(&text(value)?, STRING_MAX),
        FieldType::Text => length(&text(value)?, TEXT_MAX),
        FieldType::Integer => match value.as_i64() {
            Some(n) => range(n as f64),
            None => Err("must be a whole number".into()),
        },
        FieldType::Decimal => match value.as_f64() {
            Some(x) if x.is_finite() => range(x),
            _ => Err("must be a number".into()),
        },
        FieldType::Boolean => value
            .as_bool()
            .map(|_| ())
            .ok_or("must be true or false".into()),
        FieldType::Date => {
            let s = text(value)?;
            NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .map(|_| ())
                .map_err(|_| format!("must be a date YYYY-MM-DD, is `{s}`"))
        }
        FieldType::Enum => {
            let s = text(value)?;
            if field.options.contains(&s) {
                Ok(())
            } else {
                Err(format!("must be one of: {}", field.options.join(", ")))
            }
        }
        FieldType::Email => {
            let s = text(value)?;
            if is_email(&s) {
                Ok(())
            } else {
                Err("must be an e-mail address".into())
            }
        }
        FieldType::Phone => {
            let s = text(value)?;
            if is_phone(&s) {
                Ok(())
            } else {
                Err("must be a mainland phone number: 11-digit mobile or 0area-number".into())
            }
        }
        FieldType::Uscc => Uscc::parse(&text(value)?)
            .map(|_| ())
            .map_err(|e| e.to_string()),
    }
}

fn check_materials(
    value: Option<&Value>,
    matters: &[&Matter],
    kind: RequestKind,
    v: &mut Violations,
) -> Vec<DeclaredMaterial> {
    let items: Vec<Value> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.len() > MATERIALS_MAX => {
            v.add(
                "/materials",
                format!("at most {MATERIALS_MAX} materials, not {}", items.len()),
            );
            return Vec::new();
        }
        Some(Value::Array(items)) => items.clone(),
        Some(_) => {
            v.add("/materials", "must be an array of declared materials");
            return Vec::new();
        }
    };
    let mut declared: Vec<DeclaredMaterial> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let base = format!("/materials/{i}");
        let Some(file) = check_file(item, &base, &[], matters, kind, v) else {
            continue;
        };
        if declared
            .iter()
            .any(|d| d.matter_code == file.matter_code && d.code == file.code)
        {
            v.add(
                format!("{base}/code"),
                format!("`{}` is declared twice", file.code),
            );
            continue;
        }
        declared.push(file);
    }

    // Required materials not declared: pending if 容缺 is allowed, refused otherwise.
    for matter in matters {
        for material in matter.materials.iter().filter(|m| m.required) {
            if declared
                .iter()
                .any(|d| d.matter_code == matter.code && d.code == material.code)
            {
                continue;
            }
            match material.deferrable_days {
                Some(days) => declared.push(DeclaredMaterial {
                    matter_code: matter.code.clone(),
                    code: material.code.clone(),
                    name: material.name_zh.clone(),
                    sha256: None,
                    size_bytes: None,
                    pending_days: Some(days),
                }),
                None => v.add(
                    "/materials",
                    format!(
                        "required material `{}` ({}) of `{}` is missing and may not be supplied later",
                        material.code, material.name_zh, matter.code
                    ),
                ),
            }
        }
    }
    declared
}

/// Members of a declared material.
const FILE_KEYS: &[&str] = &["matter", "code", "name", "sha256", "size_bytes"];

/// Checks one declared file at `base` (`/materials/0` at intake, the body itself when a
/// deferred material is supplied): the matter it is for, a material code of that matter, the
/// file name, its SHA-256 and size. `extra` are further members the caller reads itself.
fn check_file(
    item: &Value,
    base: &str,
    extra: &[&str],
    matters: &[&Matter],
    kind: RequestKind,
    v: &mut Violations,
) -> Option<DeclaredMaterial> {
    let Some(object) = item.as_object() else {
        v.add(
            base,
            "must be an object with code, name, sha256 and size_bytes",
        );
        return None;
    };
    for key in object.keys() {
        if !FILE_KEYS.contains(&key.as_str()) && !extra.contains(&key.as_str()) {
            v.add(
                format!("{base}/{}", escape(key)),
                format!("unknown field `{key}`"),
            );
        }
    }
    let matter = match (kind, object.get("matter")) {
        (_, Some(Value::String(code))) => match matters.iter().find(|m| &m.code == code) {
            Some(m) => Some(*m),
            None => {
                v.add(
                    format!("{base}/matter"),
                    format!("`{code}` is not a matter of this request"),
                );
                None
            }
        },
        (_, Some(_)) => {
            v.add(format!("{base}/matter"), "must be a matter code");
            None
        }
        (RequestKind::Matter, None) => matters.first().copied(),
        (RequestKind::Bundle, None) => {
            v.add(
                format!("{base}/matter"),
                "required in a bundle: which matter the material is for",
            );
            None
        }
    };
    let code = match object.get("code") {
        Some(Value::String(c)) => c.clone(),
        _ => {
            v.add(
                format!("{base}/code"),
                "required: the material code from the catalog",
            );
            return None;
        }
    };
    let matter = matter?;
    if !matter.materials.iter().any(|m| m.code == code) {
        let known: Vec<&str> = matter.materials.iter().map(|m| m.code.as_str()).collect();
        v.add(
            format!("{base}/code"),
            format!(
                "`{code}` is not a material of `{}`; materials: {}",
                matter.code,
                known.join(", ")
            ),
        );
        return None;
    }
    let name = match object.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 200 => {
            n.trim().to_string()
        }
        _ => {
            v.add(
                format!("{base}/name"),
                "required: the file name, 1 to 200 characters",
            );
            String::new()
        }
    };
    let sha256 = match object.get("sha256") {
        Some(Value::String(h)) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            h.to_ascii_lowercase()
        }
        _ => {
            v.add(
                format!("{base}/sha256"),
                "required: the SHA-256 of the file, 64 hex digits",
            );
            String::new()
        }
    };
    let size_bytes = match object.get("size_bytes").and_then(Value::as_i64) {
        Some(n) if n > 0 => n,
        _ => {
            v.add(
                format!("{base}/size_bytes"),
                "required: the file size in bytes, at least 1",
            );
            0
        }
    };
    Some(DeclaredMaterial {
        matter_code: matter.code.clone(),
        code,
        name,
        sha256: Some(sha256),
        size_bytes: Some(size_bytes),
        pending_days: None,
    })
}

/// A deferred material supplied after intake (容缺后补), checked against the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct SuppliedMaterial {
    /// The file, as a declared material (`pending_days` is `None`).
    pub file: DeclaredMaterial,
    /// Recorded at the window by a clerk rather than supplied online.
    pub received_at_window: bool,
}

/// Checks the body of a supply (`POST /api/v1/requests/{id}/materials`): the same members as a
/// material declared at intake, plus `received_at_window`, with pointers from the body's root.
/// `matters` are the request's matters (one, or a bundle's).
pub fn check_supplied(
    body: &Value,
    matters: &[&Matter],
    kind: RequestKind,
) -> Result<SuppliedMaterial, Vec<FieldError>> {
    let mut v = Violations::default();
    let received_at_window = match body.get("received_at_window") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            v.add("/received_at_window", "must be true or false");
            false
        }
    };
    let file = check_file(body, "", &["received_at_window"], matters, kind, &mut v);
    match file {
        Some(file) if v.0.is_empty() => Ok(SuppliedMaterial {
            file,
            received_at_window,
        }),
        _ => Err(v.0),
    }
}

/// The catalog's rules on the form ([`crate::domain::catalog::Rule`]): where one applies, the
/// reliefs it forbids are refused, naming the rule — a deferred (容缺) material of its matter
/// at `/materials`, a signed commitment (告知承诺) at `/commitment`.
fn check_rules(
    matters: &[&Matter],
    kind: RequestKind,
    form: &Value,
    commitment: bool,
    materials: &[DeclaredMaterial],
    v: &mut Violations,
) {
    for matter in matters {
        let part = match kind {
            RequestKind::Matter => form,
            RequestKind::Bundle => form.get(&matter.code).unwrap_or(&Value::Null),
        };
        for rule in matter.rules.iter().filter(|r| r.applies(part)) {
            let why = format!(
                "rule `{}` of `{}` ({} = {}): {} ({})",
                rule.code,
                matter.code,
                rule.when.field,
                rule.when.equals,
                rule.reason_en,
                rule.reason_zh
            );
            if commitment && rule.forbids(Relief::Commitment) {
                v.add(
                    "/commitment",
                    format!("no approval on a signed commitment (告知承诺): {why}"),
                );
            }
            if rule.forbids(Relief::Deferral) {
                for deferred in materials
                    .iter()
                    .filter(|m| m.matter_code == matter.code && m.pending_days.is_some())
                {
                    v.add(
                        "/materials",
                        format!(
                            "required material `{}` ({}) must be declared now, not supplied later (容缺): {why}",
                            deferred.code, deferred.name
                        ),
                    );
                }
            }
        }
    }
}

/// A plain e-mail check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_email(text: &str) -> bool {
    let text = text.trim();
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    text.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Mainland numbers: an 11-digit mobile starting with 1, or a landline `0` + area + number.
pub fn is_phone(text: &str) -> bool {
    let digits: String = text.chars().filter(|c| *c != '-' && *c != ' ').collect();
    let all_digits = digits.chars().all(|c| c.is_ascii_digit());
    all_digits
        && ((digits.len() == 11 && digits.starts_with('1'))
            || (digits.starts_with('0') && (10..=12).contains(&digits.len())))
}
