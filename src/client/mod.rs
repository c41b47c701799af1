//! `mashangban client …`: the window clerks' and back-office officers' command-line client.
//!
//! It speaks only HTTP to a running server (never the server's configuration or database):
//! `login` once with the server's address and a token, then work the queue and move requests
//! through their lifecycle. Each action reads the request for its `ETag` and sends it back as
//! `If-Match`, so a change made by someone else in between is refused (412) and said plainly.
//!
//! Output: tables for people on stdout; `--json` prints the server's JSON instead. Errors:
//! one line on stderr. Exit status: 0 done, 1 the server refused or could not be reached,
//! 2 usage or login problems (not logged in, token expired or refused, bad arguments),
//! 3 `verify` found the audit chain not intact. See `docs/clerk-client.md`.

pub mod audit;
pub mod config;
pub mod file_for;
pub mod http;
pub mod problem;
pub mod render;
pub mod sla;

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::domain::UnitCode;

use self::config::Login;
use self::http::{Http, Reply};

/// Why a command failed: the one line for stderr, and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 1: refused or unreachable; 2: usage, configuration or login; 3: the audit chain is
    /// not intact.
    pub exit: u8,
    /// One line.
    pub message: String,
}

impl Failure {
    /// Exit status 1: the server refused, or could not be reached.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            exit: 1,
            message: message.into(),
        }
    }

    /// Exit status 2: usage, configuration or login.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            exit: 2,
            message: message.into(),
        }
    }

    /// Exit status 3: the audit chain is broken or lost events.
    pub fn alarm(message: impl Into<String>) -> Self {
        Self {
            exit: 3,
            message: message.into(),
        }
    }
}

/// `mashangban client` arguments.
#[derive(Debug, Args)]
#[command(
    after_help = "Log in once with `mashangban client login --server URL --token TOKEN`. \
                  Exit status: 0 done, 1 refused by the server or unreachable, \
                  2 usage or login problem, 3 the audit chain is not intact (verify). \
                  See docs/clerk-client.md."
)]
pub struct ClientArgs {
    /// Print the server's JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    pub json: bool,

    /// The login file [default: $XDG_CONFIG_HOME/mashangban/client.toml, else
    /// ~/.config/mashangban/client.toml].
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "MASHANGBAN_CLIENT_CONFIG"
    )]
    pub config_file: Option<PathBuf>,

    /// A PEM file of CA certificates to trust for an https server, besides the system's store
    /// and the compiled-in roots (a government intranet's own CA). `login` saves it with the
    /// login; given later, it overrides the saved one.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "MASHANGBAN_CLIENT_CA_FILE"
    )]
    pub ca_file: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: ClientCommand,
}

/// The request an action is for, and optionally the revision it must still be at.
#[derive(Debug, Args)]
pub struct Target {
    /// Request id, request number (PT20261129-000002) or a unique prefix of the id (at least 4
    /// characters).
    #[arg(value_name = "ID")]
    pub id: String,
    /// Act only if the request is still at this revision (as `show` printed it, e.g. r3);
    /// default: whatever it is right now.
    #[arg(long, value_name = "REVISION")]
    pub revision: Option<String>,
    /// On a bundle, the unit task a review or decision step is for (its id, as `show` lists
    /// the tasks); needed only when your unit has several tasks on the bundle.
    #[arg(long, value_name = "TASK")]
    pub task: Option<String>,
}

