//! A real SMTP server for the mail tests: listens on 127.0.0.1, speaks enough ESMTP for lettre
//! (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), records every mail it accepts, counts the
//! connections it was given, can refuse a recipient for good (`550`) or for now (`450`), can
//! drop each connection after a number of mails (as servers with a per-connection limit or an
//! idle timeout do), and can be stopped (the port then refuses
//! connections) and started again on the same port.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One mail as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// `MAIL FROM` address.
    pub from: String,
    /// `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message, dot-unstuffed, CRLF line ends.
    pub data: Vec<u8>,
}

impl Received {
    /// The parsed message.
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("a parsable mail")
    }

    /// The raw value of header `name` (first occurrence), unfolded and trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.data);
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(value) = found.as_mut() {
                    value.push_str(line.trim_start());
                    continue;
                }
            } else if found.is_some() {
                break;
            }
            if let Some((key, value)) = line.split_once(':') {
                if key.eq_ignore_ascii_case(name) {
                    found = Some(value.trim().to_string());
                }
            }
        }
        found
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    rejected: Mutex<HashSet<String>>,
    deferred: Mutex<HashSet<String>>,
    connections: AtomicUsize,
    /// Mails after which a connection is dropped without a word (0: never).
    drop_after: AtomicUsize,
}

/// The running (or stopped) server.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl SmtpSink {
    /// Starts on a free port of 127.0.0.1.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SMTP sink");
        let addr = listener.local_addr().unwrap();
        let mut sink = Self {
            addr,
            shared: Arc::default(),
            running: None,
        };
        sink.serve(listener);
        sink
    }

    /// The port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops listening and drops open connections: connections to the port are refused.
    pub fn stop(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            stop.store(true, Ordering::SeqCst);
            thread.join().expect("the sink's accept loop ends");
        }
    }

    /// Listens again on the same port.
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "restart a stopped sink only");
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("SMTP sink: port {} not free yet ({e})", self.addr.port());
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// Answers `550` to `RCPT TO:<address>` from now on.
    pub fn reject(&self, address: &str) {
        self.shared
            .rejected
            .lock()
            .unwrap()
            .insert(address.to_ascii_lowercase());
    }

    /// Answers `450` (try again later) to `RCPT TO:<address>` from now on.
    pub fn defer(&self, address: &str) {
        self.shared
            .deferred
            .lock()
            .unwrap()
            .insert(address.to_ascii_lowercase());
    }

    /// Connections accepted so far (across restarts).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// From now on, drops every connection without a word once it has carried `mails` mails:
    /// the client finds out when it next uses it.
    pub fn drop_connections_after(&self, mails: usize) {
        self.shared.drop_after.store(mails, Ordering::SeqCst);
    }

    /// Every mail accepted so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    fn serve(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, flag) = (self.shared.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut sessions = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        shared.connections.fetch_add(1, Ordering::SeqCst);
                        let (shared, flag) = (shared.clone(), flag.clone());
                        sessions.push(std::thread::spawn(move || {
                            // A broken session is the client's problem; the sink goes on.
                            let _ = session(stream, &shared, &flag);
                        }));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("SMTP sink accept: {e}"),
                }
            }
            // The listener closes here; sessions see the flag within their read timeout.
            drop(listener);
            for session in sessions {
                let _ = session.join();
            }
        });
        self.running = Some((stop, thread));
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads one CRLF line, waking every 50 ms to see whether the sink is stopping.
fn read_line(
    reader: &mut BufReader<TcpStream>,
    line: &mut String,
    stop: &AtomicBool,
) -> std::io::Result<bool> {
    line.clear();
    let mut bytes = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        match reader.read_until(b'\n', &mut bytes) {
            Ok(0) => return Ok(false),
            Ok(_) if bytes.ends_with(b"\n") => {
                *line = String::from_utf8_lossy(&bytes).into_owned();
                return Ok(true);
            }
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// One SMTP session.
fn session(stream: TcpStream, shared: &Shared, stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut reply = |text: &str| out.write_all(format!("{text}\r\n").as_bytes());
    reply("220 sink.test ESMTP mashangban test sink")?;
    let (mut from, mut to) = (None::<String>, Vec::<String>::new());
    let mut carried = 0;
    let mut line = String::new();
    while read_line(&mut reader, &mut line, stop)? {
        let command = line.trim_end().to_string();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => reply("250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8")?,
            "HELO" => reply("250 sink.test")?,
            "MAIL" => {
                from = Some(address(&command));
                to.clear();
                reply("250 OK")?;
            }
            "RCPT" => {
                let rcpt = address(&command);
                let key = rcpt.to_ascii_lowercase();
                if shared.rejected.lock().unwrap().contains(&key) {
                    reply("550 5.1.1 no such mailbox")?;
                } else if shared.deferred.lock().unwrap().contains(&key) {
                    reply("450 4.2.1 mailbox busy, try again later")?;
                } else {
                    to.push(rcpt);
                    reply("250 OK")?;
                }
            }
            "DATA" if from.is_some() && !to.is_empty() => {
                reply("354 end with <CRLF>.<CRLF>")?;
                let mut data = Vec::new();
                loop {
                    if !read_line(&mut reader, &mut line, stop)? {
                        return Ok(()); // cut off mid-message: nothing was accepted
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                    data.extend_from_slice(unstuffed.as_bytes());
                }
                shared.received.lock().unwrap().push(Received {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                });
                reply("250 OK queued")?;
                carried += 1;
                if carried == shared.drop_after.load(Ordering::SeqCst) {
                    return Ok(());
                }
            }
            "DATA" => reply("503 5.5.1 MAIL and RCPT first")?,
            "RSET" => {
                from = None;
                to.clear();
                reply("250 OK")?;
            }
            "NOOP" => reply("250 OK")?,
            "QUIT" => {
                reply("221 bye")?;
                return Ok(());
            }
            _ => reply("502 5.5.2 command not implemented")?,
        }
    }
    Ok(())
}

/// The address between `<` and `>` of a `MAIL FROM` or `RCPT TO` command.
fn address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_string())
        .unwrap_or_default()
}

