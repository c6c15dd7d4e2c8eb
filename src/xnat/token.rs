//! XNAT alias tokens: a pair `alias`/`secret` that logs in as the user who issued it, in place
//! of the password (`GET /data/services/tokens/issue`; used as Basic credentials; 48 h by
//! default, as the site sets it).
//!
//! A token file holds the JSON the server issued (what `xnatfs token` writes: `alias`,
//! `secret`, `xdatUserId`, `estimatedExpirationTime`, …) or one line `alias:secret`. The file is
//! read at every login, so a job that replaces it with a fresh token before the old one expires
//! keeps its mount; it must be private (not readable by group or others) and is never read
//! through a link.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

/// The largest token file read.
const MAX_TOKEN_FILE: u64 = 64 << 10;

/// One alias token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub alias: String,
    pub secret: String,
    /// The user it logs in as, when the file says (`xdatUserId`).
    pub user: Option<String>,
    /// When the server said it expires (`estimatedExpirationTime`).
    pub expires: Option<SystemTime>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("alias", &self.alias)
            .field("secret", &"<redacted>")
            .field("user", &self.user)
            .field("expires", &self.expires)
            .finish()
    }
}

#[derive(Deserialize)]
struct Issued {
    alias: String,
    secret: String,
    #[serde(default, rename = "xdatUserId")]
    user: Option<serde_json::Value>,
    #[serde(default, rename = "estimatedExpirationTime")]
    expires_ms: Option<serde_json::Value>,
}

/// A JSON number or a string of digits.
fn number(v: &serde_json::Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

impl Token {
    /// The token in `text`: the issue answer's JSON, or `alias:secret`.
    pub fn parse(text: &str) -> Result<Token, String> {
        let text = text.trim();
        if text.starts_with('{') {
            let issued: Issued =
                serde_json::from_str(text).map_err(|e| format!("not a token's JSON: {e}"))?;
            if issued.alias.is_empty() || issued.secret.is_empty() {
                return Err("the token's alias or secret is empty".into());
            }
            return Ok(Token {
                alias: issued.alias,
                secret: issued.secret,
                user: issued.user.and_then(|u| match u {
                    serde_json::Value::String(s) if !s.is_empty() => Some(s),
                    _ => None,
                }),
                expires: issued
                    .expires_ms
                    .as_ref()
                    .and_then(number)
                    .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
            });
        }
        let line = text.lines().next().unwrap_or_default().trim();
        match line.split_once(':') {
            Some((alias, secret)) if !alias.is_empty() && !secret.is_empty() => Ok(Token {
                alias: alias.to_string(),
                secret: secret.to_string(),
                user: None,
                expires: None,
            }),
            _ => Err("expected the JSON `xnatfs token` writes, or one line alias:secret".into()),
        }
    }

    /// Read the token in the file at `path`: private, not a link, small.
    pub fn read(path: &Path) -> Result<Token, String> {
        let shown = path.display();
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => format!("token file {shown} is a symbolic link: not read"),
                _ => format!("token file {shown}: {e}"),
            })?;
        let meta = file
            .metadata()
            .map_err(|e| format!("token file {shown}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("token file {shown} is not a file"));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(format!(
                "token file {shown} can be read by other users (mode {:o}): chmod 600 {shown}",
                meta.mode() & 0o777
            ));
        }
        let mut text = String::new();
        file.take(MAX_TOKEN_FILE)
            .read_to_string(&mut text)
            .map_err(|e| format!("token file {shown}: {e}"))?;
        Token::parse(&text).map_err(|e| format!("token file {shown}: {e}"))
    }
}

/// What a session logs in with.
#[derive(Clone)]
pub enum Login {
    /// A user name and password, kept for the session's life.
    Password { user: String, password: String },
    /// An alias token read from a file at each login (a new token put there is used at the
    /// next one).
    TokenFile { path: PathBuf, user: String },
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Login::Password { user, .. } => write!(f, "Password {{ user: {user:?} }}"),
            Login::TokenFile { path, user } => {
                write!(f, "TokenFile {{ path: {path:?}, user: {user:?} }}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn issued_json_and_plain_pairs_parse() {
        let t = Token::parse(
            r#"{"alias":"a1","secret":"s1","xdatUserId":"alice","estimatedExpirationTime":1700000000000,"singleUse":false}"#,
        )
        .unwrap();
        assert_eq!((t.alias.as_str(), t.secret.as_str()), ("a1", "s1"));
        assert_eq!(t.user.as_deref(), Some("alice"));
        assert_eq!(
            t.expires,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        let t = Token::parse("a2:s2\n").unwrap();
        assert_eq!(
            (t.alias.as_str(), t.secret.as_str(), t.user.clone()),
            ("a2", "s2", None)
        );
        assert!(Token::parse("").is_err());
        assert!(Token::parse("no-colon").is_err());
        assert!(Token::parse(r#"{"alias":"","secret":"x"}"#).is_err());
        assert!(
            !format!("{t:?}").contains("s2"),
            "the secret stays out of logs"
        );
    }

    #[test]
    fn a_token_file_must_be_private_and_not_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "a:s").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Token::read(&path).unwrap_err();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Token::read(&path).unwrap().alias, "a");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = Token::read(&link).unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
    }
}
