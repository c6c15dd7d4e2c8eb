//! Session, alias-token and lockout bookkeeping. Sessions and alias tokens
//! outlive a restart, as in XNAT (tokens live in its database; Tomcat's
//! session manager writes sessions out on a clean shutdown and reads them back
//! at start): they are kept in `ROOT/auth.json` (mode 0600), written when a
//! token is issued or invalidated and when the server stops. Lockouts are not.

use crate::store::Store;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the sessions and tokens are kept, under the store's root.
const AUTH_FILE: &str = "auth.json";

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Idle time after which a JSESSION stops working (XNAT's default: 900 s).
    pub session_timeout: Duration,
    /// Lock an account after this many failed logins in a row.
    pub lockout_after: Option<u32>,
    pub lockout_for: Duration,
    /// How long an alias token stays valid (XNAT's default: 48 h).
    pub token_lifetime: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_timeout: Duration::from_secs(900),
            lockout_after: None,
            lockout_for: Duration::from_secs(3600),
            token_lifetime: Duration::from_secs(48 * 3600),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    BadCredentials,
    Locked,
}

struct Session {
    user: String,
    last_seen: Instant,
    last_seen_ms: i64,
}

/// What `auth.json` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// (session id, user, last use in ms since the epoch)
    sessions: Vec<(String, String, i64)>,
    /// (alias, secret, user, created ms, expires ms)
    tokens: Vec<(String, String, String, i64, i64)>,
}

/// The `Instant` of a wall-clock time in ms since the epoch, past or future (now, if a past
/// one lies before what an `Instant` can hold).
fn instant_at_ms(ms: i64) -> Instant {
    let now = crate::model::now_ms();
    let delta = Duration::from_millis(ms.abs_diff(now));
    if ms >= now {
        Instant::now() + delta
    } else {
        Instant::now()
            .checked_sub(delta)
            .unwrap_or_else(Instant::now)
    }
}

#[derive(Debug, Clone)]
pub struct Token {
    pub alias: String,
    pub secret: String,
    pub user: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    expires: Instant,
}

#[derive(Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

pub struct AuthState {
    pub config: AuthConfig,
    store: Arc<Store>,
    sessions: Mutex<HashMap<String, Session>>,
    tokens: Mutex<HashMap<String, Token>>,
    failures: Mutex<HashMap<String, Failures>>,
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..bytes)
        .map(|_| format!("{:02X}", rng.gen::<u8>()))
        .collect()
}

