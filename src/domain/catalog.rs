//! The district's published catalog: units, matters (事项) and bundles (一件事).
//!
//! The catalog is data (`config/catalog.toml`), versioned with the code. [`Catalog::parse`]
//! reads it and checks it whole: unknown units, duplicate codes, bad clock targets, fields or
//! bundles that make no sense stop the server with a message naming the file and the entry.
//! The catalog's version is the SHA-256 of its bytes; every routing decision records it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::UnitCode;

/// The catalog as shipped in the repository (compiled in; a file may replace it).
pub const DEFAULT_CATALOG: &str = include_str!("../../config/catalog.toml");

/// Matter categories of the district plan.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Enterprise registration: establish, change, deregister.
    Registration,
    /// Tax.
    Tax,
    /// Real estate.
    Property,
    /// Licences and permits.
    Permit,
    /// Construction projects.
    Construction,
    /// Credit repair and credit services.
    Credit,
    /// Talent: work and residence permits, social insurance.
    Talent,
    /// Financing.
    Finance,
    /// Disputes and complaints.
    Dispute,
    /// Consultation and enterprise service.
    Consultation,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 10] = [
        Category::Registration,
        Category::Tax,
        Category::Property,
        Category::Permit,
        Category::Construction,
        Category::Credit,
        Category::Talent,
        Category::Finance,
        Category::Dispute,
        Category::Consultation,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Registration => "registration",
            Category::Tax => "tax",
            Category::Property => "property",
            Category::Permit => "permit",
            Category::Construction => "construction",
            Category::Credit => "credit",
            Category::Talent => "talent",
            Category::Finance => "finance",
            Category::Dispute => "dispute",
            Category::Consultation => "consultation",
        }
    }
}

impl FromStr for Category {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a category"))
    }
}

/// How a matter is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// 即办件: done on the spot.
    Immediate,
    /// 承诺件: done within a promised limit.
    Promised,
}

/// Ways a request may reach the centre.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The city portal (一网通办).
    Online,
    /// A window of the service centre.
    Window,
    /// A self-service terminal.
    SelfService,
    /// Accepted in another region, handled here the same way (异地受理、无差别办).
    CrossRegion,
}

impl Channel {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Online => "online",
            Channel::Window => "window",
            Channel::SelfService => "self_service",
            Channel::CrossRegion => "cross_region",
        }
    }
}

/// A clock target: wall-clock time, or working time on the calendar.
///
/// Written as an ISO 8601 duration for wall-clock time (`PT20M`, `PT2H`), or as
/// `"<n> working_minutes"` / `"<n> working_days"` (`n` may be a half: `"0.5 working_days"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Minutes of wall-clock time.
    Minutes(u32),
    /// Minutes of service hours on working days.
    WorkingMinutes(u32),
    /// Working days, counted in halves (1 = half a working day).
    WorkingHalfDays(u32),
}

impl Target {
    /// Whole working days.
    pub fn working_days(days: u32) -> Self {
        Target::WorkingHalfDays(days * 2)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Target::Minutes(m) if m % 60 == 0 => write!(f, "PT{}H", m / 60),
            Target::Minutes(m) => write!(f, "PT{m}M"),
            Target::WorkingMinutes(m) => write!(f, "{m} working_minutes"),
            Target::WorkingHalfDays(h) if h % 2 == 0 => write!(f, "{} working_days", h / 2),
            Target::WorkingHalfDays(h) => write!(f, "{}.5 working_days", h / 2),
        }
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "`{text}` is not a clock target (PT20M, PT2H, \"210 working_minutes\", \"0.5 working_days\")"
            )
        };
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("PT") {
            // PT[<h>H][<m>M]: hours before minutes, each at most once.
            let (hours, rest) = match rest.split_once('H') {
                Some((hours, rest)) => (whole(hours).ok_or_else(bad)?, rest),
                None => (0, rest),
            };
            let minutes = match rest {
                "" => 0,
                _ => rest.strip_suffix('M').and_then(whole).ok_or_else(bad)?,
            };
            return hours
                .checked_mul(60)
                .and_then(|h| h.checked_add(minutes))
                .filter(|&m| m > 0)
                .map(Target::Minutes)
                .ok_or_else(bad);
        }
        let (amount, unit) = text.split_once(' ').ok_or_else(bad)?;
        match unit.trim() {
            "working_minutes" => whole(amount)
                .filter(|&m| m > 0)
                .map(Target::WorkingMinutes)
                .ok_or_else(bad),
            "working_days" => {
                let (days, half) = match amount.split_once('.') {
                    None => (amount, 0),
                    Some((days, "5")) => (days, 1),
                    Some((days, "0")) => (days, 0),
                    Some(_) => return Err(bad()),
                };
                whole(days)
                    .and_then(|d| d.checked_mul(2))
                    .and_then(|h| h.checked_add(half))
                    .filter(|&h| h > 0)
                    .map(Target::WorkingHalfDays)
                    .ok_or_else(bad)
            }
            _ => Err(bad()),
        }
    }
}

/// A whole number written with digits only (no sign), if it fits.
fn whole(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The clock targets a matter publishes.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockTargets {
    /// From `call` at the window to accept / refuse / supplement notice (wall clock).
    #[schema(value_type = Option<String>, example = "PT20M")]
    pub window_intake: Option<Target>,
    /// The published promised limit (承诺时限).
    #[schema(value_type = Option<String>, example = "0.5 working_days")]
    pub promised: Option<Target>,
    /// The statutory decision limit from acceptance (Administrative Licensing Law Art. 42).
    #[schema(value_type = Option<String>, example = "20 working_days")]
    pub statutory: Option<Target>,
    /// From approval to delivery of the certificate (Art. 44).
    #[schema(value_type = Option<String>, example = "10 working_days")]
    pub delivery: Option<Target>,
    /// A co-operating unit's opinion, from acceptance (联合会审); default the promised limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "3 working_days")]
    pub opinion: Option<Target>,
    /// 即办件: from the call at the window to completion, in the same visit; only for
    /// `mode = "immediate"` matters, default 60 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "PT60M")]
    pub immediate: Option<Target>,
}

/// A unit as published in the catalog.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    /// Stable code.
    pub code: UnitCode,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// Where warnings, breaches and rectifications for this unit are sent.
    pub supervisor_email: String,
}

