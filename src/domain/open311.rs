//! Open311 GeoReport v2 over the catalog and the intake: the pure mapping, no HTTP.
//!
//! GeoReport speaks of *services* (our matters), *service definitions* (a matter's form
//! fields and materials as `attributes`) and *service requests* (our requests). This module
//! turns a matter into its GeoReport attributes, turns GeoReport's submission arguments
//! (`service_code`, `email`, `attribute[code]=value`, …) into the JSON body that
//! [`crate::domain::intake::check`] reads — so a GeoReport submission goes through the one
//! intake path — and names intake's findings after the GeoReport arguments they concern.
//! `docs/open311.md` tells the same mapping in tables.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use super::catalog::{Field, FieldType, Matter};
use super::request::Status;
use crate::error::FieldError;

/// Prefix of the attributes that declare materials: `attribute[material.<code>]`.
pub const MATERIAL_PREFIX: &str = "material.";

/// Longest `description`, in characters (GeoReport's limit).
pub const DESCRIPTION_MAX: usize = 4000;

/// A response format, from the `.json` / `.xml` suffix of the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `text/xml` (GeoReport's required format).
    Xml,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Format::Json),
            "xml" => Ok(Format::Xml),
            other => Err(format!("format `{other}` is not served; use .json or .xml")),
        }
    }
}

/// The GeoReport status of one of ours: `closed` once the request is resolved either way.
pub fn status_of(status: Status) -> &'static str {
    match status {
        Status::NotAccepted
        | Status::Denied
        | Status::Completed
        | Status::Delivered
        | Status::Withdrawn => "closed",
        Status::Submitted
        | Status::Called
        | Status::Accepted
        | Status::SupplementRequired
        | Status::UnderReview
        | Status::Approved
        | Status::Returned => "open",
    }
}

/// Our statuses that GeoReport calls `status` (`open` or `closed`).
pub fn statuses_in(georeport: &str) -> Vec<&'static str> {
    Status::ALL
        .iter()
        .filter(|s| status_of(**s) == georeport)
        .map(|s| s.as_str())
        .collect()
}

/// GeoReport attribute datatypes (`multivaluelist` is never used: no field takes several
/// values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    /// One line of text.
    String,
    /// A number.
    Number,
    /// An ISO 8601 date or date-time.
    Datetime,
    /// Text that may span lines.
    Text,
    /// One of `values`.
    SingleValueList,
}

impl Datatype {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Datatype::String => "string",
            Datatype::Number => "number",
            Datatype::Datetime => "datetime",
            Datatype::Text => "text",
            Datatype::SingleValueList => "singlevaluelist",
        }
    }
}

/// One attribute of a service definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// `attribute[<code>]` in a submission: a form field name, or `material.<code>`.
    pub code: String,
    /// Input type.
    pub datatype: Datatype,
    /// Needed to submit.
    pub required: bool,
    /// How to write the value.
    pub datatype_description: String,
    /// 1-based position.
    pub order: u32,
    /// What is asked, in Chinese and English.
    pub description: String,
    /// `(key, name)` of a `singlevaluelist`.
    pub values: Vec<(String, String)>,
}

/// A matter's free-text field, which GeoReport's `description` fills: its only `text` field.
pub fn description_field(matter: &Matter) -> Option<&Field> {
    only(matter, |f| f.field_type == FieldType::Text)
}

/// A matter's address field, which GeoReport's `address_string` fills: its only `string`
/// field named `…_address`.
pub fn address_field(matter: &Matter) -> Option<&Field> {
    only(matter, |f| {
        f.field_type == FieldType::String && f.name.ends_with("_address")
    })
}

/// A matter's contact phone field, which GeoReport's `phone` fills.
pub fn phone_field(matter: &Matter) -> Option<&Field> {
    only(matter, |f| {
        f.field_type == FieldType::Phone && f.name == "contact_phone"
    })
}

/// A matter's contact e-mail field, which GeoReport's `email` also fills.
pub fn email_field(matter: &Matter) -> Option<&Field> {
    only(matter, |f| {
        f.field_type == FieldType::Email && f.name == "contact_email"
    })
}

