//! Deterministic filler bytes, fast even for a 1 GiB file: a 1 MiB block
//! from ChaCha8 is generated once, and each later block is that block
//! rotated and stamped with its index (memcpy speed, never all in memory).

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Read;

const BLOCK: usize = 1 << 20;

pub struct PatternReader {
    base: Vec<u8>,
    block: Vec<u8>,
    /// Position in the whole stream.
    pos: u64,
    len: u64,
}

impl PatternReader {
    pub fn new(seed: u64, len: u64) -> PatternReader {
        let mut base = vec![0u8; BLOCK.min(len.max(1) as usize)];
        ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut base);
        PatternReader {
            block: Vec::with_capacity(base.len()),
            base,
            pos: 0,
            len,
        }
    }

    /// All bytes at once (for small files).
    pub fn bytes(mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len as usize);
        let _ = self.read_to_end(&mut out);
        out
    }

    fn fill_block(&mut self, index: u64) {
        let n = self.base.len();
        let rot = (index as usize).wrapping_mul(8191) % n;
        self.block.clear();
        self.block.extend_from_slice(&self.base[rot..]);
        self.block.extend_from_slice(&self.base[..rot]);
        if index > 0 {
            let stamp = index.to_le_bytes();
            let k = stamp.len().min(n);
            self.block[..k].copy_from_slice(&stamp[..k]);
        }
    }
}

impl Read for PatternReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || out.is_empty() {
            return Ok(0);
        }
        let n = self.base.len() as u64;
        let index = self.pos / n;
        let offset = (self.pos % n) as usize;
        if offset == 0 || self.block.is_empty() {
            self.fill_block(index);
        }
        let avail = (self.block.len() - offset).min((self.len - self.pos) as usize);
        let k = avail.min(out.len());
        out[..k].copy_from_slice(&self.block[offset..offset + k]);
        self.pos += k as u64;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let a = PatternReader::new(7, 3 * BLOCK as u64 + 5).bytes();
        let b = PatternReader::new(7, 3 * BLOCK as u64 + 5).bytes();
        assert_eq!(a.len(), 3 * BLOCK + 5);
        assert_eq!(a, b);
        assert_ne!(a[..BLOCK], a[BLOCK..2 * BLOCK]);
        assert_ne!(
            PatternReader::new(8, 100).bytes(),
            PatternReader::new(7, 100).bytes()
        );
    }
}
