//! `mashangban client file-for …`: a clerk of the lead unit files a request for a walk-in
//! enterprise at the window (帮办), after checking who is in front of them.
//!
//! It sends the enterprise's own intake body with `channel: window` and `on_behalf_of`
//! (`uscc`, `identity_check`) to `POST /api/v1/requests`: the server checks everything
//! (the body, the identity check's members, that the clerk's unit leads the matter) and the
//! request belongs to the enterprise (docs/assisted-filing.md). The command only shapes the
//! body from flags and prints the new request's number, id and lead unit.

use clap::{ArgGroup, Args};
use serde_json::{Map, Value, json};

use super::Failure;
use super::http::Http;
use super::render::{clean, text};

/// `file-for` arguments.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["matter", "bundle"])))]
pub struct FileForArgs {
    /// The matter's catalog code (e.g. market.establish).
    #[arg(long, value_name = "CODE")]
    pub matter: Option<String>,
    /// Or a bundle's code (一件事); the form then has one object per matter code.
    #[arg(long, value_name = "CODE")]
    pub bundle: Option<String>,
    /// The enterprise's unified social credit code (18 characters).
    #[arg(long, value_name = "USCC")]
    pub uscc: String,
    /// The enterprise's name, as the applicant.
    #[arg(long, value_name = "NAME", value_parser = super::not_blank)]
    pub name: String,
    /// Where the enterprise hears about the request.
    #[arg(long, value_name = "EMAIL", value_parser = super::not_blank)]
    pub email: String,
    /// How you checked who is at the window.
    #[arg(long, value_name = "METHOD", value_parser = ["id_card", "e_license", "face"])]
    pub identity: String,
    /// The name the identity check confirmed.
    #[arg(long, value_name = "NAME", value_parser = super::not_blank)]
    pub verified_name: String,
    /// The whole form as a JSON object (`--field` adds to it).
    #[arg(long, value_name = "JSON", value_parser = form_object)]
    pub form: Option<Map<String, Value>>,
    /// A form field, KEY=VALUE; VALUE is read as JSON when it is JSON (`100`, `false`,
    /// `"100"` for a text of digits), else as text. Repeat for each field.
    #[arg(long = "field", value_name = "KEY=VALUE", value_parser = form_field)]
    pub fields: Vec<(String, Value)>,
    /// A material handed in, `[MATTER/]CODE:BYTES:SHA256:NAME` (MATTER on a bundle; the
    /// name last, it may hold `:`). Repeat for each; a deferrable one left out is pending
    /// (容缺).
    #[arg(long = "material", value_name = "SPEC", value_parser = material)]
    pub materials: Vec<Value>,
    /// Approval on the enterprise's signed commitment (告知承诺), where the matter allows it.
    #[arg(long)]
    pub commitment: bool,
}

fn form_object(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

fn form_field(text: &str) -> Result<(String, Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| "give KEY=VALUE".to_string())?;
    if key.trim().is_empty() {
        return Err("the KEY is empty".into());
    }
    let value = serde_json::from_str::<Value>(value).unwrap_or_else(|_| json!(value));
    Ok((key.trim().to_string(), value))
}

fn material(text: &str) -> Result<Value, String> {
    let shape = "give [MATTER/]CODE:BYTES:SHA256:NAME";
    let mut parts = text.splitn(4, ':');
    let (Some(code), Some(bytes), Some(sha256), Some(name)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(shape.into());
    };
    let size: i64 = bytes
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{bytes:?} is not a size in bytes; {shape}"))?;
    if name.trim().is_empty() || code.trim().is_empty() {
        return Err(shape.into());
    }
    let mut item = json!({"name": name, "size_bytes": size, "sha256": sha256});
    match code.split_once('/') {
        Some((matter, code)) => {
            item["matter"] = json!(matter);
            item["code"] = json!(code);
        }
        None => item["code"] = json!(code),
    }
    Ok(item)
}

