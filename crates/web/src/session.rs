//! Who is signed in: a session per sign-in, kept in memory and named by a random id in
//! an HttpOnly, SameSite=Strict cookie (Secure when the page came over TLS), with its
//! own CSRF token that every form carries back.
//!
//! A session remembers which token signed it in (its SHA-256); each request checks
//! that the principal still holds that token and still has a role, so a token taken
//! away by SIGHUP ends its sessions at once. A demo session (one click on the sign-in
//! page, only with `--demo`) has no token. Sessions end at sign-out, after
//! [`SESSION_IDLE`] without use, and when Tafel restarts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;
use tafel_contract::PrincipalId;
use tafel_domain::Actor;
use tafel_service::principals::Principals;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tafel_session";
/// The cookie that carries the sign-in form's CSRF token before there is a session.
pub const SIGN_IN_COOKIE: &str = "tafel_signin";
/// A session unused this long ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(8 * 60 * 60);
/// Most sessions held at once; past it the least recently used goes, so that signing
/// in over and over cannot grow memory without bound.
pub const MAX_SESSIONS: usize = 10_000;
/// Most sessions one principal holds at once (browsers, tabs of a workshop); past it
/// its own least recently used session ends.
pub const MAX_SESSIONS_PER_PRINCIPAL: usize = 50;
/// Random bytes in a session id or a CSRF token.
const SECRET_BYTES: usize = 32;

#[derive(Clone, Debug)]
pub struct Session {
    pub principal: PrincipalId,
    /// The SHA-256 of the token that signed in; `None` for a demo session.
    token_sha256: Option<[u8; 32]>,
    /// Every form of this session carries it back.
    pub csrf: String,
    last_used: Instant,
}

impl Session {
    /// Signed in by one click on the demo's sign-in page, without a token.
    pub fn is_demo(&self) -> bool {
        self.token_sha256.is_none()
    }
}

#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session for `principal`; returns its id, for the cookie.
    pub fn start(&self, principal: PrincipalId, token_sha256: Option<[u8; 32]>) -> Option<String> {
        let id = random_secret()?;
        let session = Session { principal, token_sha256, csrf: random_secret()?, last_used: Instant::now() };
        let mut sessions = self.by_id.lock().ok()?;
        sessions.retain(|_, session| session.last_used.elapsed() < SESSION_IDLE);
        // Past its share, a principal's own least recently used session goes, so that
        // signing in over and over pushes out no one else's.
        let theirs = sessions.values().filter(|held| held.principal == session.principal).count();
        let oldest = |sessions: &HashMap<String, Session>, same_principal: bool| {
            sessions
                .iter()
                .filter(|(_, held)| !same_principal || held.principal == session.principal)
                .min_by_key(|(_, held)| held.last_used)
                .map(|(id, _)| id.clone())
        };
        if theirs >= MAX_SESSIONS_PER_PRINCIPAL
            && let Some(oldest) = oldest(&sessions, true)
        {
            sessions.remove(&oldest);
        } else if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = oldest(&sessions, false)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), session);
        Some(id)
    }

    /// The session the request's cookie names, with its principal's actor, if it is
    /// still good (see [`Sessions::by_id`]).
    pub fn find(&self, headers: &HeaderMap, principals: &Principals, demo: bool) -> Option<(Session, Actor)> {
        self.by_id(&cookie(headers, SESSION_COOKIE)?, principals, demo)
    }

    /// Session `id` with its principal's actor, if it is still good: not idle too long,
    /// the principal still known, its token unchanged (demo sessions only while `demo`
    /// holds). A session found no longer good is ended.
    pub fn by_id(&self, id: &str, principals: &Principals, demo: bool) -> Option<(Session, Actor)> {
        let mut sessions = self.by_id.lock().ok()?;
        let session = sessions.get_mut(id)?;
        let actor = principals.actor(session.principal.as_str());
        let token_holds = match &session.token_sha256 {
            Some(sha256) => principals.token_digest_of(&session.principal).is_some_and(|now| now == *sha256),
            None => demo,
        };
        if session.last_used.elapsed() >= SESSION_IDLE || actor.is_none() || !token_holds {
            sessions.remove(id);
            return None;
        }
        session.last_used = Instant::now();
        Some((session.clone(), actor?))
    }

    pub fn end(&self, headers: &HeaderMap) {
        if let (Some(id), Ok(mut sessions)) = (cookie(headers, SESSION_COOKIE), self.by_id.lock()) {
            sessions.remove(&id);
        }
    }
}

/// 32 random bytes as hex.
pub fn random_secret() -> Option<String> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Whether a form's CSRF token is the expected one (compared in constant time).
pub fn csrf_holds(expected: &str, given: Option<&str>) -> bool {
    given.is_some_and(|given| !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes())))
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Whether the page came over TLS (to a proxy in front of Tafel, which says so).
pub fn over_tls(headers: &HeaderMap) -> bool {
    let forwarded = headers.get("x-forwarded-proto").and_then(|value| value.to_str().ok());
    forwarded.is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, the whole site, Secure over TLS;
/// `max_age_s` 0 removes it, `None` keeps it for the browser's session.
pub fn set_cookie(name: &str, value: &str, max_age_s: Option<u64>, tls: bool) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age_s {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if tls {
        cookie.push_str("; Secure");
    }
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name_only() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; tafel_session=abc; tafel_sessionx=no".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "b"), None);
    }

    #[test]
    fn signing_in_again_and_again_pushes_out_only_ones_own_sessions() {
        let sessions = Sessions::default();
        let principals = Principals::default();
        let (acme, rival) = (PrincipalId::parse("acme").unwrap(), PrincipalId::parse("rival").unwrap());
        let theirs = sessions.start(rival.clone(), None).unwrap();
        let first = sessions.start(acme.clone(), None).unwrap();
        for _ in 0..MAX_SESSIONS_PER_PRINCIPAL * 3 {
            sessions.start(acme.clone(), None).unwrap();
        }
        let held = sessions.by_id.lock().unwrap();
        assert_eq!(held.values().filter(|s| s.principal == acme).count(), MAX_SESSIONS_PER_PRINCIPAL);
        assert!(held.contains_key(&theirs), "another principal's session stays");
        assert!(!held.contains_key(&first), "acme's oldest went");
        drop(held);
        // Unknown principals (here: none are known) are not signed in.
        assert!(sessions.by_id(&theirs, &principals, true).is_none());
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        assert!(csrf_holds("abc", Some("abc")));
        assert!(!csrf_holds("abc", Some("abd")));
        assert!(!csrf_holds("abc", Some("")));
        assert!(!csrf_holds("abc", None));
        assert!(!csrf_holds("", Some("")));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_tls() {
        assert_eq!(set_cookie("x", "1", None, false), "x=1; Path=/; HttpOnly; SameSite=Strict");
        assert!(set_cookie("x", "1", Some(0), true).ends_with("; Max-Age=0; Secure"));
    }
}
