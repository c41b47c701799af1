//! Where a mail goes: an SMTP server, or `.eml` files when none is configured; and the mail
//! itself, built from an outbox row.
//!
//! ## SMTP: our own socket, with `TCP_NODELAY`, kept for a batch
//!
//! lettre writes a mail's body and its closing `<CRLF>.<CRLF>` in two writes. With Nagle's
//! algorithm on (the default), the small second write waits until the server acknowledges the
//! first, and the server delays that acknowledgement (40 ms on Linux) because it has nothing to
//! answer until it sees the dot: about 45 ms lost per mail, 20 mails a second at best. lettre
//! fixed this upstream (PR #1159) but no release carries it yet (0.11.23 is the newest on
//! crates.io), and its transports open their sockets themselves, with no hook to set the
//! option. So [`SmtpServer::connect`] opens the TCP connection itself, sets `TCP_NODELAY`, and
//! hands it to lettre's [`AsyncSmtpConnection::connect_with_transport`] (greeting, `EHLO`,
//! then `STARTTLS` and `AUTH` as configured; implicit TLS is set up on our socket first).
//!
//! lettre's connection pool (`pool` feature) cannot be used with that socket (it connects by
//! itself), and the sender needs no more than one connection anyway: it sends one mail after
//! the other. [`Link`] is that one connection, reused mail after mail while the outbox has
//! mails due (a backlog after an outage drains over one connection, not one per mail), closed
//! with `QUIT` when the outbox is empty. A reused connection the server has dropped meanwhile
//! (idle timeout, a limit of mails per connection, a restart) fails its next mail; that mail is
//! then tried once more at once on a new connection, so a broken kept connection costs no
//! retry delay. Every other failure counts as the attempt's, as before.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use actix_web::rt::time::timeout;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::{FileTransport, Transport as _};

use crate::config::{ConfigError, MailSettings, MailTls};
use crate::db::notifications::NotificationRow;

/// Longest error text kept on a row.
const ERROR_CHARS: usize = 500;

/// The configured way out.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP server: one connection kept while mails are due ([`Link`]).
    Smtp(Box<SmtpServer>),
    /// `.eml` files in a folder (no SMTP configured).
    Files {
        /// The lettre transport.
        files: FileTransport,
        /// The folder.
        dir: PathBuf,
    },
}

/// How to reach and talk to the SMTP server.
#[derive(Clone)]
pub struct SmtpServer {
    host: String,
    port: u16,
    tls: SmtpTls,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    shown: String,
}

/// The TLS of the SMTP connection.
#[derive(Clone)]
enum SmtpTls {
    None,
    Starttls(TlsParameters),
    Implicit(TlsParameters),
}

/// The SMTP connection a sender keeps between mails: none yet, or one open.
#[derive(Default)]
pub struct Link {
    open: Option<Open>,
}

/// An open SMTP connection and how many mails it carried.
struct Open {
    connection: AsyncSmtpConnection,
    mails: u64,
}

impl Link {
    /// Whether a connection is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Closes the connection, if any, with `QUIT` (bounded by `limit`).
    pub async fn close(&mut self, limit: Duration) {
        if let Some(mut open) = self.open.take() {
            let _ = timeout(limit, open.connection.quit()).await;
            tracing::debug!(mails = open.mails, "SMTP connection closed");
        }
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Trying again cannot help: the server refused for good (5xx) or the mail cannot be built.
    pub permanent: bool,
    /// What went wrong, one line, at most 500 characters.
    pub reason: String,
}

impl Failure {
    fn new(permanent: bool, error: &dyn std::error::Error) -> Self {
        // lettre puts the OS error (refused, timed out) in the source chain.
        let mut reason = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !reason.contains(&text) {
                reason.push_str(": ");
                reason.push_str(&text);
            }
            source = cause.source();
        }
        Self::transient(reason).permanent_if(permanent)
    }

    /// A failure that a later attempt may not meet.
    fn transient(reason: String) -> Self {
        let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
        Self {
            permanent: false,
            reason: reason.chars().take(ERROR_CHARS).collect(),
        }
    }

    fn permanent_if(mut self, permanent: bool) -> Self {
        self.permanent = permanent;
        self
    }
}