/// A material (材料) a matter asks for.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Material {
    /// Code, unique within the matter.
    pub code: String,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// Whether the request needs it at all.
    #[serde(default = "yes")]
    pub required: bool,
    /// 容缺: may be missing at intake and supplied within this many working days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferrable_days: Option<u32>,
}

fn yes() -> bool {
    true
}

/// Types of form fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Free text.
    String,
    /// Longer free text.
    Text,
    /// Whole number.
    Integer,
    /// Decimal number.
    Decimal,
    /// `true` / `false`.
    Boolean,
    /// Calendar date, `YYYY-MM-DD`.
    Date,
    /// One of `options`.
    Enum,
    /// E-mail address.
    Email,
    /// Mainland phone number.
    Phone,
    /// Unified social credit code (checked).
    Uscc,
}

/// A field of a matter's form, with its constraints.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Key in the submitted `form` object.
    pub name: String,
    /// Chinese label.
    pub label_zh: String,
    /// English label.
    pub label_en: String,
    /// Type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Must be present.
    #[serde(default)]
    pub required: bool,
    /// Shortest text, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// Longest text, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Smallest number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Allowed values of an `enum` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// What a [`Rule`] may forbid.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Relief {
    /// 容缺受理: a deferrable material missing at intake, supplied later.
    Deferral,
    /// 告知承诺: approval on a signed commitment.
    Commitment,
}

impl Relief {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Relief::Deferral => "deferral",
            Relief::Commitment => "commitment",
        }
    }
}

/// The condition of a [`Rule`]: a form field of the matter has this value.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// A field of the matter's form.
    pub field: String,
    /// The value that makes the rule apply (checked against the field's type): a string,
    /// number or boolean.
    #[schema(value_type = serde_json::Value)]
    pub equals: serde_json::Value,
}

/// A rule of a matter: when the form says so, some reliefs are not available, e.g. no 容缺
/// and no 告知承诺 for projects involving heritage protection (plan (三)5:
/// 涉及风貌保护及文物的项目除外).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Code, unique within the matter; refusals name it.
    pub code: String,
    /// When it applies.
    pub when: Condition,
    /// What it forbids (at least one).
    pub forbid: Vec<Relief>,
    /// Why, in Chinese.
    pub reason_zh: String,
    /// Why, in English.
    pub reason_en: String,
}

impl Rule {
    /// Whether the rule applies to `form` (one matter's form object).
    pub fn applies(&self, form: &serde_json::Value) -> bool {
        form.get(&self.when.field) == Some(&self.when.equals)
    }

    /// Whether it forbids `relief`.
    pub fn forbids(&self, relief: Relief) -> bool {
        self.forbid.contains(&relief)
    }
}

/// A matter (事项): one kind of request the district handles.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Matter {
    /// Stable code, e.g. `market.establish`.
    pub code: String,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// Category.
    pub category: Category,
    /// The unit that receives and answers (one intake, one feedback point).
    pub lead_unit: UnitCode,
    /// Units that handle it in parallel with the lead.
    #[serde(default)]
    pub co_units: Vec<UnitCode>,
    /// Immediate or promised.
    pub mode: Mode,
    /// Section of the district plan the matter comes from, e.g. `(二)1`.
    pub plan_section: String,
    /// Clock targets.
    pub clocks: ClockTargets,
    /// Channels through which it may be submitted.
    pub channels: Vec<Channel>,
    /// Whether approval on a signed commitment (告知承诺) is allowed.
    #[serde(default)]
    pub commitment_allowed: bool,
    /// Materials.
    #[serde(default)]
    pub materials: Vec<Material>,
    /// Form fields.
    #[serde(default)]
    pub fields: Vec<Field>,
    /// Rules on the form that forbid 容缺 or 告知承诺.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// The result may be delivered while a deferred (容缺) material is still pending; by
    /// default delivery waits for every one.
    #[serde(default)]
    pub deliver_before_materials: bool,
}

/// A bundle (一件事): several matters, several units in parallel, one intake, one reply.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Stable code, e.g. `bundle.property-transfer`.
    pub code: String,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// The unit that coordinates and gives the one reply.
    pub lead_unit: UnitCode,
    /// Section of the district plan.
    pub plan_section: String,
    /// The matters, each handled by its own lead unit in parallel.
    pub matters: Vec<String>,
    /// Whether the result is handed over during the same visit (立等可取).
    #[serde(default)]
    pub on_the_spot: bool,
    /// 立等可取: from acceptance to the certificate; default 60 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "PT60M")]
    pub on_the_spot_target: Option<Target>,
    /// Channels through which it may be submitted.
    pub channels: Vec<Channel>,
}

/// The raw file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    units: Vec<Unit>,
    matters: Vec<Matter>,
    #[serde(default)]
    bundles: Vec<Bundle>,
}

/// A catalog that passed every check.
#[derive(Debug, Clone)]
pub struct Catalog {
    version: String,
    units: BTreeMap<UnitCode, Unit>,
    matters: BTreeMap<String, Matter>,
    bundles: BTreeMap<String, Bundle>,
}

