//! Engine tests against an in-memory fake server (`fake`).

mod bench;
mod fake;
mod faults;
mod reads;
mod series;

use super::{DigestCheck, ReadConfig, ReadEngine, ReadError, ReadHandle};
use crate::fs::cache::{BlockCache, CacheConfig, DiskConfig};
use fake::FakeFetcher;
use std::path::Path;
use std::sync::Arc;

/// Test geometry: 64 KiB blocks, 256 KiB parts, windows 64 KiB to 512 KiB, 2 MiB of memory.
pub(super) const BS: u64 = 64 << 10;

pub(super) fn cache_config(disk: Option<&Path>) -> CacheConfig {
    CacheConfig {
        block_size: BS,
        memory_bytes: 2 << 20,
        disk: disk.map(|dir| DiskConfig::new(dir.to_path_buf(), 64 << 20)),
    }
}

pub(super) fn read_config(check: DigestCheck) -> ReadConfig {
    ReadConfig {
        initial_window: BS,
        max_window: 512 << 10,
        part_size: 256 << 10,
        max_parts_in_flight: 4,
        digest_check: check,
        ..ReadConfig::default()
    }
}

pub(super) fn engine(fake: &Arc<FakeFetcher>, disk: Option<&Path>) -> ReadEngine {
    engine_with(
        fake,
        cache_config(disk),
        read_config(DigestCheck::Background),
    )
}

pub(super) fn engine_with(
    fake: &Arc<FakeFetcher>,
    cache: CacheConfig,
    read: ReadConfig,
) -> ReadEngine {
    ReadEngine::new(
        fake.clone(),
        Arc::new(BlockCache::new(cache).unwrap()),
        read,
    )
}

/// Reads a handle from `offset` to the end in `step`-byte reads.
pub(super) async fn read_to_end(h: &ReadHandle, offset: u64, step: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = offset;
    loop {
        let got = h.read(at, step).await.expect("read");
        if got.is_empty() {
            return out;
        }
        at += got.len() as u64;
        out.extend_from_slice(&got);
    }
}

pub(super) fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}
