//! Where the server URL and the credentials come from.
//!
//! Looked up in this order, the first source that has a value winning: command-line flags
//! (server URL and user only: a password never goes on a command line), the environment
//! (`XNAT_HOST`, `XNAT_USER`, `XNAT_PASS`), `~/.netrc` (or `$NETRC`; `machine host[:port]
//! login … password …`, matched by the URL's host and port), a pyxnat-style JSON file
//! (`--config FILE`: `{"server","user","password"}`), and last a prompt on the terminal.
//! A password is only taken from a source whose user matches the one already chosen, so
//! `--user bob` never sends alice's netrc password. The environment and the terminal are
//! injected, so tests never read the real home directory or wait for input.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use reqwest::Url;

use crate::xnat::ClientConfig;

/// What the command line said.
#[derive(Debug, Clone, Default)]
pub struct CredentialArgs {
    /// `--server URL`.
    pub server: Option<String>,
    /// `--user NAME`.
    pub user: Option<String>,
    /// `--config FILE`: a pyxnat JSON config.
    pub config_file: Option<PathBuf>,
}

/// The user's home: `HOME`, or where it is not set (mount(8) runs helpers without it; so do
/// systemd units and cron) the password database's entry for this user.
pub fn home_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home));
    }
    passwd_home(unsafe { libc::geteuid() })
}

/// The home folder of `uid` in the password database.
fn passwd_home(uid: libc::uid_t) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into `entry` and `buf` (whose length it is told) only, and
    // sets `found` to `&entry` or null.
    let rc = unsafe { libc::getpwuid_r(uid, &mut entry, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || entry.pw_dir.is_null() {
        return None;
    }
    // SAFETY: on success `pw_dir` points to a NUL-terminated string inside `buf`.
    let dir = unsafe { std::ffi::CStr::from_ptr(entry.pw_dir) };
    let dir = std::ffi::OsStr::from_bytes(dir.to_bytes());
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// The environment variables and home directory to consult.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
    home: Option<PathBuf>,
}

impl Environment {
    /// This process's environment.
    pub fn from_process() -> Self {
        let vars = std::env::vars().collect();
        Environment {
            vars,
            home: home_dir(),
        }
    }

    /// A made-up environment (tests, embedding).
    pub fn new<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
        home: Option<PathBuf>,
    ) -> Self {
        Environment {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            home,
        }
    }

    /// A variable, unless unset or empty.
    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The netrc file to read: `$NETRC` (a leading `~/` expanded) or `~/.netrc`.
    fn netrc_path(&self) -> Option<PathBuf> {
        match self.var("NETRC") {
            Some(p) => match (p.strip_prefix("~/"), &self.home) {
                (Some(rest), Some(home)) => Some(home.join(rest)),
                _ => Some(PathBuf::from(p)),
            },
            None => self.home.as_ref().map(|h| h.join(".netrc")),
        }
    }
}

/// Asks the person at the terminal.
pub trait Prompter {
    /// Whether there is a person to ask (stdin is a terminal).
    fn interactive(&self) -> bool;
    fn read_user(&self, server: &str) -> io::Result<String>;
    fn read_password(&self, user: &str, server: &str) -> io::Result<String>;
}

/// The real terminal: prompts on stderr, the password without echo.
#[derive(Debug, Clone, Copy, Default)]
pub struct TerminalPrompter;

impl Prompter for TerminalPrompter {
    fn interactive(&self) -> bool {
        io::stdin().is_terminal()
    }

    fn read_user(&self, server: &str) -> io::Result<String> {
        eprint!("XNAT user for {server}: ");
        io::stderr().flush()?;
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim().to_string())
    }

    fn read_password(&self, user: &str, server: &str) -> io::Result<String> {
        rpassword::prompt_password(format!("XNAT password for {user} at {server}: "))
    }
}

/// No one to ask (daemons, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPrompt;

impl Prompter for NoPrompt {
    fn interactive(&self) -> bool {
        false
    }
    fn read_user(&self, _: &str) -> io::Result<String> {
        Err(io::Error::other("no terminal"))
    }
    fn read_password(&self, _: &str, _: &str) -> io::Result<String> {
        Err(io::Error::other("no terminal"))
    }
}

/// Where a value came from (for a log line; never the value itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Environment,
    Netrc(PathBuf),
    ConfigFile(PathBuf),
    Prompt,
    /// An alias token file (`--token-file`): no password at all.
    TokenFile(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("the command line"),
            Source::Environment => f.write_str("the environment"),
            Source::Netrc(p) => write!(f, "{}", p.display()),
            Source::ConfigFile(p) => write!(f, "{}", p.display()),
            Source::Prompt => f.write_str("the terminal"),
            Source::TokenFile(p) => write!(f, "the token file {}", p.display()),
        }
    }
}

