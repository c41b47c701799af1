//! The saved login: `{server, token}` in a per-user TOML file that only its owner may read,
//! and the audit chain's head as `verify` saw it last on that server (the anchor it checks
//! the next time).
//!
//! Where: `--config-file PATH` (or `MASHANGBAN_CLIENT_CONFIG`), else
//! `$XDG_CONFIG_HOME/mashangban/client.toml`, else `$HOME/.config/mashangban/client.toml`.
//! The token acts as the clerk, so the file is written with mode 0600 (its folder 0700), by
//! writing a new file and renaming it over the old one, and a file that others can read is
//! refused with the command that fixes it, as ssh does for private keys.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Failure;

/// What `login` saves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Base URL of the server, without a trailing slash: `http://127.0.0.1:8080`.
    pub server: String,
    /// The bearer token.
    pub token: String,
    /// A PEM file of CA certificates trusted for `server` besides the system's and the
    /// compiled-in roots (`login --ca-file`); the global `--ca-file` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The audit chain's head at the last `verify` that found it intact on this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_head: Option<AuditHead>,
}

/// `[audit_head]`: the newest audit event seen, kept to check that it is still there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditHead {
    /// Its position in the chain.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
}

/// The default place of the file, from `XDG_CONFIG_HOME` or `HOME` (passed in for tests).
pub fn default_path(xdg_config_home: Option<&str>, home: Option<&str>) -> Result<PathBuf, Failure> {
    // The XDG rules ignore a relative XDG_CONFIG_HOME.
    if let Some(dir) = xdg_config_home.filter(|d| Path::new(d).is_absolute()) {
        return Ok(Path::new(dir).join("mashangban").join("client.toml"));
    }
    match home.filter(|h| !h.is_empty()) {
        Some(home) => Ok(Path::new(home)
            .join(".config")
            .join("mashangban")
            .join("client.toml")),
        None => Err(Failure::usage(
            "cannot tell where to keep the login: neither XDG_CONFIG_HOME nor HOME is set; use --config-file PATH",
        )),
    }
}

/// The file to use: the override, or the default place.
pub fn resolve(explicit: Option<&Path>) -> Result<PathBuf, Failure> {
    match explicit {
        Some(path) => Ok(path.to_path_buf()),
        None => default_path(
            std::env::var("XDG_CONFIG_HOME").ok().as_deref(),
            std::env::var("HOME").ok().as_deref(),
        ),
    }
}

/// Reads the saved login; exit status 2 when there is none or it is unusable.
pub fn load(path: &Path) -> Result<Login, Failure> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(Failure::usage(format!(
                "not logged in (no {}): run `mashangban client login --server URL --token TOKEN`",
                path.display()
            )));
        }
        Err(error) => {
            return Err(Failure::usage(format!(
                "cannot read {}: {error}",
                path.display()
            )));
        }
    };
    check_private(path)?;
    let login: Login = toml::from_str(&text).map_err(|error| {
        Failure::usage(format!(
            "{} is not a login file ({}): log in again",
            path.display(),
            one_line(&error.to_string())
        ))
    })?;
    Ok(login)
}

/// Writes the login with mode 0600, replacing any earlier one.
pub fn save(path: &Path, login: &Login) -> Result<(), Failure> {
    let cannot =
        |error: io::Error| Failure::usage(format!("cannot save {}: {error}", path.display()));
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    create_private_folder(folder).map_err(cannot)?;
    let text = format!(
        "# mashangban clerks' client: the saved login. Keep it private: the token acts as you.\n{}",
        toml::to_string(login).expect("a login serializes")
    );
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "client.toml".into());
    let temporary = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    let written =
        write_private(&temporary, text.as_bytes()).and_then(|()| fs::rename(&temporary, path));
    if let Err(error) = written {
        let _ = fs::remove_file(&temporary);
        return Err(cannot(error));
    }
    Ok(())
}

/// Removes the saved login; `false` when there was none.
pub fn remove(path: &Path) -> Result<bool, Failure> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(Failure::usage(format!(
            "cannot remove {}: {error}",
            path.display()
        ))),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(unix)]
fn create_private_folder(folder: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if folder.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
}

#[cfg(not(unix))]
fn create_private_folder(folder: &Path) -> io::Result<()> {
    fs::create_dir_all(folder)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Refuses a login file that the group or others may read or write.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(|error| Failure::usage(format!("cannot read {}: {error}", path.display())))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(Failure::usage(format!(
            "{} is open to others (mode {mode:04o}) and holds your token: run `chmod 600 {}`, or log in again",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), Failure> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> Login {
        Login {
            server: "http://127.0.0.1:8080".into(),
            token: "eyJhbGciOiJIUzI1NiJ9.e30.sig".into(),
            ca_file: None,
            audit_head: None,
        }
    }

    #[test]
    fn saves_and_loads_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/mashangban/client.toml");
        save(&path, &login()).unwrap();
        assert_eq!(load(&path).unwrap(), login());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        // Saving again replaces the login and leaves no temporary file behind.
        let other = Login {
            server: "https://msb.example.gov.cn".into(),
            token: "t2".into(),
            ca_file: Some(PathBuf::from("/etc/mashangban/intranet-ca.pem")),
            audit_head: Some(AuditHead {
                seq: 42,
                hash: "ab".repeat(32),
            }),
        };
        save(&path, &other).unwrap();
        assert_eq!(load(&path).unwrap(), other);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("[audit_head]\nseq = 42\n"), "{text}");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("client.toml")]);
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused_and_saving_fixes_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.toml");
        fs::write(&path, toml::to_string(&login()).unwrap()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let failure = load(&path).unwrap_err();
        assert_eq!(failure.exit, 2);
        assert!(failure.message.contains("mode 0644"), "{}", failure.message);
        assert!(failure.message.contains("chmod 600"), "{}", failure.message);
        save(&path, &login()).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load(&path).unwrap(), login());
    }

    #[test]
    fn a_missing_or_broken_file_says_to_log_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.toml");
        let failure = load(&path).unwrap_err();
        assert_eq!(failure.exit, 2);
        assert!(
            failure.message.starts_with("not logged in"),
            "{}",
            failure.message
        );
        assert!(failure.message.contains("client login"));
        save(&path, &login()).unwrap();
        fs::write(&path, "server = 3\n").unwrap();
        let failure = load(&path).unwrap_err();
        assert_eq!(failure.exit, 2);
        assert!(!failure.message.contains('\n'), "{}", failure.message);
    }

    #[test]
    fn default_path_follows_xdg_then_home() {
        assert_eq!(
            default_path(Some("/x/cfg"), Some("/home/li")).unwrap(),
            PathBuf::from("/x/cfg/mashangban/client.toml")
        );
        assert_eq!(
            default_path(Some("relative"), Some("/home/li")).unwrap(),
            PathBuf::from("/home/li/.config/mashangban/client.toml")
        );
        assert_eq!(
            default_path(None, Some("/home/li")).unwrap(),
            PathBuf::from("/home/li/.config/mashangban/client.toml")
        );
        assert_eq!(default_path(None, None).unwrap_err().exit, 2);
    }
}
