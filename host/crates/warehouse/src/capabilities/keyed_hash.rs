//! `carrel:eds/keyed-hash`: HMAC-SHA-256 under per-domain keys that never enter a sandbox.
//!
//! The keys derive from one pseudonymisation secret, `<state-dir>/pseudonym.key` (mode
//! 0600, or `CARREL_PSEUDONYM_KEY` as base64). It is kept apart from the master key on
//! purpose: rotating the master key must not change any pseudonym, or every patient would
//! become a new patient. A component may use only the domains its manifest section grants
//! (`[component.<id>.tool.carrel] keyed_hash_domains = [...]`); any other is
//! `access-denied`.

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../../wit",
        world: "carrel:eds/keyed-hasher",
        imports: { default: trappable },
    });
}

/// The generated interface, for the worlds that import it (the pseudonymiser's).
pub use bindings::carrel::eds::keyed_hash as interface;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker};

type HmacSha256 = Hmac<Sha256>;

pub const PSEUDONYM_KEY_FILE: &str = "pseudonym.key";
pub const PSEUDONYM_KEY_ENV: &str = "CARREL_PSEUDONYM_KEY";

#[derive(Debug, thiserror::Error)]
pub enum KeyedHashError {
    #[error("cannot read or create the pseudonymisation secret {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the pseudonymisation secret ({0}) is not 32 bytes of base64")]
    Malformed(&'static str),
}

/// The secret every domain key derives from.
pub struct PseudonymSecret([u8; 32]);

impl PseudonymSecret {
    /// Loads the secret from the environment, else from the state directory, creating it
    /// there on first use.
    pub fn load_or_create(state_dir: &Path) -> Result<Self, KeyedHashError> {
        use base64::Engine;
        let decode = |text: &str, origin: &'static str| -> Result<Self, KeyedHashError> {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| KeyedHashError::Malformed(origin))?;
            Ok(Self(
                bytes
                    .try_into()
                    .map_err(|_| KeyedHashError::Malformed(origin))?,
            ))
        };
        if let Ok(value) = std::env::var(PSEUDONYM_KEY_ENV)
            && !value.is_empty()
        {
            return decode(&value, PSEUDONYM_KEY_ENV);
        }
        let path = state_dir.join(PSEUDONYM_KEY_FILE);
        let io = |source| KeyedHashError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => decode(&text, PSEUDONYM_KEY_FILE),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).expect("operating system random source");
                let text = base64::engine::general_purpose::STANDARD.encode(key);
                write_private(&path, text.as_bytes()).map_err(io)?;
                tracing::info!(path = %path.display(), "created the pseudonymisation secret");
                Ok(Self(key))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The key of one domain.
    pub fn domain_key(&self, domain: &str) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"carrel keyed-hash v1|");
        mac.update(domain.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The domains one component may hash under, with their keys, computed once per app.
#[derive(Clone, Default)]
pub struct KeyedHashGrants {
    keys: Arc<BTreeMap<String, [u8; 32]>>,
}

impl KeyedHashGrants {
    pub fn new(secret: &PseudonymSecret, domains: &[String]) -> Self {
        Self {
            keys: Arc::new(
                domains
                    .iter()
                    .map(|d| (d.clone(), secret.domain_key(d)))
                    .collect(),
            ),
        }
    }

    /// Lower-case hex HMAC of each item, or `None` when the domain is not granted.
    pub fn hash(&self, domain: &str, items: &[Vec<u8>]) -> Option<Vec<String>> {
        let key = self.keys.get(domain)?;
        let mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        Some(
            items
                .iter()
                .map(|item| {
                    let mut m = mac.clone();
                    m.update(item);
                    // Into a fixed buffer: `hex::encode` builds its String a char at a
                    // time, about 2% of ingestion's time for a million consultations.
                    let mut text = [0u8; 64];
                    hex::encode_to_slice(m.finalize().into_bytes(), &mut text)
                        .expect("a 32-byte digest is 64 hex digits");
                    String::from_utf8(text.to_vec()).expect("hex digits are ASCII")
                })
                .collect(),
        )
    }

    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

struct KeyedHash;

impl HasData for KeyedHash {
    type Data<'a> = &'a KeyedHashGrants;
}

/// Adds `carrel:eds/keyed-hash` to `linker`, answering with the grants `grants` finds in
/// the store's state.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    grants: fn(&mut T) -> &KeyedHashGrants,
) -> wasmtime::Result<()> {
    interface::add_to_linker::<T, KeyedHash>(linker, grants)
}

impl interface::Host for &KeyedHashGrants {
    fn hash(
        &mut self,
        domain: String,
        items: Vec<Vec<u8>>,
    ) -> wasmtime::Result<Result<Vec<String>, interface::Error>> {
        Ok(KeyedHashGrants::hash(self, &domain, &items).ok_or_else(|| {
            tracing::warn!(domain, "keyed-hash domain not granted: access denied");
            interface::Error::AccessDenied(format!(
                "domain `{domain}` is not granted to this component"
            ))
        }))
    }
}

/// The pseudonymisation code run natively (synthetic tries, the ingestion benchmark)
/// hashes with the same grants the pseudonymiser component calls through WIT.
impl carrel_pseudonym::KeyedHasher for KeyedHashGrants {
    type Error = String;
    fn hash(&mut self, domain: &str, items: &[Vec<u8>]) -> Result<Vec<String>, String> {
        KeyedHashGrants::hash(self, domain, items)
            .ok_or_else(|| format!("domain {domain} not granted"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_hash_differently_and_ungranted_domains_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secret = PseudonymSecret::load_or_create(dir.path()).unwrap();
        let grants = KeyedHashGrants::new(&secret, &["patient".into(), "consultation".into()]);
        let a = grants
            .hash("patient", &[b"1850775123456".to_vec()])
            .unwrap();
        let b = grants
            .hash("consultation", &[b"1850775123456".to_vec()])
            .unwrap();
        assert_ne!(a, b);
        assert_eq!(a[0].len(), 64);
        assert!(grants.hash("study:ili", &[b"x".to_vec()]).is_none());
    }

    #[test]
    fn the_secret_persists_so_pseudonyms_are_stable_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = KeyedHashGrants::new(
            &PseudonymSecret::load_or_create(dir.path()).unwrap(),
            &["patient".into()],
        );
        let second = KeyedHashGrants::new(
            &PseudonymSecret::load_or_create(dir.path()).unwrap(),
            &["patient".into()],
        );
        assert_eq!(
            first.hash("patient", &[b"x".to_vec()]),
            second.hash("patient", &[b"x".to_vec()])
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(PSEUDONYM_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
