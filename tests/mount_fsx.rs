//! An fsx (the file-system exerciser of xfstests) built here, run over a read-write mount: one
//! file under a resource folder gets a random sequence of writes (inside, across and past its
//! end, leaving holes), truncates (down and up), reads and mapped reads through a shared
//! `mmap`, and closes followed by a reopen (each close uploads the file; the reopen makes its
//! stage from the server's bytes again), every result checked against a model in memory. At
//! the end the server's copy, and a fresh mount's, must equal the model.
//!
//! The operation count is `XNATFS_FSX_OPS` (default 3000) and the seed `XNATFS_FSX_SEED`
//! (default 1); a failure prints the seed, the operation number and the last operations, so it
//! can be replayed.

mod common;

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::mount::Mount;
use common::sim::*;
use xnat_sim::Shape;

/// The largest the file grows.
const MAX_LEN: u64 = 4 << 20;
/// The largest single write or read.
const MAX_OP: u64 = 256 << 10;

/// xorshift64*: deterministic from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn fill(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[derive(Debug)]
enum Op {
    Write { offset: u64, len: u64 },
    Truncate { len: u64 },
    Read { offset: u64, len: u64 },
    MapRead { offset: u64, len: u64 },
    CloseOpen,
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

fn pick(rng: &mut Rng, len: u64) -> Op {
    let span = |rng: &mut Rng| 1 + rng.below(MAX_OP);
    match rng.below(100) {
        0..=34 => {
            // Writes land inside, across the end and (a hole) past it.
            let offset = rng.below((len + MAX_OP).min(MAX_LEN));
            let len = span(rng).min(MAX_LEN - offset).max(1);
            Op::Write { offset, len }
        }
        35..=44 => Op::Truncate {
            len: if rng.below(2) == 0 {
                rng.below(len + 1)
            } else {
                rng.below(MAX_LEN)
            },
        },
        45..=74 => Op::Read {
            offset: rng.below(len + 1),
            len: span(rng),
        },
        75..=94 => Op::MapRead {
            offset: rng.below(len.max(1)),
            len: span(rng),
        },
        _ => Op::CloseOpen,
    }
}

fn open_rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {} for writing: {e}", path.display()))
}

/// Bytes `offset..offset+len` of the file through a shared read-only mapping.
fn map_read(file: &File, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let page = 4096;
    let start = offset / page * page;
    let map_len = (offset + len - start) as usize;
    // SAFETY: a fresh read-only shared mapping of an open file, unmapped before returning; the
    // slice is copied out while the mapping lives, and only covers bytes below the file's end.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            start as libc::off_t,
        );
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let bytes = std::slice::from_raw_parts(
            (p as *const u8).add((offset - start) as usize),
            len as usize,
        )
        .to_vec();
        libc::munmap(p, map_len);
        Ok(bytes)
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!("first difference at byte {i}"),
        None => format!("lengths {} and {}", a.len(), b.len()),
    }
}

#[test]
fn fsx_random_operations_match_the_model() {
    let ops = env_u64("XNATFS_FSX_OPS", 3000);
    let seed = env_u64("XNATFS_FSX_SEED", 1);
    let sim = Sim::start(Shape {
        subjects: 1,
        sessions: 1,
        scans: 1,
        files: 1,
        file_size: 4096,
        ..Default::default()
    });
    let mount = Mount::start(&sim.url(), USER, PASS, &[]);
    let dir = expected_files(sim.store(), None)
        .keys()
        .find(|k| k.contains("/NIFTI/") && k.matches('/').count() == 5)
        .expect("a scan NIFTI file")
        .rsplit_once('/')
        .unwrap()
        .0
        .to_string();
    let rel = format!("{dir}/fsx.bin");
    let path = mount.path().join(&rel);
    File::create(&path).expect("create the fsx file");

    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut model: Vec<u8> = Vec::new();
    let mut file = open_rw(&path);
    let mut history: Vec<String> = Vec::new();
    let mut counts = [0u64; 5];
    for n in 1..=ops {
        let op = pick(&mut rng, model.len() as u64);
        history.push(format!("{n}: {op:?} (length {})", model.len()));
        let context = |what: String| {
            let start = history.len().saturating_sub(12);
            format!(
                "fsx seed {seed}, operation {n}: {what}\nlast operations:\n{}\nlog:\n{}",
                history[start..].join("\n"),
                mount.log_text()
            )
        };
        match op {
            Op::Write { offset, len } => {
                counts[0] += 1;
                let data = rng.fill(len as usize);
                file.write_all_at(&data, offset)
                    .unwrap_or_else(|e| panic!("{}", context(format!("write: {e}"))));
                let end = (offset + len) as usize;
                if model.len() < end {
                    model.resize(end, 0);
                }
                model[offset as usize..end].copy_from_slice(&data);
            }
            Op::Truncate { len } => {
                counts[1] += 1;
                file.set_len(len)
                    .unwrap_or_else(|e| panic!("{}", context(format!("truncate: {e}"))));
                model.resize(len as usize, 0);
            }
            Op::Read { offset, len } => {
                counts[2] += 1;
                let mut buf = vec![0u8; len as usize];
                let mut got = 0;
                while got < buf.len() {
                    let k = file
                        .read_at(&mut buf[got..], offset + got as u64)
                        .unwrap_or_else(|e| panic!("{}", context(format!("read: {e}"))));
                    if k == 0 {
                        break;
                    }
                    got += k;
                }
                buf.truncate(got);
                let want = &model[(offset as usize).min(model.len())
                    ..((offset + len) as usize).min(model.len())];
                assert!(
                    buf == want,
                    "{}",
                    context(format!("read: {}", first_difference(&buf, want)))
                );
            }
            Op::MapRead { offset, len } => {
                if model.is_empty() {
                    continue;
                }
                counts[3] += 1;
                let len = len.min(model.len() as u64 - offset);
                let got = map_read(&file, offset, len)
                    .unwrap_or_else(|e| panic!("{}", context(format!("mmap: {e}"))));
                let want = &model[offset as usize..(offset + len) as usize];
                assert!(
                    got == want,
                    "{}",
                    context(format!("mapped read: {}", first_difference(&got, want)))
                );
            }
            Op::CloseOpen => {
                counts[4] += 1;
                // The close uploads: its error would come back from fsync or the close.
                file.sync_all()
                    .unwrap_or_else(|e| panic!("{}", context(format!("fsync: {e}"))));
                drop(file);
                file = open_rw(&path);
                let size = file.metadata().unwrap().len();
                assert_eq!(
                    size,
                    model.len() as u64,
                    "{}",
                    context("size after a reopen".into())
                );
            }
        }
    }
    file.sync_all().expect("the last upload");
    drop(file);
    println!(
        "fsx: {ops} operations (seed {seed}): {} writes, {} truncates, {} reads, {} mapped reads, {} close+reopen (each an upload); final length {}",
        counts[0], counts[1], counts[2], counts[3], counts[4], model.len()
    );
    let server = expected_files(sim.store(), None)
        .get(&rel)
        .map(Expected::bytes)
        .expect("the file is on the server");
    assert!(
        server == model,
        "the server's copy: {}",
        first_difference(&server, &model)
    );
    drop(mount);
    let fresh = Mount::start(&sim.url(), USER, PASS, &[]);
    let read = std::fs::read(fresh.path().join(&rel)).expect("read from a fresh mount");
    assert!(
        read == model,
        "a fresh mount reads: {}",
        first_difference(&read, &model)
    );
}
