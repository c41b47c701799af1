//! Open311 GeoReport v2 at `/open311/v2`: the catalog's matters as services, and the same
//! requests as `/api/v1/requests`, in GeoReport's own JSON and XML.
//!
//! These endpoints answer errors with GeoReport's error body (`[{"code":…,"description":…}]`
//! or `<errors><error>…</error></errors>`), not problem+json: GeoReport clients read that
//! shape. The HTTP status is 404 for what does not exist, 403 for a missing or wrong
//! `api_key`, 400 for anything else that cannot be done, as the specification says; each
//! error's `code` is that status. A submission goes through the one intake path of
//! `POST /api/v1/requests`: [`crate::domain::intake::check`], [`super::requests::plan`],
//! [`crate::db::requests::create`]. `docs/open311.md` explains the mapping and the choices.

pub mod discovery;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDateTime, SubsecRound, TimeDelta, Utc};
use chrono_tz::Tz;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::config::Open311Settings;
use crate::config::SlaSettings;
use crate::db::Database;
use crate::db::calendars::Calendars;
use crate::db::open311::{self as store, Found, Selection};
use crate::db::requests::{self as intake_store, Intake as Stored};
use crate::domain::calendar::Calendar;
use crate::domain::catalog::Matter;
use crate::domain::clock::Rules;
use crate::domain::open311::{
    self as georeport, ArgumentError, Arguments, Datatype, Format, Submitter,
};
use crate::domain::request::{ClockKind, MaterialStatus, Status};
use crate::domain::{Catalog, UnitCode, Uscc, intake};
use crate::error::ApiError;

/// Most requests one listing returns (GeoReport's default volume).
const LIST_LIMIT: i64 = 1000;
/// The default listing window, and the span GeoReport expects at most.
const WINDOW_DAYS: i64 = 90;

/// The Open311 configuration, ready to serve: API keys are kept as their SHA-256 only.
pub struct Open311 {
    jurisdiction_id: String,
    keys: HashMap<[u8; 32], Submitter>,
    contact: String,
    key_service: String,
    public_url: String,
}

impl Open311 {
    /// From `[open311]` (already validated).
    pub fn new(settings: &Open311Settings) -> Self {
        let keys = settings
            .api_keys
            .iter()
            .map(|(key, client)| {
                (
                    digest(key),
                    Submitter {
                        uscc: client.uscc.clone(),
                        name: client.name.trim().to_string(),
                        channel: client.channel.as_str().to_string(),
                    },
                )
            })
            .collect();
        Self {
            jurisdiction_id: settings.jurisdiction_id.trim().to_string(),
            keys,
            contact: settings.contact.trim().to_string(),
            key_service: settings.key_service.trim().to_string(),
            public_url: settings.public_url.trim().trim_end_matches('/').to_string(),
        }
    }

