//! The binary itself: subcommands, start-up errors, tokens, graceful stop.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use mashangban::config::Settings;

use crate::helpers::{self, USCC_A};

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mashangban"));
    // Start from a clean environment: only what each test sets.
    for (key, _) in std::env::vars() {
        if key.starts_with("MASHANGBAN_") {
            command.env_remove(key);
        }
    }
    command
}

fn run(command: &mut Command) -> (i32, String, String) {
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// `mashangban completions SHELL` prints a script that knows the client's commands; an
/// unknown shell is a usage error (exit 2), and nothing needs a configuration.
#[test]
fn completions_know_the_client_commands() {
    for (shell, marker) in [
        ("bash", "_mashangban()"),
        ("zsh", "#compdef mashangban"),
        ("fish", "complete -c mashangban"),
    ] {
        let (code, stdout, stderr) = run(binary()
            .args(["completions", shell])
            .env("MASHANGBAN_DATABASE_URL", "not-a-url"));
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert!(stdout.contains(marker), "{shell}: {marker}");
        for command in ["call-next", "check-in", "tickets", "returned", "file-for"] {
            assert!(stdout.contains(command), "{shell}: {command}");
        }
    }
    let (code, _, stderr) = run(binary().args(["completions", "cmd.exe"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("cmd.exe"), "{stderr}");
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["token", "--help"],
    ] {
        let (code, stdout, _) = run(binary().args(&args));
        assert_eq!(code, 0, "{args:?}");
        assert!(stdout.contains("Usage: mashangban"), "{args:?}: {stdout}");
    }
}

#[test]
fn bad_configuration_exits_2_with_one_line_naming_it() {
    let (_dir, url) = helpers::fresh_sqlite();
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![("MASHANGBAN_DATABSE_URL", url.clone())],
            "unknown key `databse_url`",
        ),
        (
            vec![("MASHANGBAN_DATABASE_POOL_SIZE", "many".into())],
            "MASHANGBAN_DATABASE_POOL_SIZE",
        ),
        (vec![("MASHANGBAN_BIND", "nowhere".into())], "server.bind"),
        (
            vec![("MASHANGBAN_SLA_WARN_PERCENT", "0".into())],
            "sla.warn_percent",
        ),
        (
            vec![("MASHANGBAN_SLA_TICK_MS", "5000".into())],
            "sla.tick_ms",
        ),
        (
            vec![("MASHANGBAN_JWT_SECRET", "short".into())],
            "jwt.secret",
        ),
        (
            vec![(
                "MASHANGBAN_DATABASE_URL",
                "mysql://root:hunter2@localhost/x".into(),
            )],
            "unknown URL scheme `mysql`",
        ),
        (
            vec![
                (
                    "MASHANGBAN_DATABASE_URL",
                    "postgres://app:hunter2@127.0.0.1:1/x".into(),
                ),
                ("MASHANGBAN_DATABASE_CONNECT_TIMEOUT_SECS", "2".into()),
                ("MASHANGBAN_JWT_SECRET", helpers::TEST_JWT_SECRET.into()),
            ],
            "cannot connect to database postgres://app:***@127.0.0.1:1/x",
        ),
        // No secret is shipped, and PostgreSQL instances must share one: it is refused
        // before the database is even tried.
        (
            vec![(
                "MASHANGBAN_DATABASE_URL",
                "postgres://app:hunter2@127.0.0.1:1/x".into(),
            )],
            "jwt.secret: not set, and PostgreSQL instances must share one: set MASHANGBAN_JWT_SECRET_FILE",
        ),
        (
            vec![("MASHANGBAN_JWT_SECRET", "x".repeat(64))],
            "jwt.secret: is too predictable: only 1 distinct bytes",
        ),
        (
            vec![("MASHANGBAN_JWT_SECRET", "abababab".repeat(8))],
            "jwt.secret: is too predictable",
        ),
        (
            vec![(
                "MASHANGBAN_JWT_SECRET",
                "mashangban-development-secret-change-me-0123456789".into(),
            )],
            "jwt.secret: is the development secret published",
        ),
        (
            vec![("MASHANGBAN_JWT_MAX_TTL", "30m".into())],
            "jwt.default_ttl: `1h` is longer than jwt.max_ttl",
        ),
        (
            vec![("MASHANGBAN_METRICS_TOKEN", "letmein".into())],
            "metrics.token: must be at least 32 bytes",
        ),
        (
            vec![("MASHANGBAN_METRICS_BIND", "nowhere".into())],
            "metrics.bind",
        ),
        (
            vec![("MASHANGBAN_JWT_SECRET_FILE", "/nonexistent/secret".into())],
            "jwt.secret: cannot read MASHANGBAN_JWT_SECRET_FILE=/nonexistent/secret",
        ),
        (
            vec![
                ("MASHANGBAN_JWT_SECRET_FILE", "/nonexistent/secret".into()),
                ("MASHANGBAN_JWT_SECRET", helpers::TEST_JWT_SECRET.into()),
            ],
            "both MASHANGBAN_JWT_SECRET and MASHANGBAN_JWT_SECRET_FILE are set",
        ),
        (
            vec![("MASHANGBAN_LOG_LEVEL_FILE", "/x".into())],
            "unknown key `log.level_file`",
        ),
    ];
    for (env, expected) in cases {
        let mut command = binary();
        command.arg("serve");
        for (key, value) in &env {
            command.env(key, value);
        }
        let (code, stdout, stderr) = run(&mut command);
        assert_eq!(code, 2, "{env:?}: {stderr}");
        assert!(stdout.is_empty());
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    // A config file that does not exist is named too.
    let (code, _, stderr) = run(binary().args(["--config", "/nonexistent/x.toml", "serve"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/x.toml"), "{stderr}");
}

#[test]
fn token_prints_one_token_the_server_accepts() {
    let (_dir, url) = helpers::fresh_sqlite();
    let mut settings = Settings::defaults();
    settings.jwt.secret = helpers::TEST_JWT_SECRET.into();
    let auth = mashangban::auth::Authenticator::new(&settings.jwt).unwrap();
    let binary = || {
        let mut command = binary();
        command
            .env("MASHANGBAN_DATABASE_URL", &url)
            .env("MASHANGBAN_JWT_SECRET", helpers::TEST_JWT_SECRET);
        command
    };
    let cases: Vec<Vec<&str>> = vec![
        vec!["--role", "enterprise", "--uscc", USCC_A],
        vec!["--role", "clerk", "--unit", "service-center"],
        vec!["--role", "supervisor"],
        vec!["--role", "supervisor", "--unit", "tax"],
        vec!["--role", "admin", "--ttl", "15m"],
    ];
    for args in cases {
        let (code, stdout, stderr) = run(binary().arg("token").args(&args));
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_eq!(stdout.lines().count(), 1);
        let principal = auth.verify(stdout.trim()).expect("token verifies");
        assert_eq!(principal.actor.role().as_str(), args[1]);
    }
    // --ttl sets the lifetime.
    let (_, stdout, _) = run(binary().args(["token", "--role", "admin", "--ttl", "15m"]));
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&[&settings.jwt.audience]);
    let claims = jsonwebtoken::decode::<mashangban::auth::Claims>(
        stdout.trim(),
        &jsonwebtoken::DecodingKey::from_secret(settings.jwt.secret.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims.exp - claims.iat, 900);
}

#[test]
fn token_refuses_incomplete_or_contradictory_roles() {
    for (args, expected) in [
        (vec!["--role", "enterprise"], "needs --uscc"),
        (
            vec!["--role", "enterprise", "--uscc", "91350100M000100Y44"],
            "check character",
        ),
        (vec!["--role", "clerk"], "needs --unit"),
        (
            vec!["--role", "clerk", "--unit", "police"],
            "not a unit code",
        ),
        (
            vec!["--role", "admin", "--unit", "tax"],
            "does not take --unit",
        ),
        (
            vec!["--role", "clerk", "--unit", "tax", "--uscc", USCC_A],
            "does not take --uscc",
        ),
        (vec!["--role", "admin", "--ttl", "forever"], "--ttl"),
        (
            vec!["--role", "admin", "--ttl", "13h"],
            "--ttl: longer than jwt.max_ttl (12h)",
        ),
    ] {
        let (code, stdout, stderr) = run(binary().arg("token").args(&args));
        assert_eq!(code, 2, "{args:?}");
        assert!(stdout.is_empty());
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn migrate_creates_and_updates_the_database() {
    let (dir, url) = helpers::fresh_sqlite();
    let (code, _, stderr) = run(binary().arg("migrate").env("MASHANGBAN_DATABASE_URL", &url));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("is up to date"));
    assert!(dir.path().join("data/test.db").is_file());
    // Idempotent.
    let (code, _, _) = run(binary().arg("migrate").env("MASHANGBAN_DATABASE_URL", &url));
    assert_eq!(code, 0);
}

/// `serve` on port 0 answers, and SIGTERM stops it cleanly: exit 0 and the stop recorded.
#[test]
fn serve_stops_gracefully_on_sigterm() {
    let (dir, url) = helpers::fresh_sqlite();
    let mut child = binary()
        .env("MASHANGBAN_DATABASE_URL", &url)
        .env("MASHANGBAN_BIND", "127.0.0.1:0")
        .env("MASHANGBAN_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|line| line.contains("mashangban ready"))
        .expect("server logs readiness");
    let log: serde_json::Value = serde_json::from_str(&ready).expect("JSON log line");
    let address = log["fields"]["address"].as_str().unwrap().to_string();

    let response = raw_http::get(&format!("http://{address}/health/ready"));
    assert_eq!(response, 200);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(
        rest.iter().any(|l| l.contains("graceful shutdown")),
        "{rest:?}"
    );

    let path = dir.path().join("data/test.db");
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let stopped: Vec<Option<chrono::NaiveDateTime>> =
        mashangban::db::schema::service_instances::table
            .select(mashangban::db::schema::service_instances::stopped_at)
            .load(&mut conn)
            .unwrap();
    assert_eq!(stopped.len(), 1);
    assert!(stopped[0].is_some(), "graceful stop is recorded");
}

mod raw_http {
    /// Sends `head` (request line and headers, without `Host` and the blank line) to
    /// `address`; answers the status and the whole response.
    pub fn request(address: &str, head: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(stream, "{head}Host: {address}\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, response)
    }

    /// A tiny blocking GET over a raw socket, to avoid an async runtime in a plain test.
    pub fn get(url: &str) -> u16 {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

/// Reads the secret file the way the server does.
fn secret_in(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("data/jwt-secret"))
        .unwrap()
        .trim_end()
        .to_string()
}

/// Whether `token` verifies with `secret`.
fn verifies(token: &str, secret: &str) -> bool {
    let mut settings = Settings::defaults();
    settings.jwt.secret = secret.into();
    mashangban::auth::Authenticator::new(&settings.jwt)
        .unwrap()
        .verify(token.trim())
        .is_ok()
}

/// Without a configured secret on SQLite, the first command generates one next to the database
/// (mode 0600), and `token` and `serve` share it across runs: a token printed before a start is
/// accepted by the server, and the server keeps the file. The access log clips what clients
/// send.
#[test]
fn without_a_secret_sqlite_generates_one_and_every_command_shares_it() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, url) = helpers::fresh_sqlite();
    let args = ["token", "--role", "admin"];
    let (code, first, stderr) = run(binary().args(args).env("MASHANGBAN_DATABASE_URL", &url));
    assert_eq!(code, 0, "{stderr}");
    let file = dir.path().join("data/jwt-secret");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let secret = secret_in(dir.path());
    assert_eq!(secret.len(), 64, "32 random bytes, hex");
    assert!(verifies(&first, &secret));
    let (_, second, _) = run(binary().args(args).env("MASHANGBAN_DATABASE_URL", &url));
    assert!(verifies(&second, &secret), "the second run reuses the file");

    for _ in 0..2 {
        let mut child = binary()
            .env("MASHANGBAN_DATABASE_URL", &url)
            .env("MASHANGBAN_BIND", "127.0.0.1:0")
            .env("MASHANGBAN_LOG_FORMAT", "json")
            .env("MASHANGBAN_MAIL_WORKER", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let ready = lines
            .by_ref()
            .map(Result::unwrap)
            .find(|line| line.contains("mashangban ready"))
            .expect("server logs readiness");
        let log: serde_json::Value = serde_json::from_str(&ready).unwrap();
        let address = log["fields"]["address"].as_str().unwrap().to_string();
        let (status, _) = raw_http::request(
            &address,
            &format!(
                "GET /api/v1/me HTTP/1.1\r\nAuthorization: Bearer {}\r\n",
                first.trim()
            ),
        );
        assert_eq!(status, 200, "a token printed before the start is accepted");
        let long_agent = "A".repeat(4000);
        let (status, _) = raw_http::request(
            &address,
            &format!(
                "GET /{} HTTP/1.1\r\nUser-Agent: {long_agent}\r\n",
                "p".repeat(1500)
            ),
        );
        assert_eq!(status, 404);
        let served = lines
            .by_ref()
            .map(Result::unwrap)
            .find(|line| line.contains("served") && line.contains("\"status\":404"))
            .expect("access line");
        assert!(served.len() < 1200, "{} bytes: {served}", served.len());
        assert!(served.contains("…"), "{served}");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap();
        assert_eq!(secret_in(dir.path()), secret, "a restart keeps the secret");
    }
}

/// `MASHANGBAN_JWT_SECRET_FILE` (as mounted by an orchestrator, trailing newline and all) sets
/// the secret; nothing is generated then.
#[test]
fn the_secret_can_come_from_a_file() {
    let (dir, url) = helpers::fresh_sqlite();
    let file = dir.path().join("secret.txt");
    std::fs::write(&file, format!("{}\n", helpers::TEST_JWT_SECRET)).unwrap();
    let (code, token, stderr) = run(binary()
        .args(["token", "--role", "admin"])
        .env("MASHANGBAN_DATABASE_URL", &url)
        .env("MASHANGBAN_JWT_SECRET_FILE", &file));
    assert_eq!(code, 0, "{stderr}");
    assert!(verifies(&token, helpers::TEST_JWT_SECRET));
    assert!(!dir.path().join("data/jwt-secret").exists());

    // A weak secret in a file is refused like any other, without echoing it.
    std::fs::write(&file, "hunter2\n").unwrap();
    let (code, _, stderr) = run(binary()
        .args(["token", "--role", "admin"])
        .env("MASHANGBAN_DATABASE_URL", &url)
        .env("MASHANGBAN_JWT_SECRET_FILE", &file));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("jwt.secret: must be at least 32 bytes"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// `MASHANGBAN_CONFIG=PATH` names a file, as `--config PATH` does (and is not a key itself).
#[test]
fn the_config_file_can_be_named_in_the_environment() {
    let (dir, url) = helpers::fresh_sqlite();
    let file = dir.path().join("mashangban.toml");
    std::fs::write(
        &file,
        format!(
            "[jwt]\nissuer = \"from-the-file\"\nsecret = \"{}\"\n",
            helpers::TEST_JWT_SECRET
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = run(binary()
        .args(["token", "--role", "admin"])
        .env("MASHANGBAN_CONFIG", &file)
        .env("MASHANGBAN_DATABASE_URL", &url));
    assert_eq!(code, 0, "{stderr}");
    let mut settings = Settings::defaults();
    settings.jwt.issuer = "from-the-file".into();
    settings.jwt.secret = helpers::TEST_JWT_SECRET.into();
    let principal = mashangban::auth::Authenticator::new(&settings.jwt)
        .unwrap()
        .verify(stdout.trim());
    assert!(
        principal.is_ok(),
        "the file's issuer is used: {principal:?}"
    );
    // A file that is not there is named, as with --config.
    let (code, _, stderr) = run(binary()
        .args(["token", "--role", "admin"])
        .env("MASHANGBAN_CONFIG", "/nonexistent/m.toml"));
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/m.toml"), "{stderr}");
}

/// Human-format logs written to a pipe or a file carry no ANSI colour codes.
#[test]
fn human_logs_to_a_pipe_have_no_colour_codes() {
    let (_dir, url) = helpers::fresh_sqlite();
    let mut child = binary()
        .env("MASHANGBAN_DATABASE_URL", &url)
        .env("MASHANGBAN_BIND", "127.0.0.1:0")
        .env("MASHANGBAN_LOG_FORMAT", "human")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|line| line.contains("mashangban ready"));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let _ = child.wait();
    let ready = ready.expect("server logs readiness");
    assert!(!ready.contains('\x1b'), "{ready:?}");
    assert!(ready.contains("INFO"), "{ready:?}");
    for line in rest {
        assert!(!line.contains("\x1b["), "{line:?}");
    }
}