fn only(matter: &Matter, pick: impl Fn(&Field) -> bool) -> Option<&Field> {
    let mut found = matter.fields.iter().filter(|f| pick(f));
    match (found.next(), found.next()) {
        (Some(field), None) => Some(field),
        _ => None,
    }
}

/// The standard GeoReport arguments that fill form fields of `matter`: `(argument, field)`.
pub fn standard_fields(matter: &Matter) -> Vec<(&'static str, &Field)> {
    [
        ("description", description_field(matter)),
        ("address_string", address_field(matter)),
        ("phone", phone_field(matter)),
        ("email", email_field(matter)),
    ]
    .into_iter()
    .filter_map(|(argument, field)| field.map(|f| (argument, f)))
    .collect()
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

fn range(field: &Field) -> String {
    match (field.min, field.max) {
        (Some(min), Some(max)) => format!(", from {} to {}", number(min), number(max)),
        (Some(min), None) => format!(", at least {}", number(min)),
        (None, Some(max)) => format!(", at most {}", number(max)),
        (None, None) => String::new(),
    }
}

fn length(field: &Field, default_max: u32) -> String {
    let min = field
        .min_length
        .unwrap_or(if field.required { 1 } else { 0 });
    let max = field.max_length.unwrap_or(default_max);
    format!("{min} to {max} characters")
}

/// The attributes of `matter`: its form fields in catalog order, then its materials.
pub fn attributes(matter: &Matter) -> Vec<Attribute> {
    let standard = standard_fields(matter);
    let mut out = Vec::new();
    for field in &matter.fields {
        let (datatype, mut datatype_description, values) = match field.field_type {
            FieldType::String => (Datatype::String, length(field, 200), vec![]),
            FieldType::Text => (Datatype::Text, length(field, 4000), vec![]),
            FieldType::Integer => (
                Datatype::Number,
                format!("a whole number{}", range(field)),
                vec![],
            ),
            FieldType::Decimal => (
                Datatype::Number,
                format!("a number{}", range(field)),
                vec![],
            ),
            FieldType::Boolean => (
                Datatype::SingleValueList,
                "true or false".to_string(),
                vec![
                    ("true".to_string(), "是 yes".to_string()),
                    ("false".to_string(), "否 no".to_string()),
                ],
            ),
            FieldType::Date => (
                Datatype::Datetime,
                "a date, YYYY-MM-DD (a date-time with an offset is read as its date in Shanghai)"
                    .to_string(),
                vec![],
            ),
            FieldType::Enum => (
                Datatype::SingleValueList,
                "one of the values".to_string(),
                field
                    .options
                    .iter()
                    .map(|o| (o.clone(), o.clone()))
                    .collect(),
            ),
            FieldType::Email => (Datatype::String, "an e-mail address".to_string(), vec![]),
            FieldType::Phone => (
                Datatype::String,
                "a mainland phone number: 11-digit mobile, or 0, area code and number".to_string(),
                vec![],
            ),
            FieldType::Uscc => (
                Datatype::String,
                "a unified social credit code, 18 characters (GB 32100-2015)".to_string(),
                vec![],
            ),
        };
        if let Some((argument, _)) = standard.iter().find(|(_, f)| f.name == field.name) {
            datatype_description.push_str(&format!(
                "; may be sent as the standard `{argument}` argument"
            ));
        }
        out.push(Attribute {
            code: field.name.clone(),
            datatype,
            required: field.required,
            datatype_description,
            order: out.len() as u32 + 1,
            description: format!("{} {}", field.label_zh, field.label_en),
            values,
        });
    }
    for material in &matter.materials {
        let mut description = format!("{} {}", material.name_zh, material.name_en);
        match (material.required, material.deferrable_days) {
            (false, _) => description.push_str(" (optional)"),
            (true, Some(days)) => description.push_str(&format!(
                " (容缺: may be left out and supplied within {days} working days)"
            )),
            (true, None) => {}
        }
        out.push(Attribute {
            code: format!("{MATERIAL_PREFIX}{}", material.code),
            datatype: Datatype::String,
            required: material.required && material.deferrable_days.is_none(),
            datatype_description: "sha256:size_bytes:file name — the SHA-256 (64 hex digits) \
                                   and the size in bytes of the file handed to the portal's \
                                   store, then its name, e.g. 9f86…0a08:2048:articles.pdf"
                .to_string(),
            order: out.len() as u32 + 1,
            description,
            values: vec![],
        });
    }
    out
}

/// The arguments of a GeoReport submission, as sent (empty values already dropped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Arguments {
    /// The standard arguments by name (`service_code`, `email`, `description`, …).
    pub standard: BTreeMap<String, String>,
    /// `attribute[<code>]` values in the order first seen; several for `attribute[code][]`.
    pub attributes: Vec<(String, Vec<String>)>,
    /// Arguments given more than once, or attributes written in a form we do not read.
    pub malformed: Vec<ArgumentError>,
}