    /// 404 for a `jurisdiction_id` other than ours (none, or empty, is ours).
    fn jurisdiction(&self, given: Option<&str>) -> Result<(), Failure> {
        match given {
            Some(id) if !self.jurisdiction_id.is_empty() && id.trim() != self.jurisdiction_id => {
                Err(Failure::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "jurisdiction_id `{}` was not found; this endpoint serves `{}`",
                        id.trim(),
                        self.jurisdiction_id
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The enterprise of an API key; 403 for a wrong one (compared by hash, so the lookup's
    /// timing says nothing about the keys).
    fn submitter(&self, key: &str) -> Result<&Submitter, Failure> {
        self.keys.get(&digest(key)).ok_or_else(|| {
            Failure::new(
                StatusCode::FORBIDDEN,
                "invalid api_key: it is not one this service centre issued",
            )
        })
    }

    /// The caller's enterprise for reads: none without a key, 403 with a wrong one.
    fn reader(&self, key: Option<&str>) -> Result<Option<&Submitter>, Failure> {
        key.map(|k| self.submitter(k)).transpose()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

// --- Documents: one tree, written as GeoReport's JSON or XML ------------------------------

/// A GeoReport document. JSON follows the Spark convention GeoReport uses: an element list
/// (`<services><service>…`) is a JSON array, a leaf is a string, number, boolean or null.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
    Object(Vec<(&'static str, Node)>),
    /// Elements named `item`, in a wrapper (the key or root it is under).
    List(&'static str, Vec<Node>),
}

fn text(value: impl Into<String>) -> Node {
    Node::Text(value.into())
}

fn text_or_null(value: Option<String>) -> Node {
    value.map(Node::Text).unwrap_or(Node::Null)
}

impl Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => serializer.serialize_none(),
            Node::Text(s) => serializer.serialize_str(s),
            Node::Int(n) => serializer.serialize_i64(*n),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (key, value) in fields {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Node::List(_, items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

/// Characters XML 1.0 cannot carry become U+FFFD.
fn xml_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r')
            || ('\u{20}'..='\u{D7FF}').contains(&c)
            || ('\u{E000}'..='\u{FFFD}').contains(&c)
            || c >= '\u{10000}'
    };
    if text.chars().all(allowed) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(
            text.chars()
                .map(|c| if allowed(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
    }
}

fn write_element(writer: &mut Writer<Vec<u8>>, name: &str, node: &Node) -> std::io::Result<()> {
    let leaf = |writer: &mut Writer<Vec<u8>>, value: &str| -> std::io::Result<()> {
        writer
            .create_element(name)
            .write_text_content(BytesText::new(&xml_safe(value)))?;
        Ok(())
    };
    match node {
        Node::Null => {
            writer.create_element(name).write_empty()?;
        }
        Node::Text(s) if s.is_empty() => {
            writer.create_element(name).write_empty()?;
        }
        Node::Text(s) => leaf(writer, s)?,
        Node::Int(n) => leaf(writer, &n.to_string())?,
        Node::Bool(b) => leaf(writer, if *b { "true" } else { "false" })?,
        Node::Object(fields) => {
            writer.create_element(name).write_inner_content(|w| {
                for (key, value) in fields {
                    write_element(w, key, value)?;
                }
                Ok::<(), std::io::Error>(())
            })?;
        }
        Node::List(_, items) if items.is_empty() => {
            writer.create_element(name).write_empty()?;
        }
        Node::List(item, items) => {
            writer.create_element(name).write_inner_content(|w| {
                for value in items {
                    write_element(w, item, value)?;
                }
                Ok::<(), std::io::Error>(())
            })?;
        }
    }
    Ok(())
}

/// The XML text of a document whose root element is `root`.
fn to_xml(root: &str, node: &Node) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
        .and_then(|()| write_element(&mut writer, root, node))
        .expect("writing to memory does not fail");
    let mut xml = String::from_utf8(writer.into_inner()).expect("UTF-8 in, UTF-8 out");
    xml.push('\n');
    xml
}

/// A document ready to send: status, root element name, tree.
struct Doc {
    status: StatusCode,
    root: &'static str,
    node: Node,
}

impl Doc {
    fn ok(root: &'static str, node: Node) -> Self {
        Self {
            status: StatusCode::OK,
            root,
            node,
        }
    }
}

/// An answer in GeoReport's error body: the status, and one description per error.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    descriptions: Vec<String>,
    retry_after: bool,
}

impl Failure {
    fn new(status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            status,
            descriptions: vec![description.into()],
            retry_after: false,
        }
    }

    /// 400 with one error per wrong argument.
    fn arguments(errors: Vec<ArgumentError>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            descriptions: errors
                .into_iter()
                .map(|e| format!("{}: {}", e.argument, e.message))
                .collect(),
            retry_after: false,
        }
    }

    fn doc(&self) -> Doc {
        let code = i64::from(self.status.as_u16());
        Doc {
            status: self.status,
            root: "errors",
            node: Node::List(
                "error",
                self.descriptions
                    .iter()
                    .map(|d| {
                        Node::Object(vec![("code", Node::Int(code)), ("description", text(d))])
                    })
                    .collect(),
            ),
        }
    }
}

impl From<ApiError> for Failure {
    /// A database or server failure: same status as elsewhere, in GeoReport's body (the cause
    /// is logged by `ApiError`, never sent).
    fn from(error: ApiError) -> Self {
        use actix_web::ResponseError;
        // Logs the cause in this request's span.
        let _ = error.error_response();
        let problem = error.problem();
        Self {
            status: error.status_code(),
            descriptions: vec![problem.detail],
            retry_after: error.status_code() == StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

fn send(format: Format, doc: Doc) -> HttpResponse {
    let mut response = HttpResponse::build(doc.status);
    match format {
        Format::Json => response
            .content_type("application/json; charset=utf-8")
            .body(serde_json::to_string(&doc.node).expect("serialisable")),
        Format::Xml => response
            .content_type("text/xml; charset=utf-8")
            .body(to_xml(doc.root, &doc.node)),
    }
}

fn answer(format: Format, outcome: Result<Doc, Failure>) -> HttpResponse {
    match outcome {
        Ok(doc) => send(format, doc),
        Err(failure) => {
            let mut response = send(format, failure.doc());
            if failure.retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            response
        }
    }
}

/// The `.json` / `.xml` suffix; an unknown one is 404 (answered in XML, GeoReport's
/// required format).
fn format_of(req: &HttpRequest) -> Result<Format, HttpResponse> {
    let given = req.match_info().get("format").unwrap_or_default();
    given.parse::<Format>().map_err(|message| {
        send(
            Format::Xml,
            Failure::new(StatusCode::NOT_FOUND, message).doc(),
        )
    })
}

/// Decoded query arguments. A name given several times is joined with commas (GeoReport's
/// lists); an empty value counts as not given.
struct Query(Vec<(String, String)>);

impl Query {
    fn of(req: &HttpRequest) -> Self {
        Self(
            url::form_urlencoded::parse(req.query_string().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }
}

/// A comma-delimited list, trimmed, without empty items or repeats, at most `LIST_LIMIT`.
fn list_of(value: Option<String>) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for item in value.iter().flat_map(|v| v.split(',')).map(str::trim) {
        if !item.is_empty() && !items.iter().any(|i| i == item) && items.len() < LIST_LIMIT as usize
        {
            items.push(item.to_string());
        }
    }
    items
}

// --- Mapping to documents ------------------------------------------------------------------

fn w3c(at: NaiveDateTime, zone: Tz) -> String {
    at.and_utc()
        .with_timezone(&zone)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// A clock target for people: `0.5 working days`, `PT2H`.
fn limit(target: impl std::fmt::Display) -> String {
    target.to_string().replace("working_", "working ")
}

fn unit_names(catalog: &Catalog, code: &str) -> (String, String) {
    match code.parse::<UnitCode>() {
        Ok(unit) => {
            let unit = catalog.unit(unit);
            (unit.name_zh.clone(), unit.name_en.clone())
        }
        Err(_) => (code.to_string(), code.to_string()),
    }
}

fn service_node(catalog: &Catalog, matter: &Matter) -> Node {
    let (lead_zh, lead_en) = unit_names(catalog, matter.lead_unit.as_str());
    let mut description = format!("{}. Lead unit: {lead_zh} {lead_en}.", matter.name_en);
    if let Some(promised) = matter.clocks.promised {
        description.push_str(&format!(
            " Promised limit: {}, counted from acceptance.",
            limit(promised)
        ));
    }
    let mut keywords = vec![
        matter.code.clone(),
        matter.name_zh.clone(),
        matter.name_en.clone(),
        matter.category.as_str().to_string(),
        matter.lead_unit.as_str().to_string(),
    ];
    keywords.extend(matter.co_units.iter().map(|u| u.as_str().to_string()));
    Node::Object(vec![
        ("service_code", text(&matter.code)),
        ("service_name", text(&matter.name_zh)),
        ("description", text(description)),
        ("metadata", Node::Bool(true)),
        ("type", text("realtime")),
        ("keywords", text(keywords.join(", "))),
        ("group", text(matter.category.as_str())),
    ])
}

fn definition_node(matter: &Matter) -> Node {
    let attributes = georeport::attributes(matter)
        .into_iter()
        .map(|a| {
            let mut fields = vec![
                ("variable", Node::Bool(true)),
                ("code", text(a.code)),
                ("datatype", text(a.datatype.as_str())),
                ("required", Node::Bool(a.required)),
                ("datatype_description", text(a.datatype_description)),
                ("order", Node::Int(i64::from(a.order))),
                ("description", text(a.description)),
            ];
            if a.datatype == Datatype::SingleValueList {
                fields.push((
                    "values",
                    Node::List(
                        "value",
                        a.values
                            .into_iter()
                            .map(|(key, name)| {
                                Node::Object(vec![("key", text(key)), ("name", text(name))])
                            })
                            .collect(),
                    ),
                ));
            }
            Node::Object(fields)
        })
        .collect();
    Node::Object(vec![
        ("service_code", text(&matter.code)),
        ("attributes", Node::List("attribute", attributes)),
    ])
}

/// When the request can be expected done: the due time of its promised clock(s), once
/// running.
fn expected(found: &Found) -> Option<NaiveDateTime> {
    found
        .clocks
        .iter()
        .filter(|c| c.kind == ClockKind::Promised.as_str())
        .filter_map(|c| c.due_at)
        .max()
}

/// What will happen: who handles it, the promised limit, and (to its owner) the materials
/// still to supply.
fn notice(catalog: &Catalog, found: &Found, zone: Tz, owner: bool) -> String {
    let r = &found.request;
    let (lead_zh, lead_en) = unit_names(catalog, &r.lead_unit);
    let mut notice = format!("{} is handled by {lead_zh} {lead_en}.", r.number);
    let promised: Vec<&str> = found
        .clocks
        .iter()
        .filter(|c| c.kind == ClockKind::Promised.as_str() && c.task_id.is_none())
        .map(|c| c.target.as_str())
        .collect();
    match (expected(found), promised.first()) {
        (Some(due), _) => notice.push_str(&format!(" Promised by {}.", w3c(due, zone))),
        (None, Some(target)) => notice.push_str(&format!(
            " Promised limit: {}, counted from acceptance.",
            limit(target)
        )),
        (None, None) => {}
    }
    if owner {
        let pending: Vec<String> = found
            .materials
            .iter()
            .filter(|m| m.status == MaterialStatus::Pending.as_str())
            .map(|m| match m.due_at {
                Some(due) => format!("{} ({}) by {}", m.name, m.code, w3c(due, zone)),
                None => format!("{} ({})", m.name, m.code),
            })
            .collect();
        if !pending.is_empty() {
            notice.push_str(&format!(" To supply later (容缺): {}.", pending.join("; ")));
        }
    }
    notice
}

/// A request as GeoReport shows it. `owner`: the caller's key is this request's enterprise,
/// which alone sees what it wrote (description, address) and its pending materials.
fn request_node(catalog: &Catalog, found: &Found, zone: Tz, owner: bool) -> Node {
    let r = &found.request;
    let status: Status = r.status.parse().unwrap_or(Status::Submitted);
    let matter = catalog.matter(&r.code);
    let service_name = matter
        .map(|m| m.name_zh.clone())
        .or_else(|| catalog.bundle(&r.code).map(|b| b.name_zh.clone()))
        .unwrap_or_else(|| r.code.clone());
    let form: serde_json::Value = serde_json::from_str(&r.form).unwrap_or_default();
    let from_form = |field: Option<&crate::domain::catalog::Field>| {
        field
            .filter(|_| owner)
            .and_then(|f| form.get(&f.name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let description = from_form(matter.and_then(georeport::description_field));
    let address = from_form(matter.and_then(georeport::address_field));
    Node::Object(vec![
        ("service_request_id", text(&r.number)),
        ("status", text(georeport::status_of(status))),
        ("status_notes", text(status.as_str())),
        ("service_name", text(service_name)),
        ("service_code", text(&r.code)),
        ("description", text_or_null(description)),
        (
            "agency_responsible",
            text(unit_names(catalog, &r.lead_unit).0),
        ),
        ("service_notice", text(notice(catalog, found, zone, owner))),
        ("requested_datetime", text(w3c(r.created_at, zone))),
        ("updated_datetime", text(w3c(r.updated_at, zone))),
        (
            "expected_datetime",
            text_or_null(expected(found).map(|t| w3c(t, zone))),
        ),
        ("address", text_or_null(address)),
        ("address_id", Node::Null),
        ("zipcode", Node::Null),
        ("lat", Node::Null),
        ("long", Node::Null),
        ("media_url", Node::Null),
    ])
}

fn requests_doc(catalog: &Catalog, found: &[Found], zone: Tz, reader: Option<&Submitter>) -> Doc {
    Doc::ok(
        "service_requests",
        Node::List(
            "request",
            found
                .iter()
                .map(|f| {
                    let owner = reader.is_some_and(|s| s.uscc == f.request.uscc);
                    request_node(catalog, f, zone, owner)
                })
                .collect(),
        ),
    )
}

// --- Documentation types (the JSON shapes; XML has the same elements) ---------------------

/// `json` or `xml`: the suffix of every GeoReport resource.
#[derive(ToSchema)]
#[allow(dead_code)] // only a documentation type
#[schema(rename_all = "lowercase")]
pub enum Open311Format {
    /// `application/json`.
    Json,
    /// `text/xml`.
    Xml,
}

/// A service: one matter of the catalog.
#[derive(ToSchema)]
#[allow(dead_code)] // only a documentation type
pub struct Open311Service {
    /// The matter code.
    #[schema(example = "market.establish")]
    service_code: String,
    /// The matter's Chinese name.
    #[schema(example = "企业设立登记")]
    service_name: String,
    /// English name, lead unit and promised limit.
    description: String,
    /// Always `true`: every matter has a service definition.
    metadata: bool,
    /// Always `realtime`: the request number is returned at once.
    #[schema(example = "realtime")]
    r#type: String,
    /// Code, names, category and units, comma separated.
    keywords: String,
    /// The matter's category.
    #[schema(example = "registration")]
    group: String,
}

/// An option of a `singlevaluelist` attribute.
#[derive(ToSchema)]
#[allow(dead_code)] // only a documentation type
pub struct Open311AttributeValue {
    /// The value to send.
    key: String,
    /// Its label.
    name: String,
}

/// An attribute: a form field, or a material (`material.<code>`).
#[derive(ToSchema)]
#[allow(dead_code)] // only a documentation type
pub struct Open311Attribute {
    /// Always `true`.
    variable: bool,
    /// Send as `attribute[<code>]`.
    code: String,
    /// `string`, `number`, `datetime`, `text` or `singlevaluelist`.
    datatype: String,
    /// Needed to submit.
    required: bool,
    /// How to write the value.
    datatype_description: String,
    /// Display order, from 1.
    order: i64,
    /// What is asked, Chinese then English.
    description: String,
    /// The options of a `singlevaluelist`.
    values: Option<Vec<Open311AttributeValue>>,
}

/// A service definition.
#[derive(ToSchema)]
#[allow(dead_code)] // only a documentation type
pub struct Open311ServiceDefinition {
    /// The matter code.
    service_code: String,
    /// The attributes, in order.
    attributes: Vec<Open311Attribute>,
}

/// A service request. Without the owner's `api_key`, the fields the enterprise wrote
/// (`description`, `address`) are null and the notice leaves out its pending materials.
#[derive(ToSchema)]
#[allow(dead_code)] // only a documentation type
pub struct Open311ServiceRequest {
    /// The request number.
    #[schema(example = "PT20261127-000123")]
    service_request_id: String,
    /// `open` or `closed`.
    #[schema(example = "open")]
    status: String,
    /// Our status (`submitted`, `accepted`, `under_review`, …).
    status_notes: Option<String>,
    /// The matter's (or bundle's) Chinese name.
    service_name: String,
    /// The matter (or bundle) code.
    service_code: String,
    /// The matter's free-text field, to the owner.
    description: Option<String>,
    /// The lead unit's name.
    agency_responsible: Option<String>,
    /// Who handles it, the promised limit, (to the owner) materials to supply later.
    service_notice: Option<String>,
    /// Intake time (W3C, with offset).
    #[schema(format = DateTime)]
    requested_datetime: String,
    /// Last change (W3C, with offset).
    #[schema(format = DateTime)]
    updated_datetime: String,
    /// The promised clock's due time, once it runs.
    #[schema(format = DateTime)]
    expected_datetime: Option<String>,
    /// The matter's address field, to the owner.
    address: Option<String>,
    /// Always null.
    address_id: Option<String>,
    /// Always null.
    zipcode: Option<String>,
    /// Always null (locations are not kept).
    lat: Option<f64>,
    /// Always null (locations are not kept).
    long: Option<f64>,
    /// Always null.
    media_url: Option<String>,
}

/// The answer to a submission.
#[derive(ToSchema)]
#[allow(dead_code)] // only a documentation type
pub struct Open311Created {
    /// The request number.
    #[schema(example = "PT20261127-000123")]
    service_request_id: String,
    /// Who handles it, the promised limit, the materials to supply later.
    service_notice: Option<String>,
    /// The enterprise's unified social credit code (the account the request is filed under).
    account_id: Option<String>,
}

/// A token and the request it stands for.
#[derive(ToSchema)]
#[allow(dead_code)] // only a documentation type
pub struct Open311Token {
    /// The request number.
    service_request_id: String,
    /// The token asked about: the request's id in `/api/v1/requests`.
    token: String,
}

/// One error of GeoReport's error body.
#[derive(ToSchema)]
#[allow(dead_code)] // only a documentation type
pub struct Open311Error {
    /// The HTTP status.
    #[schema(example = 403)]
    code: i64,
    /// What went wrong, naming the argument.
    description: String,
}

/// The form of `POST /open311/v2/requests.{format}`. Besides these, each attribute of the
/// service definition is sent as `attribute[<code>]=<value>`, materials as
/// `attribute[material.<code>]=<sha256>:<size_bytes>:<file name>`. Empty values count as not
/// sent.
#[derive(ToSchema)]
#[allow(dead_code)] // only a documentation type
pub struct Open311Submission {
    /// The key issued to the submitting system; it stands for one enterprise.
    api_key: String,
    /// Ours, or left out.
    #[schema(nullable = false)]
    jurisdiction_id: Option<String>,
    /// The matter code.
    service_code: String,
    /// Where the enterprise hears about the request (its contact e-mail).
    email: String,
    /// Free text, kept in the matter's only text field; refused if it has none.
    #[schema(nullable = false)]
    description: Option<String>,
    /// Kept in the matter's only `…_address` field, if it has one.
    #[schema(nullable = false)]
    address_string: Option<String>,
    /// Kept in the matter's `contact_phone` field, if it has one.
    #[schema(nullable = false)]
    phone: Option<String>,
    /// WGS84 latitude: checked, not kept.
    #[schema(nullable = false)]
    lat: Option<String>,
    /// WGS84 longitude: checked, not kept.
    #[schema(nullable = false)]
    long: Option<String>,
    /// Not kept.
    #[schema(nullable = false)]
    address_id: Option<String>,
    /// Not kept.
    #[schema(nullable = false)]
    first_name: Option<String>,
    /// Not kept.
    #[schema(nullable = false)]
    last_name: Option<String>,
    /// Not kept.
    #[schema(nullable = false)]
    device_id: Option<String>,
    /// Not kept: the account is the key's enterprise.
    #[schema(nullable = false)]
    account_id: Option<String>,
    /// Not kept.
    #[schema(nullable = false)]
    media_url: Option<String>,
}

// --- Handlers ----------------------------------------------------------------------------

/// The matters as GeoReport services.
///
/// Errors are GeoReport's error body, not problem+json: a `jurisdiction_id` other than ours,
/// or a suffix other than `.json` / `.xml`, is 404.
#[utoipa::path(
    tag = "open311",
    operation_id = "open311_services",
    params(
        ("format" = inline(Open311Format), Path, description = "Response format"),
        ("jurisdiction_id" = Option<String>, Query, description = "Ours (see `[open311] jurisdiction_id`) or left out"),
    ),
    responses(
        (status = 200, description = "Every matter, in catalog order", content(
            (Vec<Open311Service> = "application/json"), (String = "text/xml"))),
        (status = 404, description = "Unknown jurisdiction_id or format (GeoReport error body)", content(
            (Vec<Open311Error> = "application/json"), (String = "text/xml"))),
    )
)]
#[get("/open311/v2/services.{format}")]
pub async fn services(
    req: HttpRequest,
    open311: web::Data<Open311>,
    catalog: web::Data<Catalog>,
) -> HttpResponse {
    let format = match format_of(&req) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let query = Query::of(&req);
    let outcome = open311
        .jurisdiction(query.get("jurisdiction_id").as_deref())
        .map(|()| {
            Doc::ok(
                "services",
                Node::List(
                    "service",
                    catalog
                        .matters()
                        .map(|m| service_node(&catalog, m))
                        .collect(),
                ),
            )
        });
    answer(format, outcome)
}

/// A matter's service definition: its form fields, then its materials, as attributes.
///
/// Errors are GeoReport's error body, not problem+json.
#[utoipa::path(
    tag = "open311",
    operation_id = "open311_service_definition",
    params(
        ("service_code" = String, Path, description = "A matter code"),
        ("format" = inline(Open311Format), Path, description = "Response format"),
        ("jurisdiction_id" = Option<String>, Query, description = "Ours or left out"),
    ),
    responses(
        (status = 200, description = "The service definition", content(
            (Open311ServiceDefinition = "application/json"), (String = "text/xml"))),
        (status = 404, description = "Unknown service_code, jurisdiction_id or format (GeoReport error body)", content(
            (Vec<Open311Error> = "application/json"), (String = "text/xml"))),
    )
)]
#[get("/open311/v2/services/{service_code}.{format}")]
pub async fn definition(
    req: HttpRequest,
    open311: web::Data<Open311>,
    catalog: web::Data<Catalog>,
) -> HttpResponse {
    let format = match format_of(&req) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let query = Query::of(&req);
    let code = req.match_info().get("service_code").unwrap_or_default();
    let outcome = open311
        .jurisdiction(query.get("jurisdiction_id").as_deref())
        .and_then(|()| {
            catalog.matter(code).ok_or_else(|| {
                Failure::new(
                    StatusCode::NOT_FOUND,
                    format!("service_code `{code}` was not found"),
                )
            })
        })
        .map(|matter| Doc::ok("service_definition", definition_node(matter)));
    answer(format, outcome)
}

/// Submit a request for a matter, in GeoReport's form encoding.
///
/// The `api_key` stands for one enterprise (configured under `[open311.api_keys]`); with no
/// key configured every submission is 403. The request goes through the same intake as
/// `POST /api/v1/requests` and is visible there to the enterprise. Errors are GeoReport's
/// error body, not problem+json: 403 for a missing or wrong `api_key`, 404 for an unknown
/// `service_code` or `jurisdiction_id`, 400 with one error per wrong argument otherwise.
#[utoipa::path(
    tag = "open311",
    operation_id = "open311_create_request",
    params(("format" = inline(Open311Format), Path, description = "Response format")),
    request_body(content = Open311Submission, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Created and routed: the request number", content(
            (Vec<Open311Created> = "application/json"), (String = "text/xml"))),
        (status = 400, description = "Wrong arguments, one error each (GeoReport error body)", content(
            (Vec<Open311Error> = "application/json"), (String = "text/xml"))),
        (status = 403, description = "Missing or wrong api_key (GeoReport error body)", content(
            (Vec<Open311Error> = "application/json"), (String = "text/xml"))),
        (status = 404, description = "Unknown service_code, jurisdiction_id or format (GeoReport error body)", content(
            (Vec<Open311Error> = "application/json"), (String = "text/xml"))),
        (status = 413, description = "Body too large", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/open311/v2/requests.{format}")]
pub async fn create(
    req: HttpRequest,
    body: web::Bytes,
    open311: web::Data<Open311>,
    catalog: web::Data<Catalog>,
    calendars: web::Data<Calendars>,
    sla: web::Data<SlaSettings>,
    db: web::Data<Database>,
) -> HttpResponse {
    let format = match format_of(&req) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let calendar = calendars.current();
    let rules = Rules {
        calendar: &calendar,
        warn_percent: sla.warn_percent,
    };
    let outcome = submit(&req, &body, &open311, &catalog, rules, &db).await;
    answer(format, outcome)
}

async fn submit(
    req: &HttpRequest,
    body: &[u8],
    open311: &Open311,
    catalog: &Catalog,
    rules: Rules<'_>,
    db: &Database,
) -> Result<Doc, Failure> {
    let calendar = rules.calendar;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if !body.is_empty() && !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "send the arguments as application/x-www-form-urlencoded",
        ));
    }
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let args = Arguments::read(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    open311.jurisdiction(args.get("jurisdiction_id"))?;
    let submitter = match args.get("api_key") {
        Some(key) => open311.submitter(key)?,
        None => {
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                "api_key is required to submit a request",
            ));
        }
    };
    let Some(code) = args.get("service_code") else {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "service_code: required: the code of a service (GET services.json)",
        ));
    };
    let matter = catalog.matter(code.trim()).ok_or_else(|| {
        Failure::new(
            StatusCode::NOT_FOUND,
            format!("service_code `{}` was not found", code.trim()),
        )
    })?;
    let zone = calendar.time_zone();
    let (translated, refused) = georeport::translate(matter, submitter, &args, zone);
    let uscc = Uscc::parse(&submitter.uscc).map_err(|e| Failure::from(ApiError::internal(e)))?;
    let findings = match intake::check(catalog, &translated.body, &uscc) {
        Ok(checked) if refused.is_empty() => Ok(checked),
        Ok(_) => Err(Vec::new()),
        Err(findings) => Err(findings),
    };
    let checked = findings.map_err(|findings| {
        Failure::arguments(georeport::name_findings(
            matter,
            &translated,
            refused.clone(),
            &findings,
        ))
    })?;
    // Microseconds: what both backends store, so a re-read equals this answer.
    let now = Utc::now().trunc_subsecs(6);
    let new = super::requests::plan(catalog, rules, &checked, uscc.as_str(), now)?;
    let stored = db
        .run(move |conn| {
            // No Idempotency-Key: GeoReport has none, so nothing is kept to replay.
            intake_store::create(conn, &new, None, now.naive_utc(), &|_| String::new())
        })
        .await?;
    let Stored::Created(record) = stored else {
        return Err(ApiError::internal("intake without a key did not create a request").into());
    };
    let found: Found = *record;
    tracing::info!(
        number = %found.request.number,
        matter = %matter.code,
        channel = %submitter.channel,
        "request submitted through Open311"
    );
    Ok(Doc::ok(
        "service_requests",
        Node::List(
            "request",
            vec![Node::Object(vec![
                ("service_request_id", text(&found.request.number)),
                ("service_notice", text(notice(catalog, &found, zone, true))),
                ("account_id", text(&found.request.uscc)),
            ])],
        ),
    ))
}

/// The list's filters, read and checked.
fn selection(query: &Query, now: DateTime<Utc>) -> Result<Selection, Failure> {
    let mut errors = Vec::new();
    let numbers = Some(list_of(query.get("service_request_id"))).filter(|n| !n.is_empty());
    let mut date = |name: &'static str| -> Option<NaiveDateTime> {
        let value = query.get(name)?;
        match georeport::parse_datetime(&value) {
            Some(at) => Some(at.naive_utc()),
            None => {
                errors.push(ArgumentError {
                    argument: name.into(),
                    message: format!(
                        "`{value}` is not a W3C date-time with an offset, e.g. 2010-01-01T00:00:00Z"
                    ),
                });
                None
            }
        }
    };
    let start = date("start_date");
    let end = date("end_date");
    let mut statuses: Vec<&'static str> = Vec::new();
    let mut wanted = Vec::new();
    for status in list_of(query.get("status")) {
        match status.as_str() {
            "open" | "closed" => wanted.push(status),
            other => errors.push(ArgumentError {
                argument: "status".into(),
                message: format!("`{other}` is not a status; use open, closed or both"),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(Failure::arguments(errors));
    }
    if wanted.len() == 1 {
        statuses = georeport::statuses_in(&wanted[0]);
    }
    // GeoReport's default: the 90 days up to the end (or now).
    let window = TimeDelta::days(WINDOW_DAYS);
    let from = start.or_else(|| {
        end.unwrap_or_else(|| now.naive_utc())
            .checked_sub_signed(window)
    });
    Ok(Selection {
        uscc: None,
        numbers,
        codes: list_of(query.get("service_code")),
        statuses,
        created_from: from,
        created_to: end,
        limit: LIST_LIMIT,
    })
}

/// The filters of the request list. Every one may be left out or sent empty (GeoReport's
/// optional arguments); a name sent several times is read as a comma-delimited list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // only a documentation type
pub struct ListParams {
    /// Ours, or left out.
    jurisdiction_id: Option<String>,
    /// An enterprise's key: its own requests, in full.
    api_key: Option<String>,
    /// Request numbers, comma-delimited; overrides the other filters.
    service_request_id: Option<String>,
    /// Matter codes, comma-delimited.
    service_code: Option<String>,
    /// Requested at or after (W3C date-time with an offset); by default 90 days before
    /// `end_date` (or now).
    #[param(schema_with = date_time_or_empty)]
    start_date: Option<String>,
    /// Requested at or before (W3C date-time with an offset).
    #[param(schema_with = date_time_or_empty)]
    end_date: Option<String>,
    /// `open`, `closed`, or both, comma-delimited.
    #[param(pattern = "^((open|closed)(,(open|closed))*)?$")]
    status: Option<String>,
}

/// A date-time, or empty (an empty argument is no argument).
fn date_time_or_empty() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{
        AnyOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
    };
    Schema::AnyOf(
        AnyOfBuilder::new()
            .description(Some(
                "A W3C date-time with an offset (2010-01-01T00:00:00Z), or empty for none",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(0)),
            )
            .build(),
    )
}

/// Requests, newest first (at most 1000; by default those of the last 90 days).
///
/// With the `api_key` of an enterprise: that enterprise's requests, in full. Without one:
/// every request, without what the enterprise wrote (description, address) and without its
/// pending materials — enterprise data is not public, the progress of a case is
/// (docs/open311.md). `service_request_id` (comma-delimited numbers) overrides the other
/// filters. Errors are GeoReport's error body, not problem+json.
#[utoipa::path(
    tag = "open311",
    operation_id = "open311_list_requests",
    security((), ("open311_api_key" = [])),
    params(
        ("format" = inline(Open311Format), Path, description = "Response format"),
        ListParams,
    ),
    responses(
        (status = 200, description = "The requests", content(
            (Vec<Open311ServiceRequest> = "application/json"), (String = "text/xml"))),
        (status = 400, description = "A wrong filter, one error each (GeoReport error body)", content(
            (Vec<Open311Error> = "application/json"), (String = "text/xml"))),
        (status = 403, description = "Wrong api_key (GeoReport error body)", content(
            (Vec<Open311Error> = "application/json"), (String = "text/xml"))),
        (status = 404, description = "Unknown jurisdiction_id or format (GeoReport error body)", content(
            (Vec<Open311Error> = "application/json"), (String = "text/xml"))),
    )
)]
#[get("/open311/v2/requests.{format}")]
pub async fn list(
    req: HttpRequest,
    open311: web::Data<Open311>,
    catalog: web::Data<Catalog>,
    calendars: web::Data<Calendars>,
    db: web::Data<Database>,
) -> HttpResponse {
    let format = match format_of(&req) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let outcome = list_doc(&req, &open311, &catalog, &calendars.current(), &db).await;
    answer(format, outcome)
}

async fn list_doc(
    req: &HttpRequest,
    open311: &Open311,
    catalog: &Catalog,
    calendar: &Calendar,
    db: &Database,
) -> Result<Doc, Failure> {
    let query = Query::of(req);
    open311.jurisdiction(query.get("jurisdiction_id").as_deref())?;
    let reader = open311.reader(query.get("api_key").as_deref())?.cloned();
    let mut selection = selection(&query, Utc::now())?;
    selection.uscc = reader.as_ref().map(|s| s.uscc.clone());
    let found = db
        .run(move |conn| Ok(store::select(conn, &selection)?))
        .await?;
    Ok(requests_doc(
        catalog,
        &found,
        calendar.time_zone(),
        reader.as_ref(),
    ))
}

/// One request, by its number.
///
/// In full to the owner's `api_key`; without it, without what the enterprise wrote (as in the
/// list). Errors are GeoReport's error body, not problem+json.
#[utoipa::path(
    tag = "open311",
    operation_id = "open311_read_request",
    security((), ("open311_api_key" = [])),
    params(
        ("service_request_id" = String, Path, description = "The request number"),
        ("format" = inline(Open311Format), Path, description = "Response format"),
        ("jurisdiction_id" = Option<String>, Query, description = "Ours or left out"),
        ("api_key" = Option<String>, Query, description = "The owner's key: the request in full"),
    ),
    responses(
        (status = 200, description = "The request", content(
            (Vec<Open311ServiceRequest> = "application/json"), (String = "text/xml"))),
        (status = 403, description = "Wrong api_key (GeoReport error body)", content(
            (Vec<Open311Error> = "application/json"), (String = "text/xml"))),
        (status = 404, description = "No such request, or unknown jurisdiction_id or format (GeoReport error body)", content(
            (Vec<Open311Error> = "application/json"), (String = "text/xml"))),
    )
)]
#[get("/open311/v2/requests/{service_request_id}.{format}")]
pub async fn read(
    req: HttpRequest,
    open311: web::Data<Open311>,
    catalog: web::Data<Catalog>,
    calendars: web::Data<Calendars>,
    db: web::Data<Database>,
) -> HttpResponse {
    let format = match format_of(&req) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let outcome = read_doc(&req, &open311, &catalog, &calendars.current(), &db).await;
    answer(format, outcome)
}

async fn read_doc(
    req: &HttpRequest,
    open311: &Open311,
    catalog: &Catalog,
    calendar: &Calendar,
    db: &Database,
) -> Result<Doc, Failure> {
    let query = Query::of(req);
    open311.jurisdiction(query.get("jurisdiction_id").as_deref())?;
    let reader = open311.reader(query.get("api_key").as_deref())?.cloned();
    let number = req
        .match_info()
        .get("service_request_id")
        .unwrap_or_default()
        .to_string();
    let selection = Selection {
        numbers: Some(vec![number.clone()]),
        limit: 1,
        ..Selection::default()
    };
    let found = db
        .run(move |conn| Ok(store::select(conn, &selection)?))
        .await?;
    if found.is_empty() {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            format!("service_request_id `{number}` was not found"),
        ));
    }
    Ok(requests_doc(
        catalog,
        &found,
        calendar.time_zone(),
        reader.as_ref(),
    ))
}

