//! Random bytes from the OS's CSPRNG, fetched a block at a time: one
//! `getrandom` call serves dozens of codes instead of one. Every byte comes
//! straight from the OS (no generator of our own stretches it), is used once,
//! and is wiped from the block as it is handed out.

use std::cell::RefCell;

use rand::rngs::OsRng;
use rand::{CryptoRng, RngCore, TryRngCore};

/// Bytes fetched per call to the OS: 64 codes' worth of 4-byte draws.
const BLOCK_LEN: usize = 256;

struct Block {
    bytes: [u8; BLOCK_LEN],
    /// The first byte not yet handed out; `BLOCK_LEN` when all are used.
    next: usize,
}

thread_local! {
    static BLOCK: RefCell<Block> = const {
        RefCell::new(Block {
            bytes: [0; BLOCK_LEN],
            next: BLOCK_LEN,
        })
    };
}

/// The OS's random source, read through this thread's block.
pub struct OsBlockRng;

impl RngCore for OsBlockRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        BLOCK.with_borrow_mut(|block| {
            let mut filled = 0;
            while filled < dest.len() {
                if block.next == BLOCK_LEN {
                    OsRng.unwrap_err().fill_bytes(&mut block.bytes);
                    block.next = 0;
                }
                let n = (dest.len() - filled).min(BLOCK_LEN - block.next);
                let taken = &mut block.bytes[block.next..block.next + n];
                dest[filled..filled + n].copy_from_slice(taken);
                taken.fill(0);
                block.next += n;
                filled += n;
            }
        });
    }
}

impl CryptoRng for OsBlockRng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_across_blocks_never_repeat_a_block() {
        let mut bytes = vec![0u8; BLOCK_LEN * 4 + 13];
        OsBlockRng.fill_bytes(&mut bytes);
        let chunks: Vec<&[u8]> = bytes.chunks(BLOCK_LEN).collect();
        for (i, a) in chunks.iter().enumerate() {
            assert!(a.iter().any(|&b| b != 0), "chunk {i} is all zeros");
            for b in &chunks[i + 1..] {
                assert_ne!(&a[..b.len()], *b, "a block was handed out twice");
            }
        }
    }

    #[test]
    fn small_draws_are_fresh_bytes() {
        // 10,000 draws of 8 bytes: any repeat means bytes were reused.
        let draws: std::collections::HashSet<u64> = (0..10_000).map(|_| OsBlockRng.next_u64()).collect();
        assert_eq!(draws.len(), 10_000);
    }

    #[test]
    fn handed_out_bytes_are_wiped_from_the_block() {
        let _ = OsBlockRng.next_u32();
        BLOCK.with_borrow(|block| {
            assert!(block.bytes[..block.next].iter().all(|&b| b == 0));
            assert!(block.bytes[block.next..].iter().any(|&b| b != 0));
        });
    }
}
