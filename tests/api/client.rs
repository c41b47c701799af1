//! The clerks' client, `mashangban client …`: the real binary against a real server, on
//! SQLite and (when configured) PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use mashangban::auth::{Actor, Principal, TokenIssuer};
use mashangban::domain::UnitCode;
use serde_json::{Value, json};

use crate::audit::delete_newest;
use crate::helpers::TestApp;
use crate::on_both_backends;
use crate::requests::matter_body;

/// The binary with `client --config-file PATH`, and no `MASHANGBAN_*` from the outside.
fn client(config: &Path) -> Command {
    let mut command = bare();
    command.arg("client").arg("--config-file").arg(config);
    command
}

fn bare() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mashangban"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MASHANGBAN_") || key == "XDG_CONFIG_HOME" {
            command.env_remove(key);
        }
    }
    // Tables fit `COLUMNS` (stdout is a pipe): wide enough here for one line per row, and
    // the same whatever terminal runs the tests. `narrow` runs at 80.
    command.env("COLUMNS", "200");
    command
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `command` off the async runtime (the server answers on the same process).
async fn run(mut command: Command) -> Run {
    let output = actix_web::rt::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `client --config-file config ARGS…`.
async fn cli(config: &Path, args: &[&str]) -> Run {
    let mut command = client(config);
    command.args(args);
    run(command).await
}

/// Succeeds, or shows what the client said.
async fn ok(config: &Path, args: &[&str]) -> String {
    let out = cli(config, args).await;
    assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
    assert!(out.stderr.is_empty(), "{args:?}: {}", out.stderr);
    out.stdout
}

/// Fails with `code` and exactly one line on stderr, which is returned.
async fn fails(config: &Path, args: &[&str], code: i32) -> String {
    let out = cli(config, args).await;
    assert_eq!(out.code, code, "{args:?}: {}{}", out.stdout, out.stderr);
    assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
    assert!(out.stderr.starts_with("mashangban: "), "{}", out.stderr);
    out.stderr.trim_end().to_string()
}

/// Submits a tax registration as enterprise A; returns (id, number).
async fn submit(app: &TestApp) -> (String, String) {
    let response = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(app.enterprise_token())
        .json(&matter_body("tax.registration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_string(),
        body["number"].as_str().unwrap().to_string(),
    )
}

fn config_in(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name).join("client.toml")
}

async fn login(app: &TestApp, config: &Path, token: &str) -> String {
    ok(
        config,
        &["login", "--server", &app.address, "--token", token],
    )
    .await
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn a_day_at_the_window_from_login_to_delivery(app: &TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(&dir, "clerk");

    // Not logged in yet: exit 2 and how to log in.
    let line = fails(&config, &["queue"], 2).await;
    assert!(line.contains("not logged in"), "{line}");
    assert!(line.contains("client login"), "{line}");

    let out = login(app, &config, &app.clerk_token(UnitCode::Tax)).await;
    assert!(
        out.contains(&format!(
            "Logged in to {} as test-clerk (clerk, unit tax)",
            app.address
        )),
        "{out}"
    );
    #[cfg(unix)]
    assert_eq!(mode(&config), 0o600);

    let line = ok(&config, &["queue"]).await;
    assert_eq!(line, "The queue is empty.\n");
    let (id, number) = submit(app).await;

    // The queue, for people and for scripts.
    let table = ok(&config, &["queue"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NUMBER"), "{table}");
    assert!(lines[1].starts_with(&number), "{table}");
    assert!(lines[1].contains("tax.registration"), "{table}");
    assert_eq!(
        lines.last().unwrap(),
        &"1 open task of tax (times are Shanghai time)"
    );
    let json: Value = serde_json::from_str(&ok(&config, &["--json", "queue"]).await).unwrap();
    assert_eq!(json["items"][0]["request_id"], id.as_str());

    // Take it.
    let out = ok(&config, &["next"]).await;
    assert!(out.starts_with("Claimed task "), "{out}");
    assert!(
        out.contains(&format!("(tax, lead task) of request {number}")),
        "{out}"
    );
    assert!(
        out.contains("上海马上办科技有限公司 (91350100M000100Y43)"),
        "{out}"
    );
    assert_eq!(
        ok(&config, &["next"]).await,
        "Nothing is waiting in your unit's queue.\n"
    );
    assert_eq!(ok(&config, &["next", "--json"]).await, "null\n");
    let queue: Value = serde_json::from_str(&ok(&config, &["queue", "--json"]).await).unwrap();
    assert_eq!(queue["items"][0]["claimed_by"], "test-clerk");

    let shown = ok(&config, &["show", &id]).await;
    assert!(
        shown.starts_with(&format!("number     {number}\n")),
        "{shown}"
    );
    assert!(shown.contains("status     submitted\n"), "{shown}");
    assert!(shown.contains("\nrevision   r"), "{shown}");
    assert!(shown.contains("\nTasks\nUNIT"), "{shown}");

    // A step that does not fit the state: the state and what is possible now.
    let line = fails(&config, &["approve", &id], 1).await;
    assert_eq!(
        line,
        format!(
            "mashangban: action_not_allowed: cannot approve request {number}: it is submitted; possible now: withdraw (by the enterprise), call, return"
        )
    );

    // The whole lifecycle, one command per step.
    for (args, expected) in [
        (vec!["call", &id], "submitted → called (call, r"),
        (vec!["accept", &id], "called → accepted (accept, r"),
        (vec!["review", &id], "accepted → under_review (review, r"),
        (
            vec!["special-procedure", "start", &id, "--kind", "expert_review"],
            "special-procedure start done; still under_review",
        ),
    ] {
        let out = ok(&config, &args).await;
        assert!(
            out.starts_with(&format!("{number}: {expected}")),
            "{args:?}: {out}"
        );
    }
    let line = fails(&config, &["approve", &id], 1).await;
    assert!(
        line.ends_with(
            "it is under_review; possible now: withdraw (by the enterprise), special-procedure end, approve-extension"
        ),
        "{line}"
    );
    for (args, expected) in [
        (
            vec!["special-procedure", "end", &id],
            "special-procedure end done; still under_review",
        ),
        (vec!["approve", &id], "under_review → approved (approve, r"),
        (vec!["complete", &id], "approved → completed (complete, r"),
    ] {
        let out = ok(&config, &args).await;
        assert!(
            out.starts_with(&format!("{number}: {expected}")),
            "{args:?}: {out}"
        );
    }
    // The certificate is required by the command line itself.
    let out = cli(&config, &["deliver", &id]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--certificate"), "{}", out.stderr);
    // With --json, the request as the server now has it.
    let delivered: Value = serde_json::from_str(
        &ok(
            &config,
            &[
                "--json",
                "deliver",
                &id,
                "--certificate",
                "沪税登2026第000123号",
            ],
        )
        .await,
    )
    .unwrap();
    assert_eq!(delivered["status"], "delivered");
    assert_eq!(delivered["id"], id.as_str());
    let line = fails(&config, &["deliver", &id, "--certificate", "again"], 1).await;
    assert!(
        line.ends_with("it is delivered; nothing more can be done (the request is closed)"),
        "{line}"
    );

    // The timeline, every step in order (between the SLA clocks' own events), the
    // certificate among the details.
    let timeline: Value =
        serde_json::from_str(&ok(&config, &["events", &id, "--json"]).await).unwrap();
    let events = timeline["events"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .filter(|action| !action.starts_with("clock."))
        .collect();
    assert_eq!(
        actions,
        [
            "intake",
            "call",
            "accept",
            "start_review",
            "begin_special_procedure",
            "end_special_procedure",
            "approve",
            "complete",
            "deliver"
        ]
    );
    let table = ok(&config, &["events", &id]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 1 + events.len() + 1, "{table}");
    assert!(lines[0].starts_with("SEQ  TIME"), "{table}");
    let row = |action: &str| {
        let at = events.iter().position(|e| e["action"] == action).unwrap();
        lines[1 + at]
    };
    assert!(
        row("call").contains("test-clerk (clerk, tax)")
            && row("call").contains("submitted → called"),
        "{table}"
    );
    assert!(
        row("deliver").contains("certificate: 沪税登2026第000123号"),
        "{table}"
    );
    assert!(row("deliver").contains("completed → delivered"), "{table}");
}

/// Two clerks: the second acts on what it read before the first changed it.
async fn someone_else_changing_the_request_first_is_said_plainly(app: &TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let (li, wang) = (config_in(&dir, "li"), config_in(&dir, "wang"));
    login(app, &li, &app.clerk_token(UnitCode::Tax)).await;
    login(app, &wang, &app.clerk_token(UnitCode::Tax)).await;
    let (id, number) = submit(app).await;

    // Wang reads the request; Li calls it meanwhile; Wang acts on what it read.
    let shown = ok(&wang, &["show", &id]).await;
    let revision = shown
        .lines()
        .find_map(|l| l.strip_prefix("revision   "))
        .unwrap()
        .to_string();
    ok(&li, &["call", &id]).await;
    let line = fails(&wang, &["call", &id, "--revision", &revision], 1).await;
    assert!(
        line.starts_with(&format!(
            "mashangban: call not done: someone else changed request {number} first: it is now called (r"
        )),
        "{line}"
    );
    assert!(
        line.ends_with("look at it again (mashangban client show ID) and decide"),
        "{line}"
    );
    // Without --revision the client acts on the request as it is: the state machine decides.
    let line = fails(&wang, &["call", &id], 1).await;
    assert!(
        line.contains("cannot call request") && line.contains("it is called"),
        "{line}"
    );
    ok(&wang, &["accept", &id]).await;
}

async fn errors_are_one_line_with_the_right_exit_status(app: &TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(&dir, "clerk");
    login(app, &config, &app.clerk_token(UnitCode::Tax)).await;
    let (id, _) = submit(app).await;
    ok(&config, &["call", &id]).await;

    // Field errors from the server, inline.
    let long = "材".repeat(201);
    let line = fails(
        &config,
        &[
            "request-supplement",
            &id,
            "--item",
            "营业执照副本",
            "--item",
            &long,
        ],
        1,
    )
    .await;
    assert!(
        line.starts_with("mashangban: validation_failed: /items: required: every missing item"),
        "{line}"
    );
    // Usage errors are clap's (exit 2): no item, blank reason, unknown unit or kind.
    for args in [
        vec!["request-supplement", &id],
        vec!["refuse", &id, "--reason", " "],
        vec!["reroute", &id, "--unit", "police", "--reason", "x"],
        vec!["special-procedure", "start", &id, "--kind", "séance"],
        vec!["show", "../queue"],
        vec!["call", &id, "--revision", "latest"],
    ] {
        let out = cli(&config, &args).await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    // A request the caller may not see.
    let justice = config_in(&dir, "justice");
    login(app, &justice, &app.clerk_token(UnitCode::Justice)).await;
    let line = fails(&justice, &["call", &id], 1).await;
    assert!(line.starts_with("mashangban: not_found: "), "{line}");
    // The queue is for clerks: a supervisor is told so.
    let head = config_in(&dir, "head");
    login(
        app,
        &head,
        &app.token(Actor::Supervisor(Some(UnitCode::Tax))),
    )
    .await;
    let line = fails(&head, &["queue"], 1).await;
    assert!(line.starts_with("mashangban: forbidden: "), "{line}");

    // A token that is refused at login is not saved.
    let refused = config_in(&dir, "refused");
    let line = fails(
        &refused,
        &["login", "--server", &app.address, "--token", "not-a-jwt"],
        2,
    )
    .await;
    assert!(line.contains("invalid_token"), "{line}");
    assert!(!refused.exists());

    // An expired token: log in again.
    let expired = TokenIssuer::new(&app.settings.jwt).issue(
        &Principal {
            subject: "clerk-tax".into(),
            actor: Actor::Clerk(UnitCode::Tax),
        },
        Duration::from_secs(600),
        Utc::now() - chrono::Duration::hours(2),
    );
    std::fs::write(
        &config,
        format!("server = \"{}\"\ntoken = \"{expired}\"\n", app.address),
    )
    .unwrap();
    let line = fails(&config, &["queue", "--json"], 2).await;
    assert!(line.starts_with("mashangban: invalid_token: "), "{line}");
    assert!(
        line.ends_with(&format!(
            "log in again: mashangban client login --server {} --token NEW_TOKEN",
            app.address
        )),
        "{line}"
    );

    // Nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let line = fails(
        &config_in(&dir, "nowhere"),
        &[
            "login",
            "--server",
            &format!("http://127.0.0.1:{port}"),
            "--token",
            "x",
        ],
        1,
    )
    .await;
    assert!(
        line.starts_with("mashangban: cannot reach http://127.0.0.1:"),
        "{line}"
    );
    let line = fails(
        &config,
        // (Without a scheme an address is fine: `the_counter_works_…`.)
        &["login", "--server", "ftp://127.0.0.1:8080", "--token", "x"],
        2,
    )
    .await;
    assert!(line.contains("--server"), "{line}");
}

/// The default place of the login, and that the client ignores the server's configuration.
async fn login_lands_in_the_xdg_config_folder_and_needs_no_server_settings(app: &TestApp) {
    let home = tempfile::tempdir().unwrap();
    let token = app.clerk_token(UnitCode::Tax);
    let mut command = bare();
    command
        .env("XDG_CONFIG_HOME", home.path())
        // A server configuration that `serve` would refuse: the client never reads it.
        .env("MASHANGBAN_JWT_SECRET", "short")
        .args([
            "client",
            "login",
            "--server",
            &app.address,
            "--token",
            &token,
        ]);
    let out = run(command).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let file = home.path().join("mashangban/client.toml");
    assert!(
        out.stdout.contains(&file.display().to_string()),
        "{}",
        out.stdout
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
    }
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(
        saved.contains(&token) && saved.contains(&app.address),
        "{saved}"
    );

    let mut command = bare();
    command
        .env("XDG_CONFIG_HOME", home.path())
        .args(["client", "queue"]);
    let out = run(command).await;
    assert_eq!(out.code, 0, "{}", out.stderr);

    // A login file others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let line = fails(&file, &["queue"], 2).await;
        assert!(line.contains("chmod 600"), "{line}");
    }

    let mut command = bare();
    command
        .env("XDG_CONFIG_HOME", home.path())
        .args(["client", "logout"]);
    let out = run(command).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!file.exists());

    // `--token -` reads the token from stdin, so it stays out of the shell history.
    let mut command = client(&file);
    command
        .args(["login", "--server", &app.address, "--token", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let output = actix_web::rt::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = command.spawn().unwrap();
        writeln!(child.stdin.take().unwrap(), "{token}").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(ok(&file, &["queue"]).await, "The queue is empty.\n");
}

#[test]
fn every_client_command_has_help() {
    for args in [
        vec!["client", "--help"],
        vec!["client", "login", "--help"],
        vec!["client", "queue", "--help"],
        vec!["client", "next", "--help"],
        vec!["client", "show", "--help"],
        vec!["client", "events", "--help"],
        vec!["client", "refuse", "--help"],
        vec!["client", "request-supplement", "--help"],
        vec!["client", "special-procedure", "start", "--help"],
        vec!["client", "reroute", "--help"],
        vec!["client", "approve-extension", "--help"],
        vec!["client", "verify", "--help"],
        vec!["client", "material", "--help"],
        vec!["client", "tickets", "--help"],
        vec!["client", "call-next", "--help"],
        vec!["client", "check-in", "--help"],
        vec!["client", "returned", "--help"],
        vec!["client", "file-for", "--help"],
    ] {
        let output = bare().args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            stdout.contains("Usage: mashangban client"),
            "{args:?}: {stdout}"
        );
    }
}

/// Refusal, denial, return and re-routing, and the supervisor's extension, through the client.
async fn the_other_actions_reach_the_server(app: &TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let (tax, centre, head) = (
        config_in(&dir, "tax"),
        config_in(&dir, "centre"),
        config_in(&dir, "head"),
    );
    login(app, &tax, &app.clerk_token(UnitCode::Tax)).await;
    login(app, &centre, &app.clerk_token(UnitCode::ServiceCenter)).await;
    login(
        app,
        &head,
        &app.token(Actor::Supervisor(Some(UnitCode::Tax))),
    )
    .await;
    let step = |config: PathBuf, args: Vec<String>, expected: &'static str| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = ok(&config, &args).await;
        assert!(out.contains(expected), "{args:?}: {out}");
    };
    let s = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();

    let (refused, _) = submit(app).await;
    step(tax.clone(), s(&["call", &refused]), "submitted → called").await;
    step(
        tax.clone(),
        s(&["refuse", &refused, "--reason", "不属于受理范围"]),
        "called → not_accepted",
    )
    .await;

    let (returned, _) = submit(app).await;
    step(
        tax.clone(),
        s(&["return", &returned, "--reason", "应由市场监管局办理"]),
        "submitted → returned",
    )
    .await;
    step(
        centre.clone(),
        s(&[
            "reroute",
            &returned,
            "--unit",
            "market",
            "--reason",
            "市场监管事项",
        ]),
        "returned → submitted",
    )
    .await;
    // It is now in the market regulation clerks' queue.
    let market = config_in(&dir, "market");
    login(app, &market, &app.clerk_token(UnitCode::Market)).await;
    let queue: Value = serde_json::from_str(&ok(&market, &["--json", "queue"]).await).unwrap();
    assert_eq!(queue["items"][0]["request_id"], returned.as_str());
    let view: Value =
        serde_json::from_str(&ok(&market, &["--json", "show", &returned]).await).unwrap();
    assert_eq!(view["lead_unit"], "market");

    let (denied, _) = submit(app).await;
    step(tax.clone(), s(&["call", &denied]), "→ called").await;
    step(tax.clone(), s(&["accept", &denied]), "→ accepted").await;
    step(
        head.clone(),
        s(&["approve-extension", &denied, "--reason", "需现场核查"]),
        "approve-extension done; still accepted",
    )
    .await;
    step(tax.clone(), s(&["review", &denied]), "→ under_review").await;
    step(
        tax.clone(),
        s(&["deny", &denied, "--reason", "不符合登记条件"]),
        "under_review → denied",
    )
    .await;
    let timeline: Value =
        serde_json::from_str(&ok(&tax, &["--json", "events", &denied]).await).unwrap();
    let extension = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "approve_extension")
        .unwrap();
    assert_eq!(extension["role"], "supervisor");
    assert_eq!(extension["payload"]["reason"], "需现场核查");
    // A clerk may not approve an extension: 403, one line.
    let line = fails(&tax, &["approve-extension", &denied, "--reason", "x"], 1).await;
    assert!(line.starts_with("mashangban: forbidden: "), "{line}");
}

/// `verify` keeps the chain's head in the login file and says so when events are lost.
async fn verify_keeps_the_head_and_says_when_events_are_lost(app: &TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let head = config_in(&dir, "head");
    let supervisor = app.token(Actor::Supervisor(None));
    login(app, &head, &supervisor).await;
    assert_eq!(
        ok(&head, &["verify"]).await,
        "The audit chain is empty: nothing to verify yet.\n"
    );
    for _ in 0..3 {
        submit(app).await;
    }
    let out = ok(&head, &["verify"]).await;
    assert!(
        out.starts_with("The audit chain is intact: 3 events.\nNo head saved before"),
        "{out}"
    );
    assert!(
        out.ends_with(&format!(") in {}.\n", head.display())),
        "{out}"
    );
    assert!(out.contains("Saved its head (event 3, "), "{out}");
    let saved = std::fs::read_to_string(&head).unwrap();
    assert!(saved.contains("\n[audit_head]\nseq = 3\n"), "{saved}");
    #[cfg(unix)]
    assert_eq!(mode(&head), 0o600);

    submit(app).await;
    let out = ok(&head, &["verify"]).await;
    assert!(
        out.contains("4 events") && out.contains("The head you saw last (event 3, "),
        "{out}"
    );
    let json: Value = serde_json::from_str(&ok(&head, &["verify", "--json"]).await).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["head"]["seq"], 4);

    // Someone with access to the database removes the newest two events.
    delete_newest(app, 2);
    let line = fails(&head, &["verify"], 3).await;
    assert!(
        line.starts_with(
            "mashangban: the audit chain has lost events: the chain ends at event 2, but event 4 "
        ),
        "{line}"
    );
    assert!(
        line.contains("events 3 to 4 at least were removed"),
        "{line}"
    );
    assert!(line.contains("verify --reset-anchor"), "{line}");
    // The head is kept: every run says it again, also after logging in with a new token.
    login(app, &head, &supervisor).await;
    assert_eq!(fails(&head, &["verify", "--json"], 3).await, line);

    // Once explained, accept the chain as it is now.
    let out = ok(&head, &["verify", "--reset-anchor"]).await;
    assert!(
        out.contains("2 events")
            && out.contains("Not checked against the head saved before (--reset-anchor).")
            && out.contains("Saved its head (event 2, "),
        "{out}"
    );
    assert!(
        ok(&head, &["verify"])
            .await
            .contains("The head you saw last (event 2, ")
    );

    // Deleted, then written over with new events: another event stands where the head was.
    submit(app).await;
    ok(&head, &["verify"]).await;
    delete_newest(app, 1);
    submit(app).await;
    let line = fails(&head, &["verify"], 3).await;
    assert!(
        line.starts_with(
            "mashangban: the audit chain is broken at event 3: event 3 is not the event seen there before"
        ),
        "{line}"
    );

    // Clerks may not verify.
    let clerk = config_in(&dir, "clerk");
    login(app, &clerk, &app.clerk_token(UnitCode::Tax)).await;
    let line = fails(&clerk, &["verify"], 1).await;
    assert!(line.starts_with("mashangban: forbidden: "), "{line}");

    // A head edited by hand is refused, with the way out.
    let text = std::fs::read_to_string(&head)
        .unwrap()
        .replace("seq = 3", "seq = 0");
    std::fs::write(&head, text).unwrap();
    let line = fails(&head, &["verify"], 2).await;
    assert!(line.contains("[audit_head] is not a head"), "{line}");
    assert!(
        ok(&head, &["verify", "--reset-anchor"])
            .await
            .contains("3 events")
    );
    let out = ok(&head, &["logout"]).await;
    assert!(
        out.ends_with("(and the audit head seen last, event 3).\n"),
        "{out}"
    );
}

/// A deferred material (容缺) received at the window: `material` sends it with
/// `received_at_window`, `show` says how it arrived, and a second time is refused in one line.
async fn a_material_received_at_the_window(app: &TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let (market, tax) = (config_in(&dir, "market"), config_in(&dir, "tax"));
    login(app, &market, &app.clerk_token(UnitCode::Market)).await;
    login(app, &tax, &app.clerk_token(UnitCode::Tax)).await;
    let mut body = matter_body("market.establish");
    body["materials"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["code"] != "premises_proof");
    let created = crate::helpers::submit(app, &body).await;
    let (id, number) = (
        created["id"].as_str().unwrap().to_string(),
        created["number"].as_str().unwrap().to_string(),
    );
    let sha = "ab".repeat(32);
    let args = [
        "material",
        &id,
        "--code",
        "premises_proof",
        "--name",
        "lease.pdf",
        "--size",
        "2048",
        "--sha256",
        &sha,
    ];

    // A unit with nothing on the request does not see it.
    let line = fails(&tax, &args, 1).await;
    assert!(line.starts_with("mashangban: not_found"), "{line}");

    let out = ok(&market, &args).await;
    assert_eq!(
        out,
        format!("{number}: material done; still submitted (r2).\n")
    );
    let read: Value = app
        .get(&format!("/api/v1/requests/{id}"), Some(&app.admin_token()))
        .await
        .json()
        .await
        .unwrap();
    let material = read["materials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["code"] == "premises_proof")
        .unwrap();
    assert_eq!(material["status"], "provided");
    assert_eq!(material["received_at_window"], true);
    assert_eq!(material["sha256"], sha.as_str());
    assert_eq!(material["name"], "lease.pdf");

    let shown = ok(&market, &["show", &id]).await;
    let row = shown
        .lines()
        .find(|l| l.starts_with("premises_proof"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        row.contains("provided") && row.ends_with("at the window"),
        "{row}"
    );

    let line = fails(&market, &args, 1).await;
    assert!(
        line.starts_with("mashangban: material_not_pending: "),
        "{line}"
    );
}

async fn a_co_unit_gives_its_opinion_and_the_lead_answers_it(app: &TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let (market, justice) = (config_in(&dir, "market"), config_in(&dir, "justice"));
    login(app, &market, &app.clerk_token(UnitCode::Market)).await;
    login(app, &justice, &app.clerk_token(UnitCode::Justice)).await;
    let created = crate::helpers::submit(app, &matter_body("market.ip-dispute")).await;
    let (id, number) = (
        created["id"].as_str().unwrap().to_string(),
        created["number"].as_str().unwrap().to_string(),
    );
    // The co-unit may not take the request in.
    let line = fails(&justice, &["call", &id], 1).await;
    assert!(line.starts_with("mashangban: not_lead_unit: "), "{line}");
    ok(&market, &["call", &id]).await;
    ok(&market, &["accept", &id]).await;
    let opinion = ["give-opinion", &id, "--opinion", "disagree"];
    let with_note = [&opinion[..], &["--note", "涉及在审诉讼"]].concat();
    // Out of order before its own review; a disagreement needs its note.
    let line = fails(&justice, &with_note, 1).await;
    assert!(
        line.starts_with("mashangban: action_not_allowed: "),
        "{line}"
    );
    ok(&justice, &["review", &id]).await;
    let line = fails(&justice, &opinion, 1).await;
    assert!(line.contains("/note"), "{line}");
    let out = ok(&justice, &with_note).await;
    assert!(
        out.starts_with(&format!("{number}: give-opinion done; still accepted")),
        "{out}"
    );
    let shown = ok(&market, &["show", &id]).await;
    let row = shown
        .lines()
        .find(|l| l.starts_with("justice"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        row.contains("completed") && row.contains("disagree"),
        "{row}"
    );
    ok(&market, &["review", &id]).await;
    let line = fails(&market, &["approve", &id], 1).await;
    assert!(
        line.contains("/reason") && line.contains("justice"),
        "{line}"
    );
    let out = ok(
        &market,
        &["approve", &id, "--reason", "justice 所称诉讼与本次登记无关"],
    )
    .await;
    assert!(out.contains("under_review → approved"), "{out}");
}

/// The counter's commands: `--server host:port`, request numbers and id prefixes, the window
/// queue (`tickets`, `call-next`), `accept` claiming the task, `next` with the revision,
/// `returned` for the service centre.
async fn the_counter_works_with_numbers_prefixes_and_tickets(app: &TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(&dir, "market");
    // No scheme: http on this machine.
    let bare_address = app.address.trim_start_matches("http://").to_string();
    let clerk = app.token_for("clerk-wang", Actor::Clerk(UnitCode::Market));
    let out = ok(
        &config,
        &["login", "--server", &bare_address, "--token", &clerk],
    )
    .await;
    assert!(
        out.contains(&format!("Logged in to {}", app.address)),
        "{out}"
    );

    // Two requests led by market: by number, by a unique prefix, an ambiguous prefix.
    let body = matter_body("market.ip-dispute");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let created = crate::helpers::submit(app, &body).await;
        ids.push((
            created["id"].as_str().unwrap().to_string(),
            created["number"].as_str().unwrap().to_string(),
        ));
    }
    let (first_id, first_number) = ids[0].clone();
    let (second_id, second_number) = ids[1].clone();
    let shown = ok(&config, &["show", &first_number]).await;
    assert!(shown.contains(&first_id), "{shown}");
    let shown = ok(&config, &["show", &first_number.to_lowercase()]).await;
    assert!(shown.contains(&first_id), "{shown}");
    // The longest prefix the two ids do not share is unique.
    let common = first_id
        .chars()
        .zip(second_id.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let unique = &first_id[..(common + 1).max(4)];
    let shown = ok(&config, &["show", unique]).await;
    assert!(shown.contains(&first_number), "{shown}");
    if common >= 4 {
        let line = fails(&config, &["show", &first_id[..4]], 2).await;
        assert!(
            line.contains(&first_id) && line.contains(&second_id),
            "{line}"
        );
    }
    // The API's filters: exact number and id prefix, in the caller's scope; bad values 422.
    let page = |token: String, query: String| async move {
        let response = app
            .get(&format!("/api/v1/requests?{query}"), Some(&token))
            .await;
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };
    let (status, found) = page(clerk.clone(), format!("number={first_number}")).await;
    assert_eq!((status, found["total"].clone()), (200, json!(1)));
    assert_eq!(found["items"][0]["id"], first_id.as_str());
    let (_, found) = page(
        app.clerk_token(UnitCode::Tax),
        format!("number={first_number}"),
    )
    .await;
    assert_eq!(found["total"], 0);
    let (_, found) = page(clerk.clone(), format!("id_prefix={}", &first_id[..4])).await;
    assert_eq!(found["total"], 2);
    for bad in [
        "number=PT2026",
        "number=%E4%B8%ADPT20261129-0000",
        "number=PT20261129X000002",
        "id_prefix=abc",
        "id_prefix=XYZW",
        "id_prefix=0193%25",
    ] {
        let (status, body) = page(clerk.clone(), bad.to_string()).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let line = fails(&config, &["show", "PT20000101-000001"], 1).await;
    assert!(line.contains("no request PT20000101-000001"), "{line}");

    // Call and accept by number: the clerk who accepts has the task.
    ok(&config, &["call", &first_number]).await;
    ok(&config, &["accept", &first_number]).await;
    let read: Value = app
        .get(&format!("/api/v1/requests/{first_id}"), Some(&clerk))
        .await
        .json()
        .await
        .unwrap();
    let lead = read["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "lead")
        .unwrap();
    assert_eq!(lead["claimed_by"], "clerk-wang", "{read}");

    // The window queue: empty, then a walk-in for the second request, called next.
    let out = ok(&config, &["tickets"]).await;
    assert!(
        out.starts_with("Nobody is in the window queue of market"),
        "{out}"
    );
    let response = app
        .client
        .post(app.url("/api/v1/tickets"))
        .bearer_auth(&clerk)
        .json(&json!({"request": second_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let out = ok(&config, &["tickets"]).await;
    assert!(out.contains("A001") && out.contains("walk_in"), "{out}");
    assert!(out.contains("1 waiting of 1 ticket"), "{out}");
    let out = ok(&config, &["call-next", "--counter", "3"]).await;
    assert!(
        out.starts_with("Called A001 (walk_in, waited 0m) to counter 3."),
        "{out}"
    );
    assert!(out.contains("called"), "{out}");
    let out = ok(&config, &["call-next"]).await;
    assert_eq!(out, "Nobody is waiting in your unit's window queue.\n");

    // `next` shows the revision, like `show`.
    let response = app
        .client
        .post(app.url("/api/v1/requests"))
        .bearer_auth(app.enterprise_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let out = ok(&config, &["next"]).await;
    assert!(out.contains("revision   r1"), "{out}");

    // The service centre's returned requests.
    let centre = config_in(&dir, "centre");
    login(app, &centre, &app.clerk_token(UnitCode::ServiceCenter)).await;
    let out = ok(&centre, &["returned"]).await;
    assert_eq!(out, "No returned request is waiting to be re-routed.\n");
    crate::helpers::act_ok(
        app,
        &clerk,
        &second_id,
        json!({"action": "return", "reason": "不是本单位事项"}),
    )
    .await;
    let out = ok(&centre, &["returned"]).await;
    assert!(
        out.contains(&second_number) && out.contains("上海马上办科技有限公司"),
        "{out}"
    );
    assert!(out.contains("1 returned request waiting"), "{out}");
}

/// `file-for`: a clerk of the lead unit files for a walk-in enterprise; the request is the
/// enterprise's, taken at the window; a clerk of another unit hears the server's refusal.
async fn a_clerk_files_for_a_walk_in_enterprise(app: &TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let market = config_in(&dir, "market");
    login(
        app,
        &market,
        &app.token_for("clerk-li", Actor::Clerk(UnitCode::Market)),
    )
    .await;
    // The flags of a valid intake of a matter led by market.
    let body = matter_body("market.ip-dispute");
    let mut args: Vec<String> = [
        "file-for",
        "--matter",
        "market.ip-dispute",
        "--uscc",
        crate::helpers::USCC_A,
        "--name",
        "上海马上办科技有限公司",
        "--email",
        "office@example.com",
        "--identity",
        "id_card",
        "--verified-name",
        "张三",
    ]
    .map(String::from)
    .to_vec();
    for (key, value) in body["form"].as_object().unwrap() {
        args.push("--field".into());
        args.push(format!("{key}={value}"));
    }
    for m in body["materials"].as_array().unwrap() {
        args.push("--material".into());
        args.push(format!(
            "{}:{}:{}:{}",
            m["code"].as_str().unwrap(),
            m["size_bytes"],
            m["sha256"].as_str().unwrap(),
            m["name"].as_str().unwrap()
        ));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let out = ok(&market, &args).await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("Filed PT"), "{out}");
    assert!(
        lines[0].ends_with("for 上海马上办科技有限公司 (91350100M000100Y43) at the window."),
        "{out}"
    );
    assert_eq!(lines[2], "lead unit  market", "{out}");
    assert_eq!(lines[3], "status     submitted", "{out}");
    let id = lines[1].strip_prefix("id         ").unwrap();
    let number = lines[0].split(' ').nth(1).unwrap();
    // The enterprise's request, taken at the window, audited with the identity check.
    let response = app
        .get(
            &format!("/api/v1/requests/{id}"),
            Some(&app.enterprise_token()),
        )
        .await;
    assert_eq!(response.status(), 200);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["number"], number);
    assert_eq!(created["channel"], "window");
    assert_eq!(created["applicant"]["uscc"], crate::helpers::USCC_A);
    let events: Value = app
        .get(
            &format!("/api/v1/requests/{id}/events"),
            Some(&app.admin_token()),
        )
        .await
        .json()
        .await
        .unwrap();
    let intake = &events["events"][0];
    assert_eq!(intake["action"], "intake");
    assert_eq!(intake["actor"], "clerk-li");
    assert_eq!(intake["payload"]["identity_check"]["verified_name"], "张三");

    // For scripts: the server's JSON.
    let mut json_args = args.clone();
    json_args.insert(0, "--json");
    let created: Value = serde_json::from_str(&ok(&market, &json_args).await).unwrap();
    assert_eq!(created["lead_unit"], "market");

    // A clerk of an unrelated unit: the server's problem, one line, exit 1; nothing filed.
    let tax = config_in(&dir, "tax");
    login(app, &tax, &app.clerk_token(UnitCode::Tax)).await;
    let line = fails(&tax, &args, 1).await;
    assert!(line.starts_with("mashangban: not_lead_unit: "), "{line}");
    // A body the server refuses: each wrong field named.
    let mut bad = args.clone();
    bad[4] = "91350100M000100Y44";
    let line = fails(&market, &bad, 1).await;
    assert!(
        line.starts_with("mashangban: validation_failed: "),
        "{line}"
    );
    // A material the client cannot read: usage, exit 2.
    let mut bad = args.clone();
    bad.extend(["--material", "licence:many:abc:x.pdf"]);
    let out = cli(&market, &bad).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--material"), "{}", out.stderr);
    let listed: Value = app
        .get("/api/v1/requests", Some(&app.enterprise_token()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 2, "the two filings only");
}

/// Runs `client --config-file config ARGS…` as on an 80-column terminal (`COLUMNS=80`, stdout
/// a pipe): succeeds, and every line fits 80 display columns.
async fn narrow(config: &Path, args: &[&str]) -> String {
    use unicode_width::UnicodeWidthStr;
    let mut command = client(config);
    command.env("COLUMNS", "80").args(args);
    let out = run(command).await;
    assert_eq!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
    for line in out.stdout.lines() {
        assert!(
            line.width() <= 80,
            "{args:?}: {} columns: {line:?} in\n{}",
            line.width(),
            out.stdout
        );
    }
    out.stdout
}

/// On an 80-column terminal every table fits, with Chinese names and long reasons, and the
/// request numbers and ids in them are whole (the next command takes them as they are).
async fn every_table_fits_an_80_column_terminal(app: &TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(&dir, "market");
    let clerk = app.token_for("clerk-market-window-07", Actor::Clerk(UnitCode::Market));
    login(app, &config, &clerk).await;
    let mut body = matter_body("market.ip-dispute");
    body["applicant"]["name"] = json!("上海市普陀区马上办智能科技发展有限公司第一分公司");
    let mut requests = Vec::new();
    for _ in 0..3 {
        let created = crate::helpers::submit(app, &body).await;
        requests.push((
            created["id"].as_str().unwrap().to_string(),
            created["number"].as_str().unwrap().to_string(),
        ));
    }
    let (id, number) = requests[0].clone();
    let reason = "申请材料中营业执照副本与法定代表人身份证明不一致，请携带原件至综合窗口核对后重新提交，逾期视为撤回申请";

    let out = narrow(&config, &["queue"]).await;
    for (_, number) in &requests {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{number}  "))),
            "{out}"
        );
    }
    // The number the queue shows is what the next command takes.
    ok(&config, &["call", &number]).await;
    ok(
        &config,
        &[
            "request-supplement",
            &number,
            "--item",
            reason,
            "--item",
            "法定代表人身份证明原件",
        ],
    )
    .await;
    let out = narrow(&config, &["show", &number]).await;
    assert!(out.contains(&format!("  {id}\n")), "{out}");
    assert!(
        out.contains("上海市普陀区马上办智能科技发展有限公司"),
        "{out}"
    );
    let out = narrow(&config, &["events", &number]).await;
    // Long cells wrap (the action too, at this width); the event numbers stay whole.
    assert!(out.contains("request_sup"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("1    ")), "{out}");

    // The window queue names the request by a prefix of its id the client resolves.
    let (ticketed, ticketed_number) = requests[1].clone();
    let response = app
        .client
        .post(app.url("/api/v1/tickets"))
        .bearer_auth(&clerk)
        .json(&json!({"request": ticketed}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let out = narrow(&config, &["tickets"]).await;
    let short = &ticketed[..13];
    assert!(
        out.lines()
            .any(|l| l.starts_with("A001  ") && l.ends_with(&format!("  {short}"))),
        "{out}"
    );
    let out = narrow(&config, &["show", short]).await;
    assert!(out.contains(&ticketed_number), "{out}");
    narrow(&config, &["call-next"]).await;

    // Returned, with a long reason, at the service centre.
    let (returned, returned_number) = requests[2].clone();
    crate::helpers::act_ok(
        app,
        &clerk,
        &returned,
        json!({"action": "return", "reason": reason}),
    )
    .await;
    let centre = config_in(&dir, "centre");
    login(app, &centre, &app.clerk_token(UnitCode::ServiceCenter)).await;
    let out = narrow(&centre, &["returned"]).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("{returned_number}  "))),
        "{out}"
    );
    let out = narrow(&centre, &["events", &returned_number]).await;
    assert!(out.contains("return"), "{out}");

    // The supervisors' tables.
    let head = config_in(&dir, "head");
    login(app, &head, &app.token(Actor::Supervisor(None))).await;
    let out = narrow(&head, &["at-risk", "--within", "P30D"]).await;
    assert!(
        out.lines().any(|l| requests
            .iter()
            .any(|(_, n)| l.starts_with(&format!("{n}  ")))),
        "{out}"
    );
    narrow(&head, &["breaches"]).await;
    narrow(&head, &["stats", "--group-by", "matter"]).await;
    narrow(&head, &["verify"]).await;
}

on_both_backends!(
    a_co_unit_gives_its_opinion_and_the_lead_answers_it,
    a_day_at_the_window_from_login_to_delivery,
    someone_else_changing_the_request_first_is_said_plainly,
    errors_are_one_line_with_the_right_exit_status,
    login_lands_in_the_xdg_config_folder_and_needs_no_server_settings,
    the_other_actions_reach_the_server,
    verify_keeps_the_head_and_says_when_events_are_lost,
    a_material_received_at_the_window,
    the_counter_works_with_numbers_prefixes_and_tickets,
    every_table_fits_an_80_column_terminal,
    a_clerk_files_for_a_walk_in_enterprise,
);