fn uuid() -> String {
    let h = random_hex(16).to_lowercase();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl AuthState {
    /// The bookkeeping of the archive at `store`, with the sessions and tokens it kept.
    pub fn new(config: AuthConfig, store: Arc<Store>) -> AuthState {
        let saved: Saved = std::fs::read(store.root().join(AUTH_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let sessions = saved
            .sessions
            .into_iter()
            .map(|(id, user, ms)| {
                let s = Session {
                    user,
                    last_seen: instant_at_ms(ms),
                    last_seen_ms: ms,
                };
                (id, s)
            })
            .filter(|(_, s)| s.last_seen.elapsed() < config.session_timeout)
            .collect();
        let now = crate::model::now_ms();
        let tokens = saved
            .tokens
            .into_iter()
            .filter(|t| t.4 > now)
            .map(|(alias, secret, user, created_ms, expires_ms)| {
                let t = Token {
                    alias: alias.clone(),
                    secret,
                    user,
                    created_ms,
                    expires_ms,
                    expires: instant_at_ms(expires_ms),
                };
                (alias, t)
            })
            .collect();
        AuthState {
            config,
            store,
            sessions: Mutex::new(sessions),
            tokens: Mutex::new(tokens),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Writes the live sessions and tokens to `auth.json` (temp file, 0600, rename).
    pub fn save(&self) -> std::io::Result<()> {
        let timeout = self.config.session_timeout;
        let saved = Saved {
            sessions: self
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter(|(_, s)| s.last_seen.elapsed() < timeout)
                .map(|(id, s)| (id.clone(), s.user.clone(), s.last_seen_ms))
                .collect(),
            tokens: self
                .tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .map(|t| {
                    let t = t.clone();
                    (t.alias, t.secret, t.user, t.created_ms, t.expires_ms)
                })
                .collect(),
        };
        let root = self.store.root();
        // tempfile creates its files 0600: secrets are never readable by others.
        let mut tmp = tempfile::NamedTempFile::new_in(root.join("tmp"))?;
        tmp.write_all(&serde_json::to_vec(&saved).map_err(std::io::Error::other)?)?;
        tmp.persist(root.join(AUTH_FILE)).map_err(|e| e.error)?;
        Ok(())
    }

    fn save_or_warn(&self) {
        if let Err(e) = self.save() {
            tracing::warn!("cannot keep sessions and tokens in {AUTH_FILE}: {e}");
        }
    }

    /// Checks a username (or token alias) and password (or token secret).
    /// Returns the user name the credentials stand for.
    pub fn login(&self, name: &str, password: &str) -> Result<String, LoginError> {
        if let Some(user) = self.token_user(name, password) {
            return Ok(user);
        }
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let f = failures.entry(name.to_string()).or_default();
        if let Some(until) = f.locked_until {
            if now < until {
                return Err(LoginError::Locked);
            }
            *f = Failures::default();
        }
        let ok = self
            .store
            .read(|a| a.users.get(name).is_some_and(|u| u.password == password));
        if ok {
            f.count = 0;
            return Ok(name.to_string());
        }
        f.count += 1;
        if let Some(n) = self.config.lockout_after {
            if f.count >= n {
                f.locked_until = Some(now + self.config.lockout_for);
            }
        }
        Err(LoginError::BadCredentials)
    }

    pub fn is_admin(&self, user: &str) -> bool {
        self.store
            .read(|a| a.users.get(user).is_some_and(|u| u.admin))
    }

    /// Starts a session and returns its 32-hex id.
    pub fn new_session(&self, user: &str) -> String {
        let id = random_hex(16);
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.len() % 1024 == 1023 {
            // Basic auth starts a session per request (as XNAT does): prune now and then
            let timeout = self.config.session_timeout;
            sessions.retain(|_, s| s.last_seen.elapsed() < timeout);
        }
        sessions.insert(
            id.clone(),
            Session {
                user: user.to_string(),
                last_seen: Instant::now(),
                last_seen_ms: crate::model::now_ms(),
            },
        );
        id
    }

    /// The user of a live session (and marks it used); expired sessions are dropped.
    pub fn session_user(&self, id: &str) -> Option<String> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let s = sessions.get_mut(id)?;
        if s.last_seen.elapsed() >= self.config.session_timeout {
            sessions.remove(id);
            return None;
        }
        s.last_seen = Instant::now();
        s.last_seen_ms = crate::model::now_ms();
        Some(s.user.clone())
    }

    pub fn end_all_sessions(&self) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub fn end_session(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// The `SESSION_EXPIRATION_TIME` cookie value: `"<last access ms>,<timeout ms>"`.
    pub fn expiration_cookie(&self, id: &str) -> String {
        let ms = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|s| s.last_seen_ms)
            .unwrap_or_else(crate::model::now_ms);
        format!(
            "SESSION_EXPIRATION_TIME=\"{},{}\"; Path=/",
            ms,
            self.config.session_timeout.as_millis()
        )
    }

    pub fn issue_token(&self, user: &str) -> Token {
        let now = crate::model::now_ms();
        let life = self.config.token_lifetime;
        let t = Token {
            alias: uuid(),
            secret: random_hex(32).to_lowercase(),
            user: user.to_string(),
            created_ms: now,
            expires_ms: now + life.as_millis() as i64,
            expires: Instant::now() + life,
        };
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(t.alias.clone(), t.clone());
        self.save_or_warn();
        t
    }

    pub fn token_user(&self, alias: &str, secret: &str) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(alias)
            .filter(|t| t.secret == secret && Instant::now() < t.expires)
            .map(|t| t.user.clone())
    }

    pub fn invalidate_token(&self, alias: &str, secret: &str) -> bool {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if tokens.get(alias).is_some_and(|t| t.secret == secret) {
            tokens.remove(alias);
            drop(tokens);
            self.save_or_warn();
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(lockout: Option<u32>, timeout_ms: u64) -> (AuthState, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        store.write(|a| a.add_user("alice", "pw", false)).unwrap();
        let auth = AuthState::new(
            AuthConfig {
                session_timeout: Duration::from_millis(timeout_ms),
                lockout_after: lockout,
                ..Default::default()
            },
            store,
        );
        (auth, dir)
    }

    #[test]
    fn lockout_refuses_right_password() {
        let (s, _dir) = state(Some(2), 1000);
        assert_eq!(s.login("alice", "x"), Err(LoginError::BadCredentials));
        assert_eq!(s.login("alice", "x"), Err(LoginError::BadCredentials));
        assert_eq!(s.login("alice", "pw"), Err(LoginError::Locked));
    }

    #[test]
    fn sessions_expire_and_tokens_work() {
        let (s, _dir) = state(None, 50);
        let id = s.new_session("alice");
        assert_eq!(id.len(), 32);
        assert_eq!(s.session_user(&id).as_deref(), Some("alice"));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(s.session_user(&id), None);
        let t = s.issue_token("alice");
        assert_eq!(s.login(&t.alias, &t.secret).as_deref(), Ok("alice"));
        assert!(s.invalidate_token(&t.alias, &t.secret));
        assert!(s.login(&t.alias, &t.secret).is_err());
    }

    #[test]
    fn sessions_and_tokens_outlive_a_restart() {
        let (s, dir) = state(None, 60_000);
        let id = s.new_session("alice");
        let t = s.issue_token("alice");
        s.save().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let again = AuthState::new(AuthConfig::default(), store);
        assert_eq!(again.session_user(&id).as_deref(), Some("alice"));
        assert_eq!(again.login(&t.alias, &t.secret).as_deref(), Ok("alice"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(AUTH_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "auth.json is private");
    }
}