/// Client subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Check a token against the server and save the login (mode 0600).
    Login {
        /// Server address, e.g. http://127.0.0.1:8080.
        #[arg(long, value_name = "URL")]
        server: String,
        /// Bearer token (`mashangban token --role clerk --unit …`); `-` reads it from stdin.
        #[arg(long, value_name = "TOKEN")]
        token: String,
    },
    /// Forget the saved login.
    Logout,
    /// Your unit's open tasks, earliest due first.
    Queue,
    /// Claim the next waiting task of your unit and show its request.
    Next,
    /// Your unit's window queue in the hall today (or on --date): tickets in calling order.
    Tickets {
        /// The day, YYYY-MM-DD (default: today).
        #[arg(long, value_name = "DATE")]
        date: Option<String>,
    },
    /// Call the next ticket of your unit's window queue (and its request, when linked).
    CallNext {
        /// Your counter (window): only tickets meant for it or for none.
        #[arg(long, value_name = "COUNTER")]
        counter: Option<String>,
    },
    /// Check a booked appointment in at the hall: the visitor gets a ticket.
    CheckIn {
        /// Appointment id.
        #[arg(value_name = "APPOINTMENT")]
        appointment: String,
    },
    /// The service centre's returned requests (退单) waiting to be re-routed.
    Returned,
    /// Show a request: status, revision, tasks, materials, clocks, form.
    Show {
        /// Request id.
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Show a request's audit timeline.
    Events {
        /// Request id.
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Verify the district's audit chain (supervisors, administrators), also against the head
    /// the last verify saw, which is kept in the login file: removed newest events show.
    Verify {
        /// Do not check the saved head; save the current one (once a reported loss is
        /// explained, e.g. a restore from backup).
        #[arg(long)]
        reset_anchor: bool,
    },
    /// Start serving the request at the window (call).
    Call(Target),
    /// Accept the request (受理).
    Accept(Target),
    /// Refuse to accept it (不予受理).
    Refuse {
        #[command(flatten)]
        target: Target,
        /// Why (told to the enterprise).
        #[arg(long, value_parser = not_blank)]
        reason: String,
    },
    /// Ask for every missing item in one notice (一次性告知).
    RequestSupplement {
        #[command(flatten)]
        target: Target,
        /// A missing item; repeat for each one (all of them, at once).
        #[arg(long = "item", value_name = "ITEM", required = true, value_parser = not_blank)]
        items: Vec<String>,
    },
    /// Start the back-office review (start_review).
    Review(Target),
    /// Begin or end a special procedure (hearing, inspection, testing, …).
    #[command(subcommand)]
    SpecialProcedure(SpecialProcedure),
    /// Decide: approve (准予). Against a co-unit's `disagree`, give a reason naming it.
    Approve {
        #[command(flatten)]
        target: Target,
        /// Why; required when a co-unit disagreed (name that unit in it).
        #[arg(long, value_parser = not_blank)]
        reason: Option<String>,
    },
    /// A co-unit's opinion on its own task (联合会审): agree, agree_with_conditions, disagree.
    GiveOpinion {
        #[command(flatten)]
        target: Target,
        /// The opinion.
        #[arg(long, value_parser = ["agree", "agree_with_conditions", "disagree"])]
        opinion: String,
        /// The conditions, or why not (required unless agree).
        #[arg(long, value_parser = not_blank)]
        note: Option<String>,
    },
    /// Decide: deny (不予).
    Deny {
        #[command(flatten)]
        target: Target,
        /// Why.
        #[arg(long, value_parser = not_blank)]
        reason: String,
    },
    /// Mark the handling completed (办结).
    Complete(Target),
    /// Record delivery of the result (送达), with the certificate number.
    Deliver {
        #[command(flatten)]
        target: Target,
        /// Certificate (licence) number delivered.
        #[arg(long, value_name = "NO", value_parser = not_blank)]
        certificate: String,
    },
    /// Send it back: not your unit's matter (退单).
    Return {
        #[command(flatten)]
        target: Target,
        /// Why.
        #[arg(long, value_parser = not_blank)]
        reason: String,
    },
    /// Re-route a returned request to another unit (service centre).
    Reroute {
        #[command(flatten)]
        target: Target,
        /// The unit it goes to (market, tax, planning, …).
        #[arg(long, value_name = "CODE")]
        unit: UnitCode,
        /// Why.
        #[arg(long, value_parser = not_blank)]
        reason: String,
    },
    /// Approve the one statutory extension (unit supervisor).
    ApproveExtension {
        #[command(flatten)]
        target: Target,
        /// Why.
        #[arg(long, value_parser = not_blank)]
        reason: String,
    },
    /// Record a deferred material (容缺后补) received at the window (clerk of the lead unit).
    Material {
        /// Request id.
        #[arg(value_name = "ID")]
        id: String,
        /// Act only if the request is still at this revision (as `show` printed it, e.g. r3).
        #[arg(long, value_name = "REVISION")]
        revision: Option<String>,
        /// On a bundle, the matter the material is for.
        #[arg(long, value_name = "MATTER")]
        matter: Option<String>,
        /// Material code, as `show` lists the pending ones.
        #[arg(long, value_name = "CODE", value_parser = not_blank)]
        code: String,
        /// File name.
        #[arg(long, value_name = "NAME", value_parser = not_blank)]
        name: String,
        /// File size in bytes.
        #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(i64).range(1..))]
        size: i64,
        /// SHA-256 of the file, 64 hex digits.
        #[arg(long, value_name = "HEX")]
        sha256: String,
    },
    /// File a request for a walk-in enterprise at the window (帮办), after checking who is in
    /// front of you (clerks of the matter's lead unit).
    FileFor(Box<file_for::FileForArgs>),
    /// Breached SLA clocks, newest breach first; `--csv` exports all of them (supervisors).
    Breaches(sla::BreachesArgs),
    /// Open clocks falling due soon, least time left first (supervisors).
    AtRisk(sla::AtRiskArgs),
    /// On-time statistics per unit or matter over a period (supervisors).
    Stats(sla::StatsArgs),
}

/// `special-procedure start|end`.
#[derive(Debug, Subcommand)]
pub enum SpecialProcedure {
    /// A special procedure begins; the statutory clock pauses.
    Start {
        #[command(flatten)]
        target: Target,
        /// Which procedure.
        #[arg(long, value_parser = [
            "hearing", "inspection", "testing", "quarantine", "appraisal",
            "expert_review", "tendering", "auction",
        ])]
        kind: String,
    },
    /// The special procedure ends.
    End(Target),
}