/// A wrong GeoReport argument: its name and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentError {
    /// The argument, e.g. `email` or `attribute[company_name]`.
    pub argument: String,
    /// What is wrong with it.
    pub message: String,
}

impl ArgumentError {
    fn new(argument: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            argument: argument.into(),
            message: message.into(),
        }
    }
}

/// Most `attribute[…]` values one submission may carry (every matter has far fewer fields
/// and materials); the rest are not read, and the submission is refused.
pub const ATTRIBUTE_VALUES_MAX: usize = 100;

/// The standard arguments of POST requests that we read (others are ignored).
pub const STANDARD_ARGUMENTS: &[&str] = &[
    "api_key",
    "jurisdiction_id",
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "description",
    "media_url",
];

impl Arguments {
    /// Reads decoded `name=value` pairs. An empty value counts as not sent (GeoReport's
    /// "optional arguments"); names GeoReport does not define are ignored.
    pub fn read<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut args = Arguments::default();
        let mut attribute_values = 0;
        for (name, value) in pairs {
            if let Some(rest) = name.strip_prefix("attribute[") {
                attribute_values += 1;
                if attribute_values > ATTRIBUTE_VALUES_MAX {
                    if attribute_values == ATTRIBUTE_VALUES_MAX + 1 {
                        args.malformed.push(ArgumentError::new(
                            "attribute",
                            format!(
                                "at most {ATTRIBUTE_VALUES_MAX} attribute values in one submission"
                            ),
                        ));
                    }
                    continue;
                }
                let (code, many) = match rest.split_once(']') {
                    Some((code, "")) => (code, false),
                    Some((code, "[]")) => (code, true),
                    _ => {
                        args.malformed.push(ArgumentError::new(
                            name,
                            "write an attribute as attribute[code]=value",
                        ));
                        continue;
                    }
                };
                let slot = match args.attributes.iter().position(|(c, _)| c == code) {
                    Some(i) => i,
                    None => {
                        args.attributes.push((code.to_string(), Vec::new()));
                        args.attributes.len() - 1
                    }
                };
                if value.trim().is_empty() {
                    continue;
                }
                let values = &mut args.attributes[slot].1;
                if !many && !values.is_empty() {
                    args.malformed.push(ArgumentError::new(
                        format!("attribute[{code}]"),
                        "given more than once",
                    ));
                }
                values.push(value.to_string());
                continue;
            }
            if !STANDARD_ARGUMENTS.contains(&name) || value.trim().is_empty() {
                continue;
            }
            if args
                .standard
                .insert(name.to_string(), value.to_string())
                .is_some()
            {
                args.malformed
                    .push(ArgumentError::new(name, "given more than once"));
            }
        }
        args.attributes.retain(|(_, values)| !values.is_empty());
        args
    }

    /// A standard argument, if sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.standard.get(name).map(String::as_str)
    }
}

/// The enterprise an API key submits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitter {
    /// Unified social credit code.
    pub uscc: String,
    /// Name.
    pub name: String,
    /// Channel, as its wire name.
    pub channel: String,
}

