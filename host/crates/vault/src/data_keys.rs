//! Per-dataset, per-column-group data keys, stored wrapped (AES-256-GCM under the master
//! key) in the catalog. The wrapping's associated data binds key id, dataset and group,
//! so a wrapped key copied onto another row does not unwrap.

use std::collections::HashMap;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::catalog::now_rfc3339;
use crate::crypto::{SecretKey, associated_data, open_blob, random_id, seal_blob};
use crate::error::{Result, VaultError};

const WRAP_DOMAIN: &str = "carrel-vault/data-key/v1";

fn wrap_associated_data(key_id: &str, dataset: &str, group: &str) -> Vec<u8> {
    associated_data(
        WRAP_DOMAIN,
        &[key_id.as_bytes(), dataset.as_bytes(), group.as_bytes()],
    )
}

/// The active key id for a group, if one was generated yet.
pub(crate) fn active_key_id(
    conn: &Connection,
    dataset: &str,
    group: &str,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT key_id FROM data_keys WHERE dataset = ?1 AND group_name = ?2 AND state = 'active'")?
        .query_row(params![dataset, group], |row| row.get(0))
        .optional()?)
}

/// Generates a group's active data key and stores it wrapped. Runs inside the caller's
/// transaction, so a key exists only if what first needed it was committed.
pub(crate) fn create_active_key(
    conn: &Connection,
    master: &SecretKey,
    dataset: &str,
    group: &str,
) -> Result<(String, SecretKey)> {
    let key_id = format!("dk-{}", random_id());
    let key = SecretKey::generate();
    let wrapped = seal_blob(
        master,
        &wrap_associated_data(&key_id, dataset, group),
        key.as_bytes(),
    );
    conn.execute(
        "INSERT INTO data_keys (key_id, dataset, group_name, state, wrapped, created)
         VALUES (?1, ?2, ?3, 'active', ?4, ?5)",
        params![key_id, dataset, group, wrapped, now_rfc3339()],
    )?;
    tracing::debug!(dataset, group, "generated a data key");
    Ok((key_id, key))
}

/// A data key as unwrapped from the catalog, with what it may encrypt.
pub(crate) struct UnwrappedKey {
    pub dataset: String,
    pub group: String,
    pub key: SecretKey,
}

fn unwrap_row(
    master: &SecretKey,
    key_id: &str,
    dataset: String,
    group: String,
    wrapped: &[u8],
) -> Result<UnwrappedKey> {
    let plaintext = open_blob(
        master,
        &wrap_associated_data(key_id, &dataset, &group),
        wrapped,
    )
    .map_err(|_| {
        VaultError::CatalogCorrupt(format!(
            "a data key of dataset `{dataset}` group `{group}` does not unwrap under the master key"
        ))
    })?;
    let key = SecretKey::from_slice(&plaintext).ok_or_else(|| {
        VaultError::CatalogCorrupt(format!(
            "a data key of dataset `{dataset}` has the wrong length"
        ))
    })?;
    Ok(UnwrappedKey {
        dataset,
        group,
        key,
    })
}

pub(crate) fn unwrap_key(
    conn: &Connection,
    master: &SecretKey,
    key_id: &str,
) -> Result<Option<UnwrappedKey>> {
    let row = conn
        .prepare_cached("SELECT dataset, group_name, wrapped FROM data_keys WHERE key_id = ?1")?
        .query_row([key_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Vec<u8>>(2)?,
            ))
        })
        .optional()?;
    row.map(|(dataset, group, wrapped)| unwrap_row(master, key_id, dataset, group, &wrapped))
        .transpose()
}

/// Rewraps every data key from `old` to `new` master key; returns how many.
pub(crate) fn rewrap_all(conn: &Connection, old: &SecretKey, new: &SecretKey) -> Result<u64> {
    let rows: Vec<(String, String, String, Vec<u8>)> = conn
        .prepare("SELECT key_id, dataset, group_name, wrapped FROM data_keys")?
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = conn.prepare("UPDATE data_keys SET wrapped = ?2 WHERE key_id = ?1")?;
    for (key_id, dataset, group, wrapped) in &rows {
        let unwrapped = unwrap_row(old, key_id, dataset.clone(), group.clone(), wrapped)?;
        let rewrapped = seal_blob(
            new,
            &wrap_associated_data(key_id, dataset, group),
            unwrapped.key.as_bytes(),
        );
        update.execute(params![key_id, rewrapped])?;
    }
    Ok(rows.len() as u64)
}

