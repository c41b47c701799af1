//! HTTP for the client, with [`ureq`].
//!
//! Why `ureq`: the client is a short-lived command that sends one or two requests and exits,
//! so a blocking client is the honest fit; `ureq` is small, widely used and maintained, needs
//! no async runtime (unlike `reqwest`, which would start tokio for two requests), speaks
//! plain `http://` out of the box and `https://` through rustls (pure Rust, no OpenSSL to
//! install on the window PCs). It honours `HTTP(S)_PROXY`/`NO_PROXY`.
//!
//! Every answer, whatever its status, comes back as a [`Reply`]; deciding what a status means
//! is the caller's job (see [`super::problem`]). Redirects are not followed: the bearer token
//! is never sent anywhere but the server that was logged in to.
//!
//! An `https://` server's certificate must chain to the compiled-in Mozilla roots, the
//! system's store or the `--ca-file` (see [`crate::tls`]): a government intranet's own CA is
//! installed in the system store or named with `--ca-file`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig};

use serde_json::Value;

use super::Failure;

/// A server answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `ETag`, verbatim (`"r3"`).
    pub etag: Option<String>,
    /// `Content-Type`, without parameters.
    pub content_type: String,
    /// `Location` (for redirects).
    pub location: Option<String>,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Result<Value, Failure> {
        serde_json::from_str(&self.body).map_err(|error| {
            Failure::failed(format!(
                "the server's answer (HTTP {}) is not JSON: {error}",
                self.status
            ))
        })
    }

    /// Success (2xx).
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A connection to one server with one token.
pub struct Http {
    agent: ureq::Agent,
    server: String,
    token: String,
}

impl Http {
    /// A client for `server` (`http://host:port`, no trailing slash) with `token`, trusting the
    /// compiled-in and the system's CA certificates.
    pub fn new(server: &str, token: &str) -> Self {
        Self::with_ca_file(server, token, None).expect("no CA file to refuse")
    }

    /// [`Http::new`], also trusting the certificates of the PEM file `ca_file`; a file that
    /// cannot be read or holds no CA certificate is refused (exit status 2), naming it.
    pub fn with_ca_file(
        server: &str,
        token: &str,
        ca_file: Option<&Path>,
    ) -> Result<Self, Failure> {
        // Only an https server needs roots: plain http skips reading the system's store.
        let https = server.starts_with("https://");
        let extra = match (https, ca_file) {
            (false, None) => Vec::new(),
            (false, Some(file)) => crate::tls::ca_file(file).map_err(Failure::usage)?,
            (true, file) => crate::tls::extra_roots(file).map_err(Failure::usage)?,
        };
        let roots: Vec<Certificate<'static>> = crate::tls::compiled_in_roots()
            .iter()
            .chain(&extra)
            .map(|der| Certificate::from_der(der.as_ref()).to_owned())
            .collect();
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(60)))
            .user_agent(format!("mashangban-client/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self {
            agent,
            server: server.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Reply, Failure> {
        self.get_as(path, "application/json")
            .map(|(reply, _)| reply)
    }

    /// `GET path` asking for the media type `accept`; also returns the `Link` header, if any.
    pub fn get_as(&self, path: &str, accept: &str) -> Result<(Reply, Option<String>), Failure> {
        let url = self.url(path);
        let response = self
            .agent
            .get(&url)
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", accept)
            .call();
        let link = response.as_ref().ok().and_then(|r| {
            r.headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        });
        Ok((self.reply(&url, response)?, link))
    }

    /// `POST path` with a JSON body (or none) and an optional `If-Match`.
    pub fn post(
        &self,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Reply, Failure> {
        let url = self.url(path);
        let mut request = self
            .agent
            .post(&url)
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/json");
        if let Some(tag) = if_match {
            request = request.header("If-Match", tag);
        }
        let response = match body {
            Some(body) => request
                .header("Content-Type", "application/json")
                .send(serde_json::to_vec(body).expect("JSON serializes")),
            None => request.send_empty(),
        };
        self.reply(&url, response)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    fn reply(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, Failure> {
        let mut response =
            response.map_err(|error| unreachable_server(&self.server, url, error))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header("etag");
        let location = header("location");
        let content_type = header("content-type")
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|error| unreachable_server(&self.server, url, error))?;
        Ok(Reply {
            status,
            etag,
            content_type,
            location,
            body,
        })
    }
}

/// One line for a transport failure (exit status 1).
fn unreachable_server(server: &str, url: &str, error: ureq::Error) -> Failure {
    let why = match &error {
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            format!("cannot reach {server} ({error}); is the server running and the URL right?")
        }
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!(
                "cannot reach {server}: connection refused; is the server running and the URL right?"
            )
        }
        ureq::Error::Timeout(_) => format!("{server} did not answer in time ({error})"),
        ureq::Error::BadUri(_) => format!("{url} is not a valid URL ({error})"),
        _ => format!("talking to {server} failed: {error}"),
    };
    Failure::failed(why)
}
