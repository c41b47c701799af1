//! Which certificate authorities outbound TLS trusts: the mail sender's SMTP connection
//! (lettre) and the clerks' client (ureq), both on rustls.
//!
//! Three sources, together: the Mozilla roots compiled into the binary (`webpki-root-certs`,
//! so a minimal container without a CA bundle still reaches public servers), the system's
//! store (`rustls-native-certs`: `/etc/ssl/certs` and the like, `SSL_CERT_FILE`,
//! `SSL_CERT_DIR`, where an administrator installs a government intranet's CA), and a PEM file
//! named in the configuration (`mail.smtp_ca_file`, the client's `--ca-file`) for a CA that is
//! in neither. Why these crates: they are the rustls project's own (the same maintainers as
//! the TLS stack both clients use), small, and need no OpenSSL.
//!
//! A configured file must hold at least one certificate that parses as a trust anchor;
//! anything else is refused with a message naming the file, at start (server) or before the
//! first request (client). An unreadable system store only costs its roots, with a warning.

use std::path::Path;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The certificates of the PEM file `path`, each checked to be a usable trust anchor.
pub fn ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read CA file {shown}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("CA file {shown} is not PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "CA file {shown} holds no certificate (expected -----BEGIN CERTIFICATE----- blocks)"
        ));
    }
    let mut store = RootCertStore::empty();
    for (n, cert) in certs.iter().enumerate() {
        store.add(cert.clone()).map_err(|e| {
            format!(
                "CA file {shown}: certificate {} is not a usable CA certificate: {e}",
                n + 1
            )
        })?;
    }
    Ok(certs)
}

/// The system's CA certificates; what cannot be read is logged and skipped.
pub fn system_roots() -> Vec<CertificateDer<'static>> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "a system CA certificate could not be loaded");
    }
    found.certs
}

/// The compiled-in Mozilla roots.
pub fn compiled_in_roots() -> Vec<CertificateDer<'static>> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS.to_vec()
}

/// Every root outbound TLS trusts besides the compiled-in ones: the system's, then `file`'s.
pub fn extra_roots(file: Option<&Path>) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut roots = system_roots();
    if let Some(file) = file {
        roots.extend(ca_file(file)?);
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_is_read_and_a_bad_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::CertifiedIssuer::self_signed(
            {
                let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
                params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
                params
            },
            rcgen::KeyPair::generate().unwrap(),
        )
        .unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, ca.pem()).unwrap();
        assert_eq!(ca_file(&good).unwrap().len(), 1);

        let missing = dir.path().join("missing.pem");
        let err = ca_file(&missing).unwrap_err();
        assert!(
            err.contains("cannot read CA file") && err.contains("missing.pem"),
            "{err}"
        );

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = ca_file(&empty).unwrap_err();
        assert!(err.contains("holds no certificate"), "{err}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = ca_file(&garbage).unwrap_err();
        assert!(err.contains("garbage.pem"), "{err}");

        assert!(compiled_in_roots().len() > 100);
    }
}
