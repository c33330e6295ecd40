//! Chunked AES-256-GCM for column groups, so one segment's decryption (and encryption)
//! can be spread over the machine's cores while memory stays bounded by one segment.
//!
//! A group's plaintext is cut into chunks of `chunk_size` bytes (the last one shorter).
//! Chunk `i` of `n` is sealed with nonce `base_nonce XOR be32(i)` in its last four bytes
//! and associated data `group_ad || be64(i) || be64(n)`: chunks cannot be reordered,
//! dropped or appended without failing authentication. Tags are stored apart from the
//! ciphertext, so the ciphertext is read straight into the buffer that becomes the
//! plaintext and is decrypted in place, with no copy to close gaps left by tags.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::crypto::{NONCE_LEN, SecretKey, TAG_LEN};

/// Plaintext bytes per chunk: large enough that per-chunk overhead vanishes, small enough
/// that a 20 MB segment keeps two cores busy.
pub(crate) const CHUNK_SIZE: usize = 1 << 20;

/// Segments smaller than this are handled on the calling thread alone.
const PARALLEL_THRESHOLD: usize = 4 * CHUNK_SIZE;

pub(crate) type TagBytes = [u8; TAG_LEN];

pub(crate) fn chunk_count(plaintext_len: usize, chunk_size: usize) -> usize {
    plaintext_len.div_ceil(chunk_size).max(1)
}

fn chunk_nonce(base: &[u8; NONCE_LEN], index: usize) -> Nonce {
    let mut nonce = *base;
    for (byte, counter) in nonce[NONCE_LEN - 4..]
        .iter_mut()
        .zip((index as u32).to_be_bytes())
    {
        *byte ^= counter;
    }
    Nonce::assume_unique_for_key(nonce)
}

fn chunk_associated_data(group_ad: &[u8], index: usize, count: usize) -> Vec<u8> {
    let mut ad = Vec::with_capacity(group_ad.len() + 16);
    ad.extend_from_slice(group_ad);
    ad.extend_from_slice(&(index as u64).to_be_bytes());
    ad.extend_from_slice(&(count as u64).to_be_bytes());
    ad
}

fn cipher(key: &SecretKey) -> LessSafeKey {
    // Only fails for a key of the wrong length, which SecretKey rules out.
    LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key.as_bytes()).expect("AES-256 key is 32 bytes"),
    )
}

/// One group to seal or open: its key, base nonce, associated data and buffer.
pub(crate) struct GroupCrypt<'a> {
    pub key: &'a SecretKey,
    pub base_nonce: [u8; NONCE_LEN],
    pub associated_data: Vec<u8>,
    pub buffer: &'a mut [u8],
    pub chunk_size: usize,
    /// Filled by sealing; read by opening.
    pub tags: &'a mut Vec<TagBytes>,
}

/// One chunk's work, carrying the index of its group for error reporting.
struct ChunkWork<'a> {
    group: usize,
    /// Where the chunk starts in its group's buffer.
    offset: usize,
    cipher: &'a LessSafeKey,
    nonce: Nonce,
    associated_data: Vec<u8>,
    data: &'a mut [u8],
    tag: &'a mut TagBytes,
}

fn split_into_chunks<'a>(
    groups: &'a mut [GroupCrypt<'_>],
    ciphers: &'a [LessSafeKey],
) -> Vec<ChunkWork<'a>> {
    let mut work = Vec::new();
    for (group, (crypt, cipher)) in groups.iter_mut().zip(ciphers).enumerate() {
        let count = chunk_count(crypt.buffer.len(), crypt.chunk_size);
        crypt.tags.resize(count, [0; TAG_LEN]);
        let chunks: Vec<&mut [u8]> = if crypt.buffer.is_empty() {
            vec![&mut []]
        } else {
            crypt.buffer.chunks_mut(crypt.chunk_size).collect()
        };
        for (index, (data, tag)) in chunks.into_iter().zip(crypt.tags.iter_mut()).enumerate() {
            work.push(ChunkWork {
                group,
                offset: index * crypt.chunk_size,
                cipher,
                nonce: chunk_nonce(&crypt.base_nonce, index),
                associated_data: chunk_associated_data(&crypt.associated_data, index, count),
                data,
                tag,
            });
        }
    }
    work
}

