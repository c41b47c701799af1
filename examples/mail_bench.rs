//! Mail delivery throughput of the sender worker: how fast a backlog in the outbox drains.
//!
//! Opens the pool the server opens (`Database::open`, migrations included) on the given URL,
//! writes `MAILS` notifications straight into the outbox (`db::notifications::enqueue`, as a
//! lifecycle step's transaction does, all due now), starts a local SMTP sink on 127.0.0.1 (plain
//! SMTP, `EHLO` with `8BITMIME` and `SMTPUTF8`, every mail accepted with `250`), then runs the
//! server's own sender worker (`mashangban::notify::deliver`, default `[mail]` settings but the
//! sink as host and `tls = "none"`) until the sink has every mail. The clock starts when the
//! worker starts.
//!
//! The worker's full round: claim a batch of up to `[mail] batch` rows (one write transaction),
//! for each build the mail and send it (`MAIL`, `RCPT`, `DATA`, body, `.`), record the outcomes
//! in chunks of up to 20 (one write transaction each).
//!
//! Prints mails per second and the number of SMTP connections the sink was given.
//!
//! ```text
//! cargo run --example mail_bench -- sqlite:///tmp/msb-mail/bench.db 2000
//! cargo run --example mail_bench -- postgres://postgres@127.0.0.1:5432/msb_mail 2000
//! ```
//!
//! The database must be new (or its outbox empty): every due mail in it is sent.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::web;
use chrono::Utc;
use mashangban::config::{MailTls, Settings};
use mashangban::db::notifications::{Notice, enqueue};
use mashangban::db::{self, Database, DatabaseUrl};
use mashangban::domain::notice::{About, Message};
use mashangban::http::Metrics;

/// What the sink saw.
#[derive(Default)]
struct Counts {
    mails: AtomicUsize,
    connections: AtomicUsize,
}

/// One SMTP session of the sink: accepts everything.
fn session(stream: TcpStream, counts: &Counts) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut reply = |text: &str| out.write_all(format!("{text}\r\n").as_bytes());
    reply("220 bench.sink ESMTP")?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line
            .split([' ', ':', '\r', '\n'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => reply("250-bench.sink\r\n250-8BITMIME\r\n250 SMTPUTF8")?,
            "DATA" => {
                reply("354 go ahead")?;
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                }
                counts.mails.fetch_add(1, Ordering::SeqCst);
                reply("250 queued")?;
            }
            "QUIT" => {
                reply("221 bye")?;
                return Ok(());
            }
            _ => reply("250 OK")?,
        }
    }
}

/// Starts the sink; answers its port.
fn sink(counts: Arc<Counts>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counts.connections.fetch_add(1, Ordering::SeqCst);
            let counts = counts.clone();
            std::thread::spawn(move || {
                let _ = session(stream, &counts);
            });
        }
    });
    port
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(mails)) = (args.next(), args.next().and_then(|n| n.parse().ok())) else {
        eprintln!("usage: mail_bench DATABASE_URL MAILS");
        return ExitCode::from(2);
    };
    let mails: usize = mails;
    let counts = Arc::new(Counts::default());
    let port = sink(counts.clone());

    let mut settings = Settings::defaults();
    settings.database.url = url.clone();
    settings.mail.host = "127.0.0.1".into();
    settings.mail.port = port;
    settings.mail.tls = MailTls::None;
    let database = Database::open(&settings.database).expect("open the database");
    let parsed = DatabaseUrl::parse(&url).expect("a database URL");
    let mut conn = db::establish(&parsed, &settings.database).expect("connect");
    let notices: Vec<Notice> = (0..mails)
        .map(|i| Notice {
            request_id: None,
            recipient: format!("enterprise-{i}@example.com"),
            message: Message::Accepted,
            about: About {
                number: format!("PT20261128-{i:06}"),
                matter_zh: "企业设立登记".into(),
                matter_en: "Business establishment registration".into(),
            },
        })
        .collect();
    for chunk in notices.chunks(500) {
        enqueue(&mut conn, chunk, Utc::now()).expect("enqueue");
    }
    drop(conn);

    let mailer = mashangban::notify::Mailer::new(&settings.mail).expect("a mailer");
    let started = Instant::now();
    let drained = actix_web::rt::System::new().block_on(async move {
        let worker = actix_web::rt::spawn(mashangban::notify::deliver(
            database,
            mailer,
            web::Data::new(Metrics::new()),
            mashangban::background::StopSignal::never(),
        ));
        while counts.mails.load(Ordering::SeqCst) < mails {
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        let elapsed = started.elapsed();
        worker.abort();
        (elapsed, counts.connections.load(Ordering::SeqCst))
    });
    let (elapsed, connections) = drained;
    println!(
        "{mails} mails in {:.2} s: {:.0} mails/s over {connections} SMTP connection(s)",
        elapsed.as_secs_f64(),
        mails as f64 / elapsed.as_secs_f64()
    );
    ExitCode::SUCCESS
}