/// A submission turned into the body of `POST /api/v1/requests`, with what is needed to name
/// intake's findings after GeoReport's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// The body for [`crate::domain::intake::check`].
    pub body: Value,
    /// Material codes in the order of `body.materials`.
    pub materials: Vec<String>,
    /// Form fields filled from standard arguments: field name → argument.
    pub filled_by: BTreeMap<String, &'static str>,
}

/// Builds the intake body for `matter` from GeoReport `args`, submitted with `submitter`'s
/// key. `zone` reads date-times given for date fields. Where the GeoReport form itself is
/// wrong, the argument is left out of the body and an error names it; the catalog's rules
/// are intake's, so the body goes to intake all the same and every wrong argument is told
/// at once.
pub fn translate(
    matter: &Matter,
    submitter: &Submitter,
    args: &Arguments,
    zone: Tz,
) -> (Translated, Vec<ArgumentError>) {
    let mut errors = args.malformed.clone();
    let mut form = Map::new();
    let mut materials = Vec::new();
    let mut codes = Vec::new();
    for (code, values) in &args.attributes {
        let argument = format!("attribute[{code}]");
        if values.len() > 1 {
            errors.push(ArgumentError::new(
                &argument,
                "takes one value (no attribute of this service is a multivaluelist)",
            ));
            continue;
        }
        let value = values[0].as_str();
        if let Some(material) = code.strip_prefix(MATERIAL_PREFIX) {
            match material_of(material, value) {
                Ok(item) => {
                    materials.push(item);
                    codes.push(material.to_string());
                }
                Err(message) => errors.push(ArgumentError::new(&argument, message)),
            }
            continue;
        }
        let converted = match matter.fields.iter().find(|f| &f.name == code) {
            Some(field) => typed(field, value, zone),
            // Unknown: intake names it, with the fields there are.
            None => Value::String(value.to_string()),
        };
        form.insert(code.clone(), converted);
    }

    let mut filled_by = BTreeMap::new();
    for (argument, field) in standard_fields(matter) {
        let Some(value) = args.get(argument) else {
            continue;
        };
        let value = typed(field, value, zone);
        match form.get(&field.name) {
            // The request's contact e-mail may differ from the form's own e-mail field.
            Some(_) if argument == "email" => {}
            Some(given) if given != &value => errors.push(ArgumentError::new(
                argument,
                format!(
                    "fills the form field `{}`, which attribute[{}] also gives, differently; send one",
                    field.name, field.name
                ),
            )),
            Some(_) => {}
            None => {
                form.insert(field.name.clone(), value);
                filled_by.insert(field.name.clone(), argument);
            }
        }
    }
    if let Some(description) = args.get("description") {
        if description.chars().count() > DESCRIPTION_MAX {
            errors.push(ArgumentError::new(
                "description",
                format!("at most {DESCRIPTION_MAX} characters"),
            ));
        } else if description_field(matter).is_none() {
            errors.push(ArgumentError::new(
                "description",
                format!(
                    "`{}` has no free-text field to keep a description in; send what it asks as the attributes of its service definition",
                    matter.code
                ),
            ));
        }
    }
    match (args.get("lat"), args.get("long")) {
        (None, None) => {}
        (lat, long) => {
            for (name, value, limit) in [("lat", lat, 90.0), ("long", long, 180.0)] {
                match value.map(|v| v.trim().parse::<f64>()) {
                    None => errors.push(ArgumentError::new(name, "lat and long are sent together")),
                    Some(Ok(x)) if x.is_finite() && x.abs() <= limit => {}
                    Some(_) => errors.push(ArgumentError::new(
                        name,
                        format!("must be a WGS84 coordinate from -{limit} to {limit}"),
                    )),
                }
            }
        }
    }
    let mut body = json!({
        "matter": matter.code,
        "channel": submitter.channel,
        "applicant": {"name": submitter.name, "uscc": submitter.uscc},
        "form": Value::Object(form),
        "materials": Value::Array(materials),
    });
    if let Some(email) = args.get("email") {
        body["contact_email"] = Value::String(email.trim().to_string());
    }
    let translated = Translated {
        body,
        materials: codes,
        filled_by,
    };
    (translated, errors)
}