fn not_blank(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(text.to_string())
    }
}

/// Runs a client command: output on stdout, one line on stderr on failure.
pub fn run(args: ClientArgs) -> ExitCode {
    match execute(args) {
        Ok(output) => {
            // A closed pipe (`… | head`) is not an error worth a message.
            let _ = io::stdout().lock().write_all(output.as_bytes());
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("mashangban: {}", render::clean(&failure.message));
            ExitCode::from(failure.exit)
        }
    }
}

/// Runs a client command and returns what it prints.
pub fn execute(args: ClientArgs) -> Result<String, Failure> {
    let path = config::resolve(args.config_file.as_deref())?;
    let json = args.json;
    match args.command {
        ClientCommand::Login { server, token } => {
            login(&path, &server, &token, args.ca_file.as_deref(), json)
        }
        ClientCommand::Logout => {
            let head = config::load(&path).ok().and_then(|login| login.audit_head);
            Ok(match (config::remove(&path)?, head) {
                (true, Some(head)) => format!(
                    "Logged out: removed {} (and the audit head seen last, event {}).\n",
                    path.display(),
                    head.seq
                ),
                (true, None) => format!("Logged out: removed {}\n", path.display()),
                (false, _) => format!("Not logged in (no {}).\n", path.display()),
            })
        }
        ClientCommand::Verify { reset_anchor } => {
            audit::verify(&path, reset_anchor, args.ca_file.as_deref(), json)
        }
        command => {
            let login = config::load(&path)?;
            let session = Session {
                http: connect(&login, args.ca_file.as_deref())?,
                json,
                width: render::width(),
            };
            session.run(command)
        }
    }
}

/// The connection of a saved login; `ca_file` (the global `--ca-file`) overrides the saved one.
pub(crate) fn connect(login: &Login, ca_file: Option<&std::path::Path>) -> Result<Http, Failure> {
    Http::with_ca_file(
        &login.server,
        &login.token,
        ca_file.or(login.ca_file.as_deref()),
    )
}

fn login(
    path: &std::path::Path,
    server: &str,
    token: &str,
    ca_file: Option<&std::path::Path>,
    json: bool,
) -> Result<String, Failure> {
    let server = server_url(server)?;
    let token = if token == "-" {
        let mut line = String::new();
        io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::usage(format!("cannot read the token from stdin: {e}")))?;
        line.trim().to_string()
    } else {
        token.trim().to_string()
    };
    if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Failure::usage(
            "--token: not a token (empty, or with spaces in it)",
        ));
    }
    let http = Http::with_ca_file(&server, &token, ca_file)?;
    let reply = http.get("/api/v1/me")?;
    if !reply.ok() {
        return Err(problem::failure(&reply, &server));
    }
    let me = reply.json()?;
    // A new token for the same server keeps the audit head `verify` saw there.
    let audit_head = config::load(path)
        .ok()
        .filter(|old| old.server == server)
        .and_then(|old| old.audit_head);
    config::save(
        path,
        &Login {
            server: server.clone(),
            token,
            // Saved absolute, so later commands find it from any folder.
            ca_file: ca_file
                .map(std::path::absolute)
                .transpose()
                .map_err(|e| Failure::usage(format!("--ca-file: {e}")))?,
            audit_head,
        },
    )?;
    if json {
        return Ok(format!("{}\n", reply.body.trim_end()));
    }
    let mut who = format!(
        "{} ({}",
        render::text(&me, "subject"),
        render::text(&me, "role")
    );
    if let Some(unit) = me["unit"].as_str() {
        who.push_str(&format!(", unit {unit}"));
    }
    who.push(')');
    Ok(format!(
        "Logged in to {server} as {who}.\nLogin saved in {} (readable by you only).\n",
        path.display()
    ))
}

