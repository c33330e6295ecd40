//! The segment file format. One file per append, under `segments/<dataset>/`.
//!
//! ```text
//! offset  size  content
//! 0       8     magic "CRLSEG\0\x01"  (the last byte is the format version)
//! 8       4     header length H, u32 little-endian
//! 12      H     header:
//!                 dataset        u16 length + UTF-8
//!                 segment id     u16 length + UTF-8
//!                 position       u64
//!                 schema version u32
//!                 rows           u64
//!                 group count    u16
//!                 per group:     name (u16 length + UTF-8), key id (u16 length + UTF-8),
//!                                base nonce [12], chunk size u32, plaintext length u64,
//!                                offset u64, length u64
//! 12+H    ...   one block per group at its offset, blocks contiguous in header order:
//!                 the 16-byte GCM tags of its chunks, then the ciphertext of its
//!                 plaintext (an Arrow IPC stream: schema + one record batch,
//!                 uncompressed), cut in chunks of `chunk size` bytes (see chunked)
//! ```
//!
//! All integers are little-endian. The header is plaintext so a reader can seek to just
//! the groups it needs; nothing in it is trusted on its own: dataset, segment id,
//! position, schema version and rows are compared with the catalog, and every group's
//! associated data binds dataset, segment id, position, schema version, rows, group name
//! and key id, so editing the header or moving the file makes authentication fail.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::chunked::{TagBytes, chunk_count};
use crate::crypto::{NONCE_LEN, TAG_LEN, associated_data};
use crate::error::SegmentDamage;
use crate::fsio;

const MAGIC: &[u8; 8] = b"CRLSEG\0\x01";
const PREFIX_LEN: u64 = 12;
const GROUP_DOMAIN: &str = "carrel-vault/segment-group/v1";

/// Which segment a file claims to be; all of it is checked against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentIdentity {
    pub dataset: String,
    pub segment_id: String,
    pub position: u64,
    pub schema_version: u32,
    pub rows: u64,
}