impl Transport {
    /// The transport `settings` describe. Connects to nothing yet; creates the `.eml` folder.
    pub fn new(settings: &MailSettings) -> Result<Self, ConfigError> {
        let host = settings.host.trim();
        if host.is_empty() {
            let dir = PathBuf::from(settings.outbox_dir.trim());
            std::fs::create_dir_all(&dir).map_err(|e| {
                ConfigError::key(
                    "mail.outbox_dir",
                    format!("cannot create folder {}: {e}", dir.display()),
                )
            })?;
            return Ok(Self::Files {
                files: FileTransport::new(&dir),
                dir,
            });
        }
        // Trusted: the compiled-in Mozilla roots, the system's store, `mail.smtp_ca_file`.
        let extra_roots = match settings.tls {
            MailTls::None => Vec::new(),
            _ => crate::tls::extra_roots(
                Some(settings.smtp_ca_file.trim())
                    .filter(|f| !f.is_empty())
                    .map(std::path::Path::new),
            )
            .map_err(|e| ConfigError::key("mail.smtp_ca_file", e))?,
        };
        let parameters = || {
            let mut builder = TlsParameters::builder(host.to_string())
                .certificate_store(CertificateStore::WebpkiRoots);
            for root in &extra_roots {
                let root = Certificate::from_der(root.to_vec()).map_err(|e| {
                    ConfigError::key("mail.smtp_ca_file", format!("unusable CA certificate: {e}"))
                })?;
                builder = builder.add_root_certificate(root);
            }
            builder
                .build()
                .map_err(|e| ConfigError::key("mail.tls", format!("cannot set up TLS: {e}")))
        };
        let (tls, mode) = match settings.tls {
            MailTls::None => (SmtpTls::None, "none"),
            MailTls::Starttls => (SmtpTls::Starttls(parameters()?), "starttls"),
            MailTls::Tls => (SmtpTls::Implicit(parameters()?), "tls"),
        };
        let credentials = (!settings.username.is_empty())
            .then(|| Credentials::new(settings.username.clone(), settings.password.clone()));
        Ok(Self::Smtp(Box::new(SmtpServer {
            host: host.to_string(),
            port: settings.port,
            tls,
            credentials,
            timeout: Duration::from_secs(settings.timeout_secs),
            hello: ClientId::default(),
            shown: format!("smtp://{host}:{} (tls: {mode})", settings.port),
        })))
    }

    /// Sends `message`, on `link`'s connection when one is open (else a new one, then kept).
    /// The `.eml` files are written on the blocking pool.
    pub async fn send(&self, link: &mut Link, message: &Message) -> Result<(), Failure> {
        match self {
            Self::Smtp(server) => server.send(link, message).await,
            Self::Files { files, .. } => {
                let (files, message) = (files.clone(), message.clone());
                actix_web::web::block(move || files.send(&message))
                    .await
                    .map_err(|e| Failure::transient(e.to_string()))?
                    .map(drop)
                    .map_err(|e| Failure::new(false, &e))
            }
        }
    }
}

impl SmtpServer {
    /// Sends `message` over `link`; a kept connection that fails for a reason other than the
    /// server's answer to this mail is replaced once, at once.
    async fn send(&self, link: &mut Link, message: &Message) -> Result<(), Failure> {
        let reused = link.is_open();
        match self.send_once(link, message).await {
            Err(failure) if reused && !failure.permanent => {
                tracing::debug!(reason = %failure.reason, "kept SMTP connection failed; trying a new one");
                self.send_once(link, message).await
            }
            outcome => outcome,
        }
    }

    async fn send_once(&self, link: &mut Link, message: &Message) -> Result<(), Failure> {
        let open = match &mut link.open {
            Some(open) => open,
            None => link.open.insert(Open {
                connection: self.connect().await?,
                mails: 0,
            }),
        };
        let bytes = message.formatted();
        let sent = timeout(
            self.timeout,
            open.connection.send(message.envelope(), &bytes),
        )
        .await;
        match sent {
            Ok(Ok(_)) => {
                open.mails += 1;
                Ok(())
            }
            Ok(Err(error)) => {
                // lettre gives a connection up on any error (it sends QUIT and marks it broken).
                if open.connection.has_broken() {
                    link.open = None;
                }
                Err(Failure::new(error.is_permanent(), &error))
            }
            Err(_) => {
                link.open = None;
                Err(Failure::transient(format!(
                    "SMTP server did not answer within {} s",
                    self.timeout.as_secs()
                )))
            }
        }
    }

    /// A new connection: TCP with `TCP_NODELAY`, implicit TLS if configured, greeting and
    /// `EHLO`, `STARTTLS` (required when configured) and `AUTH`; all within the timeout.
    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let connecting = async {
            let tcp = actix_web::rt::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| Failure::new(false, &e))?;
            tcp.set_nodelay(true).map_err(|e| Failure::new(false, &e))?;
            let failed = |e: lettre::transport::smtp::Error| Failure::new(e.is_permanent(), &e);
            let mut connection = match &self.tls {
                SmtpTls::None => {
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                        .await
                        .map_err(failed)?
                }
                SmtpTls::Starttls(parameters) => {
                    let mut connection =
                        AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                            .await
                            .map_err(failed)?;
                    connection
                        .starttls(parameters.clone(), &self.hello)
                        .await
                        .map_err(failed)?;
                    connection
                }
                SmtpTls::Implicit(parameters) => {
                    let stream = ImplicitTls::wrap(tcp, parameters.clone()).await?;
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                        .await
                        .map_err(failed)?
                }
            };
            if let Some(credentials) = &self.credentials {
                connection
                    .auth(DEFAULT_MECHANISMS, credentials)
                    .await
                    .map_err(failed)?;
            }
            Ok(connection)
        };
        match timeout(self.timeout, connecting).await {
            Ok(connected) => connected,
            Err(_) => Err(Failure::transient(format!(
                "cannot connect to {}: no answer within {} s",
                self.shown,
                self.timeout.as_secs()
            ))),
        }
    }
}