/// Checks and normalises a server address: `http(s)://host[:port][/prefix]`, no trailing `/`.
///
/// Without a scheme (`host:port`), `http://` is assumed for this machine (`localhost`,
/// `127.0.0.1`, `[::1]`) and `https://` for any other host: a token never crosses the network
/// in the clear unless the clerk writes `http://` themself.
pub fn server_url(text: &str) -> Result<String, Failure> {
    let bad = |why: &str| Failure::usage(format!("--server {text}: {why}"));
    let trimmed = text.trim();
    let full = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        let host = trimmed.split(['/', ':']).next().unwrap_or_default();
        let local = matches!(host, "localhost" | "127.0.0.1") || trimmed.starts_with("[::1]");
        format!("{}://{trimmed}", if local { "http" } else { "https" })
    };
    let url = url::Url::parse(&full).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("use an http:// or https:// address"));
    }
    if url.host_str().is_none() {
        return Err(bad("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("give only the scheme, host, port and path"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// How a command names a request.
#[derive(Debug, PartialEq, Eq)]
enum Named {
    /// A whole id.
    Id,
    /// A request number, upper-cased.
    Number(String),
    /// The start of an id, lower-cased.
    Prefix(String),
}

/// Tells an id, a request number and an id prefix apart. Anything else is taken as an id and
/// checked by [`request_path`].
fn classify(text: &str) -> Named {
    let upper = text.to_ascii_uppercase();
    let b = upper.as_bytes();
    if b.len() == 17
        && b.starts_with(b"PT")
        && b[2..10].iter().all(u8::is_ascii_digit)
        && b[10] == b'-'
        && b[11..].iter().all(u8::is_ascii_digit)
    {
        return Named::Number(upper);
    }
    let lower = text.to_ascii_lowercase();
    let hex = lower
        .bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c) || c == b'-');
    if hex && (4..36).contains(&lower.len()) {
        return Named::Prefix(lower);
    }
    Named::Id
}

/// A query value the client builds: refuses anything that would need escaping.
fn query_value(text: &str) -> Result<String, Failure> {
    if !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        Ok(text.to_string())
    } else {
        Err(Failure::usage(format!(
            "`{text}` is not a value the server takes"
        )))
    }
}

/// An id as a path segment: refuses anything that could change the path.
fn path_segment<'a>(id: &'a str, what: &str) -> Result<&'a str, Failure> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(id)
    } else {
        Err(Failure::usage(format!("`{id}` is not an {what} id")))
    }
}

/// A request id as a path segment: refuses anything that could change the path.
fn request_path(id: &str) -> Result<String, Failure> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(format!("/api/v1/requests/{id}"))
    } else {
        Err(Failure::usage(format!(
            "`{id}` is not a request id (ids look like 0193f2a4-…; `queue` and `show` print them)"
        )))
    }
}

/// The wire action and its body members for an action command.
fn action_of(command: &ClientCommand) -> Option<(&'static str, &'static str, &Target, Value)> {
    use ClientCommand as C;
    Some(match command {
        C::Call(t) => ("call", "call", t, json!({})),
        C::Accept(t) => ("accept", "accept", t, json!({})),
        C::Refuse { target, reason } => ("refuse", "refuse", target, json!({"reason": reason})),
        C::RequestSupplement { target, items } => (
            "request_supplement",
            "request-supplement",
            target,
            json!({"items": items}),
        ),
        C::Review(t) => ("start_review", "review", t, json!({})),
        C::SpecialProcedure(SpecialProcedure::Start { target, kind }) => (
            "begin_special_procedure",
            "special-procedure start",
            target,
            json!({"kind": kind}),
        ),
        C::SpecialProcedure(SpecialProcedure::End(t)) => (
            "end_special_procedure",
            "special-procedure end",
            t,
            json!({}),
        ),
        C::Approve { target, reason } => {
            let body = match reason {
                Some(reason) => json!({"reason": reason}),
                None => json!({}),
            };
            ("approve", "approve", target, body)
        }
        C::GiveOpinion {
            target,
            opinion,
            note,
        } => {
            let mut body = json!({"opinion": opinion});
            if let Some(note) = note {
                body["note"] = json!(note);
            }
            ("give_opinion", "give-opinion", target, body)
        }
        C::Deny { target, reason } => ("deny", "deny", target, json!({"reason": reason})),
        C::Complete(t) => ("complete", "complete", t, json!({})),
        C::Deliver {
            target,
            certificate,
        } => (
            "deliver",
            "deliver",
            target,
            json!({"certificate": certificate}),
        ),
        C::Return { target, reason } => ("return", "return", target, json!({"reason": reason})),
        C::Reroute {
            target,
            unit,
            reason,
        } => (
            "reroute",
            "reroute",
            target,
            json!({"unit": unit.as_str(), "reason": reason}),
        ),
        C::ApproveExtension { target, reason } => (
            "approve_extension",
            "approve-extension",
            target,
            json!({"reason": reason}),
        ),
        C::Login { .. }
        | C::Logout
        | C::Queue
        | C::Next
        | C::Tickets { .. }
        | C::CallNext { .. }
        | C::CheckIn { .. }
        | C::Returned
        | C::Show { .. }
        | C::Events { .. }
        | C::Verify { .. }
        | C::Material { .. }
        | C::FileFor(_)
        | C::Breaches(_)
        | C::AtRisk(_)
        | C::Stats(_) => {
            return None;
        }
    })
}

