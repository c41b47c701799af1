//! Database URLs: the scheme picks the backend, and passwords never reach a log line.

use std::fmt;
use std::path::PathBuf;

/// The two supported backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A checked database URL.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    /// Accepts `sqlite://PATH` and `postgres://…` / `postgresql://…`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(
                    "`sqlite://` needs a file path, e.g. sqlite://./data/mashangban.db".into(),
                );
            }
            if path == ":memory:" || path.contains("mode=memory") {
                return Err(
                    "in-memory SQLite is not supported: every pooled connection would see its own empty database"
                        .into(),
                );
            }
            return Ok(Self {
                raw: raw.to_string(),
                backend: Backend::Sqlite,
            });
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            url::Url::parse(raw)
                .map_err(|e| format!("`{}` is not a valid URL: {e}", redact(raw)))?;
            return Ok(Self {
                raw: raw.to_string(),
                backend: Backend::Postgres,
            });
        }
        let scheme = raw.split("://").next().filter(|_| raw.contains("://"));
        Err(match scheme {
            Some(scheme) => format!(
                "unknown URL scheme `{scheme}` in `{}`: use sqlite://PATH or postgres://…",
                redact(raw)
            ),
            None => format!(
                "`{}` is not a database URL: use sqlite://PATH or postgres://…",
                redact(raw)
            ),
        })
    }

    /// The backend the scheme names.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL as given (with any password): only for the driver.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The SQLite file path, for `sqlite://` URLs.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.raw.strip_prefix("sqlite://").map(PathBuf::from)
    }

    /// The URL with any password replaced by `***`, safe to print.
    pub fn redacted(&self) -> String {
        redact(&self.raw)
    }
}

/// Replaces the password of a URL (if any) with `***`.
pub fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => raw.to_string(),
        // Unparseable: hide everything between `//` and `@`, which is where credentials sit.
        Err(_) => match (raw.find("://"), raw.rfind('@')) {
            (Some(start), Some(at)) if at > start => {
                format!("{}***{}", &raw[..start + 3], &raw[at..])
            }
            _ => raw.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_pick_backends() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://./x.db").unwrap().backend(),
            Backend::Sqlite
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://u@localhost/db")
                .unwrap()
                .backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://u@localhost/db")
                .unwrap()
                .backend(),
            Backend::Postgres
        );
    }

    #[test]
    fn unknown_scheme_is_named_and_redacted() {
        let err = DatabaseUrl::parse("mysql://root:hunter2@db/x").unwrap_err();
        assert!(err.contains("`mysql`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(DatabaseUrl::parse("just-a-file.db").is_err());
        assert!(DatabaseUrl::parse("sqlite://:memory:").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db:5432/msb").unwrap();
        assert_eq!(url.redacted(), "postgres://app:***@db:5432/msb");
        assert_eq!(format!("{url:?}"), "postgres://app:***@db:5432/msb");
        let url = DatabaseUrl::parse("postgres://app@db/msb").unwrap();
        assert_eq!(url.redacted(), "postgres://app@db/msb");
    }
}