/// A catalog problem, naming the file and the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("catalog {file}: {entry}: {problem}")]
pub struct CatalogError {
    /// The file.
    pub file: String,
    /// The entry, e.g. `matters[market.establish].lead_unit`.
    pub entry: String,
    /// What is wrong.
    pub problem: String,
}

impl Catalog {
    /// Parses and checks `text`, read from `file` (used in messages only).
    pub fn parse(file: &str, text: &str) -> Result<Self, CatalogError> {
        let fail = |entry: String, problem: String| CatalogError {
            file: file.to_string(),
            entry,
            problem,
        };
        let raw: CatalogFile = toml::from_str(text).map_err(|e| {
            let entry = e
                .span()
                .map(|s| {
                    // 1-based; counting newlines (not `lines()`) keeps a span at
                    // the start of a line on that line.
                    let line = text[..s.start].matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_else(|| "file".into());
            fail(entry, e.message().to_string())
        })?;
        let version = hex(&Sha256::digest(text.as_bytes()));

        let mut units = BTreeMap::new();
        for unit in raw.units {
            if units.insert(unit.code, unit.clone()).is_some() {
                return Err(fail(
                    format!("units[{}]", unit.code),
                    "duplicate unit code".into(),
                ));
            }
        }
        for code in UnitCode::ALL {
            if !units.contains_key(&code) {
                return Err(fail("units".into(), format!("unit `{code}` is missing")));
            }
        }

        let mut matters = BTreeMap::new();
        for matter in raw.matters {
            let entry = format!("matters[{}]", matter.code);
            check_matter(&matter)
                .map_err(|(field, problem)| fail(format!("{entry}{field}"), problem))?;
            if matters.insert(matter.code.clone(), matter).is_some() {
                return Err(fail(entry, "duplicate matter code".into()));
            }
        }

        let mut bundles = BTreeMap::new();
        for bundle in raw.bundles {
            let entry = format!("bundles[{}]", bundle.code);
            if matters.contains_key(&bundle.code) {
                return Err(fail(entry, "code is already a matter code".into()));
            }
            check_bundle(&bundle, &matters)
                .map_err(|(field, problem)| fail(format!("{entry}{field}"), problem))?;
            if bundles.insert(bundle.code.clone(), bundle).is_some() {
                return Err(fail(entry, "duplicate bundle code".into()));
            }
        }
        Ok(Self {
            version,
            units,
            matters,
            bundles,
        })
    }

    /// The catalog shipped with the code.
    pub fn builtin() -> Self {
        Self::parse("config/catalog.toml", DEFAULT_CATALOG).expect("the shipped catalog is valid")
    }

    /// Content hash (SHA-256, hex) identifying this version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Every unit, by code.
    pub fn units(&self) -> impl Iterator<Item = &Unit> {
        self.units.values()
    }

    /// One unit.
    pub fn unit(&self, code: UnitCode) -> &Unit {
        &self.units[&code]
    }

    /// Every matter, by code.
    pub fn matters(&self) -> impl Iterator<Item = &Matter> {
        self.matters.values()
    }

    /// One matter.
    pub fn matter(&self, code: &str) -> Option<&Matter> {
        self.matters.get(code)
    }

    /// Every bundle, by code.
    pub fn bundles(&self) -> impl Iterator<Item = &Bundle> {
        self.bundles.values()
    }

    /// One bundle.
    pub fn bundle(&self, code: &str) -> Option<&Bundle> {
        self.bundles.get(code)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// Checks one matter on its own; the error names the field within the entry.
fn check_matter(matter: &Matter) -> Result<(), (String, String)> {
    let err = |field: &str, problem: String| Err((field.to_string(), problem));
    if !valid_code(&matter.code) {
        return err("", "code must be lower-case letters, digits and -_.".into());
    }
    if matter.name_zh.trim().is_empty() || matter.name_en.trim().is_empty() {
        return err(".name", "both names are required".into());
    }
    if matter.co_units.contains(&matter.lead_unit) {
        return err(".co_units", "the lead unit is listed as a co-unit".into());
    }
    if matter.co_units.iter().collect::<BTreeSet<_>>().len() != matter.co_units.len() {
        return err(".co_units", "a co-unit is listed twice".into());
    }
    if matter.channels.is_empty() {
        return err(".channels", "at least one channel is required".into());
    }
    if matter.mode == Mode::Promised && matter.clocks.promised.is_none() {
        return err(
            ".clocks.promised",
            "a promised matter needs a promised limit".into(),
        );
    }
    if matter
        .clocks
        .window_intake
        .is_some_and(|t| !matches!(t, Target::Minutes(_)))
    {
        return err(
            ".clocks.window_intake",
            "the window intake is wall-clock time (PT20M)".into(),
        );
    }
    if matter.clocks.opinion.is_some() && matter.co_units.is_empty() {
        return err(
            ".clocks.opinion",
            "an opinion limit needs co-units to give opinions".into(),
        );
    }
    if matter.clocks.immediate.is_some() && matter.mode != Mode::Immediate {
        return err(
            ".clocks.immediate",
            "only an immediate matter (mode = \"immediate\") has a 即办件 clock".into(),
        );
    }
    let mut codes = BTreeSet::new();
    for material in &matter.materials {
        if !valid_code(&material.code) || !codes.insert(material.code.as_str()) {
            return err(
                &format!(".materials[{}]", material.code),
                "material codes must be unique lower-case codes".into(),
            );
        }
        if material.deferrable_days == Some(0) {
            return err(
                &format!(".materials[{}].deferrable_days", material.code),
                "must be at least 1 working day".into(),
            );
        }
    }
    let mut names = BTreeSet::new();
    for field in &matter.fields {
        let entry = format!(".fields[{}]", field.name);
        if !valid_code(&field.name) || !names.insert(field.name.as_str()) {
            return err(&entry, "field names must be unique lower-case codes".into());
        }
        let is_enum = field.field_type == FieldType::Enum;
        let has_options = !field.options.is_empty();
        if is_enum != has_options {
            return err(
                &entry,
                "options belong to enum fields, and enum fields need options".into(),
            );
        }
        if let (Some(min), Some(max)) = (field.min_length, field.max_length) {
            if min > max {
                return err(&entry, "min_length is above max_length".into());
            }
        }
        if let (Some(min), Some(max)) = (field.min, field.max) {
            if min > max {
                return err(&entry, "min is above max".into());
            }
        }
    }
    let mut rules = BTreeSet::new();
    for rule in &matter.rules {
        check_rule(matter, rule)
            .map_err(|(field, problem)| (format!(".rules[{}]{field}", rule.code), problem))?;
        if !rules.insert(rule.code.as_str()) {
            return err(
                &format!(".rules[{}]", rule.code),
                "rule codes must be unique within the matter".into(),
            );
        }
    }
    Ok(())
}

/// Checks one rule against its matter: a known field, a value of its type, something
/// forbidden, reasons in both languages.
fn check_rule(matter: &Matter, rule: &Rule) -> Result<(), (String, String)> {
    let err = |field: &str, problem: String| Err((field.to_string(), problem));
    if !valid_code(&rule.code) {
        return err("", "code must be lower-case letters, digits and -_.".into());
    }
    let Some(field) = matter.fields.iter().find(|f| f.name == rule.when.field) else {
        let known: Vec<&str> = matter.fields.iter().map(|f| f.name.as_str()).collect();
        return err(
            ".when.field",
            format!(
                "`{}` is not a field of the matter; fields: {}",
                rule.when.field,
                known.join(", ")
            ),
        );
    };
    if let Err(problem) = super::intake::check_field(field, &rule.when.equals) {
        return err(
            ".when.equals",
            format!("not a value of the field `{}`: {problem}", field.name),
        );
    }
    if rule.forbid.is_empty() {
        return err(
            ".forbid",
            "forbid at least one of: deferral, commitment".into(),
        );
    }
    if rule.forbid.iter().collect::<BTreeSet<_>>().len() != rule.forbid.len() {
        return err(".forbid", "a relief is listed twice".into());
    }
    if rule.reason_zh.trim().is_empty() || rule.reason_en.trim().is_empty() {
        return err(".reason", "both reasons are required".into());
    }
    Ok(())
}

fn check_bundle(
    bundle: &Bundle,
    matters: &BTreeMap<String, Matter>,
) -> Result<(), (String, String)> {
    if !valid_code(&bundle.code) {
        return Err((
            String::new(),
            "code must be lower-case letters, digits and -_.".into(),
        ));
    }
    if bundle.matters.len() < 2 {
        return Err((
            ".matters".into(),
            "a bundle joins at least two matters".into(),
        ));
    }
    if bundle.channels.is_empty() {
        return Err((
            ".channels".into(),
            "at least one channel is required".into(),
        ));
    }
    if bundle.on_the_spot_target.is_some() && !bundle.on_the_spot {
        return Err((
            ".on_the_spot_target".into(),
            "only an on-the-spot bundle (on_the_spot = true) has a 立等可取 target".into(),
        ));
    }
    let mut seen = BTreeSet::new();
    for code in &bundle.matters {
        if !matters.contains_key(code) {
            return Err((".matters".into(), format!("unknown matter `{code}`")));
        }
        if !seen.insert(code) {
            return Err((
                ".matters".into(),
                format!("matter `{code}` is listed twice"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "config/test-catalog.toml";

    /// Parses `text` and expects a refusal.
    fn refused(text: &str) -> CatalogError {
        match Catalog::parse(FILE, text) {
            Ok(_) => panic!("the broken catalog was accepted"),
            Err(e) => e,
        }
    }

    /// Replaces the one occurrence of `from` in `text`.
    fn replace_once(text: &str, from: &str, to: &str) -> String {
        assert_eq!(
            text.matches(from).count(),
            1,
            "`{from}` must occur exactly once"
        );
        text.replacen(from, to, 1)
    }

    /// Replaces the first occurrence of `from` after the line `code = "<code>"`, i.e. within
    /// that entry (and before the next entry).
    fn edit_entry(code: &str, from: &str, to: &str) -> String {
        let anchor = format!("\ncode = \"{code}\"\n");
        let start = DEFAULT_CATALOG
            .find(&anchor)
            .unwrap_or_else(|| panic!("no entry `{code}` in the shipped catalog"));
        let end = DEFAULT_CATALOG[start + anchor.len()..]
            .find("\n[[matters]]\n")
            .or_else(|| DEFAULT_CATALOG[start + anchor.len()..].find("\n[[bundles]]\n"))
            .map_or(DEFAULT_CATALOG.len(), |i| start + anchor.len() + i);
        let offset = DEFAULT_CATALOG[start..end]
            .find(from)
            .unwrap_or_else(|| panic!("`{from}` is not in the entry `{code}`"));
        let at = start + offset;
        format!(
            "{}{to}{}",
            &DEFAULT_CATALOG[..at],
            &DEFAULT_CATALOG[at + from.len()..]
        )
    }

    /// The 1-based line of the first occurrence of `needle`.
    fn line_of(text: &str, needle: &str) -> usize {
        let at = text.find(needle).expect("needle present");
        text[..at].matches('\n').count() + 1
    }

    /// The units that handle a bundle's matters (their lead units).
    fn bundle_units(catalog: &Catalog, code: &str) -> BTreeSet<UnitCode> {
        let bundle = catalog
            .bundle(code)
            .unwrap_or_else(|| panic!("bundle `{code}` is missing"));
        bundle
            .matters
            .iter()
            .map(|m| catalog.matter(m).expect("bundle matters exist").lead_unit)
            .collect()
    }

    // --- The shipped catalog --------------------------------------------------------------

    #[test]
    fn shipped_catalog_parses_and_is_large_enough() {
        let catalog = Catalog::builtin();
        assert!(
            catalog.matters().count() >= 30,
            "{} matters",
            catalog.matters().count()
        );
        assert!(catalog.bundles().count() >= 4);
        assert_eq!(catalog.units().count(), UnitCode::ALL.len());
        for code in UnitCode::ALL {
            assert_eq!(catalog.unit(code).code, code);
            assert!(catalog.unit(code).supervisor_email.contains('@'));
        }
        // The three example matters and the original bundle keep their codes.
        for code in [
            "market.establish",
            "tax.registration",
            "hrss.social-insurance-registration",
        ] {
            assert!(catalog.matter(code).is_some(), "{code}");
        }
        assert!(catalog.bundle("bundle.open-business").is_some());
        assert!(catalog.matter("bundle.open-business").is_none());
    }

    #[test]
    fn every_category_is_covered() {
        let catalog = Catalog::builtin();
        let covered: BTreeSet<Category> = catalog.matters().map(|m| m.category).collect();
        for category in Category::ALL {
            assert!(
                covered.contains(&category),
                "no matter in category `{}`",
                category.as_str()
            );
        }
    }

    #[test]
    fn every_unit_leads_a_matter_and_is_covered() {
        let catalog = Catalog::builtin();
        let leads: BTreeSet<UnitCode> = catalog.matters().map(|m| m.lead_unit).collect();
        let involved: BTreeSet<UnitCode> = catalog
            .matters()
            .flat_map(|m| std::iter::once(m.lead_unit).chain(m.co_units.iter().copied()))
            .collect();
        for unit in UnitCode::ALL {
            assert!(involved.contains(&unit), "unit `{unit}` handles no matter");
            assert!(leads.contains(&unit), "unit `{unit}` leads no matter");
        }
    }

    #[test]
    fn codes_follow_the_conventions() {
        let catalog = Catalog::builtin();
        for matter in catalog.matters() {
            let prefix = format!("{}.", matter.lead_unit);
            let name = matter
                .code
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("`{}` does not start with `{prefix}`", matter.code));
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "`{}`: the name after the unit is kebab-case",
                matter.code
            );
            assert!(!matter.plan_section.is_empty(), "{}", matter.code);
            assert!(
                (1..=4).contains(&matter.fields.len()),
                "{}: {} form fields",
                matter.code,
                matter.fields.len()
            );
            for field in &matter.fields {
                assert!(
                    field
                        .name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                    "{}: field `{}` is not snake_case",
                    matter.code,
                    field.name
                );
            }
        }
        for bundle in catalog.bundles() {
            assert!(bundle.code.starts_with("bundle."), "{}", bundle.code);
        }
    }

    #[test]
    fn promised_matters_have_a_promised_limit() {
        let catalog = Catalog::builtin();
        let mut promised = 0;
        for matter in catalog.matters() {
            if matter.mode == Mode::Promised {
                promised += 1;
                assert!(
                    matter.clocks.promised.is_some(),
                    "{} has no promised limit",
                    matter.code
                );
            }
        }
        assert!(promised > 0);
        assert!(catalog.matters().any(|m| m.mode == Mode::Immediate));
    }

    #[test]
    fn clocks_follow_the_plan_and_the_law() {
        let catalog = Catalog::builtin();
        for matter in catalog.matters() {
            // Plan (二)3: window submission within 20 minutes.
            if matter.channels.contains(&Channel::Window) {
                assert_eq!(
                    matter.clocks.window_intake,
                    Some(Target::Minutes(20)),
                    "{}",
                    matter.code
                );
            }
            // Plan (二)1: registration within half a working day.
            if matter.category == Category::Registration {
                assert_eq!(
                    matter.clocks.promised,
                    Some(Target::WorkingHalfDays(1)),
                    "{}",
                    matter.code
                );
                assert!(
                    matter.channels.contains(&Channel::CrossRegion),
                    "{}",
                    matter.code
                );
            }
            // Licences: Art. 42 decision and Art. 44 delivery.
            if matter.category == Category::Permit {
                assert_eq!(
                    matter.clocks.statutory,
                    Some(Target::working_days(20)),
                    "{}",
                    matter.code
                );
                assert_eq!(
                    matter.clocks.delivery,
                    Some(Target::working_days(10)),
                    "{}",
                    matter.code
                );
            }
            // The promise is never longer than the law allows.
            if let (Some(Target::WorkingHalfDays(p)), Some(Target::WorkingHalfDays(s))) =
                (matter.clocks.promised, matter.clocks.statutory)
            {
                assert!(
                    p <= s,
                    "{}: promised {p} half-days above statutory {s}",
                    matter.code
                );
            }
            // Statutory and delivery limits are working days on the calendar.
            for target in [matter.clocks.statutory, matter.clocks.delivery]
                .into_iter()
                .flatten()
            {
                assert!(
                    matches!(target, Target::WorkingHalfDays(_)),
                    "{}: {target}",
                    matter.code
                );
            }
        }
        let establish = catalog.matter("market.establish").unwrap();
        assert_eq!(
            establish.clocks.promised.unwrap().to_string(),
            "0.5 working_days"
        );
        // Tax matters are handled across provinces too (plan (四)4).
        assert!(
            catalog
                .matters()
                .any(|m| m.category == Category::Tax && m.channels.contains(&Channel::CrossRegion))
        );
    }

    #[test]
    fn deferrable_materials_and_commitments_where_the_plan_allows() {
        let catalog = Catalog::builtin();
        let deferrable = |category: Category| {
            catalog.matters().any(|m| {
                m.category == category && m.materials.iter().any(|x| x.deferrable_days == Some(5))
            })
        };
        assert!(deferrable(Category::Registration));
        assert!(deferrable(Category::Construction));
        assert!(
            catalog
                .matters()
                .any(|m| m.category == Category::Construction && m.commitment_allowed)
        );
        // Every permit joined by 一业一证 accepts a signed commitment.
        let industry = catalog.bundle("bundle.industry-permit").unwrap();
        for code in &industry.matters {
            assert!(catalog.matter(code).unwrap().commitment_allowed, "{code}");
        }
    }

    #[test]
    fn required_bundles_join_the_named_units() {
        use UnitCode::*;
        let catalog = Catalog::builtin();

        let property = catalog
            .bundle("bundle.property-transfer")
            .expect("property transfer");
        assert_eq!(
            bundle_units(&catalog, &property.code),
            BTreeSet::from([Housing, Tax, Planning])
        );
        assert_eq!(property.matters.len(), 3);
        assert!(property.on_the_spot, "立等可取");
        assert!(matches!(property.lead_unit, Planning | ServiceCenter));

        let open = catalog
            .bundle("bundle.open-business")
            .expect("open business");
        assert_eq!(
            bundle_units(&catalog, &open.code),
            BTreeSet::from([Market, Tax, Hrss])
        );
        assert_eq!(open.lead_unit, Market);

        let credit = catalog
            .bundle("bundle.credit-repair")
            .expect("credit repair");
        assert_eq!(
            bundle_units(&catalog, &credit.code),
            BTreeSet::from([Market, Ndrc])
        );
        assert!(matches!(credit.lead_unit, Market | Ndrc));
        assert_eq!(credit.plan_section, "(一)2");

        let industry = catalog.bundle("bundle.industry-permit").expect("一业一证");
        assert_eq!(industry.lead_unit, ServiceCenter);
        assert_eq!(industry.plan_section, "(二)2");
        assert!(bundle_units(&catalog, &industry.code).len() >= 2);
        for code in &industry.matters {
            assert_eq!(
                catalog.matter(code).unwrap().category,
                Category::Permit,
                "{code}"
            );
        }

        for bundle in catalog.bundles() {
            assert!(bundle.matters.len() >= 2, "{}", bundle.code);
            for code in &bundle.matters {
                assert!(catalog.matter(code).is_some(), "{}: {code}", bundle.code);
            }
        }
    }

    #[test]
    fn version_is_the_sha256_of_the_text() {
        let catalog = Catalog::builtin();
        let version = catalog.version();
        assert_eq!(version.len(), 64);
        assert!(
            version
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(version, hex(&Sha256::digest(DEFAULT_CATALOG.as_bytes())));
        // Same text, same version, whatever the file is called.
        assert_eq!(
            Catalog::parse(FILE, DEFAULT_CATALOG).unwrap().version(),
            version
        );
        // Any change, even a comment, is a new version.
        let edited = format!("{DEFAULT_CATALOG}\n# edited\n");
        let other = Catalog::parse(FILE, &edited).unwrap();
        assert_eq!(other.version().len(), 64);
        assert_ne!(other.version(), version);
        assert_eq!(other.matters().count(), catalog.matters().count());
    }

    // --- Targets --------------------------------------------------------------------------

    #[test]
    fn targets_round_trip() {
        let cases = [
            ("PT20M", Target::Minutes(20)),
            ("PT2H", Target::Minutes(120)),
            ("PT90M", Target::Minutes(90)),
            ("210 working_minutes", Target::WorkingMinutes(210)),
            ("0.5 working_days", Target::WorkingHalfDays(1)),
            ("1.5 working_days", Target::WorkingHalfDays(3)),
            ("20 working_days", Target::WorkingHalfDays(40)),
        ];
        for (text, target) in cases {
            assert_eq!(text.parse::<Target>(), Ok(target), "{text}");
            assert_eq!(target.to_string(), text);
            assert_eq!(target.to_string().parse::<Target>(), Ok(target));
        }
        assert_eq!(Target::working_days(10), Target::WorkingHalfDays(20));
        // Accepted spellings that display in the canonical form.
        assert_eq!("PT2H30M".parse::<Target>(), Ok(Target::Minutes(150)));
        assert_eq!("PT120M".parse::<Target>().unwrap().to_string(), "PT2H");
        assert_eq!(
            "1.0 working_days".parse::<Target>(),
            Ok(Target::working_days(1))
        );
        assert_eq!(
            " 5 working_days ".parse::<Target>(),
            Ok(Target::working_days(5))
        );
    }

    #[test]
    fn bad_targets_are_refused() {
        for text in [
            "20 days",
            "PT",
            "0.3 working_days",
            "-1 working_days",
            "PT20S",
            "",
            "0 working_days",
            "0 working_minutes",
            "PT0M",
            "PTH",
            "P1D",
            "20",
            "working_days",
            ".5 working_days",
            "0.50 working_days",
            "1.5 working_minutes",
            "+1 working_days",
            "PT20M2H",
            "PT1H1H",
            // Too large: refused, not a panic on overflow.
            "PT4294967295H",
            "PT4294967295M4294967295M",
            "4294967295 working_days",
            "99999999999 working_minutes",
        ] {
            let err = text.parse::<Target>().expect_err(text);
            assert!(err.contains(&format!("`{text}`")), "{text}: {err}");
        }
    }

    // --- Broken catalogs ------------------------------------------------------------------

    #[test]
    fn unknown_lead_unit_is_refused_with_its_line() {
        let text = edit_entry(
            "market.establish",
            "lead_unit = \"market\"",
            "lead_unit = \"marketing\"",
        );
        let err = refused(&text);
        let message = err.to_string();
        assert_eq!(err.file, FILE);
        assert!(
            message.starts_with(&format!("catalog {FILE}: ")),
            "{message}"
        );
        assert!(message.contains("marketing"), "{message}");
        let line = line_of(&text, "lead_unit = \"marketing\"");
        assert_eq!(err.entry, format!("line {line}"), "{message}");
    }

    #[test]
    fn visit_and_opinion_targets_only_where_they_apply() {
        // An opinion limit on a matter without co-units.
        let text = edit_entry(
            "tax.invoice-issue",
            "clocks = { window_intake = \"PT20M\" }",
            "clocks = { window_intake = \"PT20M\", opinion = \"3 working_days\" }",
        );
        let err = refused(&text);
        assert_eq!(
            err.entry, "matters[tax.invoice-issue].clocks.opinion",
            "{err}"
        );
        // A 即办件 clock on a promised matter.
        let text = edit_entry(
            "market.ip-dispute",
            "clocks = {",
            "clocks = { immediate = \"PT30M\",",
        );
        let err = refused(&text);
        assert_eq!(
            err.entry, "matters[market.ip-dispute].clocks.immediate",
            "{err}"
        );
        // Accepted where they apply.
        let text = edit_entry(
            "tax.invoice-issue",
            "clocks = { window_intake = \"PT20M\" }",
            "clocks = { window_intake = \"PT20M\", immediate = \"PT45M\" }",
        );
        let catalog = Catalog::parse(FILE, &text).expect("accepted");
        assert_eq!(
            catalog
                .matter("tax.invoice-issue")
                .unwrap()
                .clocks
                .immediate,
            Some(Target::Minutes(45))
        );
    }

    #[test]
    fn duplicate_matter_code_is_refused() {
        let text = replace_once(
            DEFAULT_CATALOG,
            "code = \"market.change\"",
            "code = \"market.establish\"",
        );
        let err = refused(&text);
        assert_eq!(err.file, FILE);
        assert_eq!(err.entry, "matters[market.establish]");
        assert!(err.problem.contains("duplicate"), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("{FILE}: matters[market.establish]")),
            "{err}"
        );
    }

    #[test]
    fn bad_clock_target_is_refused_naming_the_target() {
        let text = edit_entry(
            "market.establish",
            "promised = \"0.5 working_days\"",
            "promised = \"0.3 working_days\"",
        );
        let err = refused(&text);
        let message = err.to_string();
        assert!(message.contains(FILE), "{message}");
        assert!(message.contains("`0.3 working_days`"), "{message}");
        assert_eq!(
            err.entry,
            format!("line {}", line_of(&text, "0.3 working_days")),
            "{message}"
        );
    }

    #[test]
    fn bundle_with_unknown_matter_is_refused() {
        let text = edit_entry(
            "bundle.credit-repair",
            "\"ndrc.credit-repair\"",
            "\"ndrc.credit-fix\"",
        );
        let err = refused(&text);
        assert_eq!(err.entry, "bundles[bundle.credit-repair].matters");
        let message = err.to_string();
        assert!(message.contains(FILE), "{message}");
        assert!(
            message.contains("bundles[bundle.credit-repair].matters"),
            "{message}"
        );
        assert!(message.contains("`ndrc.credit-fix`"), "{message}");
    }

    #[test]
    fn missing_unit_is_refused() {
        let block = "[[units]]\ncode = \"stc\"\nname_zh = \"区科委\"\nname_en = \"District Science and Technology Commission\"\nsupervisor_email = \"supervisor.stc@putuo.sh.gov.cn\"\n";
        let text = replace_once(DEFAULT_CATALOG, block, "");
        let err = refused(&text);
        assert_eq!(err.entry, "units");
        assert!(err.problem.contains("`stc`"), "{err}");
        assert!(err.to_string().contains(FILE));
    }

    #[test]
    fn enum_field_without_options_is_refused() {
        let text = edit_entry(
            "tax.registration",
            "options = [\"general\", \"small_scale\"]\n",
            "",
        );
        let err = refused(&text);
        assert_eq!(err.entry, "matters[tax.registration].fields[taxpayer_type]");
        assert!(err.problem.contains("options"), "{err}");
        assert!(err.to_string().contains(FILE));
    }

    #[test]
    fn options_on_a_non_enum_field_are_refused() {
        let text = edit_entry(
            "hrss.social-insurance-registration",
            "max = 100000\n",
            "max = 100000\noptions = [\"a\"]\n",
        );
        let err = refused(&text);
        assert_eq!(
            err.entry,
            "matters[hrss.social-insurance-registration].fields[employees]"
        );
    }

    #[test]
    fn promised_matter_without_promised_limit_is_refused() {
        let text = edit_entry("market.establish", "promised = \"0.5 working_days\", ", "");
        let err = refused(&text);
        assert_eq!(err.entry, "matters[market.establish].clocks.promised");
    }

    #[test]
    fn window_intake_in_working_time_is_refused() {
        let text = edit_entry(
            "tax.registration",
            "window_intake = \"PT20M\"",
            "window_intake = \"20 working_minutes\"",
        );
        let err = refused(&text);
        assert_eq!(err.entry, "matters[tax.registration].clocks.window_intake");
    }

    #[test]
    fn lead_unit_listed_as_co_unit_is_refused() {
        let text = edit_entry(
            "market.simplified-deregister",
            "co_units = [\"tax\"]",
            "co_units = [\"tax\", \"market\"]",
        );
        let err = refused(&text);
        assert_eq!(err.entry, "matters[market.simplified-deregister].co_units");
    }

    #[test]
    fn bundle_of_one_matter_is_refused() {
        let text = edit_entry(
            "bundle.credit-repair",
            "matters = [\"market.credit-repair\", \"ndrc.credit-repair\"]",
            "matters = [\"market.credit-repair\"]",
        );
        let err = refused(&text);
        assert_eq!(err.entry, "bundles[bundle.credit-repair].matters");
    }

    // --- Rules on the form ----------------------------------------------------------------

    #[test]
    fn heritage_projects_get_neither_deferral_nor_commitment() {
        let catalog = Catalog::builtin();
        for code in [
            "construction.permit",
            "construction.joint-review",
            "planning.design-scheme-review",
        ] {
            let matter = catalog.matter(code).unwrap();
            let rule = matter
                .rules
                .iter()
                .find(|r| r.code == "heritage-protection")
                .unwrap_or_else(|| panic!("{code} has no heritage rule"));
            assert!(rule.forbids(Relief::Deferral) && rule.forbids(Relief::Commitment));
            let field = matter
                .fields
                .iter()
                .find(|f| f.name == rule.when.field)
                .unwrap();
            assert_eq!(field.field_type, FieldType::Boolean, "{code}");
            assert!(field.required, "{code}: the applicant must say");
            assert!(rule.applies(&serde_json::json!({"heritage_protection": true})));
            assert!(!rule.applies(&serde_json::json!({"heritage_protection": false})));
            assert!(!rule.applies(&serde_json::json!({})));
            // Where the rule can bite: the matter has something to defer.
            assert!(matter.materials.iter().any(|m| m.deferrable_days.is_some()));
        }
        // Delivery waits for deferred materials unless the matter says otherwise.
        assert!(
            catalog
                .matter("market.multi-site-filing")
                .unwrap()
                .deliver_before_materials
        );
        assert!(
            !catalog
                .matter("market.establish")
                .unwrap()
                .deliver_before_materials
        );
    }

    #[test]
    fn rule_on_an_unknown_field_is_refused() {
        let text = edit_entry(
            "construction.permit",
            "when = { field = \"heritage_protection\"",
            "when = { field = \"heritage\"",
        );
        let err = refused(&text);
        assert_eq!(err.file, FILE);
        assert_eq!(
            err.entry,
            "matters[construction.permit].rules[heritage-protection].when.field"
        );
        assert!(err.problem.contains("`heritage`"), "{err}");
        assert!(
            err.problem.contains("planned_start_on"),
            "lists the fields: {err}"
        );
    }

    #[test]
    fn rule_forbidding_an_unknown_relief_is_refused_with_its_line() {
        let text = edit_entry(
            "construction.permit",
            "forbid = [\"deferral\", \"commitment\"]",
            "forbid = [\"deferral\", \"waiver\"]",
        );
        let err = refused(&text);
        assert!(err.to_string().contains(FILE), "{err}");
        assert!(err.problem.contains("waiver"), "{err}");
        assert_eq!(
            err.entry,
            format!("line {}", line_of(&text, "\"waiver\"]")),
            "{err}"
        );
    }

    #[test]
    fn rule_with_a_value_of_the_wrong_type_or_nothing_forbidden_is_refused() {
        let text = edit_entry(
            "construction.joint-review",
            "equals = true",
            "equals = \"yes\"",
        );
        let err = refused(&text);
        assert_eq!(
            err.entry,
            "matters[construction.joint-review].rules[heritage-protection].when.equals"
        );
        assert!(err.problem.contains("true or false"), "{err}");

        let text = edit_entry(
            "construction.joint-review",
            "forbid = [\"deferral\", \"commitment\"]",
            "forbid = []",
        );
        let err = refused(&text);
        assert_eq!(
            err.entry,
            "matters[construction.joint-review].rules[heritage-protection].forbid"
        );

        // An unknown key in a rule is refused like anywhere else.
        let text = edit_entry(
            "construction.joint-review",
            "forbid = [\"deferral\", \"commitment\"]",
            "forbid = [\"deferral\"]\nurgent = true",
        );
        let err = refused(&text);
        assert!(err.problem.contains("urgent"), "{err}");
    }

    /// A minimal hand-written catalog: every unit and `matter`.
    fn minimal(matter: &str) -> String {
        let mut text = String::new();
        for unit in UnitCode::ALL {
            text.push_str(&format!(
                "[[units]]\ncode = \"{unit}\"\nname_zh = \"单位\"\nname_en = \"Unit\"\nsupervisor_email = \"s@example.org\"\n\n"
            ));
        }
        text.push_str(matter);
        text
    }

    const MINIMAL_MATTER: &str = "[[matters]]\ncode = \"stc.x\"\nname_zh = \"事项\"\nname_en = \"Matter\"\ncategory = \"consultation\"\nlead_unit = \"stc\"\nmode = \"immediate\"\nplan_section = \"(三)1\"\nchannels = [\"online\"]\nclocks = {}\n";

    #[test]
    fn minimal_hand_written_catalog() {
        let catalog = Catalog::parse(FILE, &minimal(MINIMAL_MATTER)).expect("valid");
        assert_eq!(catalog.matters().count(), 1);
        assert_eq!(catalog.bundles().count(), 0);
        assert_eq!(catalog.matter("stc.x").unwrap().lead_unit, UnitCode::Stc);

        // A missing field is reported at the table's line.
        let text = minimal(&MINIMAL_MATTER.replace("lead_unit = \"stc\"\n", ""));
        let err = refused(&text);
        assert!(err.problem.contains("lead_unit"), "{err}");
        assert_eq!(
            err.entry,
            format!("line {}", line_of(&text, "[[matters]]")),
            "{err}"
        );

        // An unknown key is refused too.
        let text =
            minimal(&MINIMAL_MATTER.replace("clocks = {}\n", "clocks = {}\nurgent = true\n"));
        let err = refused(&text);
        assert!(err.problem.contains("urgent"), "{err}");
        assert!(err.to_string().contains(FILE), "{err}");
    }
}