/// `r3`, `3` or `"r3"` → the ETag `"r3"`.
fn etag_for(revision: &str) -> Result<String, Failure> {
    let bare = revision.trim().trim_matches('"');
    let number = bare.strip_prefix('r').unwrap_or(bare);
    if !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()) {
        Ok(format!("\"r{number}\""))
    } else {
        Err(Failure::usage(format!(
            "--revision {revision}: give the revision as `show` prints it, e.g. r3"
        )))
    }
}

/// A logged-in client.
struct Session {
    http: Http,
    json: bool,
    /// The width tables are fitted into ([`render::width`]).
    width: u16,
}

impl Session {
    fn run(&self, command: ClientCommand) -> Result<String, Failure> {
        if let Some((action, name, target, mut body)) = action_of(&command) {
            body["action"] = json!(action);
            return self.act(name, target, "actions", body);
        }
        match command {
            ClientCommand::Material {
                id,
                revision,
                matter,
                code,
                name,
                size,
                sha256,
            } => {
                let target = Target {
                    id,
                    revision,
                    task: None,
                };
                let mut body = json!({
                    "code": code,
                    "name": name,
                    "size_bytes": size,
                    "sha256": sha256,
                    "received_at_window": true,
                });
                if let Some(matter) = matter {
                    body["matter"] = json!(matter);
                }
                self.act("material", &target, "materials", body)
            }
            ClientCommand::Queue => {
                let reply = self.expect_ok(self.http.get("/api/v1/queue")?)?;
                self.output(&reply, |body| render::queue(body, Utc::now(), self.width))
            }
            ClientCommand::Next => self.next(),
            ClientCommand::Tickets { date } => {
                let path = match date {
                    Some(date) => format!("/api/v1/tickets?date={}", query_value(&date)?),
                    None => "/api/v1/tickets".to_string(),
                };
                let reply = self.expect_ok(self.http.get(&path)?)?;
                self.output(&reply, |body| render::tickets(body, self.width))
            }
            ClientCommand::CallNext { counter } => {
                let body = json!({ "counter": counter });
                let reply = self.http.post("/api/v1/tickets/next", Some(&body), None)?;
                if reply.status == 204 {
                    return Ok(if self.json {
                        "null\n".into()
                    } else {
                        "Nobody is waiting in your unit's window queue.\n".into()
                    });
                }
                let reply = self.expect_ok(reply)?;
                self.output(&reply, |body| render::called(body, Utc::now(), self.width))
            }
            ClientCommand::CheckIn { appointment } => {
                let path = format!(
                    "/api/v1/appointments/{}/check-in",
                    path_segment(&appointment, "appointment")?
                );
                let reply = self.expect_ok(self.http.post(&path, None, None)?)?;
                self.output(&reply, render::checked_in)
            }
            ClientCommand::Returned => {
                let reply = self.expect_ok(
                    self.http
                        .get("/api/v1/requests?status=returned&limit=100")?,
                )?;
                self.output(&reply, |body| render::returned(body, self.width))
            }
            ClientCommand::Show { id } => {
                let reply = self.expect_ok(self.http.get(&self.request_path(&id)?)?)?;
                let etag = reply.etag.clone();
                self.output(&reply, |view| {
                    render::request(view, etag.as_deref(), Utc::now(), self.width)
                })
            }
            ClientCommand::Events { id } => {
                let path = format!("{}/events", self.request_path(&id)?);
                let reply = self.expect_ok(self.http.get(&path)?)?;
                self.output(&reply, |body| render::events(body, self.width))
            }
            ClientCommand::FileFor(args) => file_for::run(&self.http, self.json, &args),
            ClientCommand::Breaches(args) => {
                sla::breaches(&self.http, self.json, self.width, &args)
            }
            ClientCommand::AtRisk(args) => sla::at_risk(&self.http, self.json, self.width, &args),
            ClientCommand::Stats(args) => sla::stats(&self.http, self.json, self.width, &args),
            _ => unreachable!("login, logout, verify and the actions are handled before"),
        }
    }