/// The intake body `args` describe: the enterprise's own, at the window, with
/// `on_behalf_of`.
pub fn body(args: &FileForArgs) -> Value {
    let mut form = args.form.clone().unwrap_or_default();
    for (key, value) in &args.fields {
        form.insert(key.clone(), value.clone());
    }
    let mut body = json!({
        "channel": "window",
        "applicant": {"name": args.name, "uscc": args.uscc},
        "contact_email": args.email,
        "form": form,
        "materials": args.materials,
        "on_behalf_of": {
            "uscc": args.uscc,
            "identity_check": {"method": args.identity, "verified_name": args.verified_name},
        },
    });
    match (&args.matter, &args.bundle) {
        (Some(matter), _) => body["matter"] = json!(matter),
        (None, Some(bundle)) => body["bundle"] = json!(bundle),
        (None, None) => {}
    }
    if args.commitment {
        body["commitment"] = json!(true);
    }
    body
}

/// Files the request; the new request's number, id and lead unit (or the server's JSON).
pub fn run(http: &Http, json: bool, args: &FileForArgs) -> Result<String, Failure> {
    let reply = http.post("/api/v1/requests", Some(&body(args)), None)?;
    if !reply.ok() {
        return Err(super::problem::failure(&reply, http.server()));
    }
    if json {
        return Ok(format!("{}\n", reply.body.trim_end()));
    }
    let created = reply.json()?;
    let pending = created["materials"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| m["status"] == "pending")
                .map(|m| text(m, "code"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut out = format!(
        "Filed {} for {} ({}) at the window.\nid         {}\nlead unit  {}\nstatus     {}\n",
        text(&created, "number"),
        clean(&args.name),
        clean(&args.uscc),
        text(&created, "id"),
        text(&created, "lead_unit"),
        text(&created, "status"),
    );
    if !pending.is_empty() {
        out.push_str(&format!(
            "pending    {} (容缺: to be supplied later)\n",
            clean(&pending.join(", "))
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: FileForArgs,
    }

    fn parse(extra: &[&str]) -> Result<FileForArgs, clap::Error> {
        let mut argv = vec![
            "file-for",
            "--uscc",
            "91350100M000100Y43",
            "--name",
            "上海马上办科技有限公司",
            "--email",
            "office@example.com",
            "--identity",
            "id_card",
            "--verified-name",
            "张三",
        ];
        argv.extend(extra);
        Cli::try_parse_from(argv).map(|cli| cli.args)
    }

    #[test]
    fn the_body_is_the_walk_in_intake() {
        let args = parse(&[
            "--matter",
            "market.establish",
            "--form",
            r#"{"company_name": "马上办", "registered_capital": 10}"#,
            "--field",
            "registered_capital=100",
            "--field",
            "code=\"007\"",
            "--field",
            "address=上海市普陀区",
            "--material",
            "articles:2048:abc:章程:v2.pdf",
            "--material",
            "construction.permit/site_plan:10:def:plan.pdf",
            "--commitment",
        ])
        .unwrap();
        let body = body(&args);
        assert_eq!(
            body,
            json!({
                "matter": "market.establish",
                "channel": "window",
                "applicant": {"name": "上海马上办科技有限公司", "uscc": "91350100M000100Y43"},
                "contact_email": "office@example.com",
                "form": {"company_name": "马上办", "registered_capital": 100, "code": "007",
                         "address": "上海市普陀区"},
                "materials": [
                    {"code": "articles", "name": "章程:v2.pdf", "size_bytes": 2048, "sha256": "abc"},
                    {"matter": "construction.permit", "code": "site_plan", "name": "plan.pdf",
                     "size_bytes": 10, "sha256": "def"}
                ],
                "commitment": true,
                "on_behalf_of": {"uscc": "91350100M000100Y43",
                                 "identity_check": {"method": "id_card", "verified_name": "张三"}}
            })
        );
        let bundle = body_of(&["--bundle", "one-industry.restaurant"]);
        assert_eq!(bundle["bundle"], "one-industry.restaurant");
        assert!(bundle.get("matter").is_none());
        assert!(bundle.get("commitment").is_none());
    }

    fn body_of(extra: &[&str]) -> Value {
        body(&parse(extra).unwrap())
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for extra in [
            &[][..],
            &["--matter", "a", "--bundle", "b"],
            &["--matter", "a", "--material", "code:big:abc:x.pdf"],
            &["--matter", "a", "--material", "code:10:abc"],
            &["--matter", "a", "--material", "code:0:abc:x.pdf"],
            &["--matter", "a", "--field", "novalue"],
            &["--matter", "a", "--field", "=1"],
            &["--matter", "a", "--form", "[1]"],
            &["--matter", "a", "--identity", "passport"],
        ] {
            assert!(parse(extra).is_err(), "{extra:?}");
        }
    }
}
