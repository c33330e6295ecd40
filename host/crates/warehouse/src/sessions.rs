//! Server-side sessions of the host's pages.
//!
//! Logging in with a token creates a session: a random 256-bit id, sent as the cookie
//! and kept here only as its SHA-256, tied to the token's id and role, with an expiry.
//! The cookie carries no token, so a stolen cookie is worth one session and no API call.
//! A session ends at logout, at its expiry, when its token is revoked (checked on every
//! request, so a revocation made by `carrel tokens revoke` in another process counts at
//! once), and when the host restarts. Memory is bounded: [`MAX_SESSIONS`] in all and
//! [`MAX_PER_TOKEN`] per token, the oldest ended first.

use crate::tokens::Role;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sessions kept in all.
pub const MAX_SESSIONS: usize = 4096;
/// Sessions kept per token: logging in again past it ends the oldest.
pub const MAX_PER_TOKEN: usize = 16;
/// How long a session lasts by default.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// What a live session stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_id: String,
    pub role: Role,
    /// A reference to the session for the audit log: the first 16 hex digits of the
    /// SHA-256 of its id (never the id itself).
    pub reference: String,
    created: Instant,
    expires: Instant,
}

/// Why a cookie opened no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSession {
    /// No session has this id (never had, ended, or the host restarted).
    Unknown,
    /// It had one, which expired just now.
    Expired,
}

#[derive(Debug)]
pub struct SessionStore {
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    lifetime: Mutex<Duration>,
}

impl Default for SessionStore {
    fn default() -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            lifetime: Mutex::new(DEFAULT_LIFETIME),
        }
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl SessionStore {
    pub fn set_lifetime(&self, lifetime: Duration) {
        *self.lifetime.lock().unwrap_or_else(|p| p.into_inner()) = lifetime;
    }

    pub fn lifetime(&self) -> Duration {
        *self.lifetime.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session for the token `token_id` of `role`; returns its id (the cookie's
    /// value) and the session.
    pub fn create(&self, token_id: &str, role: Role) -> (String, Session) {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).expect("operating system random source");
        let id = hex::encode(random);
        let key = digest(&id);
        let now = Instant::now();
        let session = Session {
            token_id: token_id.to_owned(),
            role,
            reference: hex::encode(&key[..8]),
            created: now,
            expires: now + self.lifetime(),
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.expires > now);
        let of_token = sessions.values().filter(|s| s.token_id == token_id).count();
        if of_token >= MAX_PER_TOKEN {
            oldest_out(&mut sessions, |s| s.token_id == token_id);
        }
        if sessions.len() >= MAX_SESSIONS {
            oldest_out(&mut sessions, |_| true);
        }
        sessions.insert(key, session.clone());
        (id, session)
    }

    /// The live session of `id`.
    pub fn get(&self, id: &str) -> Result<Session, NoSession> {
        let key = digest(id);
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match sessions.get(&key) {
            None => Err(NoSession::Unknown),
            Some(s) if s.expires <= Instant::now() => {
                sessions.remove(&key);
                Err(NoSession::Expired)
            }
            Some(s) => Ok(s.clone()),
        }
    }

    /// Ends the session of `id`; returns it if it was live.
    pub fn end(&self, id: &str) -> Option<Session> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .remove(&digest(id))
            .filter(|s| s.expires > Instant::now())
    }

    /// Ends every session of the token `token_id` (it was revoked); returns how many.
    pub fn end_token(&self, token_id: &str) -> usize {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let before = sessions.len();
        sessions.retain(|_, s| s.token_id != token_id);
        before - sessions.len()
    }

    pub fn len(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn oldest_out(sessions: &mut HashMap<[u8; 32], Session>, which: impl Fn(&Session) -> bool) {
    if let Some(key) = sessions
        .iter()
        .filter(|(_, s)| which(s))
        .min_by_key(|(_, s)| s.created)
        .map(|(k, _)| *k)
    {
        sessions.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lives_until_logout_or_expiry_and_its_id_is_not_kept() {
        let store = SessionStore::default();
        let (id, session) = store.create("ab12", Role::Auditor);
        assert_eq!(id.len(), 64);
        assert_eq!(store.get(&id).unwrap(), session);
        assert_eq!(store.get("nope"), Err(NoSession::Unknown));
        assert!(
            !format!("{:?}", store.sessions.lock().unwrap()).contains(&id),
            "only the hash of the id is kept"
        );
        assert_eq!(store.end(&id).map(|s| s.token_id), Some("ab12".into()));
        assert_eq!(store.get(&id), Err(NoSession::Unknown));
        store.set_lifetime(Duration::from_millis(1));
        let (short, _) = store.create("ab12", Role::Auditor);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(store.get(&short), Err(NoSession::Expired));
    }

    #[test]
    fn sessions_are_bounded_per_token_and_end_with_their_token() {
        let store = SessionStore::default();
        let ids: Vec<String> = (0..MAX_PER_TOKEN + 3)
            .map(|_| store.create("ab12", Role::Researcher).0)
            .collect();
        assert_eq!(store.len(), MAX_PER_TOKEN);
        assert_eq!(store.get(&ids[0]), Err(NoSession::Unknown), "oldest ended");
        assert!(store.get(ids.last().unwrap()).is_ok());
        let (other, _) = store.create("cd34", Role::Researcher);
        assert_eq!(store.end_token("ab12"), MAX_PER_TOKEN);
        assert!(store.get(&other).is_ok());
    }
}
