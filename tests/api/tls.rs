//! Outbound TLS trusts a configured CA: the clerks' client, the real binary, against a local
//! TLS server whose certificate a throwaway CA signed (rcgen), served by rustls. The mail
//! sender over STARTTLS and implicit TLS to such a server is in `mail.rs`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA, and a certificate for `localhost` it signed with its key; (CA PEM, chain, key).
pub(crate) fn intranet_ca() -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Test Intranet Root CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    (
        ca.pem(),
        vec![server.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
    )
}

/// Serves HTTPS on a free port until the process ends; every request gets `/api/v1/me`'s
/// answer for a clerk. Handshakes that fail (an untrusting client) are simply dropped.
fn https_server(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let connection = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(connection, stream);
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buffer) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let body = r#"{"subject":"clerk-tax","role":"clerk","unit":"tax"}"#;
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

fn login(config: &Path, server: &str, ca_file: Option<&Path>) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mashangban"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MASHANGBAN_") || key.starts_with("SSL_CERT") {
            command.env_remove(key);
        }
    }
    command.arg("client").arg("--config-file").arg(config);
    if let Some(ca_file) = ca_file {
        command.arg("--ca-file").arg(ca_file);
    }
    command.args(["login", "--server", server, "--token", "tok"]);
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn the_client_trusts_a_configured_ca_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, chain, key) = intranet_ca();
    let port = https_server(chain, key);
    let server = format!("https://localhost:{port}");
    let config = dir.path().join("client.toml");

    // Neither the compiled-in nor the system roots know this CA: refused.
    let (code, stdout, stderr) = login(&config, &server, None);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    assert!(!config.exists());

    // With the CA file, the handshake succeeds and the login keeps the file.
    let ca_file = dir.path().join("intranet-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let (code, stdout, stderr) = login(&config, &server, Some(&ca_file));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("as clerk-tax (clerk, unit tax)"),
        "{stdout}"
    );
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(saved.contains("intranet-ca.pem"), "{saved}");

    // A CA file that is no such thing is refused before any connection, naming it.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "hello\n").unwrap();
    let (code, _, stderr) = login(&config, &server, Some(&bad));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("bad.pem") && stderr.contains("no certificate"),
        "{stderr}"
    );
}