/// `sha256:size_bytes:file name` as a declared material; intake checks the parts.
fn material_of(code: &str, value: &str) -> Result<Value, String> {
    let mut parts = value.splitn(3, ':');
    let (Some(sha256), Some(size), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("must be sha256:size_bytes:file name".into());
    };
    let size = match size.trim().parse::<i64>() {
        Ok(n) => Value::from(n),
        // Not a number: intake says what the size must be.
        Err(_) => Value::String(size.to_string()),
    };
    Ok(json!({
        "code": code,
        "name": name,
        "sha256": sha256.trim(),
        "size_bytes": size,
    }))
}

/// A text value as the JSON its field takes; left as text where it does not convert, so that
/// intake reports it in its own words.
fn typed(field: &Field, value: &str, zone: Tz) -> Value {
    let text = || Value::String(value.to_string());
    let trimmed = value.trim();
    match field.field_type {
        FieldType::Integer => trimmed
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| text()),
        FieldType::Decimal => trimmed
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(text),
        FieldType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => text(),
        },
        FieldType::Date => match parse_datetime(trimmed) {
            Some(at) => Value::String(at.with_timezone(&zone).date_naive().to_string()),
            None => NaiveDate::parse_from_str(trimmed, "%Y-%m-%d")
                .map(|d| Value::String(d.to_string()))
                .unwrap_or_else(|_| text()),
        },
        _ => text(),
    }
}

/// A W3C date-time with its offset (`2010-01-01T00:00:00Z`, `…T08:15:30-05:00`, seconds and
/// their fraction optional).
pub fn parse_datetime(text: &str) -> Option<DateTime<chrono::FixedOffset>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text).ok().or_else(|| {
        // W3C also allows hours and minutes without seconds: add them.
        let (date_time, offset) = match text.rfind(['+', '-', 'Z', 'z']) {
            Some(i) if i > 10 => text.split_at(i),
            _ => return None,
        };
        if date_time.len() != 16 {
            return None;
        }
        DateTime::parse_from_rfc3339(&format!("{date_time}:00{offset}")).ok()
    })
}

