//! The XNAT session: log in once with Basic auth, then send only the `JSESSIONID` cookie.
//!
//! Every Basic-auth request makes XNAT create a server session, so the password is sent
//! only by `POST /data/JSESSION`. A 401 later means the session expired: the request loop
//! asks for one re-login and replays. Logins are single-flight (concurrent 401s share one
//! re-login, tracked by a generation number), and a refused login poisons the session: it
//! never sends that password again, because XNAT locks accounts after a few failures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_LENGTH, COOKIE, SET_COOKIE};
use reqwest::Url;

use super::error::{Result, XnatError};
use super::http::{error_detail, error_message};
use super::paths;
use super::retry::{self, Failure, RetryPolicy, Verdict};
use super::token::{Login, Token};

/// A live session.
struct Live {
    /// The `Cookie` header value: `JSESSIONID=…` plus any other cookie the login set
    /// (e.g. a load balancer's).
    cookie: String,
    generation: u64,
    /// How long the server keeps an idle session, from `SESSION_EXPIRATION_TIME`.
    idle_limit: Option<Duration>,
    last_used: Instant,
}

impl Live {
    /// True when the server has probably dropped the session for idleness.
    fn idle_expired(&self) -> bool {
        self.idle_limit.is_some_and(|limit| {
            let margin = (limit / 10).min(Duration::from_secs(30));
            self.last_used.elapsed() + margin >= limit
        })
    }
}

enum AuthState {
    /// Not logged in (before the first login, after logout).
    None,
    Active(Live),
    /// The server refused the credentials: never try them again.
    Refused,
}

/// One user's session with one server, shared by all clones of a client.
pub(crate) struct Session {
    http: reqwest::Client,
    /// `…/data/JSESSION` on the server.
    url: Url,
    server: String,
    /// The user, for messages (with a token, the user it logs in as).
    user: String,
    login: Login,
    /// The alias of a token the server refused: a new token in the file may be tried.
    refused_alias: Mutex<Option<String>>,
    /// Retries of a re-login (the first login has its own, shorter policy).
    retry: RetryPolicy,
    /// Log in again before a request once the session has surely expired for idleness.
    proactive_relogin: bool,
    state: Mutex<AuthState>,
    login_lock: tokio::sync::Mutex<()>,
    generations: AtomicU64,
}

/// `name=value` pairs of `Set-Cookie` header values (attributes dropped).
pub(crate) fn parse_set_cookies<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Vec<(String, String)> {
    values
        .into_iter()
        .filter_map(|v| {
            let pair = v.split(';').next()?.trim();
            let (name, value) = pair.split_once('=')?;
            let name = name.trim();
            (!name.is_empty()).then(|| (name.to_string(), value.trim().to_string()))
        })
        .collect()
}