/// The server and credentials to use.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Normalised base URL: scheme, host, port, path prefix, no trailing slash.
    pub server: String,
    pub user: String,
    pub password: String,
    pub user_source: Source,
    pub password_source: Source,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("user_source", &self.user_source)
            .field("password_source", &self.password_source)
            .finish()
    }
}

impl Credentials {
    /// A client configuration with default timeouts and retries.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::new(&self.server, &self.user, &self.password)
    }
}

/// Why no usable server or credentials were found.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no XNAT server given: use --server URL, set XNAT_HOST, or give --config FILE with a \"server\" entry")]
    NoServer,
    #[error("invalid XNAT server URL '{url}': {reason}")]
    BadServer { url: String, reason: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a pyxnat config ({{\"server\",\"user\",\"password\"}}): {reason}")]
    BadConfigFile { path: PathBuf, reason: String },
    #[error("cannot parse netrc file {path}: {reason}")]
    BadNetrc { path: PathBuf, reason: String },
    #[error(
        "no XNAT {what} for {server}: give it with {hint} (xnatfs asks on the terminal only when stdin is one)"
    )]
    Missing {
        what: &'static str,
        server: String,
        hint: String,
    },
    #[error("reading the {what} from the terminal: {source}")]
    Prompt {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// A server URL as the base of every request: `https://` assumed when no scheme is given,
/// trailing slashes dropped, the path prefix (`/xnat`) kept. A user name in the URL is
/// returned apart; a password in it is refused.
pub fn normalise_server(raw: &str) -> Result<(String, Option<String>), ConfigError> {
    let bad = |reason: &str| ConfigError::BadServer {
        url: raw.to_string(),
        reason: reason.to_string(),
    };
    let text = raw.trim();
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("https://{text}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if url.password().is_some() {
        return Err(bad(
            "a password does not belong in the URL (use XNAT_PASS, ~/.netrc or the prompt)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    let user = (!url.username().is_empty()).then(|| url.username().to_string());
    let _ = url.set_username("");
    Ok((url.as_str().trim_end_matches('/').to_string(), user))
}

/// A pyxnat JSON config: `{"server": …, "user": …, "password": …}` (other keys ignored).
#[derive(Debug, Default, serde::Deserialize)]
struct PyxnatConfig {
    server: Option<String>,
    user: Option<String>,
    password: Option<String>,
}

fn read_config_file(path: &Path) -> Result<PyxnatConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ConfigError::BadConfigFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Login and password for the server's host from a netrc file: `host:port` first when the
/// URL names a port, then `host`, then `default`. A missing file is no error.
fn netrc_entry(path: &Path, server: &str) -> Result<Option<(String, String)>, ConfigError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let netrc: netrc::Netrc = text.parse().map_err(|e: _| ConfigError::BadNetrc {
        path: path.to_path_buf(),
        reason: format!("{e}"),
    })?;
    // The parser takes a keyword at the very end as having an empty value.
    if let Some(last) = text.split_whitespace().last() {
        if ["machine", "login", "password", "account"].contains(&last) {
            return Err(ConfigError::BadNetrc {
                path: path.to_path_buf(),
                reason: format!("it ends with `{last}` and no value after it"),
            });
        }
    }
    let Ok(url) = Url::parse(server) else {
        return Ok(None);
    };
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let mut keys = Vec::new();
    if let Some(port) = url.port() {
        keys.push(format!("{host}:{port}"));
    }
    keys.push(host);
    keys.push("default".to_string());
    for key in keys {
        let found = netrc
            .hosts
            .iter()
            .find(|(machine, _)| machine.eq_ignore_ascii_case(&key));
        if let Some((_, auth)) = found {
            return Ok(Some((auth.login.clone(), auth.password.clone())));
        }
    }
    Ok(None)
}

/// One place a user and/or password may come from.
struct Candidate {
    source: Source,
    user: Option<String>,
    password: Option<String>,
}

/// Find the server and credentials; see the module comment for the order.
/// The server (normalised) and the user its URL names: from the command line, `XNAT_HOST`, or
/// the config file.
fn server_of(
    args: &CredentialArgs,
    env: &Environment,
    file: Option<&PyxnatConfig>,
) -> Result<(String, Option<String>), ConfigError> {
    let raw_server = args
        .server
        .clone()
        .or_else(|| env.var("XNAT_HOST").map(str::to_string))
        .or_else(|| file.and_then(|c| c.server.clone()))
        .filter(|s| !s.trim().is_empty())
        .ok_or(ConfigError::NoServer)?;
    normalise_server(&raw_server)
}

/// The server and user of a mount that logs in with the alias token in `token_file` (no
/// password is looked for): the server as [`resolve`] finds it; the user the token says it
/// logs in as, else `--user`, `XNAT_USER`, the URL's, the config file's or the netrc entry's.
pub fn resolve_for_token(
    args: &CredentialArgs,
    env: &Environment,
    token_file: &Path,
    token: &crate::xnat::token::Token,
) -> Result<Credentials, ConfigError> {
    let file = match &args.config_file {
        Some(path) => Some(read_config_file(path)?),
        None => None,
    };
    let (server, url_user) = server_of(args, env, file.as_ref())?;
    let source = Source::TokenFile(token_file.to_path_buf());
    let netrc_user = || {
        let path = env.netrc_path()?;
        netrc_entry(&path, &server)
            .ok()
            .flatten()
            .map(|(login, _)| login)
    };
    let user = token
        .user
        .clone()
        .or_else(|| args.user.clone())
        .or_else(|| env.var("XNAT_USER").map(str::to_string))
        .or(url_user)
        .or_else(|| file.as_ref().and_then(|c| c.user.clone()))
        .or_else(netrc_user)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ConfigError::Missing {
            what: "user",
            server: server.clone(),
            hint: "a token file written by `xnatfs token` (it names its user), --user NAME or \
                   XNAT_USER"
                .into(),
        })?;
    Ok(Credentials {
        server,
        user,
        password: String::new(),
        user_source: source.clone(),
        password_source: source,
    })
}

pub fn resolve(
    args: &CredentialArgs,
    env: &Environment,
    prompter: &dyn Prompter,
) -> Result<Credentials, ConfigError> {
    let file = match &args.config_file {
        Some(path) => Some((path.clone(), read_config_file(path)?)),
        None => None,
    };
    let (server, url_user) = server_of(args, env, file.as_ref().map(|(_, c)| c))?;

    let mut candidates = vec![
        Candidate {
            source: Source::Flag,
            user: args.user.clone().or(url_user),
            password: None,
        },
        Candidate {
            source: Source::Environment,
            user: env.var("XNAT_USER").map(str::to_string),
            password: env.var("XNAT_PASS").map(str::to_string),
        },
    ];
    if let Some(path) = env.netrc_path() {
        if let Some((login, password)) = netrc_entry(&path, &server)? {
            candidates.push(Candidate {
                source: Source::Netrc(path),
                user: Some(login).filter(|l| !l.is_empty()),
                password: Some(password).filter(|p| !p.is_empty()),
            });
        }
    }
    if let Some((path, config)) = file {
        candidates.push(Candidate {
            source: Source::ConfigFile(path),
            user: config.user.filter(|u| !u.is_empty()),
            password: config.password.filter(|p| !p.is_empty()),
        });
    }

    let mut user: Option<(String, Source)> = None;
    let mut password: Option<(String, Source)> = None;
    for c in candidates {
        if user.is_none() {
            if let Some(u) = &c.user {
                user = Some((u.clone(), c.source.clone()));
            }
        }
        if password.is_none() {
            let matches = match (&c.user, &user) {
                (Some(cu), Some((u, _))) => cu == u,
                _ => true,
            };
            if let (Some(p), true) = (c.password, matches) {
                password = Some((p, c.source));
            }
        }
    }

    let host = Url::parse(&server)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let hint = |what: &str| {
        match what {
        "user" => "--user NAME, XNAT_USER, a netrc entry or --config FILE".to_string(),
        _ => format!(
            "XNAT_PASS, a line `machine {host} login USER password …` in ~/.netrc (or $NETRC), or --config FILE"
        ),
    }
    };
    let (user, user_source) = match user {
        Some(u) => u,
        None if prompter.interactive() => {
            let u = prompter
                .read_user(&server)
                .map_err(|source| ConfigError::Prompt {
                    what: "user",
                    source,
                })?;
            if u.is_empty() {
                return Err(ConfigError::Missing {
                    what: "user",
                    server,
                    hint: hint("user"),
                });
            }
            (u, Source::Prompt)
        }
        None => {
            return Err(ConfigError::Missing {
                what: "user",
                server,
                hint: hint("user"),
            })
        }
    };
    let (password, password_source) = match password {
        Some(p) => p,
        None if prompter.interactive() => {
            let p =
                prompter
                    .read_password(&user, &server)
                    .map_err(|source| ConfigError::Prompt {
                        what: "password",
                        source,
                    })?;
            (p, Source::Prompt)
        }
        None => {
            return Err(ConfigError::Missing {
                what: "password",
                server,
                hint: hint("password"),
            })
        }
    };
    Ok(Credentials {
        server,
        user,
        password,
        user_source,
        password_source,
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
