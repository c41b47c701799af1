//! The graceful stop of the real binary with keep-alive clients (docs/architecture.md, "Stopping
//! gracefully"): on SIGTERM readiness fails at once, a request in flight is answered with
//! `Connection: close`, a request on an already-open keep-alive connection is answered with
//! `Connection: close` too, idle connections are closed once nothing is in flight, new
//! connections are refused, and the process exits as soon as that is done, long before the grace.

use std::io::{BufRead, BufReader, ErrorKind, Lines, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use mashangban::auth::{Actor, Principal, TokenIssuer};
use mashangban::config::Settings;
use mashangban::domain::Uscc;

use crate::helpers::{self, TEST_JWT_SECRET, USCC_A};
use crate::requests::matter_body;

/// The grace the server is given; the test expects it to be done far sooner.
const GRACE_SECS: u64 = 30;
/// Longest the test waits for anything the server does at once; far more than it needs.
const PATIENCE: Duration = Duration::from_secs(10);

/// One HTTP/1.1 response read off a connection.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether the server said it closes the connection after this response.
    fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads one response (head, then a `Content-Length` body) from `stream`.
fn read_response(stream: &mut TcpStream) -> Response {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("a response");
        assert_eq!(
            n,
            1,
            "connection closed mid-head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap();
    Response {
        status: status.parse().unwrap(),
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

/// A keep-alive `GET` on `stream`.
fn get(stream: &mut TcpStream, address: &str, path: &str) -> Response {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
    read_response(stream)
}

/// Whether the server has closed `stream` (end of stream or reset), waiting at most PATIENCE.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
    }
}

fn connect(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// The server binary on `url`, logging JSON; answers it, its stderr lines and its address.
fn serve(url: &str, dir: &std::path::Path) -> (Child, Lines<BufReader<ChildStderr>>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mashangban"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MASHANGBAN_") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .env("MASHANGBAN_DATABASE_URL", url)
        .env("MASHANGBAN_BIND", "127.0.0.1:0")
        .env("MASHANGBAN_JWT_SECRET", TEST_JWT_SECRET)
        .env("MASHANGBAN_LOG_FORMAT", "json")
        .env(
            "MASHANGBAN_SERVER_SHUTDOWN_TIMEOUT_SECS",
            GRACE_SECS.to_string(),
        )
        .env("MASHANGBAN_MAIL_OUTBOX_DIR", dir.join("outbox"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let ready = next_log(&mut lines, "mashangban ready");
    let address = ready["fields"]["address"].as_str().unwrap().to_string();
    (child, lines, address)
}

/// The next JSON log line whose message contains `message`.
fn next_log(lines: &mut Lines<BufReader<ChildStderr>>, message: &str) -> serde_json::Value {
    lines
        .by_ref()
        .map(Result::unwrap)
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line).ok())
        .find(|log| {
            log["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(message))
        })
        .unwrap_or_else(|| panic!("the server logs {message:?}"))
}

fn enterprise_token() -> String {
    let mut settings = Settings::defaults();
    settings.jwt.secret = TEST_JWT_SECRET.into();
    let principal = Principal {
        subject: "drain-test".into(),
        actor: Actor::Enterprise(Uscc::parse(USCC_A).unwrap()),
    };
    TokenIssuer::new(&settings.jwt).issue(&principal, Duration::from_secs(3600), chrono::Utc::now())
}

fn keep_alive_clients_are_drained_on_sigterm(url: &str, dir: &std::path::Path) {
    let (mut child, mut logs, address) = serve(url, dir);

    // An idle keep-alive connection that will ask for readiness after the signal, and one
    // that will stay idle.
    let mut asks = connect(&address);
    let before = get(&mut asks, &address, "/health/ready");
    assert_eq!(before.status, 200, "{before:?}");
    assert!(!before.closes(), "kept alive before the stop: {before:?}");
    let mut idle = connect(&address);
    assert_eq!(get(&mut idle, &address, "/health/live").status, 200);

    // A request in flight: an intake whose body is still on its way. `100 Continue` says the
    // server has taken the request in hand.
    let body = serde_json::to_vec(&matter_body("tax.registration")).unwrap();
    let mut slow = connect(&address);
    write!(
        slow,
        "POST /api/v1/requests HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        enterprise_token(),
        body.len()
    )
    .unwrap();
    let mut continue_line = [0u8; 25];
    slow.read_exact(&mut continue_line).unwrap();
    assert_eq!(&continue_line, b"HTTP/1.1 100 Continue\r\n\r\n");
    let (first, rest) = body.split_at(body.len() / 2);
    slow.write_all(first).unwrap();

    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopping = next_log(&mut logs, "stop signal received");
    assert_eq!(stopping["fields"]["in_flight"], 1, "{stopping}");

    // Readiness fails at once, on the connection that was already open, and that answer
    // closes it: a keep-alive connection serves no more than one request after the signal.
    let during = get(&mut asks, &address, "/health/ready");
    assert_eq!(during.status, 503, "{during:?}");
    assert!(
        during.body.contains("\"code\":\"shutting_down\""),
        "{during:?}"
    );
    assert!(during.header("retry-after").is_some(), "{during:?}");
    assert!(during.closes(), "{during:?}");
    assert!(closed_by_server(&mut asks), "closed after its answer");

    // No new connection is taken.
    let deadline = Instant::now() + PATIENCE;
    while let Ok(mut late) = TcpStream::connect(&address) {
        // Accepted before the listener closed: then it must not be served normally.
        late.set_read_timeout(Some(PATIENCE)).unwrap();
        if write!(
            late,
            "GET /health/ready HTTP/1.1\r\nHost: {address}\r\n\r\n"
        )
        .is_ok()
        {
            let mut first = [0u8; 1];
            if let Ok(1) = late.read(&mut first) {
                let mut rest = String::new();
                let _ = late.read_to_string(&mut rest);
                assert!(rest.contains(" 503 "), "{first:?}{rest}");
            }
        }
        assert!(
            Instant::now() < deadline,
            "new connections are still accepted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The request in flight completes, committed, and closes its connection.
    slow.write_all(rest).unwrap();
    let answer = read_response(&mut slow);
    assert_eq!(answer.status, 201, "{answer:?}");
    assert!(answer.closes(), "{answer:?}");
    assert!(closed_by_server(&mut slow));

    // With nothing in flight, the idle keep-alive connection is closed, well within its
    // keep-alive time (75 s), and the process exits long before the grace ends.
    assert!(closed_by_server(&mut idle), "the idle connection is closed");
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(GRACE_SECS / 2),
            "the server still runs {:?} after SIGTERM",
            signalled.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let rest: Vec<serde_json::Value> = logs
        .map(Result::unwrap)
        .filter_map(|line| serde_json::from_str(&line).ok())
        .collect();
    let said = |text: &str| {
        rest.iter().any(|log| {
            log["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(text))
        })
    };
    assert!(said("mashangban stopped"), "{rest:?}");
    assert!(
        !said("did not stop in time"),
        "background workers stop cleanly: {rest:?}"
    );
    assert!(!said("overran its grace"), "{rest:?}");
}

#[test]
fn sqlite_keep_alive_clients_are_drained_on_sigterm() {
    let (dir, url) = helpers::fresh_sqlite();
    keep_alive_clients_are_drained_on_sigterm(&url, dir.path());
}

#[test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs MASHANGBAN_TEST_DATABASE_URL at build time"
)]
fn postgres_keep_alive_clients_are_drained_on_sigterm() {
    let (admin_url, name, url) = helpers::fresh_postgres().expect("PostgreSQL configured");
    let dir = tempfile::tempdir().unwrap();
    keep_alive_clients_are_drained_on_sigterm(&url, dir.path());
    use diesel::{Connection, RunQueryDsl};
    let mut admin = diesel::PgConnection::establish(&admin_url).unwrap();
    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
}