/// The `Cookie` header for a new session: every cookie the login set (empty values and
/// `SESSION_EXPIRATION_TIME` left out), or else `JSESSIONID=<body>` when the body is a bare
/// session id. `None` if there is no session id at all.
pub(crate) fn session_cookie_header(cookies: &[(String, String)], body: &str) -> Option<String> {
    let keep: Vec<String> = cookies
        .iter()
        .filter(|(n, v)| !v.is_empty() && n != "SESSION_EXPIRATION_TIME")
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    if cookies
        .iter()
        .any(|(n, v)| n == "JSESSIONID" && !v.is_empty())
    {
        return Some(keep.join("; "));
    }
    let id = body.trim();
    let looks_like_id = (16..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    looks_like_id.then(|| {
        let mut all = vec![format!("JSESSIONID={id}")];
        all.extend(keep);
        all.join("; ")
    })
}

/// The idle lifetime in `SESSION_EXPIRATION_TIME="<ms timestamp>,<interval ms>"`.
pub(crate) fn expiration_interval(cookies: &[(String, String)]) -> Option<Duration> {
    let (_, value) = cookies
        .iter()
        .find(|(n, _)| n == "SESSION_EXPIRATION_TIME")?;
    let value = value.trim_matches('"');
    let (_, interval) = value.split_once(',')?;
    let ms: u64 = interval.trim().parse().ok()?;
    (ms > 0).then(|| Duration::from_millis(ms))
}

impl Session {
    pub(crate) fn new(
        http: reqwest::Client,
        server: &str,
        login: Login,
        retry: RetryPolicy,
        proactive_relogin: bool,
    ) -> Result<Session> {
        let url = Url::parse(&format!("{server}{}", paths::jsession())).map_err(|e| {
            XnatError::BadServerUrl {
                url: server.to_string(),
                reason: e.to_string(),
            }
        })?;
        Ok(Session {
            http,
            url,
            server: server.to_string(),
            user: match &login {
                Login::Password { user, .. } | Login::TokenFile { user, .. } => user.clone(),
            },
            login,
            refused_alias: Mutex::new(None),
            retry,
            proactive_relogin,
            state: Mutex::new(AuthState::None),
            login_lock: tokio::sync::Mutex::new(()),
            generations: AtomicU64::new(1),
        })
    }

    pub(crate) fn user(&self) -> &str {
        &self.user
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The Basic credentials of a login: the password, or the token in the file now.
    fn basic(&self) -> Result<(String, String)> {
        match &self.login {
            Login::Password { user, password } => Ok((user.clone(), password.clone())),
            Login::TokenFile { path, .. } => {
                let token = Token::read(path).map_err(|message| XnatError::BadToken { message })?;
                Ok((token.alias, token.secret))
            }
        }
    }

    /// After a refusal: whether the token file now holds another token, worth one login.
    fn new_token_since_refusal(&self) -> bool {
        let Login::TokenFile { path, .. } = &self.login else {
            return false;
        };
        let refused = self
            .refused_alias
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Token::read(path).is_ok_and(|t| Some(t.alias) != refused)
    }

    fn bad_credentials(&self) -> XnatError {
        XnatError::BadCredentials {
            server: self.server.clone(),
            user: self.user.clone(),
        }
    }

    /// The first login, at connect time, with its own retry policy.
    pub(crate) async fn first_login(&self, policy: &RetryPolicy) -> Result<()> {
        let _guard = self.login_lock.lock().await;
        let session = self.login(policy).await?;
        *self.lock() = AuthState::Active(session);
        Ok(())
    }

    /// One login: Basic auth on `POST /data/JSESSION`. Connection errors and 5xx are retried
    /// within `policy`; a 401 or 403 is final and poisons the session.
    async fn login(&self, policy: &RetryPolicy) -> Result<Live> {
        let what = format!("login at {}", self.url);
        retry::run(policy, &what, |attempts| self.login_once(attempts)).await
    }

    async fn login_once(&self, attempts: u32) -> Result<Live, Failure> {
        let url_text = self.url.to_string();
        let (name, secret) = self.basic().map_err(Failure::Final)?;
        let sent = self
            .http
            .post(self.url.clone())
            .basic_auth(&name, Some(&secret))
            .header(CONTENT_LENGTH, 0)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => {
                let error = if e.is_connect() {
                    XnatError::Unreachable {
                        method: "POST".into(),
                        url: url_text,
                        attempts,
                        detail: error_detail(&e),
                    }
                } else if e.is_timeout() {
                    XnatError::Timeout {
                        method: "POST".into(),
                        url: url_text,
                        attempts,
                    }
                } else {
                    XnatError::Network {
                        method: "POST".into(),
                        url: url_text,
                        attempts,
                        detail: error_detail(&e),
                    }
                };
                return Err(Failure::Transient {
                    reason: error_detail(&e),
                    error,
                    after: None,
                });
            }
        };
        let status = resp.status().as_u16();
        match (status, retry::verdict(status)) {
            (_, Verdict::Success) => self.session_from(resp, &url_text).await.map_err(Failure::Final),
            (401 | 403, _) => {
                *self.lock() = AuthState::Refused;
                if let Login::TokenFile { path, .. } = &self.login {
                    tracing::error!(
                        "the token in {} was refused (expired or invalidated): put a new one \
                         there (`xnatfs token`); it is used at the next request",
                        path.display()
                    );
                    *self.refused_alias.lock().unwrap_or_else(|p| p.into_inner()) = Some(name);
                }
                Err(Failure::Final(self.bad_credentials()))
            }
            (404, _) => Err(Failure::Final(XnatError::protocol(
                &url_text,
                "no XNAT REST API here (POST /data/JSESSION answered 404): check the server URL and its path prefix",
            ))),
            (_, Verdict::Retry) => {
                let message = error_message(resp).await;
                Err(Failure::Transient {
                    reason: format!("server error {status}"),
                    error: XnatError::RetriesExhausted {
                        method: "POST".into(),
                        url: url_text,
                        attempts,
                        status,
                        message,
                    },
                    after: None,
                })
            }
            _ => {
                let message = error_message(resp).await;
                Err(Failure::Final(XnatError::from_status(
                    "POST", &url_text, status, message,
                )))
            }
        }
    }

    async fn session_from(&self, resp: reqwest::Response, url: &str) -> Result<Live> {
        let cookies = parse_set_cookies(
            resp.headers()
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        let body = resp.text().await.unwrap_or_default();
        let cookie = session_cookie_header(&cookies, &body).ok_or_else(|| {
            XnatError::protocol(url, "the login succeeded but gave no JSESSIONID session")
        })?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        tracing::info!(server = %self.server, user = %self.user, generation, "logged in to XNAT");
        Ok(Live {
            cookie,
            generation,
            idle_limit: expiration_interval(&cookies),
            last_used: Instant::now(),
        })
    }

    /// The cookie to send and the session generation it belongs to, logging in again first
    /// if there is no session or it has surely expired.
    pub(crate) async fn cookie(&self) -> Result<(String, u64)> {
        for _ in 0..2 {
            let stale_generation = {
                let state = self.lock();
                match &*state {
                    AuthState::Refused if !self.new_token_since_refusal() => {
                        return Err(self.bad_credentials())
                    }
                    AuthState::Refused => 0,
                    AuthState::Active(s) if !(self.proactive_relogin && s.idle_expired()) => {
                        return Ok((s.cookie.clone(), s.generation))
                    }
                    AuthState::Active(s) => s.generation,
                    AuthState::None => 0,
                }
            };
            self.relogin(stale_generation).await?;
        }
        Err(XnatError::Unauthorized {
            method: "POST".into(),
            url: self.url.to_string(),
        })
    }

    /// Log in again unless another task already replaced session `seen` meanwhile.
    pub(crate) async fn relogin(&self, seen: u64) -> Result<()> {
        let _guard = self.login_lock.lock().await;
        match &*self.lock() {
            AuthState::Refused if !self.new_token_since_refusal() => {
                return Err(self.bad_credentials())
            }
            AuthState::Active(s) if s.generation != seen && !s.idle_expired() => return Ok(()),
            _ => {}
        }
        let session = self.login(&self.retry).await?;
        *self.lock() = AuthState::Active(session);
        Ok(())
    }

    /// How often a heartbeat keeps the session alive, as xnatpy does: `max(limit/2 - 20 s,
    /// 10 s)` for the idle limit the server announced; `None` before a login, or when the
    /// server announced none.
    pub(crate) fn heartbeat_every(&self) -> Option<Duration> {
        match &*self.lock() {
            AuthState::Active(s) => s.idle_limit.map(|limit| {
                (limit / 2)
                    .saturating_sub(Duration::from_secs(20))
                    .max(Duration::from_secs(10))
            }),
            _ => None,
        }
    }

    /// How long the session has gone without a request.
    pub(crate) fn idle_for(&self) -> Option<Duration> {
        match &*self.lock() {
            AuthState::Active(s) => Some(s.last_used.elapsed()),
            _ => None,
        }
    }

    /// Note that session `generation` was just used successfully.
    pub(crate) fn touch(&self, generation: u64) {
        if let AuthState::Active(s) = &mut *self.lock() {
            if s.generation == generation {
                s.last_used = Instant::now();
            }
        }
    }

    /// End the session (`DELETE /data/JSESSION`). A later request would log in again.
    pub(crate) async fn logout(&self) -> Result<()> {
        let _guard = self.login_lock.lock().await;
        let cookie = {
            let mut state = self.lock();
            match &*state {
                AuthState::Active(s) => {
                    let cookie = s.cookie.clone();
                    *state = AuthState::None;
                    cookie
                }
                AuthState::Refused | AuthState::None => return Ok(()),
            }
        };
        let url = self.url.clone();
        let resp = self
            .http
            .delete(url.clone())
            .header(COOKIE, cookie)
            .send()
            .await
            .map_err(|e| XnatError::Network {
                method: "DELETE".into(),
                url: url.to_string(),
                attempts: 1,
                detail: error_detail(&e),
            })?;
        let status = resp.status().as_u16();
        // 401: the session had expired already, which is what logging out wants.
        if resp.status().is_success() || status == 401 {
            tracing::info!(server = %self.server, "logged out of XNAT");
            Ok(())
        } else {
            let message = error_message(resp).await;
            Err(XnatError::from_status(
                "DELETE",
                url.as_str(),
                status,
                message,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_values_are_parsed() {
        let c = parse_set_cookies([
            "JSESSIONID=3940FAAC4CB8DD368A9A1575372ECBBA; Path=/; HttpOnly",
            "SESSION_EXPIRATION_TIME=\"1668081619871,900000\"; Version=1; Path=/",
            "AWSALB=abc==; Expires=Thu, 01 Jan 2099 00:00:00 GMT",
            "junk",
            "=novalue",
        ]);
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0],
            (
                "JSESSIONID".into(),
                "3940FAAC4CB8DD368A9A1575372ECBBA".into()
            )
        );
        assert_eq!(c[2], ("AWSALB".into(), "abc==".into()));
        assert_eq!(
            session_cookie_header(&c, "ignored").as_deref(),
            Some("JSESSIONID=3940FAAC4CB8DD368A9A1575372ECBBA; AWSALB=abc==")
        );
        assert_eq!(expiration_interval(&c), Some(Duration::from_secs(900)));
    }

    #[test]
    fn session_id_from_body_when_no_cookie() {
        assert_eq!(
            session_cookie_header(&[], "3940FAAC4CB8DD368A9A1575372ECBBA\n").as_deref(),
            Some("JSESSIONID=3940FAAC4CB8DD368A9A1575372ECBBA")
        );
        assert_eq!(session_cookie_header(&[], "<html>login</html>"), None);
        assert_eq!(session_cookie_header(&[], ""), None);
        let deleted = vec![("JSESSIONID".to_string(), String::new())];
        assert_eq!(session_cookie_header(&deleted, ""), None);
    }

    #[test]
    fn expiration_interval_edge_cases() {
        let c = |v: &str| vec![("SESSION_EXPIRATION_TIME".to_string(), v.to_string())];
        assert_eq!(
            expiration_interval(&c("1,2000")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(expiration_interval(&c("\"1,0\"")), None);
        assert_eq!(expiration_interval(&c("garbage")), None);
        assert_eq!(expiration_interval(&[]), None);
    }

    #[test]
    fn idle_expiry_has_a_margin() {
        let s = Live {
            cookie: String::new(),
            generation: 1,
            idle_limit: Some(Duration::from_secs(900)),
            last_used: Instant::now() - Duration::from_secs(875),
        };
        assert!(s.idle_expired());
        let fresh = Live {
            last_used: Instant::now(),
            ..s
        };
        assert!(!fresh.idle_expired());
        let unlimited = Live {
            idle_limit: None,
            ..fresh
        };
        assert!(!unlimited.idle_expired());
    }
}