/// Runs `task` on every item, spread round-robin over the available cores. Returns a
/// failure, if any.
fn run_spread<E: Send>(
    work: Vec<ChunkWork<'_>>,
    total_bytes: usize,
    task: impl Fn(ChunkWork<'_>) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if total_bytes < PARALLEL_THRESHOLD {
        1
    } else {
        cores.min(work.len()).max(1)
    };
    if threads == 1 {
        return work.into_iter().try_for_each(&task);
    }
    let mut shares: Vec<Vec<ChunkWork<'_>>> = (0..threads).map(|_| Vec::new()).collect();
    for (index, item) in work.into_iter().enumerate() {
        shares[index % threads].push(item);
    }
    let own_share = shares.pop().unwrap_or_default();
    std::thread::scope(|scope| {
        let task = &task;
        let workers: Vec<_> = shares
            .into_iter()
            .map(|share| scope.spawn(move || share.into_iter().try_for_each(task)))
            .collect();
        let own = own_share.into_iter().try_for_each(task);
        let others = workers.into_iter().map(|worker| {
            // A panic in a worker is a bug in ring or here; carry it to the caller.
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        others.chain([own]).collect()
    })
}

/// Runs `task` on every chunk of every group, spread over the available cores.
fn for_each_chunk<E: Send>(
    groups: &mut [GroupCrypt<'_>],
    task: impl Fn(ChunkWork<'_>) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let ciphers: Vec<LessSafeKey> = groups.iter().map(|g| cipher(g.key)).collect();
    let total = groups.iter().map(|g| g.buffer.len()).sum();
    let work = split_into_chunks(groups, &ciphers);
    run_spread(work, total, task)
}

/// Seals every group's buffer in place, filling its tags.
pub(crate) fn seal_groups(groups: &mut [GroupCrypt<'_>]) {
    let sealed = for_each_chunk(groups, |chunk| {
        let tag: Tag = chunk
            .cipher
            .seal_in_place_separate_tag(chunk.nonce, Aad::from(&chunk.associated_data), chunk.data)
            // Only fails beyond GCM's 64 GiB per-message limit; chunks are 1 MiB.
            .expect("chunk within the AES-GCM length limit");
        chunk.tag.copy_from_slice(tag.as_ref());
        Ok::<(), ()>(())
    });
    debug_assert!(sealed.is_ok());
}

/// Why a group could not be read and opened; `group` is its index.
#[derive(Debug)]
pub(crate) enum ChunkFailure {
    Read { group: usize, error: io::Error },
    Authentication { group: usize },
}

/// The index of the first group whose tags do not match its buffer's chunk count.
fn check_tag_counts(groups: &[GroupCrypt<'_>]) -> Result<(), usize> {
    match groups.iter().position(|group| {
        group.chunk_size == 0
            || group.tags.len() != chunk_count(group.buffer.len(), group.chunk_size)
    }) {
        Some(index) => Err(index),
        None => Ok(()),
    }
}

fn open_chunk(chunk: ChunkWork<'_>) -> Result<(), usize> {
    let tag = Tag::from(*chunk.tag);
    chunk
        .cipher
        .open_in_place_separate_tag(
            chunk.nonce,
            Aad::from(&chunk.associated_data),
            tag,
            chunk.data,
            0..,
        )
        .map(|_| ())
        .map_err(|_| chunk.group)
}

/// Opens every group's buffer in place; `Err(i)` names the first group (by index) whose
/// authentication failed.
pub(crate) fn open_groups(groups: &mut [GroupCrypt<'_>]) -> Result<(), usize> {
    check_tag_counts(groups)?;
    for_each_chunk(groups, open_chunk)
}

/// Reads every group's ciphertext from `file` (group `i`'s starts at `starts[i]`) into its
/// buffer, which must have the plaintext's length, and opens it in place. Each chunk is
/// read and then decrypted by the same thread while it is in that core's cache, and the
/// reading is spread over the cores with the decryption: read on one thread, the copy from
/// the page cache alone took as long as decrypting on both.
pub(crate) fn read_and_open_groups(
    file: &File,
    groups: &mut [GroupCrypt<'_>],
    starts: &[u64],
) -> Result<(), ChunkFailure> {
    check_tag_counts(groups).map_err(|group| ChunkFailure::Authentication { group })?;
    for_each_chunk(groups, |chunk| {
        let group = chunk.group;
        file.read_exact_at(chunk.data, starts[group] + chunk.offset as u64)
            .map_err(|error| ChunkFailure::Read { group, error })?;
        open_chunk(chunk).map_err(|group| ChunkFailure::Authentication { group })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::random_nonce;

    fn sealed(
        plaintext: &[u8],
        key: &SecretKey,
        nonce: [u8; NONCE_LEN],
    ) -> (Vec<u8>, Vec<TagBytes>) {
        let mut buffer = plaintext.to_vec();
        let mut tags = Vec::new();
        seal_groups(&mut [GroupCrypt {
            key,
            base_nonce: nonce,
            associated_data: b"g".to_vec(),
            buffer: &mut buffer,
            chunk_size: CHUNK_SIZE,
            tags: &mut tags,
        }]);
        (buffer, tags)
    }

    fn open(
        buffer: &mut [u8],
        tags: &mut Vec<TagBytes>,
        key: &SecretKey,
        nonce: [u8; NONCE_LEN],
        ad: &[u8],
    ) -> Result<(), usize> {
        open_groups(&mut [GroupCrypt {
            key,
            base_nonce: nonce,
            associated_data: ad.to_vec(),
            buffer,
            chunk_size: CHUNK_SIZE,
            tags,
        }])
    }

    #[test]
    fn multi_chunk_buffer_round_trips_across_threads() {
        let key = SecretKey::generate();
        let nonce = random_nonce();
        let plaintext: Vec<u8> = (0..5 * CHUNK_SIZE + 123).map(|i| (i % 251) as u8).collect();
        let (mut buffer, mut tags) = sealed(&plaintext, &key, nonce);
        assert_eq!(tags.len(), 6);
        assert_ne!(buffer, plaintext);
        open(&mut buffer, &mut tags, &key, nonce, b"g").unwrap();
        assert_eq!(buffer, plaintext);
    }

    #[test]
    fn swapped_chunks_or_dropped_tag_fail_authentication() {
        let key = SecretKey::generate();
        let nonce = random_nonce();
        let plaintext = vec![5u8; 2 * CHUNK_SIZE];
        let (buffer, tags) = sealed(&plaintext, &key, nonce);
        let mut swapped = [&buffer[CHUNK_SIZE..], &buffer[..CHUNK_SIZE]].concat();
        let mut swapped_tags = vec![tags[1], tags[0]];
        assert_eq!(
            open(&mut swapped, &mut swapped_tags, &key, nonce, b"g"),
            Err(0)
        );
        let mut shortened = buffer[..CHUNK_SIZE].to_vec();
        let mut one_tag = vec![tags[0]];
        assert_eq!(
            open(&mut shortened, &mut one_tag, &key, nonce, b"g"),
            Err(0)
        );
    }

    #[test]
    fn flipped_byte_or_other_associated_data_fails_authentication() {
        let key = SecretKey::generate();
        let nonce = random_nonce();
        let (buffer, tags) = sealed(b"small group", &key, nonce);
        let mut flipped = buffer.clone();
        flipped[3] ^= 1;
        assert_eq!(
            open(&mut flipped, &mut tags.clone(), &key, nonce, b"g"),
            Err(0)
        );
        assert_eq!(
            open(&mut buffer.clone(), &mut tags.clone(), &key, nonce, b"h"),
            Err(0)
        );
    }

    /// A file holding `prefix` junk bytes, then each ciphertext in turn; their starts.
    fn file_of(prefix: usize, ciphertexts: &[&[u8]]) -> (std::fs::File, Vec<u64>) {
        use std::io::Write;
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&vec![9u8; prefix]).unwrap();
        let mut starts = Vec::new();
        let mut at = prefix as u64;
        for ciphertext in ciphertexts {
            starts.push(at);
            file.write_all(ciphertext).unwrap();
            at += ciphertext.len() as u64;
        }
        (file, starts)
    }

    fn read_and_open(
        file: &File,
        starts: &[u64],
        buffers: &mut [Vec<u8>],
        tags: &mut [Vec<TagBytes>],
        key: &SecretKey,
        nonces: &[[u8; NONCE_LEN]],
    ) -> Result<(), ChunkFailure> {
        let mut groups: Vec<GroupCrypt<'_>> = buffers
            .iter_mut()
            .zip(tags.iter_mut())
            .zip(nonces)
            .map(|((buffer, tags), nonce)| GroupCrypt {
                key,
                base_nonce: *nonce,
                associated_data: b"g".to_vec(),
                buffer,
                chunk_size: CHUNK_SIZE,
                tags,
            })
            .collect();
        read_and_open_groups(file, &mut groups, starts)
    }

    #[test]
    fn groups_read_from_a_file_at_their_offsets_open_to_their_plaintexts() {
        let key = SecretKey::generate();
        let nonces = [random_nonce(), random_nonce()];
        let first: Vec<u8> = (0..3 * CHUNK_SIZE + 17).map(|i| (i % 241) as u8).collect();
        let second: Vec<u8> = (0..2 * CHUNK_SIZE).map(|i| (i % 239) as u8).collect();
        let (first_sealed, first_tags) = sealed(&first, &key, nonces[0]);
        let (second_sealed, second_tags) = sealed(&second, &key, nonces[1]);
        let (file, starts) = file_of(100, &[&first_sealed, &second_sealed]);
        // Buffers holding an earlier segment's bytes, as reused ones do.
        let mut buffers = vec![vec![1u8; first.len()], vec![2u8; second.len()]];
        let mut tags = vec![first_tags.clone(), second_tags.clone()];
        read_and_open(&file, &starts, &mut buffers, &mut tags, &key, &nonces).unwrap();
        assert!(buffers[0] == first && buffers[1] == second);

        let mut swapped_tags = vec![second_tags, first_tags];
        let mut buffers = vec![vec![0u8; first.len()], vec![0u8; second.len()]];
        match read_and_open(
            &file,
            &starts,
            &mut buffers,
            &mut swapped_tags,
            &key,
            &nonces,
        ) {
            Err(ChunkFailure::Authentication { group: 0 }) => {}
            other => panic!("expected group 0 to fail authentication, got {other:?}"),
        }
    }

    #[test]
    fn a_file_shorter_than_its_groups_fails_as_a_read_naming_the_group() {
        let key = SecretKey::generate();
        let nonces = [random_nonce()];
        let plaintext = vec![3u8; 5 * CHUNK_SIZE];
        let (ciphertext, tags) = sealed(&plaintext, &key, nonces[0]);
        let (file, starts) = file_of(10, &[&ciphertext[..4 * CHUNK_SIZE]]);
        let mut buffers = vec![vec![0u8; plaintext.len()]];
        match read_and_open(&file, &starts, &mut buffers, &mut [tags], &key, &nonces) {
            Err(ChunkFailure::Read { group: 0, error }) => {
                assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof)
            }
            other => panic!("expected a failed read of group 0, got {other:?}"),
        }
    }

    #[test]
    fn empty_buffer_still_carries_one_authenticated_chunk() {
        let key = SecretKey::generate();
        let nonce = random_nonce();
        let (mut buffer, mut tags) = sealed(b"", &key, nonce);
        assert_eq!(tags.len(), 1);
        open(&mut buffer, &mut tags, &key, nonce, b"g").unwrap();
    }
}
