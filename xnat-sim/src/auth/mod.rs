//! Authentication as XNAT does it (reference §2.7): HTTP Basic on any
//! request, JSESSION cookies with an idle timeout, form login at
//! `/data/services/auth`, alias tokens usable as Basic credentials, the
//! `SESSION_EXPIRATION_TIME` cookie, and an optional failed-login lockout.

pub mod endpoints;
pub mod middleware;
mod sessions;

pub use sessions::{AuthConfig, AuthState, LoginError, Token};
