//! The HS256 secret: how strong a configured one must be, and the one generated when none is.
//!
//! No secret is shipped. When `jwt.secret` is empty:
//! - on SQLite, the server (and `mashangban token`) use the file `jwt-secret` in the database's
//!   folder, creating it on first use with 32 bytes from the operating system's random number
//!   generator (hex, mode 0600). Later starts reuse it, so tokens survive restarts, and
//!   `cargo run` / `cargo run -- token …` need no configuration;
//! - on PostgreSQL, start is refused: several instances share one database and must verify
//!   each other's tokens, so the secret has to be configured, the same for all.
//!
//! A configured secret (and `metrics.token`) must pass [`weakness`]: at least
//! [`MIN_SECRET_BYTES`] bytes with at least [`MIN_DISTINCT_BYTES`] distinct ones, and not a
//! value published in an earlier release. The rule is deliberately simple: it stops the
//! placeholder and the keyboard-mash, not a determined fool.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::JwtSettings;
use crate::db::{Backend, DatabaseUrl};

/// Shortest accepted secret, in bytes (HS256's key should be at least its 256-bit output).
pub const MIN_SECRET_BYTES: usize = 32;

/// Fewest distinct byte values in an accepted secret.
pub const MIN_DISTINCT_BYTES: usize = 8;

/// Name of the generated secret's file, in the SQLite database's folder.
pub const SECRET_FILE_NAME: &str = "jwt-secret";

/// Secrets that were published (the development default of earlier releases): anyone can sign
/// with them.
const PUBLISHED: &[&str] = &["mashangban-development-secret-change-me-0123456789"];

/// Random bytes in a generated secret.
const GENERATED_BYTES: usize = 32;

/// What is wrong with `secret` as a shared secret, or `None` when it is acceptable.
pub fn weakness(secret: &str) -> Option<String> {
    let bytes = secret.as_bytes();
    if bytes.len() < MIN_SECRET_BYTES {
        return Some(format!(
            "must be at least {MIN_SECRET_BYTES} bytes (it has {}); generate one with `openssl rand -hex 32`",
            bytes.len()
        ));
    }
    let mut seen = [false; 256];
    for &b in bytes {
        seen[usize::from(b)] = true;
    }
    let distinct = seen.iter().filter(|s| **s).count();
    if distinct < MIN_DISTINCT_BYTES {
        return Some(format!(
            "is too predictable: only {distinct} distinct bytes (at least {MIN_DISTINCT_BYTES}); generate one with `openssl rand -hex 32`"
        ));
    }
    if PUBLISHED.contains(&secret) {
        return Some(
            "is the development secret published with earlier releases: anyone can sign tokens with it; generate one with `openssl rand -hex 32`"
                .into(),
        );
    }
    None
}

/// Why no secret could be had.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: jwt.secret: {0}")]
pub struct SecretError(String);

/// The secret to sign and verify with: the configured one, or the generated one of a SQLite
/// data folder (created on first use).
pub fn resolve(jwt: &JwtSettings, database: &DatabaseUrl) -> Result<String, SecretError> {
    if !jwt.secret.is_empty() {
        return Ok(jwt.secret.clone());
    }
    match (database.backend(), database.sqlite_path()) {
        (Backend::Sqlite, Some(db_file)) => load_or_generate(&secret_file(&db_file)),
        _ => Err(SecretError(
            "not set, and PostgreSQL instances must share one: set MASHANGBAN_JWT_SECRET_FILE=/path/to/file (or MASHANGBAN_JWT_SECRET) to at least 32 random bytes, e.g. from `openssl rand -hex 32`"
                .into(),
        )),
    }
}

/// Where the generated secret of the SQLite database `db_file` lives.
pub fn secret_file(db_file: &Path) -> PathBuf {
    let folder = db_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    folder.join(SECRET_FILE_NAME)
}

/// Reads the secret at `path`, writing a fresh one first when there is none.
fn load_or_generate(path: &Path) -> Result<String, SecretError> {
    let failed = |what: &str, e: io::Error| SecretError(format!("{what} {}: {e}", path.display()));
    if !path.exists() {
        let folder = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(folder).map_err(|e| failed("cannot create the folder of", e))?;
        write_new(path).map_err(|e| failed("cannot write", e))?;
        tracing::info!(file = %path.display(), "generated a new JWT secret");
    }
    let mode = fs::metadata(path)
        .map_err(|e| failed("cannot read", e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(SecretError(format!(
            "{} is readable by others (mode {:o}): `chmod 600` it",
            path.display(),
            mode & 0o777
        )));
    }
    let text = fs::read_to_string(path).map_err(|e| failed("cannot read", e))?;
    let secret = text.trim_end_matches(['\n', '\r']).to_string();
    match weakness(&secret) {
        Some(weakness) => Err(SecretError(format!("{} {weakness}", path.display()))),
        None => Ok(secret),
    }
}

/// Writes a fresh secret to `path` unless another process got there first. The secret goes to
/// a temporary file (mode 0600 from its creation) that is then hard-linked into place: the link
/// fails if `path` exists, so two processes starting at once both end up reading one secret,
/// and nobody ever reads a half-written file.
fn write_new(path: &Path) -> io::Result<()> {
    let mut bytes = [0u8; GENERATED_BYTES];
    getrandom::fill(&mut bytes).map_err(io::Error::other)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let temporary = path.with_file_name(format!(".{SECRET_FILE_NAME}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(format!("{hex}\n").as_bytes())?;
        file.sync_all()?;
        match fs::hard_link(&temporary, path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    })();
    let _ = fs::remove_file(&temporary);
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_secrets_are_named() {
        assert!(weakness("short").unwrap().contains("at least 32 bytes"));
        assert!(weakness(&"x".repeat(64)).unwrap().contains("1 distinct"));
        assert!(
            weakness(&"abcdefg".repeat(6))
                .unwrap()
                .contains("7 distinct")
        );
        assert!(weakness(PUBLISHED[0]).unwrap().contains("published"));
        assert_eq!(weakness(&"abcdefgh".repeat(4)), None);
        assert_eq!(weakness("0123456789abcdef0123456789abcdef"), None);
    }

    #[test]
    fn the_generated_secret_is_private_strong_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("data/x.db");
        let url = DatabaseUrl::parse(&format!("sqlite://{}", db.display())).unwrap();
        let mut jwt = crate::config::Settings::defaults().jwt;
        jwt.secret.clear();
        let first = resolve(&jwt, &url).unwrap();
        assert_eq!(first.len(), 2 * GENERATED_BYTES);
        assert_eq!(weakness(&first), None);
        let file = dir.path().join("data").join(SECRET_FILE_NAME);
        let mode = fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(resolve(&jwt, &url).unwrap(), first);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path().join("data")).unwrap().count(), 1);

        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            resolve(&jwt, &url)
                .unwrap_err()
                .to_string()
                .contains("chmod 600")
        );

        jwt.secret = "configured-secret-0123456789-abcdef".into();
        assert_eq!(resolve(&jwt, &url).unwrap(), jwt.secret);
    }

    #[test]
    fn postgres_needs_a_configured_secret() {
        let url = DatabaseUrl::parse("postgres://app@127.0.0.1/x").unwrap();
        let mut jwt = crate::config::Settings::defaults().jwt;
        jwt.secret.clear();
        let err = resolve(&jwt, &url).unwrap_err().to_string();
        assert!(err.contains("MASHANGBAN_JWT_SECRET_FILE"), "{err}");
    }
}