/// Our TCP socket with TLS set up before the first byte (implicit TLS, port 465), as lettre's
/// own connect does it, for lettre to speak SMTP over.
#[allow(deprecated)] // lettre 0.11 keeps the stream type public, marked as not meant to be.
#[derive(Debug)]
struct ImplicitTls(lettre::transport::smtp::client::AsyncNetworkStream);

#[allow(deprecated)]
impl ImplicitTls {
    async fn wrap(
        tcp: actix_web::rt::net::TcpStream,
        parameters: TlsParameters,
    ) -> Result<Self, Failure> {
        use lettre::transport::smtp::client::AsyncNetworkStream;
        let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
        stream
            .upgrade_tls(parameters)
            .await
            .map_err(|e| Failure::new(false, &e))?;
        Ok(Self(stream))
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

impl tokio::io::AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let unfilled = buf.initialize_unfilled();
        match futures_util::io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, unfilled) {
            Poll::Ready(Ok(read)) => {
                buf.advance(read);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl tokio::io::AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures_util::io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_util::io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_util::io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Smtp(server) => f.write_str(&server.shown),
            Self::Files { dir, .. } => write!(f, ".eml files in {}", dir.display()),
        }
    }
}

/// The mail of an outbox row: its stored `Message-ID` exactly, so every attempt is the same
/// mail; `Date` is when the row was written; plain UTF-8 text.
pub fn message(row: &NotificationRow, from: &Mailbox) -> Result<Message, Failure> {
    let to: Mailbox = row.recipient.parse().map_err(|e| Failure::new(true, &e))?;
    Message::builder()
        .message_id(Some(row.message_id.clone()))
        .date(SystemTime::from(row.created_at.and_utc()))
        .from(from.clone())
        .to(to)
        .subject(row.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(row.body.clone())
        .map_err(|e| Failure::new(true, &e))
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn row(recipient: &str) -> NotificationRow {
        let at = NaiveDate::from_ymd_opt(2026, 11, 28)
            .unwrap()
            .and_hms_opt(1, 2, 3)
            .unwrap();
        NotificationRow {
            id: "0190c3a0-0000-7000-8000-000000000001".into(),
            request_id: None,
            kind: "accepted".into(),
            recipient: recipient.into(),
            subject: "【马上办】PT20261128-000001 已受理 / accepted".into(),
            body: "您的办件已受理。\n\nYour request has been accepted.\n".into(),
            message_id: "<0190c3a0-0000-7000-8000-000000000001@mashangban>".into(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: at,
            locked_until: None,
            last_error: None,
            created_at: at,
            sent_at: None,
        }
    }

    #[test]
    fn the_mail_carries_the_stored_message_id_and_the_row_time() {
        let from: Mailbox = "马上办 <noreply@mashangban.example>".parse().unwrap();
        let mail = message(&row("office@example.com"), &from).unwrap();
        let text = String::from_utf8(mail.formatted()).unwrap();
        assert!(
            text.contains("Message-ID: <0190c3a0-0000-7000-8000-000000000001@mashangban>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Date: Sat, 28 Nov 2026 01:02:03 +0000"),
            "{text}"
        );
        assert!(text.contains("To: office@example.com"), "{text}");
        assert!(text.contains("charset=utf-8"), "{text}");
        assert_eq!(
            mail.envelope().to(),
            ["office@example.com".parse().unwrap()]
        );
    }

    #[test]
    fn a_bad_recipient_is_a_permanent_failure() {
        let from: Mailbox = "noreply@mashangban.example".parse().unwrap();
        let failure = message(&row("not an address"), &from).unwrap_err();
        assert!(failure.permanent);
        assert!(!failure.reason.is_empty());
    }
}

#[cfg(test)]
mod trust_tests {
    use super::*;

    fn smtp(ca_file: &str) -> MailSettings {
        let mut settings = crate::config::Settings::defaults().mail;
        settings.host = "smtp.example.gov.cn".into();
        settings.tls = MailTls::Starttls;
        settings.smtp_ca_file = ca_file.into();
        settings
    }

    #[test]
    fn the_smtp_ca_file_is_loaded_or_named() {
        assert!(Transport::new(&smtp("")).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let file = dir.path().join("intranet-ca.pem");
        std::fs::write(&file, ca.pem()).unwrap();
        assert!(Transport::new(&smtp(file.to_str().unwrap())).is_ok());

        let missing = dir.path().join("nope.pem");
        let Err(err) = Transport::new(&smtp(missing.to_str().unwrap())) else {
            panic!("a missing CA file is refused");
        };
        let err = err.to_string();
        assert!(
            err.contains("mail.smtp_ca_file") && err.contains("nope.pem"),
            "{err}"
        );
    }
}
