//! Engine tests against the fake XNAT (`xnat::fake`), time paused where they wait.

mod bench;
mod faults;
mod reads;
mod series;

use super::{DigestCheck, FileVersion, ReadConfig, ReadEngine, ReadError, ReadHandle};
use crate::fs::cache::{BlockCache, CacheConfig, DiskConfig};
use crate::xnat::fake::{Call, FakeXnat};
use crate::xnat::{CatalogFile, Owner};
use std::path::Path;
use std::sync::Arc;

/// A fake server with project `P`, honouring Range or not.
pub(super) fn fake(honour_range: bool) -> Arc<FakeXnat> {
    let fake = FakeXnat::with_ranges(honour_range);
    fake.add_project("P");
    fake
}

fn owner() -> Owner {
    Owner::Project {
        project: "P".into(),
    }
}

/// The version the listing row of a file describes.
pub(super) fn version(row: CatalogFile) -> FileVersion {
    FileVersion {
        version: format!("{:?}-{:?}", row.size, row.digest),
        uri: row.uri,
        size: row.size.unwrap_or(0),
        digest: row.digest,
    }
}

/// A file `name` of resource `R` of project `P` (with its MD5 digest in the listing).
pub(super) fn add(fake: &FakeXnat, name: &str, data: Vec<u8>) -> FileVersion {
    version(fake.add_file(&owner(), "R", name, data))
}

/// A `size`-byte file repeating `pattern` (no digest in the listing).
pub(super) fn add_pattern(fake: &FakeXnat, name: &str, pattern: Vec<u8>, size: u64) -> FileVersion {
    version(fake.add_pattern(&owner(), "R", name, pattern, size))
}

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
        // These tests watch files stream; `faults` checks the whole-file check on its own.
        verify_whole_max: 0,
        // The background hasher's thread keeps paused time from advancing by itself while a
        // download sleeps: no backoff here (the mount tests have it).
        resume_backoff: std::time::Duration::ZERO,
        ..ReadConfig::default()
    }
}

/// Another engine over the same cache (a later open, as after a remount).
pub(super) fn engine_on(fake: &Arc<FakeXnat>, cache: Arc<BlockCache>) -> ReadEngine {
    ReadEngine::new(fake.clone(), cache, read_config(DigestCheck::Background))
}

pub(super) fn engine(fake: &Arc<FakeXnat>, disk: Option<&Path>) -> ReadEngine {
    engine_with(
        fake,
        cache_config(disk),
        read_config(DigestCheck::Background),
    )
}

pub(super) fn engine_with(
    fake: &Arc<FakeXnat>,
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