    /// The path of the request `text` names: an id, a request number (`PT20261129-000002`,
    /// looked up with `?number=`) or a unique prefix of an id (`?id_prefix=`; several matches
    /// are an error listing them).
    fn request_path(&self, text: &str) -> Result<String, Failure> {
        let text = text.trim();
        match classify(text) {
            Named::Id => request_path(text),
            Named::Number(number) => {
                let reply = self.expect_ok(
                    self.http
                        .get(&format!("/api/v1/requests?number={number}&limit=2"))?,
                )?;
                let found = reply.json()?;
                match found["items"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    [one] => request_path(one["id"].as_str().unwrap_or_default()),
                    _ => Err(Failure::failed(format!(
                        "no request {number} that you may see"
                    ))),
                }
            }
            Named::Prefix(prefix) => {
                let reply = self.expect_ok(
                    self.http
                        .get(&format!("/api/v1/requests?id_prefix={prefix}&limit=10"))?,
                )?;
                let found = reply.json()?;
                let items = found["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                match items {
                    [] => Err(Failure::failed(format!(
                        "no request whose id starts with {prefix} that you may see"
                    ))),
                    [one] => request_path(one["id"].as_str().unwrap_or_default()),
                    many => Err(Failure::usage(format!(
                        "{prefix} is the start of {}{} requests' ids; give more of it: {}",
                        if many.len() == 10 { "at least " } else { "" },
                        many.len(),
                        many.iter()
                            .map(|r| format!(
                                "{} ({})",
                                render::text(r, "id"),
                                render::text(r, "number")
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                }
            }
        }
    }

    fn expect_ok(&self, reply: Reply) -> Result<Reply, Failure> {
        if reply.ok() {
            Ok(reply)
        } else {
            Err(problem::failure(&reply, self.http.server()))
        }
    }

    /// The raw body with `--json`, else the rendering of the parsed body.
    fn output(
        &self,
        reply: &Reply,
        show: impl FnOnce(&Value) -> String,
    ) -> Result<String, Failure> {
        if self.json {
            Ok(format!("{}\n", reply.body.trim_end()))
        } else {
            Ok(show(&reply.json()?))
        }
    }

    fn next(&self) -> Result<String, Failure> {
        let reply = self.http.post("/api/v1/queue/next", None, None)?;
        if reply.status == 204 {
            return Ok(if self.json {
                "null\n".into()
            } else {
                "Nothing is waiting in your unit's queue.\n".into()
            });
        }
        let reply = self.expect_ok(reply)?;
        let etag = reply.etag.clone();
        self.output(&reply, |body| {
            let task = &body["task"];
            format!(
                "Claimed task {} ({}, {} task) of request {}.\n\n{}",
                render::text(task, "task_id"),
                render::text(task, "unit"),
                render::text(task, "role"),
                render::text(task, "number"),
                render::request(&body["request"], etag.as_deref(), Utc::now(), self.width)
            )
        })
    }

    /// GET for the ETag (unless `--revision` pins one), POST the step to `{request}/{endpoint}`
    /// (`actions`, or `materials` for a deferred material) with `If-Match`.
    fn act(
        &self,
        name: &str,
        target: &Target,
        endpoint: &str,
        body: Value,
    ) -> Result<String, Failure> {
        let path = self.request_path(&target.id)?;
        let before = self.expect_ok(self.http.get(&path)?)?;
        let before_view = before.json()?;
        let label = match before_view["number"].as_str() {
            Some(number) => number.to_string(),
            None => target.id.clone(),
        };
        let etag = match &target.revision {
            Some(revision) => etag_for(revision)?,
            None => before.etag.clone().ok_or_else(|| {
                Failure::failed("the server sent no ETag with the request; cannot act safely")
            })?,
        };
        let mut body = body;
        if let Some(task) = &target.task {
            body["task"] = json!(task);
        }
        let reply = self
            .http
            .post(&format!("{path}/{endpoint}"), Some(&body), Some(&etag))?;
        if !reply.ok() {
            let current = if reply.status == 412 {
                self.http.get(&path).ok().filter(Reply::ok)
            } else {
                None
            };
            let current_view = current.as_ref().and_then(|r| r.json().ok());
            let current_pair = current_view
                .as_ref()
                .map(|view| (view, current.as_ref().and_then(|r| r.etag.as_deref())));
            return Err(problem::action_failure(
                &reply,
                self.http.server(),
                name,
                &label,
                current_pair,
            ));
        }
        let etag_after = reply.etag.clone();
        self.output(&reply, |after| {
            let was = before_view["status"].as_str().unwrap_or("?");
            let now = after["status"].as_str().unwrap_or("?");
            let revision = render::revision(etag_after.as_deref());
            match (was == now, revision) {
                (true, Some(rev)) => format!("{label}: {name} done; still {now} ({rev}).\n"),
                (true, None) => format!("{label}: {name} done; still {now}.\n"),
                (false, Some(rev)) => format!("{label}: {was} → {now} ({name}, {rev}).\n"),
                (false, None) => format!("{label}: {was} → {now} ({name}).\n"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpListener;
    use std::sync::mpsc;

    /// A canned answer: status, headers, body.
    type Answer = (u16, Vec<(&'static str, String)>, String);

    /// A one-thread HTTP server answering `answers` in order and sending each request's head
    /// and body back through the channel.
    fn fake_server(answers: Vec<Answer>) -> (String, mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for (status, headers, body) in answers {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let mut head = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let mut content = vec![0; length];
                reader.read_exact(&mut content).unwrap();
                head.push_str(&String::from_utf8(content).unwrap());
                tx.send(head).unwrap();
                let mut stream = reader.into_inner();
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    out.push_str(&format!("{name}: {value}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&body);
                stream.write_all(out.as_bytes()).unwrap();
            }
        });
        (address, rx)
    }

    fn view(status: &str) -> String {
        json!({"id": "0193a4c2-7c1e-7d2a-9b3c-1a2b3c4d5e6f", "number": "PT20261128-000001", "status": status}).to_string()
    }

    fn session(server: &str) -> Session {
        Session {
            http: Http::new(server, "tok"),
            json: false,
            width: render::DEFAULT_WIDTH,
        }
    }

    fn target(revision: Option<&str>) -> Target {
        Target {
            id: "0193a4c2-7c1e-7d2a-9b3c-1a2b3c4d5e6f".into(),
            revision: revision.map(String::from),
            task: None,
        }
    }

    #[test]
    fn an_action_sends_the_etag_it_read_and_reports_the_change() {
        let json_type = ("Content-Type", "application/json".to_string());
        let (server, requests) = fake_server(vec![
            (
                200,
                vec![json_type.clone(), ("ETag", "\"r2\"".into())],
                view("called"),
            ),
            (
                200,
                vec![json_type, ("ETag", "\"r3\"".into())],
                view("accepted"),
            ),
        ]);
        let out = session(&server)
            .act(
                "accept",
                &target(None),
                "actions",
                json!({"action": "accept"}),
            )
            .unwrap();
        assert_eq!(out, "PT20261128-000001: called → accepted (accept, r3).\n");
        let get = requests.recv().unwrap();
        assert!(
            get.starts_with("GET /api/v1/requests/0193a4c2-7c1e-7d2a-9b3c-1a2b3c4d5e6f "),
            "{get}"
        );
        assert!(
            get.to_ascii_lowercase()
                .contains("authorization: bearer tok"),
            "{get}"
        );
        let post = requests.recv().unwrap();
        assert!(
            post.starts_with("POST /api/v1/requests/0193a4c2-7c1e-7d2a-9b3c-1a2b3c4d5e6f/actions "),
            "{post}"
        );
        assert!(
            post.to_ascii_lowercase().contains("if-match: \"r2\""),
            "{post}"
        );
        assert!(post.ends_with(r#"{"action":"accept"}"#), "{post}");
    }

    #[test]
    fn a_stale_etag_is_reported_with_the_current_state() {
        let json_type = ("Content-Type", "application/json".to_string());
        let problem = json!({"type": "urn:mashangban:problem:precondition_failed",
            "title": "Precondition failed", "status": 412, "code": "precondition_failed",
            "detail": "the request has changed"});
        let (server, requests) = fake_server(vec![
            (
                200,
                vec![json_type.clone(), ("ETag", "\"r2\"".into())],
                view("called"),
            ),
            (
                412,
                vec![("Content-Type", "application/problem+json".into())],
                problem.to_string(),
            ),
            (
                200,
                vec![json_type, ("ETag", "\"r4\"".into())],
                view("accepted"),
            ),
        ]);
        let failure = session(&server)
            .act(
                "accept",
                &target(Some("r1")),
                "actions",
                json!({"action": "accept"}),
            )
            .unwrap_err();
        assert_eq!(failure.exit, 1);
        assert_eq!(
            failure.message,
            "accept not done: someone else changed request PT20261128-000001 first: it is now accepted (r4); look at it again (mashangban client show ID) and decide"
        );
        let _get = requests.recv().unwrap();
        // --revision pins the ETag sent.
        let post = requests.recv().unwrap();
        assert!(
            post.to_ascii_lowercase().contains("if-match: \"r1\""),
            "{post}"
        );
    }

    #[test]
    fn an_unreachable_server_is_one_line_exit_1() {
        // Bind then drop: nothing listens there any more.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let failure = session(&format!("http://127.0.0.1:{port}"))
            .run(ClientCommand::Queue)
            .unwrap_err();
        assert_eq!(failure.exit, 1);
        assert!(
            failure
                .message
                .starts_with("cannot reach http://127.0.0.1:"),
            "{}",
            failure.message
        );
        assert!(!failure.message.contains('\n'));
    }

    #[derive(Debug, clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ClientArgs,
    }

    fn parse(args: &[&str]) -> ClientArgs {
        use clap::Parser;
        Wrap::try_parse_from(std::iter::once("client").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .args
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Wrap::command().debug_assert();
    }

    #[test]
    fn every_action_command_sends_its_wire_action_and_members() {
        let cases: Vec<(Vec<&str>, &str, Value)> = vec![
            (vec!["call", "R"], "call", json!({})),
            (vec!["accept", "R"], "accept", json!({})),
            (
                vec!["refuse", "R", "--reason", "材料不齐"],
                "refuse",
                json!({"reason": "材料不齐"}),
            ),
            (
                vec!["request-supplement", "R", "--item", "a", "--item", "b"],
                "request_supplement",
                json!({"items": ["a", "b"]}),
            ),
            (vec!["review", "R"], "start_review", json!({})),
            (
                vec!["special-procedure", "start", "R", "--kind", "hearing"],
                "begin_special_procedure",
                json!({"kind": "hearing"}),
            ),
            (
                vec!["special-procedure", "end", "R"],
                "end_special_procedure",
                json!({}),
            ),
            (vec!["approve", "R"], "approve", json!({})),
            (
                vec!["deny", "R", "--reason", "x"],
                "deny",
                json!({"reason": "x"}),
            ),
            (vec!["complete", "R"], "complete", json!({})),
            (
                vec!["deliver", "R", "--certificate", "N1"],
                "deliver",
                json!({"certificate": "N1"}),
            ),
            (
                vec!["return", "R", "--reason", "x"],
                "return",
                json!({"reason": "x"}),
            ),
            (
                vec!["reroute", "R", "--unit", "service-center", "--reason", "x"],
                "reroute",
                json!({"unit": "service-center", "reason": "x"}),
            ),
            (
                vec![
                    "approve-extension",
                    "R",
                    "--reason",
                    "x",
                    "--revision",
                    "r4",
                ],
                "approve_extension",
                json!({"reason": "x"}),
            ),
        ];
        for (args, wire, body) in cases {
            let parsed = parse(&args);
            let (action, name, target, members) =
                action_of(&parsed.command).unwrap_or_else(|| panic!("{args:?}"));
            assert_eq!(action, wire, "{args:?}");
            assert_eq!(members, body, "{args:?}");
            assert_eq!(target.id, "R");
            // The name shown to people is the command typed.
            assert_eq!(problem::command_for(action), name, "{args:?}");
        }
        let pinned = parse(&[
            "approve-extension",
            "R",
            "--reason",
            "x",
            "--revision",
            "r4",
        ]);
        let (_, _, target, _) = action_of(&pinned.command).unwrap();
        assert_eq!(target.revision.as_deref(), Some("r4"));
        for args in [
            vec!["queue"],
            vec!["next"],
            vec!["show", "R"],
            vec!["events", "R"],
            vec!["verify"],
            vec!["verify", "--reset-anchor"],
            vec![
                "material", "R", "--code", "c", "--name", "n", "--size", "1", "--sha256", "x",
            ],
        ] {
            assert!(action_of(&parse(&args).command).is_none(), "{args:?}");
        }
        match parse(&[
            "material",
            "R",
            "--code",
            "premises_proof",
            "--name",
            "lease.pdf",
            "--size",
            "2048",
            "--sha256",
            "ab",
        ])
        .command
        {
            ClientCommand::Material { id, code, size, .. } => assert_eq!(
                (id.as_str(), code.as_str(), size),
                ("R", "premises_proof", 2048)
            ),
            other => panic!("{other:?}"),
        }
        assert!(parse(&["--json", "queue"]).json);
        assert!(parse(&["queue", "--json"]).json);
    }

    #[test]
    fn server_addresses_and_ids_are_checked() {
        assert_eq!(
            server_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            server_url("https://msb.example.gov.cn/prefix/").unwrap(),
            "https://msb.example.gov.cn/prefix"
        );
        // Without a scheme: http on this machine, https elsewhere.
        assert_eq!(
            server_url("127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            server_url("localhost:8080").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            server_url("msb.example.gov.cn:8443").unwrap(),
            "https://msb.example.gov.cn:8443"
        );
        for bad in ["ftp://x", "http://x/?a=1", "http://u:p@x", "a b:80"] {
            assert_eq!(server_url(bad).unwrap_err().exit, 2, "{bad}");
        }
        assert!(request_path("0193f2a4-7c1e-7d2a-9b3c-1a2b3c4d5e6f").is_ok());
        // A request is named by its id, its number or the start of its id.
        assert_eq!(classify("0193f2a4-7c1e-7d2a-9b3c-1a2b3c4d5e6f"), Named::Id);
        assert_eq!(
            classify("pt20261129-000002"),
            Named::Number("PT20261129-000002".into())
        );
        assert_eq!(classify("0193F2A4"), Named::Prefix("0193f2a4".into()));
        for other in ["019", "PT2026", "not-hex", "中文"] {
            assert_eq!(classify(other), Named::Id, "{other}");
        }
        for bad in ["", "../queue", "a/b", "x?y"] {
            assert_eq!(request_path(bad).unwrap_err().exit, 2, "{bad}");
        }
        assert_eq!(etag_for("r3").unwrap(), "\"r3\"");
        assert_eq!(etag_for("3").unwrap(), "\"r3\"");
        assert_eq!(etag_for("\"r3\"").unwrap(), "\"r3\"");
        assert_eq!(etag_for("latest").unwrap_err().exit, 2);
    }
}
