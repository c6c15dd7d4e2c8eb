//! Session, alias-token and lockout bookkeeping (in memory: a restart logs everyone out).

use crate::store::Store;
use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    pub fn new(config: AuthConfig, store: Arc<Store>) -> AuthState {
        AuthState {
            config,
            store,
            sessions: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
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
}