/// An SMTP server speaking TLS with a given certificate: STARTTLS (plain greeting, `STARTTLS`
/// offered and required before `MAIL`) or TLS from the first byte (implicit, as on port 465).
/// Accepts every mail; runs until the process ends.
pub struct TlsSmtpSink {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl TlsSmtpSink {
    /// Starts on a free port of 127.0.0.1 with certificate `chain` and its `key`.
    pub fn start(
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
        implicit: bool,
    ) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the TLS SMTP sink");
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let shared = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(tcp) = stream else { continue };
                let (config, received) = (config.clone(), shared.clone());
                std::thread::spawn(move || {
                    let tls = |tcp| {
                        let connection = rustls::ServerConnection::new(config).unwrap();
                        BufReader::new(rustls::StreamOwned::new(connection, tcp))
                    };
                    // A failed handshake (an untrusting client) just ends the session.
                    let _ = if implicit {
                        tls_dialog(&mut tls(tcp), false, true, &received).map(drop)
                    } else {
                        let mut plain = BufReader::new(tcp);
                        match tls_dialog(&mut plain, true, true, &received) {
                            Ok(Upgrade::Starttls) => {
                                let mut secured = tls(plain.into_inner());
                                tls_dialog(&mut secured, false, false, &received).map(drop)
                            }
                            other => other.map(drop),
                        }
                    };
                });
            }
        });
        Self { port, received }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every mail accepted so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// How a [`tls_dialog`] ended.
enum Upgrade {
    /// `QUIT` or the connection closed.
    Done,
    /// The client asked for `STARTTLS` and was told to go ahead.
    Starttls,
}

/// One SMTP dialog over `stream`, opened with the greeting if `greet` (not after `STARTTLS`:
/// the client speaks first then); `plain`: before TLS, where `STARTTLS` is offered and `MAIL`
/// refused until it is done.
fn tls_dialog<S: std::io::Read + Write>(
    stream: &mut BufReader<S>,
    plain: bool,
    greet: bool,
    received: &Mutex<Vec<Received>>,
) -> std::io::Result<Upgrade> {
    let reply = |stream: &mut BufReader<S>, text: &str| -> std::io::Result<()> {
        let out = stream.get_mut();
        out.write_all(format!("{text}\r\n").as_bytes())?;
        out.flush()
    };
    if greet {
        reply(stream, "220 tls-sink.test ESMTP")?;
    }
    let (mut from, mut to) = (String::new(), Vec::<String>::new());
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line)? == 0 {
            return Ok(Upgrade::Done);
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" if plain => reply(stream, "250-tls-sink.test\r\n250-STARTTLS\r\n250 8BITMIME")?,
            "EHLO" => reply(stream, "250-tls-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8")?,
            "STARTTLS" if plain => {
                reply(stream, "220 2.0.0 ready to start TLS")?;
                return Ok(Upgrade::Starttls);
            }
            "MAIL" if plain => reply(stream, "530 5.7.0 must issue STARTTLS first")?,
            "MAIL" => {
                from = address(&command);
                to.clear();
                reply(stream, "250 OK")?;
            }
            "RCPT" => {
                to.push(address(&command));
                reply(stream, "250 OK")?;
            }
            "DATA" => {
                reply(stream, "354 end with <CRLF>.<CRLF>")?;
                let mut data = Vec::new();
                loop {
                    line.clear();
                    if stream.read_line(&mut line)? == 0 {
                        return Ok(Upgrade::Done);
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                    data.extend_from_slice(unstuffed.as_bytes());
                }
                received.lock().unwrap().push(Received {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                });
                reply(stream, "250 OK queued")?;
            }
            "QUIT" => {
                reply(stream, "221 bye")?;
                return Ok(Upgrade::Done);
            }
            _ => reply(stream, "250 OK")?,
        }
    }
}