impl SegmentIdentity {
    /// Associated data of one group's ciphertext.
    pub(crate) fn group_associated_data(&self, group: &str, key_id: &str) -> Vec<u8> {
        associated_data(
            GROUP_DOMAIN,
            &[
                self.dataset.as_bytes(),
                self.segment_id.as_bytes(),
                &self.position.to_be_bytes(),
                &self.schema_version.to_be_bytes(),
                &self.rows.to_be_bytes(),
                group.as_bytes(),
                key_id.as_bytes(),
            ],
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupBlock {
    pub group: String,
    pub key_id: String,
    pub nonce: [u8; NONCE_LEN],
    pub chunk_size: u32,
    pub plaintext_len: u64,
    pub offset: u64,
    pub length: u64,
}

/// A group ready to be written: its chunk tags and its ciphertext.
pub(crate) struct SealedGroup {
    pub group: String,
    pub key_id: String,
    pub nonce: [u8; NONCE_LEN],
    pub chunk_size: u32,
    pub tags: Vec<TagBytes>,
    pub ciphertext: Vec<u8>,
}

impl SealedGroup {
    fn block_len(&self) -> u64 {
        (self.tags.len() * TAG_LEN + self.ciphertext.len()) as u64
    }
}

/// Size and sha256 of a written segment file, as recorded in the catalog.
pub(crate) struct WrittenSegment {
    pub bytes: u64,
    pub sha256: String,
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    // Names and ids are validated to be short (≤ 64 bytes), far below u16::MAX.
    out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn encode_header(identity: &SegmentIdentity, groups: &[SealedGroup]) -> Vec<u8> {
    let mut header = Vec::new();
    put_str(&mut header, &identity.dataset);
    put_str(&mut header, &identity.segment_id);
    header.extend_from_slice(&identity.position.to_le_bytes());
    header.extend_from_slice(&identity.schema_version.to_le_bytes());
    header.extend_from_slice(&identity.rows.to_le_bytes());
    header.extend_from_slice(&(groups.len() as u16).to_le_bytes());
    let entry_len = |g: &SealedGroup| 2 + g.group.len() + 2 + g.key_id.len() + NONCE_LEN + 4 + 24;
    let header_len = header.len() + groups.iter().map(entry_len).sum::<usize>();
    let mut offset = PREFIX_LEN + header_len as u64;
    for group in groups {
        put_str(&mut header, &group.group);
        put_str(&mut header, &group.key_id);
        header.extend_from_slice(&group.nonce);
        header.extend_from_slice(&group.chunk_size.to_le_bytes());
        header.extend_from_slice(&(group.ciphertext.len() as u64).to_le_bytes());
        header.extend_from_slice(&offset.to_le_bytes());
        header.extend_from_slice(&group.block_len().to_le_bytes());
        offset += group.block_len();
    }
    debug_assert_eq!(header.len(), header_len);
    header
}

/// Writes a segment durably (temp file, fsync, rename, directory fsync).
pub(crate) fn write_segment(
    path: &Path,
    identity: &SegmentIdentity,
    groups: &[SealedGroup],
) -> io::Result<WrittenSegment> {
    let header = encode_header(identity, groups);
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    fsio::write_durably(path, 0o600, |writer| {
        let header_len = (header.len() as u32).to_le_bytes();
        let pieces = [MAGIC.as_slice(), &header_len, &header].into_iter().chain(
            groups
                .iter()
                .flat_map(|g| [g.tags.as_flattened(), g.ciphertext.as_slice()]),
        );
        for piece in pieces {
            hasher.update(piece);
            writer.write_all(piece)?;
            bytes += piece.len() as u64;
        }
        Ok(())
    })?;
    Ok(WrittenSegment {
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Parsing cursor over the header bytes; every read failure is a malformed header.
struct HeaderCursor<'a>(&'a [u8]);

impl HeaderCursor<'_> {
    fn take(&mut self, len: usize) -> Result<&[u8], SegmentDamage> {
        if self.0.len() < len {
            return Err(SegmentDamage::MalformedHeader("header ends early".into()));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SegmentDamage> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }
    fn string(&mut self) -> Result<String, SegmentDamage> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        String::from_utf8(self.take(len)?.to_vec())
            .map_err(|_| SegmentDamage::MalformedHeader("name is not UTF-8".into()))
    }
}

/// An open segment file whose header has been read and checked for size.
pub(crate) struct SegmentReader {
    file: File,
    pub identity: SegmentIdentity,
    pub blocks: Vec<GroupBlock>,
    pub file_len: u64,
}

impl SegmentReader {
    /// Opens `path` and parses its header. `expected_len` is the catalog's byte count, used
    /// to tell a truncated file from one that is not a segment at all.
    pub(crate) fn open(path: &Path, expected_len: u64) -> Result<Self, SegmentDamage> {
        let missing = || SegmentDamage::Missing {
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let mut file = File::open(path).map_err(|_| missing())?;
        let actual_len = file.metadata().map_err(|_| missing())?.len();
        let truncated = SegmentDamage::Truncated {
            actual: actual_len,
            expected: expected_len,
        };
        let mut prefix = [0u8; PREFIX_LEN as usize];
        if file.read_exact(&mut prefix).is_err() {
            return Err(if actual_len < expected_len {
                truncated
            } else {
                SegmentDamage::NotASegment
            });
        }
        if &prefix[..8] != MAGIC {
            return Err(SegmentDamage::NotASegment);
        }
        let header_len = u32::from_le_bytes(prefix[8..].try_into().expect("4 bytes")) as u64;
        if PREFIX_LEN + header_len > actual_len {
            return Err(truncated);
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header)
            .map_err(|_| truncated.clone())?;
        let (identity, blocks) = parse_header(&header, PREFIX_LEN + header_len)?;
        let end = blocks
            .iter()
            .map(|b| b.offset + b.length)
            .max()
            .unwrap_or(PREFIX_LEN + header_len);
        if actual_len < end {
            return Err(SegmentDamage::Truncated {
                actual: actual_len,
                expected: expected_len.max(end),
            });
        }
        Ok(Self {
            file,
            identity,
            blocks,
            file_len: actual_len,
        })
    }

    pub(crate) fn block(&self, group: &str) -> Option<&GroupBlock> {
        self.blocks.iter().find(|b| b.group == group)
    }

    /// Reads one group's chunk tags and ciphertext, and nothing else.
    pub(crate) fn read_block(
        &mut self,
        block: &GroupBlock,
    ) -> io::Result<(Vec<TagBytes>, Vec<u8>)> {
        let tags = self.read_tags(block)?;
        // read_to_end fills spare capacity without zeroing it first: zeroing a segment's
        // worth of buffers cost about a tenth of a scan's CPU time.
        let mut ciphertext = Vec::with_capacity(block.plaintext_len as usize);
        self.file
            .seek(SeekFrom::Start(self.ciphertext_start(block)))?;
        (&mut self.file)
            .take(block.plaintext_len)
            .read_to_end(&mut ciphertext)?;
        if ciphertext.len() as u64 != block.plaintext_len {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        Ok((tags, ciphertext))
    }

    /// One group's chunk tags, which precede its ciphertext.
    pub(crate) fn read_tags(&self, block: &GroupBlock) -> io::Result<Vec<TagBytes>> {
        let mut tags =
            vec![[0u8; TAG_LEN]; (block.length - block.plaintext_len) as usize / TAG_LEN];
        self.file
            .read_exact_at(tags.as_flattened_mut(), block.offset)?;
        Ok(tags)
    }

    /// Where one group's ciphertext starts in the file.
    pub(crate) fn ciphertext_start(&self, block: &GroupBlock) -> u64 {
        block.offset + (block.length - block.plaintext_len)
    }

    /// The segment's file, for reads at given offsets.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

fn parse_header(
    header: &[u8],
    data_start: u64,
) -> Result<(SegmentIdentity, Vec<GroupBlock>), SegmentDamage> {
    let mut cursor = HeaderCursor(header);
    let identity = SegmentIdentity {
        dataset: cursor.string()?,
        segment_id: cursor.string()?,
        position: u64::from_le_bytes(cursor.array()?),
        schema_version: u32::from_le_bytes(cursor.array()?),
        rows: u64::from_le_bytes(cursor.array()?),
    };
    let count = u16::from_le_bytes(cursor.array()?);
    let mut blocks = Vec::with_capacity(count as usize);
    let mut next_offset = data_start;
    for _ in 0..count {
        let block = GroupBlock {
            group: cursor.string()?,
            key_id: cursor.string()?,
            nonce: cursor.array()?,
            chunk_size: u32::from_le_bytes(cursor.array()?),
            plaintext_len: u64::from_le_bytes(cursor.array()?),
            offset: u64::from_le_bytes(cursor.array()?),
            length: u64::from_le_bytes(cursor.array()?),
        };
        let chunks = if block.chunk_size == 0 {
            None
        } else {
            usize::try_from(block.plaintext_len)
                .ok()
                .map(|len| chunk_count(len, block.chunk_size as usize))
        };
        let expected_len =
            chunks.and_then(|c| block.plaintext_len.checked_add((c * TAG_LEN) as u64));
        if expected_len != Some(block.length) {
            return Err(SegmentDamage::MalformedHeader(format!(
                "group `{}` has inconsistent lengths",
                block.group
            )));
        }
        // Blocks are contiguous and in header order; anything else was not written by us.
        if block.offset != next_offset {
            return Err(SegmentDamage::MalformedHeader(format!(
                "group `{}` is not where the header says",
                block.group
            )));
        }
        next_offset = block.offset.checked_add(block.length).ok_or_else(|| {
            SegmentDamage::MalformedHeader(format!(
                "group `{}` has an impossible length",
                block.group
            ))
        })?;
        blocks.push(block);
    }
    if !cursor.0.is_empty() {
        return Err(SegmentDamage::MalformedHeader(
            "trailing bytes after the group table".into(),
        ));
    }
    Ok((identity, blocks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> SegmentIdentity {
        SegmentIdentity {
            dataset: "consultations".into(),
            segment_id: "abc".into(),
            position: 3,
            schema_version: 1,
            rows: 10,
        }
    }

    fn sealed(group: &str, len: usize) -> SealedGroup {
        SealedGroup {
            group: group.into(),
            key_id: "k1".into(),
            nonce: [9; NONCE_LEN],
            chunk_size: 4,
            tags: vec![[3; TAG_LEN]; len.div_ceil(4).max(1)],
            ciphertext: vec![7; len],
        }
    }

    #[test]
    fn written_file_reads_back_its_identity_and_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.seg");
        let written = write_segment(&path, &identity(), &[sealed("a", 5), sealed("b", 9)]).unwrap();
        assert_eq!(written.bytes, std::fs::metadata(&path).unwrap().len());
        let mut reader = SegmentReader::open(&path, written.bytes).unwrap();
        assert_eq!(reader.identity, identity());
        let block = reader.block("b").unwrap().clone();
        assert_eq!(
            reader.read_block(&block).unwrap(),
            (vec![[3; TAG_LEN]; 3], vec![7; 9])
        );
        assert_eq!(
            written.sha256,
            hex::encode(Sha256::digest(std::fs::read(&path).unwrap()))
        );
    }

    #[test]
    fn truncated_file_is_reported_as_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.seg");
        let written = write_segment(&path, &identity(), &[sealed("a", 50)]).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(written.bytes - 20).unwrap();
        assert!(matches!(
            SegmentReader::open(&path, written.bytes),
            Err(SegmentDamage::Truncated { .. })
        ));
    }

    #[test]
    fn associated_data_differs_by_position_and_group() {
        let mut moved = identity();
        moved.position = 4;
        assert_ne!(
            identity().group_associated_data("a", "k"),
            moved.group_associated_data("a", "k")
        );
        assert_ne!(
            identity().group_associated_data("a", "k"),
            identity().group_associated_data("b", "k")
        );
    }
}
