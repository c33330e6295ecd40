//! AES-256-GCM primitives shared by key wrapping, the key-check value and segment
//! encryption. Every ciphertext carries associated data that says what it is, so a
//! ciphertext copied into another role fails authentication instead of decrypting.
//!
//! The cipher is ring's AES-256-GCM: on this project's x86-64 hosts (AES-NI, VAES,
//! VPCLMULQDQ) it runs at about 10 GB/s per core against about 1.5 GB/s for the
//! RustCrypto `aes-gcm` crate, and segment scans are bound by decryption (BENCHMARKS.md).
//! The format is plain AES-256-GCM (96-bit nonce, 128-bit tag appended), whichever
//! implementation produced it.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, ZeroizeOnDrop};

pub(crate) const KEY_LEN: usize = 32;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;

/// A 256-bit AES key (master or data key), wiped from memory when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub(crate) struct SecretKey([u8; KEY_LEN]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    pub(crate) fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        fill_random(&mut bytes);
        Self(bytes)
    }

    /// Takes the key out of `bytes` if it has the right length; the caller wipes its copy.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let array: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Self(array))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn cipher(&self) -> LessSafeKey {
        // Only fails for a key of the wrong length, which the type rules out.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).expect("AES-256 key is 32 bytes"))
    }

    /// Encrypts `buffer` in place (appending the tag) under a fresh random nonce.
    pub(crate) fn seal(&self, associated_data: &[u8], buffer: &mut Vec<u8>) -> [u8; NONCE_LEN] {
        let nonce = random_nonce();
        self.cipher()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data),
                buffer,
            )
            // Only fails when the plaintext exceeds GCM's 64 GiB limit, which no segment
            // group or key can reach (segments hold one append batch).
            .expect("AES-GCM plaintext within the 64 GiB limit");
        nonce
    }

    /// Decrypts `buffer` (ciphertext followed by tag) in place, leaving the plaintext; on
    /// failure the buffer content is unspecified and must be discarded.
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        associated_data: &[u8],
        buffer: &mut Vec<u8>,
    ) -> Result<(), AuthenticationFailed> {
        let plaintext_len = self
            .cipher()
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(associated_data),
                buffer,
            )
            .map_err(|_| AuthenticationFailed)?
            .len();
        buffer.truncate(plaintext_len);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AuthenticationFailed;

/// Fills `bytes` from the operating system's random number generator.
fn fill_random(bytes: &mut [u8]) {
    // The OS generator failing (no getrandom, no /dev/urandom) is a broken host on which
    // no key or nonce may be made; there is nothing safe to fall back to.
    SystemRandom::new()
        .fill(bytes)
        .expect("operating system random number generator");
}

pub(crate) fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    nonce
}

/// 128 random bits as lowercase hex: segment ids and data key ids. Random rather than
/// sequential so an id reveals nothing about volumes or order.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    hex::encode(bytes)
}

/// Associated data: a domain label, then each field as a big-endian u64 length and its
/// bytes. Length prefixes make the encoding injective, so no two field lists collide.
pub(crate) fn associated_data(domain: &str, fields: &[&[u8]]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(domain.len() + 8 + fields.iter().map(|f| f.len() + 8).sum::<usize>());
    for field in std::iter::once(domain.as_bytes()).chain(fields.iter().copied()) {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// A sealed blob stored in the catalog: nonce followed by ciphertext and tag.
pub(crate) fn seal_blob(key: &SecretKey, associated_data: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut buffer = plaintext.to_vec();
    let nonce = key.seal(associated_data, &mut buffer);
    let mut blob = Vec::with_capacity(NONCE_LEN + buffer.len());
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&buffer);
    buffer.zeroize();
    blob
}

/// Opens a blob made by [`seal_blob`]; the returned plaintext should be wiped by the caller.
pub(crate) fn open_blob(
    key: &SecretKey,
    associated_data: &[u8],
    blob: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, AuthenticationFailed> {
    if blob.len() < NONCE_LEN + TAG_LEN {
        return Err(AuthenticationFailed);
    }
    let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| AuthenticationFailed)?;
    let mut buffer = zeroize::Zeroizing::new(ciphertext.to_vec());
    key.open(&nonce, associated_data, &mut buffer)?;
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_buffer_opens_only_with_the_same_associated_data() {
        let key = SecretKey::generate();
        let mut buffer = b"consultations".to_vec();
        let nonce = key.seal(b"context a", &mut buffer);
        let mut tampered_context = buffer.clone();
        assert_eq!(
            key.open(&nonce, b"context b", &mut tampered_context),
            Err(AuthenticationFailed)
        );
        key.open(&nonce, b"context a", &mut buffer).unwrap();
        assert_eq!(buffer, b"consultations");
    }

    #[test]
    fn associated_data_keeps_field_boundaries_apart() {
        assert_ne!(
            associated_data("d", &[b"ab", b"c"]),
            associated_data("d", &[b"a", b"bc"])
        );
    }

    #[test]
    fn blob_opens_under_its_key_and_fails_under_another() {
        let key = SecretKey::generate();
        let blob = seal_blob(&key, b"ad", b"secret");
        assert_eq!(open_blob(&key, b"ad", &blob).unwrap().as_slice(), b"secret");
        assert!(open_blob(&SecretKey::generate(), b"ad", &blob).is_err());
        assert!(open_blob(&key, b"ad", &blob[..10]).is_err());
    }

    #[test]
    fn debug_output_hides_key_bytes() {
        let key = SecretKey::from_slice(&[7u8; KEY_LEN]).unwrap();
        assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
    }
}
