//! How a client is set up: the configuration, the base URL check, and the HTTP client
//! (rustls with certificate checks, an optional private CA, pooling, timeouts).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use super::error::{Result, XnatError};
use super::retry::RetryPolicy;

/// Everything needed to reach one XNAT server as one user.
#[derive(Clone)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://xnat.example.org` or `https://host/xnat` (path prefix kept).
    pub server: String,
    pub user: String,
    pub password: String,
    /// A PEM file with extra CA certificates (a site's private CA); the built-in roots stay.
    pub ca_cert: Option<PathBuf>,
    /// Time allowed to open a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Longest silence while waiting for an answer or a piece of a body.
    pub read_timeout: Duration,
    /// Retries of requests once connected.
    pub retry: RetryPolicy,
    /// Retries of the first login (connection errors and 5xx only), kept short so a wrong
    /// URL or a stopped server is reported within seconds.
    pub connect_retry: RetryPolicy,
    /// Log in again before a request when the session has been idle for longer than the
    /// server's `SESSION_EXPIRATION_TIME` says it lives, instead of waiting for a 401.
    pub proactive_relogin: bool,
    /// The longest a listing may take, retries included: a server that trickles its answer
    /// cannot hold an `ls` longer than this.
    pub listing_deadline: Duration,
    /// The largest listing body read; a larger one is an error, not memory without bound.
    pub listing_max_bytes: u64,
    /// What to do when the server cannot be reached at connect time.
    pub offline: OfflineStart,
    /// Log in with the alias token in this file (read at each login) instead of `password`.
    pub token_file: Option<PathBuf>,
    /// How many requests may be in flight at once (on this mount, and across mounts when
    /// the budget is clustered); it also says how many idle connections are kept open.
    pub budget: std::sync::Arc<crate::cluster::RequestBudget>,
}

/// Whether a client may start without the server (see `reach.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OfflineStart {
    /// An unreachable server fails the connect (nothing was kept to serve from).
    #[default]
    Refuse,
    /// An unreachable server starts the client offline, the breaker open and the probe
    /// running; the login happens when the server answers.
    Allow,
    /// `--offline`: never ask the server.
    Always,
}

/// Default [`ClientConfig::listing_deadline`].
pub const DEFAULT_LISTING_DEADLINE: Duration = Duration::from_secs(300);
/// Default [`ClientConfig::listing_max_bytes`]: 256 MiB, about a million file rows.
pub const DEFAULT_LISTING_MAX_BYTES: u64 = 256 << 20;

impl ClientConfig {
    /// A configuration with the default timeouts and retry policies.
    pub fn new(
        server: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        ClientConfig {
            server: server.into(),
            user: user.into(),
            password: password.into(),
            ca_cert: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(120),
            listing_deadline: DEFAULT_LISTING_DEADLINE,
            listing_max_bytes: DEFAULT_LISTING_MAX_BYTES,
            retry: RetryPolicy::default(),
            connect_retry: RetryPolicy {
                max_retries: 3,
                max_elapsed: Duration::from_secs(5),
                base_delay: Duration::from_millis(250),
                max_delay: Duration::from_secs(2),
            },
            proactive_relogin: true,
            offline: OfflineStart::Refuse,
            token_file: None,
            budget: crate::cluster::RequestBudget::local(crate::cluster::DEFAULT_MAX_CONNECTIONS),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("ca_cert", &self.ca_cert)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("retry", &self.retry)
            .field("connect_retry", &self.connect_retry)
            .field("proactive_relogin", &self.proactive_relogin)
            .finish()
    }
}

/// The base URL checked and without a trailing slash.
pub(crate) fn normalise_base(server: &str) -> Result<String> {
    let bad = |reason: &str| XnatError::BadServerUrl {
        url: server.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(server.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none() {
        return Err(bad("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials do not belong in the URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Redirects are followed only within the server's origin, or from http to https on the same
/// host (at most 5). Anywhere else the session cookie or the password would go to another
/// server or over cleartext, and the answer would not be the archive's: the request fails.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().cloned();
        if attempt.previous().len() > 5 {
            return attempt.error("more than 5 redirects");
        }
        match first {
            Some(first) if redirect_allowed(&first, attempt.url()) => attempt.follow(),
            Some(first) => {
                let why = format!(
                    "redirect from {} to {} refused: xnatfs follows redirects only within the \
                     server (or from http to https)",
                    origin(&first),
                    origin(attempt.url())
                );
                attempt.error(why)
            }
            None => attempt.follow(),
        }
    })
}

fn origin(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

/// Same scheme, host and port; or an upgrade from http to https of the same host.
fn redirect_allowed(from: &reqwest::Url, to: &reqwest::Url) -> bool {
    if from.origin() == to.origin() {
        return true;
    }
    from.scheme() == "http" && to.scheme() == "https" && from.host_str() == to.host_str()
}

/// The HTTP client; `read_timeout` false for the one that sends uploads.
pub(crate) fn build_http(config: &ClientConfig, read_timeout: bool) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("xnatfs/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(config.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(config.budget.idle_connections())
        .tcp_keepalive(Duration::from_secs(60))
        .redirect(redirect_policy());
    if read_timeout {
        builder = builder.read_timeout(config.read_timeout);
    }
    if let Some(path) = &config.ca_cert {
        let context = format!("reading CA certificates from {}", path.display());
        let pem = std::fs::read(path).map_err(|e| XnatError::io(&context, e))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            XnatError::io(
                &context,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        if certs.is_empty() {
            return Err(XnatError::io(
                context,
                std::io::Error::new(std::io::ErrorKind::InvalidData, "no PEM certificate found"),
            ));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| {
        XnatError::io(
            "setting up the HTTP client",
            std::io::Error::other(e.to_string()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(normalise_base("https://h/xnat/").unwrap(), "https://h/xnat");
        assert_eq!(
            normalise_base("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "h.org",
            "ftp://h",
            "https://u:p@h",
            "https://h/?q=1",
            "https://h/#f",
        ] {
            let err = normalise_base(bad).unwrap_err();
            assert!(matches!(err, XnatError::BadServerUrl { .. }), "{bad}");
            assert!(!err.to_string().contains(":p@") || bad.contains(":p@"));
        }
    }

    #[test]
    fn private_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, "not a certificate").unwrap();
        let mut c = ClientConfig::new("https://h", "u", "p");
        c.ca_cert = Some(pem);
        assert!(matches!(build_http(&c, true), Err(XnatError::Io { .. })));
        c.ca_cert = Some(dir.path().join("missing.pem"));
        assert_eq!(build_http(&c, true).unwrap_err().errno(), libc::ENOENT);
    }

    #[test]
    fn debug_hides_the_password() {
        let c = ClientConfig::new("https://h", "u", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}

#[cfg(test)]
mod redirect_tests {
    use super::redirect_allowed;

    #[test]
    fn only_same_origin_and_upgrades_are_followed() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        let https = url("https://xnat.example.org/data/x");
        assert!(redirect_allowed(
            &https,
            &url("https://xnat.example.org/xnat/data/x")
        ));
        assert!(redirect_allowed(
            &url("http://xnat.example.org/data/x"),
            &url("https://xnat.example.org/data/x")
        ));
        for refused in [
            "http://xnat.example.org/data/x",
            "https://xnat.example.org:8443/data/x",
            "https://sso.example.org/login",
            "https://evil.example.com/data/x",
        ] {
            assert!(!redirect_allowed(&https, &url(refused)), "{refused}");
        }
    }
}
