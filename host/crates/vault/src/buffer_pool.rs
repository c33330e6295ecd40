//! Buffers for a scan's column groups, reused from one segment to the next.
//!
//! A group's ciphertext is read into a buffer, decrypted in place, and the decoded arrays
//! point into it, so the buffer lives as long as the caller keeps the batch. Fresh
//! buffers for every segment cost the kernel a page fault and a zeroed page for each 4 KiB
//! the read touched (about a tenth of a model evaluation's time). Here a buffer goes back
//! to its scan's pool when the last array over it is dropped, and the next segment's read
//! lands in pages already mapped. What a returned buffer holds is overwritten by the next
//! read before anything decodes it (a read that fails fails the whole segment).

use std::sync::{Arc, Mutex, Weak};

use arrow_buffer::Buffer;

/// Buffers kept for reuse: a few segments' groups, so a caller that holds one batch while
/// the next is read still finds buffers free.
const KEPT: usize = 16;

/// A scan's free buffers.
#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// A buffer of at least `len` bytes whose contents are unspecified (what an earlier
    /// segment left, or zeros): the shortest free one that is long enough, or a new one
    /// with room to spare. Buffers are never shortened, so once made, one is never written
    /// again except by the reads into it (shortening them made every slightly larger
    /// group that came later zero the difference).
    pub(crate) fn take_len(&self, len: usize) -> Vec<u8> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let fitting = free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() >= len)
            .min_by_key(|(_, b)| b.len())
            .map(|(i, _)| i);
        match fitting {
            Some(i) => free.swap_remove(i),
            // An eighth to spare, so that the next segment's slightly larger group fits.
            // Zeroed memory straight from the allocator: fresh pages, not a memset.
            None => vec![0; (len + len / 8).next_multiple_of(4096)],
        }
    }

    fn give_back(&self, buffer: Vec<u8>) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < KEPT {
            free.push(buffer);
        }
    }

    /// The first `len` of `bytes` as an Arrow buffer that returns to `pool` once nothing
    /// points into it (or is freed, if the pool is gone by then).
    pub(crate) fn arrow_buffer(pool: &Arc<BufferPool>, bytes: Vec<u8>, len: usize) -> Buffer {
        assert!(len <= bytes.len(), "a buffer's length is within its bytes");
        let ptr = std::ptr::NonNull::new(bytes.as_ptr().cast_mut()).expect("a Vec's pointer");
        let owner = Arc::new(Returning {
            bytes,
            pool: Arc::downgrade(pool),
        });
        // SAFETY: `ptr` and `len` describe initialised bytes of the Vec that `owner` holds
        // (`len` is at most its length); a Vec's heap memory does not move when the Vec
        // does, and `owner` keeps it alive (unchanged: nothing else reaches it) for as long
        // as the buffer exists.
        unsafe { Buffer::from_custom_allocation(ptr, len, owner) }
    }
}

/// A buffer's bytes while arrays point into them.
struct Returning {
    bytes: Vec<u8>,
    pool: Weak<BufferPool>,
}

impl Drop for Returning {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.give_back(std::mem::take(&mut self.bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_returns_to_its_pool_when_the_last_array_over_it_is_dropped() {
        let pool = Arc::new(BufferPool::default());
        let mut bytes = pool.take_len(1 << 20);
        assert!(bytes.len() >= 1 << 20);
        bytes.fill(7);
        let address = bytes.as_ptr();
        let buffer = BufferPool::arrow_buffer(&pool, bytes, 1 << 20);
        assert_eq!(buffer.len(), 1 << 20, "only the length asked for");
        let slice = buffer.slice(100);
        drop(buffer);
        assert_eq!(slice.as_slice()[0], 7);
        assert!(
            pool.free.lock().unwrap().is_empty(),
            "a slice still points in"
        );
        drop(slice);
        let again = pool.take_len(1 << 19);
        assert_eq!(again.as_ptr(), address, "the same memory, reused");
        assert!(again.len() > 1 << 20, "and not shortened");
        assert!(again.iter().all(|&b| b == 7), "nothing written into it");
    }

    #[test]
    fn a_slightly_larger_request_fits_a_buffer_made_for_an_earlier_one() {
        let pool = Arc::new(BufferPool::default());
        let first = pool.take_len(1_000_000);
        let address = first.as_ptr();
        drop(BufferPool::arrow_buffer(&pool, first, 1_000_000));
        let second = pool.take_len(1_010_000);
        assert_eq!(second.as_ptr(), address);
        let larger = pool.take_len(4_000_000);
        assert!(
            larger.len() >= 4_000_000,
            "none free was long enough: a new one"
        );
    }

    #[test]
    fn a_buffer_outliving_its_pool_is_freed() {
        let pool = Arc::new(BufferPool::default());
        let buffer = BufferPool::arrow_buffer(&pool, vec![1, 2, 3], 3);
        drop(pool);
        assert_eq!(buffer.as_slice(), [1, 2, 3]);
    }
}
