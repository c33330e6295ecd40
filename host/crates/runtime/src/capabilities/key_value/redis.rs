//! A key-value store in Redis, as Spin's `type = "redis"` keeps it: each key a Redis
//! string under the store's prefix (empty unless the runtime config sets one), listed by
//! `SCAN`. Calls are blocking (the host runs them on tokio's blocking pool) on a small
//! pool of connections; a connection that failed is dropped, not reused.

use super::KeyValueBackend;
use redis::{Commands, Connection};
use std::sync::Mutex;
use std::time::Duration;

/// How long connecting, or any one command, may take.
const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_IDLE_CONNECTIONS: usize = 8;

pub struct RedisStore {
    client: redis::Client,
    prefix: String,
    idle: Mutex<Vec<Connection>>,
}

impl RedisStore {
    /// Connects once (`PING`), so a wrong address or password fails the app's start. Errors
    /// never repeat the URL, which may hold a password.
    pub fn open(url: &str, prefix: &str) -> Result<Self, String> {
        // The kind only: the details of a URL error may quote the URL.
        let client =
            redis::Client::open(url).map_err(|e| format!("invalid Redis URL ({:?})", e.kind()))?;
        let store = Self {
            client,
            prefix: prefix.to_owned(),
            idle: Mutex::new(Vec::new()),
        };
        store.with(|c| redis::cmd("PING").query::<String>(c).map(drop))?;
        Ok(store)
    }

    /// Runs `f` on a pooled connection, returning it to the pool only if `f` succeeded.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, String> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                let c = self
                    .client
                    .get_connection_with_timeout(TIMEOUT)
                    .map_err(|e| format!("cannot connect to Redis: {e}"))?;
                c.set_read_timeout(Some(TIMEOUT))
                    .map_err(|e| e.to_string())?;
                c.set_write_timeout(Some(TIMEOUT))
                    .map_err(|e| e.to_string())?;
                c
            }
        };
        let result = f(&mut conn).map_err(|e| format!("Redis: {e}"))?;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(conn);
        }
        Ok(result)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// `text` as a `SCAN MATCH` pattern that matches it literally.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl KeyValueBackend for RedisStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let key = self.key(key);
        self.with(|c| c.get(&key))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        let key = self.key(key);
        self.with(|c| c.set(&key, value))
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        let key = self.key(key);
        self.with(|c| c.del::<_, i64>(&key).map(drop))
    }

    fn exists(&self, key: &str) -> Result<bool, String> {
        let key = self.key(key);
        self.with(|c| c.exists(&key))
    }

    fn keys(&self) -> Result<Vec<String>, String> {
        let pattern = format!("{}*", glob_escape(&self.prefix));
        let keys: Vec<String> = self.with(|c| c.scan_match::<_, String>(&pattern)?.collect())?;
        let mut keys: Vec<String> = keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&self.prefix).map(str::to_owned))
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_in_a_prefix_match_only_themselves() {
        assert_eq!(glob_escape("app:*[x]?\\"), "app:\\*\\[x\\]\\?\\\\");
        assert_eq!(glob_escape("plain:"), "plain:");
    }

    #[test]
    fn a_redis_store_keeps_keys_under_its_prefix_on_the_real_server() {
        let prefix = format!(
            "carrel-test-kv-{}-{:?}:",
            std::process::id(),
            std::thread::current().id()
        );
        let store = RedisStore::open("redis://127.0.0.1:6379", &prefix).unwrap();
        let other = RedisStore::open("redis://127.0.0.1:6379", &format!("{prefix}other:")).unwrap();
        store.set("a", b"1").unwrap();
        store.set("b*", b"2").unwrap();
        other.set("c", b"3").unwrap();
        assert_eq!(store.get("a").unwrap(), Some(b"1".to_vec()));
        assert!(store.exists("b*").unwrap());
        assert!(!store.exists("c").unwrap());
        // The other store's key sits under this prefix too, with its own inside it: listing
        // shows it as `other:c`, as Spin's prefix-free store would show every key.
        assert_eq!(store.keys().unwrap(), ["a", "b*", "other:c"]);
        assert_eq!(other.keys().unwrap(), ["c"]);
        store.delete("a").unwrap();
        store.delete("b*").unwrap();
        other.delete("c").unwrap();
        assert_eq!(store.get("a").unwrap(), None);
        assert!(store.keys().unwrap().is_empty());
    }

    #[test]
    fn a_redis_store_that_cannot_connect_fails_at_open_without_quoting_the_url() {
        let err = RedisStore::open("redis://:s3cret@127.0.0.1:1", "")
            .err()
            .unwrap();
        assert!(err.contains("cannot connect"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
