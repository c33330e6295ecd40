//! The canonical encoding an audit entry's hash is computed over.
//!
//! ```text
//! hash = SHA-256( prev_hash
//!                 || lp("carrel-audit-v1")
//!                 || u64be(seq)
//!                 || lp(time) || lp(actor) || lp(action) || lp(subject)
//!                 || lp(canonical_json(details)) )
//! ```
//!
//! `prev_hash` is the previous entry's hash as its 64 lowercase hex characters (64 `0`s
//! for the first entry); `lp(x)` is `x`'s length as a big-endian u64 followed by its
//! UTF-8 bytes, so no two different entries encode alike; `canonical_json` is compact
//! JSON with object keys sorted by their UTF-8 bytes, strings escaped as serde_json
//! escapes them, numbers as serde_json prints them. Details are canonicalised again when
//! verifying, so a store that reformats JSON text does not break the chain, while any
//! change of value does.

use serde_json::Value;
use sha2::{Digest, Sha256};

pub const GENESIS_PREV_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

const DOMAIN: &str = "carrel-audit-v1";

/// The fields covered by an entry's hash.
pub(crate) struct HashedFields<'a> {
    pub seq: u64,
    pub time: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub details: &'a Value,
}

pub(crate) fn entry_hash(prev_hash: &str, fields: &HashedFields<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    let mut put = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    put(DOMAIN.as_bytes());
    put(fields.time.as_bytes());
    put(fields.actor.as_bytes());
    put(fields.action.as_bytes());
    put(fields.subject.as_bytes());
    put(canonical_json(fields.details).as_bytes());
    // The sequence number is hashed too, so renumbering entries to hide a deletion is an edit.
    hasher.update(fields.seq.to_be_bytes());
    hex::encode(hasher.finalize())
}

/// Compact JSON with object keys sorted, independent of serde_json's map ordering
/// features (another crate in the build may enable `preserve_order`).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(details: &Value) -> HashedFields<'_> {
        HashedFields {
            seq: 1,
            time: "2026-01-01T00:00:00Z",
            actor: "operator",
            action: "key.init",
            subject: "master",
            details,
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let value = json!({"b": 1, "a": {"d": [true, null], "c": "x\"y"}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":"x\"y","d":[true,null]},"b":1}"#
        );
    }

    #[test]
    fn hash_depends_on_every_field_and_the_previous_hash() {
        let details = json!({"rows": 3});
        let base = entry_hash(GENESIS_PREV_HASH, &fields(&details));
        assert_eq!(base.len(), 64);
        let other_details = json!({"rows": 4});
        assert_ne!(base, entry_hash(GENESIS_PREV_HASH, &fields(&other_details)));
        assert_ne!(base, entry_hash(&"1".repeat(64), &fields(&details)));
        let mut renumbered = fields(&details);
        renumbered.seq = 2;
        assert_ne!(base, entry_hash(GENESIS_PREV_HASH, &renumbered));
        let mut shifted = fields(&details);
        shifted.actor = "operatorkey.init";
        shifted.action = "";
        assert_ne!(base, entry_hash(GENESIS_PREV_HASH, &shifted));
    }

    #[test]
    fn key_order_of_details_does_not_change_the_hash() {
        let one: Value = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        let two: Value = serde_json::from_str(r#"{ "b": 2, "a": 1 }"#).unwrap();
        assert_eq!(
            entry_hash(GENESIS_PREV_HASH, &fields(&one)),
            entry_hash(GENESIS_PREV_HASH, &fields(&two))
        );
    }
}
