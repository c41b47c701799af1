//! Where a mail goes: an SMTP server, or `.eml` files when none is configured; and the mail
//! itself, built from an outbox row.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{FileTransport, SmtpTransport, Transport as _};

use crate::config::{ConfigError, MailSettings, MailTls};
use crate::db::notifications::NotificationRow;

/// Longest error text kept on a row.
const ERROR_CHARS: usize = 500;

/// The configured way out.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP server, one connection per mail, every socket step bounded by the timeout.
    Smtp {
        /// The lettre transport.
        smtp: SmtpTransport,
        /// `host:port (tls)`, for the log.
        shown: String,
    },
    /// `.eml` files in a folder (no SMTP configured).
    Files {
        /// The lettre transport.
        files: FileTransport,
        /// The folder.
        dir: PathBuf,
    },
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
        let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
        Self {
            permanent,
            reason: reason.chars().take(ERROR_CHARS).collect(),
        }
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
        let tls = |mode: fn(TlsParameters) -> Tls| {
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
                .map(mode)
                .map_err(|e| ConfigError::key("mail.tls", format!("cannot set up TLS: {e}")))
        };
        let (tls, mode) = match settings.tls {
            MailTls::None => (Tls::None, "none"),
            MailTls::Starttls => (tls(Tls::Required)?, "starttls"),

            MailTls::Tls => (tls(Tls::Wrapper)?, "tls"),
        };
        let mut builder = SmtpTransport::builder_dangerous(host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(settings.timeout_secs)));
        if !settings.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                settings.username.clone(),
                settings.password.clone(),
            ));
        }
        Ok(Self::Smtp {
            smtp: builder.build(),
            shown: format!("smtp://{host}:{} (tls: {mode})", settings.port),
        })
    }

    /// Sends `message`, blocking: call it on the blocking pool only.
    pub fn send(&self, message: &Message) -> Result<(), Failure> {
        match self {
            Self::Smtp { smtp, .. } => smtp
                .send(message)
                .map(drop)
                .map_err(|e| Failure::new(e.is_permanent(), &e)),
            Self::Files { files, .. } => files
                .send(message)
                .map(drop)
                .map_err(|e| Failure::new(false, &e)),
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Smtp { shown, .. } => f.write_str(shown),
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