/// The request number of a token.
///
/// Requests are created at once (services are `realtime`), so a submission never returns a
/// token; a token here is a request's id in `/api/v1/requests` (a UUID), which maps straight
/// to its number. Errors are GeoReport's error body, not problem+json.
#[utoipa::path(
    tag = "open311",
    operation_id = "open311_token",
    params(
        ("token" = String, Path, description = "A request id of /api/v1/requests"),
        ("format" = inline(Open311Format), Path, description = "Response format"),
        ("jurisdiction_id" = Option<String>, Query, description = "Ours or left out"),
    ),
    responses(
        (status = 200, description = "The request number", content(
            (Vec<Open311Token> = "application/json"), (String = "text/xml"))),
        (status = 404, description = "Unknown token, jurisdiction_id or format (GeoReport error body)", content(
            (Vec<Open311Error> = "application/json"), (String = "text/xml"))),
    )
)]
#[get("/open311/v2/tokens/{token}.{format}")]
pub async fn token(
    req: HttpRequest,
    open311: web::Data<Open311>,
    db: web::Data<Database>,
) -> HttpResponse {
    let format = match format_of(&req) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let outcome = token_doc(&req, &open311, &db).await;
    answer(format, outcome)
}

async fn token_doc(req: &HttpRequest, open311: &Open311, db: &Database) -> Result<Doc, Failure> {
    let query = Query::of(req);
    open311.jurisdiction(query.get("jurisdiction_id").as_deref())?;
    let given = req
        .match_info()
        .get("token")
        .unwrap_or_default()
        .to_string();
    let lookup = given.clone();
    let found = db.run(move |conn| Ok(store::by_id(conn, &lookup)?)).await?;
    let Some(found) = found else {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            format!("token `{given}` was not found"),
        ));
    };
    Ok(Doc::ok(
        "service_requests",
        Node::List(
            "request",
            vec![Node::Object(vec![
                ("service_request_id", text(&found.request.number)),
                ("token", text(given)),
            ])],
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Node {
        Node::List(
            "service",
            vec![Node::Object(vec![
                ("service_code", text("001")),
                ("metadata", Node::Bool(true)),
                ("order", Node::Int(1)),
                ("account_id", Node::Null),
                ("description", text("a < b & \"c\"")),
            ])],
        )
    }

    #[test]
    fn json_keeps_the_order_and_types() {
        assert_eq!(
            serde_json::to_string(&sample()).unwrap(),
            r#"[{"service_code":"001","metadata":true,"order":1,"account_id":null,"description":"a < b & \"c\""}]"#
        );
    }

    #[test]
    fn xml_has_the_declaration_root_and_item_elements() {
        let xml = to_xml("services", &sample());
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<services>\n  <service>\n    <service_code>001</service_code>\n    <metadata>true</metadata>\n    <order>1</order>\n    <account_id/>\n    <description>a &lt; b &amp; &quot;c&quot;</description>\n  </service>\n</services>\n"
        );
        let empty = to_xml("service_requests", &Node::List("request", vec![]));
        assert!(empty.ends_with("<service_requests/>\n"), "{empty}");
    }

    #[test]
    fn control_characters_do_not_break_xml() {
        let xml = to_xml(
            "errors",
            &Node::Object(vec![("description", text("a\u{1}b"))]),
        );
        assert!(xml.contains("a\u{FFFD}b"), "{xml}");
    }

    #[test]
    fn lists_are_trimmed_deduplicated_and_bounded() {
        assert_eq!(
            list_of(Some(" a, b,,a ,c".into())),
            vec!["a".to_string(), "b".into(), "c".into()]
        );
        let many = (0..5000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(list_of(Some(many)).len(), LIST_LIMIT as usize);
        assert!(list_of(None).is_empty());
    }

    #[test]
    fn failures_are_one_error_each_with_the_status_as_code() {
        let failure = Failure::arguments(vec![
            ArgumentError {
                argument: "email".into(),
                message: "required".into(),
            },
            ArgumentError {
                argument: "attribute[x]".into(),
                message: "unknown".into(),
            },
        ]);
        let doc = failure.doc();
        assert_eq!(doc.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            serde_json::to_value(&doc.node).unwrap(),
            serde_json::json!([
                {"code": 400, "description": "email: required"},
                {"code": 400, "description": "attribute[x]: unknown"}
            ])
        );
    }
}
