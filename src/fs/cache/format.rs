//! The disk tier's slot: a 64-byte header, then the block's bytes.
//!
//! ```text
//! 0  magic "XNFSBLK\0"   8  format version u32   12 data CRC32 u32
//! 16 file key [32]       48 block index u64      56 data length u32
//! 60 header CRC32 u32 (of bytes 0..60)
//! ```
//! Everything is little endian. A slot whose length, magic, version, key, index or either
//! checksum disagrees is corrupt (a torn write, a bit flip, a truncation) and is a miss.
//! CRC32 (crc32fast, SIMD) costs well under a millisecond per 1 MiB block.

use super::key::BlockKey;

pub const MAGIC: [u8; 8] = *b"XNFSBLK\0";
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 64;

/// The header for `data` stored as block `key`.
pub fn encode_header(key: &BlockKey, data: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&crc32fast::hash(data).to_le_bytes());
    h[16..48].copy_from_slice(&key.file.0);
    h[48..56].copy_from_slice(&key.index.to_le_bytes());
    h[56..60].copy_from_slice(&(data.len() as u32).to_le_bytes());
    let crc = crc32fast::hash(&h[0..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a slot's header against the key it was looked up by (magic, format, its own
/// checksum, file key, index). Returns the data length it records.
pub fn data_len(key: &BlockKey, h: &[u8; HEADER_LEN]) -> Option<usize> {
    let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
    let ok = h[0..8] == MAGIC
        && u32_at(8) == FORMAT_VERSION
        && u32_at(60) == crc32fast::hash(&h[0..60])
        && h[16..48] == key.file.0
        && u64::from_le_bytes(h[48..56].try_into().unwrap()) == key.index;
    ok.then_some(u32_at(56) as usize)
}

/// Checks a whole slot (header + data) against the key it was looked up by. Returns the
/// data's length when every check passes.
pub fn validate(key: &BlockKey, slot: &[u8]) -> Option<usize> {
    if slot.len() < HEADER_LEN {
        return None;
    }
    let (h, data) = slot.split_at(HEADER_LEN);
    let h: &[u8; HEADER_LEN] = h.try_into().unwrap();
    let ok = data_len(key, h) == Some(data.len())
        && u32::from_le_bytes(h[12..16].try_into().unwrap()) == crc32fast::hash(data);
    ok.then_some(data.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::cache::key::FileKey;

    fn key(i: u64) -> BlockKey {
        BlockKey::new(FileKey::new("/f", "v"), i)
    }

    #[test]
    fn round_trip_and_every_single_byte_flip_is_caught() {
        let data = b"hello block".to_vec();
        let mut file = encode_header(&key(3), &data).to_vec();
        file.extend_from_slice(&data);
        assert_eq!(validate(&key(3), &file), Some(data.len()));
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x01;
            assert_eq!(validate(&key(3), &bad), None, "flip at byte {i} not caught");
        }
        assert_eq!(validate(&key(3), &file[..file.len() - 1]), None);
        assert_eq!(validate(&key(4), &file), None);
        let other = BlockKey::new(FileKey::new("/f", "v2"), 3);
        assert_eq!(validate(&other, &file), None);
    }
}