/// All that is wrong with a submission, one error per argument: the errors of
/// [`translate`], then intake's findings named after the GeoReport argument they concern
/// (several about one argument are joined; none about an argument already refused).
pub fn name_findings(
    matter: &Matter,
    translated: &Translated,
    refused: Vec<ArgumentError>,
    findings: &[FieldError],
) -> Vec<ArgumentError> {
    // The required materials intake will report missing, in its order.
    let mut missing = matter
        .materials
        .iter()
        .filter(|m| m.required && m.deferrable_days.is_none())
        .filter(|m| !translated.materials.contains(&m.code))
        .map(|m| format!("attribute[{MATERIAL_PREFIX}{}]", m.code));
    let already: Vec<String> = refused.iter().map(|e| e.argument.clone()).collect();
    let mut out: Vec<ArgumentError> = refused;
    for finding in findings {
        let segments: Vec<String> = finding
            .pointer
            .split('/')
            .skip(1)
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        let argument = match segments.first().map(String::as_str) {
            Some("matter") => "service_code".to_string(),
            Some("contact_email") => "email".to_string(),
            Some("channel" | "applicant" | "intake_region" | "commitment") => "api_key".to_string(),
            Some("form") => match segments.get(1) {
                Some(field) => match translated.filled_by.get(field) {
                    Some(argument) => argument.to_string(),
                    None => format!("attribute[{field}]"),
                },
                None => "attribute".to_string(),
            },
            Some("materials") => match segments.get(1).and_then(|i| i.parse::<usize>().ok()) {
                Some(i) => match translated.materials.get(i) {
                    Some(code) => format!("attribute[{MATERIAL_PREFIX}{code}]"),
                    None => "attribute".to_string(),
                },
                None => missing
                    .next()
                    .unwrap_or_else(|| format!("attribute[{MATERIAL_PREFIX}…]")),
            },
            _ => "request".to_string(),
        };
        if already.contains(&argument) {
            continue;
        }
        match out.iter_mut().find(|e| e.argument == argument) {
            Some(existing) => {
                existing.message.push_str("; ");
                existing.message.push_str(&finding.message);
            }
            None => out.push(ArgumentError::new(argument, finding.message.clone())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Catalog;
    use crate::domain::intake;
    use crate::domain::uscc::Uscc;

    const USCC: &str = "91350100M000100Y43";
    const SHA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn submitter() -> Submitter {
        Submitter {
            uscc: USCC.into(),
            name: "上海马上办科技有限公司".into(),
            channel: "online".into(),
        }
    }

    fn zone() -> Tz {
        chrono_tz::Asia::Shanghai
    }

    #[test]
    fn statuses_split_into_open_and_closed() {
        let closed = statuses_in("closed");
        assert_eq!(
            closed,
            vec![
                "not_accepted",
                "denied",
                "completed",
                "delivered",
                "withdrawn"
            ]
        );
        assert_eq!(statuses_in("open").len() + closed.len(), Status::ALL.len());
        assert_eq!(status_of(Status::Approved), "open");
        assert_eq!(status_of(Status::Returned), "open");
        assert!(statuses_in("pending").is_empty());
    }

    #[test]
    fn formats_are_json_and_xml_only() {
        assert_eq!("json".parse(), Ok(Format::Json));
        assert_eq!("xml".parse(), Ok(Format::Xml));
        assert!("JSON".parse::<Format>().is_err());
        assert!("csv".parse::<Format>().is_err());
    }

    #[test]
    fn fields_and_materials_become_attributes() {
        let catalog = Catalog::builtin();
        let matter = catalog.matter("market.establish").unwrap();
        let attributes = attributes(matter);
        assert_eq!(
            attributes.len(),
            matter.fields.len() + matter.materials.len()
        );
        let orders: Vec<u32> = attributes.iter().map(|a| a.order).collect();
        assert_eq!(orders, (1..=attributes.len() as u32).collect::<Vec<_>>());
        let name = &attributes[0];
        assert_eq!(name.code, "company_name");
        assert_eq!(name.datatype, Datatype::String);
        assert!(name.required);
        let kind = attributes
            .iter()
            .find(|a| a.code == "enterprise_type")
            .unwrap();
        assert_eq!(kind.datatype, Datatype::SingleValueList);
        assert!(!kind.values.is_empty());
        let premises = attributes
            .iter()
            .find(|a| a.code == "material.premises_proof")
            .unwrap();
        assert!(!premises.required, "容缺 materials may come later");
        assert!(premises.description.contains("容缺"));
        let articles = attributes
            .iter()
            .find(|a| a.code == "material.articles_of_association")
            .unwrap();
        assert!(articles.required);
    }

    #[test]
    fn every_field_type_has_a_datatype() {
        let catalog = Catalog::builtin();
        for matter in catalog.matters() {
            for attribute in attributes(matter) {
                if attribute.datatype == Datatype::SingleValueList {
                    assert!(!attribute.values.is_empty(), "{}", attribute.code);
                }
                assert!(!attribute.description.trim().is_empty());
            }
        }
    }

    fn args(pairs: &[(&str, &str)]) -> Arguments {
        Arguments::read(pairs.iter().copied())
    }

    #[test]
    fn arguments_read_attributes_and_drop_empty_values() {
        let a = args(&[
            ("service_code", "market.establish"),
            ("email", ""),
            ("attribute[company_name]", "马上办"),
            ("attribute[empty]", ""),
            ("attribute[list][]", "a"),
            ("attribute[list][]", "b"),
            ("attribute[bad", "x"),
            ("unknown", "ignored"),
            ("phone", "1"),
            ("phone", "2"),
        ]);
        assert_eq!(a.get("service_code"), Some("market.establish"));
        assert_eq!(a.get("email"), None);
        assert_eq!(a.get("unknown"), None);
        assert_eq!(
            a.attributes,
            vec![
                ("company_name".to_string(), vec!["马上办".to_string()]),
                ("list".to_string(), vec!["a".to_string(), "b".to_string()]),
            ]
        );
        let bad: Vec<&str> = a.malformed.iter().map(|e| e.argument.as_str()).collect();
        assert_eq!(bad, vec!["attribute[bad", "phone"]);
    }

    #[test]
    fn too_many_attribute_values_are_refused_once() {
        let pairs: Vec<(String, String)> = (0..=ATTRIBUTE_VALUES_MAX + 5)
            .map(|i| (format!("attribute[field{i}]"), "x".to_string()))
            .collect();
        let a = a_of(&pairs);
        assert_eq!(a.attributes.len(), ATTRIBUTE_VALUES_MAX);
        let bad: Vec<&str> = a.malformed.iter().map(|e| e.argument.as_str()).collect();
        assert_eq!(bad, vec!["attribute"]);
    }

    fn a_of(pairs: &[(String, String)]) -> Arguments {
        Arguments::read(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    fn valid_pairs() -> Vec<(String, String)> {
        let catalog = Catalog::builtin();
        let matter = catalog.matter("market.establish").unwrap();
        let mut pairs = vec![
            ("service_code".to_string(), matter.code.clone()),
            ("email".to_string(), "office@example.com".to_string()),
        ];
        for field in &matter.fields {
            let value = match field.field_type {
                FieldType::Enum => field.options[0].clone(),
                FieldType::Decimal | FieldType::Integer => "100".into(),
                FieldType::Boolean => "true".into(),
                FieldType::Date => "2026-12-01".into(),
                FieldType::Uscc => USCC.into(),
                FieldType::Email => "a@example.com".into(),
                FieldType::Phone => "13800138000".into(),
                _ => "马上办科技".into(),
            };
            pairs.push((format!("attribute[{}]", field.name), value));
        }
        for m in matter
            .materials
            .iter()
            .filter(|m| m.deferrable_days.is_none())
        {
            pairs.push((
                format!("attribute[material.{}]", m.code),
                format!("{SHA}:2048:{}.pdf", m.code),
            ));
        }
        pairs
    }

    #[test]
    fn a_valid_submission_passes_intake() {
        let catalog = Catalog::builtin();
        let matter = catalog.matter("market.establish").unwrap();
        let pairs = valid_pairs();
        let a = a_of(&pairs);
        let (t, refused) = translate(matter, &submitter(), &a, zone());
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(t.body["matter"], "market.establish");
        assert_eq!(t.body["contact_email"], "office@example.com");
        assert_eq!(t.body["applicant"]["uscc"], USCC);
        let intake = intake::check(&catalog, &t.body, &Uscc::parse(USCC).unwrap())
            .expect("intake accepts it");
        assert!(
            intake
                .materials
                .iter()
                .any(|m| m.code == "premises_proof" && m.pending_days.is_some())
        );
    }

    #[test]
    fn intake_findings_are_named_after_arguments() {
        let catalog = Catalog::builtin();
        let matter = catalog.matter("market.establish").unwrap();
        let mut pairs: Vec<(String, String)> = valid_pairs()
            .into_iter()
            .filter(|(k, _)| {
                k != "email"
                    && k != "attribute[company_name]"
                    && k != "attribute[material.application_form]"
            })
            .map(|(k, v)| {
                if k == "attribute[material.articles_of_association]" {
                    (k, "nothex:12:a.pdf".to_string())
                } else {
                    (k, v)
                }
            })
            .collect();
        pairs.push(("attribute[colour]".into(), "blue".into()));
        pairs.push(("description".into(), "no place for it".into()));
        let (t, refused) = translate(matter, &submitter(), &a_of(&pairs), zone());
        assert_eq!(refused.len(), 1);
        let findings = intake::check(&catalog, &t.body, &Uscc::parse(USCC).unwrap()).unwrap_err();
        let named = name_findings(matter, &t, refused, &findings);
        let arguments: Vec<&str> = named.iter().map(|e| e.argument.as_str()).collect();
        for expected in [
            "description",
            "email",
            "attribute[company_name]",
            "attribute[colour]",
            "attribute[material.articles_of_association]",
            "attribute[material.application_form]",
        ] {
            assert!(arguments.contains(&expected), "{expected} in {arguments:?}");
        }
        let unique: std::collections::BTreeSet<&str> = arguments.iter().copied().collect();
        assert_eq!(unique.len(), arguments.len(), "one error per argument");
    }

    #[test]
    fn standard_arguments_fill_their_fields_or_are_refused() {
        let catalog = Catalog::builtin();
        // A matter with one text field takes `description` into it.
        let with_text = catalog
            .matters()
            .find(|m| description_field(m).is_some())
            .expect("some matter has one text field");
        let field = description_field(with_text).unwrap().name.clone();
        let a = args(&[("description", "请尽快办理\n谢谢")]);
        let (t, refused) = translate(with_text, &submitter(), &a, zone());
        assert!(refused.is_empty());
        assert_eq!(t.body["form"][&field], "请尽快办理\n谢谢");
        assert_eq!(t.filled_by.get(&field), Some(&"description"));

        // Same value twice is fine, different values are refused.
        let both = format!("attribute[{field}]");
        let a = args(&[("description", "x"), (both.as_str(), "y")]);
        let (_, errors) = translate(with_text, &submitter(), &a, zone());
        assert_eq!(errors[0].argument, "description");

        // A matter without one is refused a description, but not a location.
        let market = catalog.matter("market.establish").unwrap();
        let a = args(&[("description", "hello"), ("lat", "31.2"), ("long", "121.4")]);
        let (_, errors) = translate(market, &submitter(), &a, zone());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].argument, "description");
        let a = args(&[("lat", "91"), ("address_string", "曹杨路 1 号")]);
        let (_, errors) = translate(market, &submitter(), &a, zone());
        let named: Vec<&str> = errors.iter().map(|e| e.argument.as_str()).collect();
        assert_eq!(named, vec!["lat", "long"]);
    }

    #[test]
    fn values_take_their_fields_types() {
        let catalog = Catalog::builtin();
        let matter = catalog.matter("market.establish").unwrap();
        let capital = matter
            .fields
            .iter()
            .find(|f| f.field_type == FieldType::Decimal)
            .unwrap();
        assert_eq!(typed(capital, "12.5", zone()), json!(12.5));
        assert_eq!(typed(capital, "lots", zone()), json!("lots"));
        let date = Field {
            name: "d".into(),
            label_zh: "日期".into(),
            label_en: "Date".into(),
            field_type: FieldType::Date,
            required: true,
            min_length: None,
            max_length: None,
            min: None,
            max: None,
            options: vec![],
        };
        assert_eq!(typed(&date, "2026-12-01", zone()), json!("2026-12-01"));
        // 20:00 in New York is the next morning in Shanghai.
        assert_eq!(
            typed(&date, "2026-11-30T20:00:00-05:00", zone()),
            json!("2026-12-01")
        );
        assert_eq!(typed(&date, "tomorrow", zone()), json!("tomorrow"));
    }

    #[test]
    fn w3c_datetimes_need_an_offset() {
        assert!(parse_datetime("2010-01-01T00:00:00Z").is_some());
        assert!(parse_datetime("1994-11-05T08:15:30-05:00").is_some());
        assert!(parse_datetime("1994-11-05T08:15-05:00").is_some());
        assert!(parse_datetime("1994-11-05T08:15:30.25+08:00").is_some());
        assert!(parse_datetime("1994-11-05T08:15:30").is_none());
        assert!(parse_datetime("1994-11-05").is_none());
        assert!(parse_datetime("yesterday").is_none());
    }

    #[test]
    fn materials_are_sha256_size_and_name() {
        assert_eq!(
            material_of("a", &format!("{SHA}:10:my:file.pdf")).unwrap()["name"],
            "my:file.pdf"
        );
        assert!(material_of("a", "nocolons").is_err());
        assert_eq!(
            material_of("a", &format!("{SHA}:big:x.pdf")).unwrap()["size_bytes"],
            "big"
        );
    }
}
