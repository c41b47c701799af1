//! The command line: `serve` (the default), `migrate`, `token`, `client` (the clerks'
//! client, which talks HTTP only: see [`crate::client`]), and `completions` (a shell's
//! completion script, made by `clap_complete` from this very command line).
//!
//! Exit status: 0 on success, 2 for bad configuration or an unreachable database at start
//! (one line on stderr naming the key or the redacted URL), 1 for any later failure.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::app::{Application, StartError};
use crate::auth::{Actor, Principal, Role, TokenIssuer, secret};
use crate::client::{self, ClientArgs};
use crate::config::{self, Settings};
use crate::db::{self, DatabaseUrl};
use crate::domain::{UnitCode, Uscc};
use crate::telemetry;

/// mashangban (马上办): enterprise service requests for a district service centre.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// Configuration file layered over the defaults (also MASHANGBAN_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print one signed token, alone on stdout, using the server's configuration.
    Token(TokenArgs),
    /// The clerks' client: work the queue and move requests through their lifecycle, over HTTP.
    Client(ClientArgs),
    /// Print the shell completion script, e.g. `mashangban completions bash > /etc/bash_completion.d/mashangban`.
    Completions(CompletionsArgs),
}

/// `mashangban completions` arguments.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `mashangban token` arguments.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Role of the token.
    #[arg(long, value_enum)]
    pub role: Role,
    /// Unified social credit code (enterprise tokens).
    #[arg(long, value_name = "CODE")]
    pub uscc: Option<String>,
    /// Unit code (clerk tokens; optional for supervisors, none = district-wide).
    #[arg(long, value_name = "CODE")]
    pub unit: Option<String>,
    /// Lifetime, e.g. 30m, 1h, 8h (default: jwt.default_ttl; at most jwt.max_ttl).
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// The token's subject (default: a name made from the role and scope).
    #[arg(long, value_name = "ID")]
    pub subject: Option<String>,
}

/// Exit status for configuration and start-up failures.
const EXIT_CONFIG: u8 = 2;

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Completions need nothing but the command line itself.
    if let Some(Command::Completions(args)) = &cli.command {
        let mut command = Cli::command();
        clap_complete::generate(
            args.shell,
            &mut command,
            "mashangban",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    // The client needs neither the server's settings nor a database.
    if let Some(Command::Client(args)) = cli.command {
        return client::run(args);
    }
    let file = cli.config.clone().or_else(config::config_file_from_env);
    let settings = match Settings::load(file.as_deref()) {
        Ok(settings) => settings,
        Err(error) => return fail(EXIT_CONFIG, error),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => migrate(settings),
        Command::Token(args) => token(&settings, args),
        Command::Client(_) | Command::Completions(_) => {
            unreachable!("the client and completions run before the settings load")
        }
    }
}

fn fail(code: u8, error: impl std::fmt::Display) -> ExitCode {
    eprintln!("mashangban: {error}");
    ExitCode::from(code)
}

fn serve(settings: Settings) -> ExitCode {
    telemetry::init(&settings.log);
    let system = actix_web::rt::System::new();
    let result = system.block_on(async move {
        let app = match Application::build(settings).await {
            Ok(app) => app,
            Err(error) => return Err(error),
        };
        if let Err(error) = app.run_until_stopped().await {
            tracing::error!(%error, "server failed");
            return Ok(ExitCode::FAILURE);
        }
        Ok(ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        Err(error @ StartError::Bind { .. }) => fail(1, error),
        Err(error) => fail(EXIT_CONFIG, error),
    }
}

fn migrate(settings: Settings) -> ExitCode {
    telemetry::init(&settings.log);
    let url = match DatabaseUrl::parse(&settings.database.url) {
        Ok(url) => url,
        Err(error) => return fail(EXIT_CONFIG, config::ConfigError::key("database.url", error)),
    };
    let result =
        db::establish(&url, &settings.database).and_then(|mut conn| db::migrate(&mut conn, &url));
    match result {
        Ok(()) => {
            eprintln!("mashangban: database {} is up to date", url.redacted());
            ExitCode::SUCCESS
        }
        Err(error) => fail(EXIT_CONFIG, error),
    }
}

fn token(settings: &Settings, args: TokenArgs) -> ExitCode {
    let principal = match principal_for(&args) {
        Ok(principal) => principal,
        Err(message) => return fail(EXIT_CONFIG, message),
    };
    let ttl = match args.ttl.as_deref().map(config::parse_duration) {
        None => settings.default_ttl(),
        Some(Ok(ttl)) if ttl > settings.max_ttl() => {
            return fail(
                EXIT_CONFIG,
                format!(
                    "--ttl: longer than jwt.max_ttl ({}); the server would refuse the token",
                    settings.jwt.max_ttl
                ),
            );
        }
        Some(Ok(ttl)) => ttl,
        Some(Err(message)) => return fail(EXIT_CONFIG, format!("--ttl: {message}")),
    };
    // The same secret the server uses: configured, or generated next to the SQLite file.
    let mut jwt = settings.jwt.clone();
    let url = match DatabaseUrl::parse(&settings.database.url) {
        Ok(url) => url,
        Err(error) => return fail(EXIT_CONFIG, config::ConfigError::key("database.url", error)),
    };
    jwt.secret = match secret::resolve(&jwt, &url) {
        Ok(secret) => secret,
        Err(error) => return fail(EXIT_CONFIG, error),
    };
    let token = TokenIssuer::new(&jwt).issue(&principal, ttl, Utc::now());
    println!("{token}");
    ExitCode::SUCCESS
}

/// The principal `token` arguments describe; refuses flags the role does not take.
pub fn principal_for(args: &TokenArgs) -> Result<Principal, String> {
    let unit = |required: bool| -> Result<Option<UnitCode>, String> {
        match args.unit.as_deref() {
            Some(code) => code.parse().map(Some).map_err(|e| format!("--unit: {e}")),
            None if required => Err(format!("--role {} needs --unit CODE", args.role.as_str())),
            None => Ok(None),
        }
    };
    let refuse = |flag: &str| -> Result<(), String> {
        Err(format!(
            "--role {} does not take {flag}",
            args.role.as_str()
        ))
    };
    let actor = match args.role {
        Role::Enterprise => {
            if args.unit.is_some() {
                refuse("--unit")?;
            }
            let code = args
                .uscc
                .as_deref()
                .ok_or("--role enterprise needs --uscc CODE")?;
            Actor::Enterprise(Uscc::parse(code).map_err(|e| format!("--uscc: {e}"))?)
        }
        Role::Clerk | Role::Supervisor | Role::Admin if args.uscc.is_some() => {
            return Err(format!(
                "--role {} does not take --uscc",
                args.role.as_str()
            ));
        }
        Role::Clerk => Actor::Clerk(unit(true)?.expect("required")),
        Role::Supervisor => Actor::Supervisor(unit(false)?),
        Role::Admin => {
            if args.unit.is_some() {
                refuse("--unit")?;
            }
            Actor::Admin
        }
    };
    let subject = args.subject.clone().unwrap_or_else(|| match &actor {
        Actor::Enterprise(uscc) => format!("enterprise-{uscc}"),
        Actor::Clerk(unit) => format!("clerk-{unit}"),
        Actor::Supervisor(Some(unit)) => format!("supervisor-{unit}"),
        Actor::Supervisor(None) => "supervisor-district".into(),
        Actor::Admin => "admin".into(),
    });
    Ok(Principal { subject, actor })
}