/// Unwrapped data keys by key id, so a scan or append does not unwrap per segment.
/// Emptied by rotation; entries are wiped when dropped.
#[derive(Default)]
pub(crate) struct DataKeyCache {
    keys: Mutex<HashMap<String, (String, String, SecretKey)>>,
}

impl DataKeyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, String, SecretKey)>> {
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn insert(&self, key_id: &str, dataset: &str, group: &str, key: SecretKey) {
        self.lock().insert(
            key_id.to_owned(),
            (dataset.to_owned(), group.to_owned(), key),
        );
    }

    /// The key for `key_id`, which must belong to `dataset` and `group`.
    pub(crate) fn get(
        &self,
        conn: &Connection,
        master: &SecretKey,
        key_id: &str,
        dataset: &str,
        group: &str,
    ) -> Result<Option<SecretKey>> {
        let cached = self
            .lock()
            .get(key_id)
            .map(|(d, g, key)| (d.clone(), g.clone(), key.clone()));
        let (owner_dataset, owner_group, key) = match cached {
            Some(entry) => entry,
            None => {
                let Some(unwrapped) = unwrap_key(conn, master, key_id)? else {
                    return Ok(None);
                };
                self.insert(
                    key_id,
                    &unwrapped.dataset,
                    &unwrapped.group,
                    unwrapped.key.clone(),
                );
                (unwrapped.dataset, unwrapped.group, unwrapped.key)
            }
        };
        // A key of another dataset or group is never handed out, whatever a header says.
        Ok((owner_dataset == dataset && owner_group == group).then_some(key))
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    fn catalog_with_dataset() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = catalog::open_connection(dir.path()).unwrap();
        catalog::migrate(&conn).unwrap();
        conn.execute(
            "INSERT INTO datasets (name, current_version, created) VALUES ('d', 1, 'now')",
            [],
        )
        .unwrap();
        (dir, conn)
    }

    #[test]
    fn created_key_unwraps_to_the_same_key_and_only_for_its_group() {
        let (_dir, conn) = catalog_with_dataset();
        let master = SecretKey::generate();
        let (key_id, key) = create_active_key(&conn, &master, "d", "clinical").unwrap();
        assert_eq!(
            active_key_id(&conn, "d", "clinical").unwrap().as_deref(),
            Some(key_id.as_str())
        );
        let cache = DataKeyCache::default();
        assert_eq!(
            cache.get(&conn, &master, &key_id, "d", "clinical").unwrap(),
            Some(key)
        );
        assert_eq!(
            cache
                .get(&conn, &master, &key_id, "d", "demographics")
                .unwrap(),
            None
        );
    }

    #[test]
    fn wrapped_key_moved_to_another_group_does_not_unwrap() {
        let (_dir, conn) = catalog_with_dataset();
        let master = SecretKey::generate();
        let (key_id, _) = create_active_key(&conn, &master, "d", "clinical").unwrap();
        conn.execute(
            "UPDATE data_keys SET group_name = 'demographics' WHERE key_id = ?1",
            [&key_id],
        )
        .unwrap();
        assert!(matches!(
            unwrap_key(&conn, &master, &key_id),
            Err(VaultError::CatalogCorrupt(_))
        ));
    }

    #[test]
    fn rewrapped_keys_unwrap_under_the_new_master_only() {
        let (_dir, conn) = catalog_with_dataset();
        let old = SecretKey::generate();
        let new = SecretKey::generate();
        let (key_id, key) = create_active_key(&conn, &old, "d", "clinical").unwrap();
        assert_eq!(rewrap_all(&conn, &old, &new).unwrap(), 1);
        assert_eq!(unwrap_key(&conn, &new, &key_id).unwrap().unwrap().key, key);
        assert!(unwrap_key(&conn, &old, &key_id).is_err());
    }
}
