//! The MD5 of a staged file, computed while it is written, so that its upload does not hash it.
//!
//! An upload must know the MD5 of what it sends: the server's listing is checked against it.
//! Hashing while sending caps the upload at MD5's pace (~0.5 GB/s on one core, well below a
//! fast link) and puts that time on the `close` that waits for the upload. Most files are
//! written once, in order, from the start (`cp`, a tool writing its output), so the digest is
//! computed as those writes land instead: a hasher thread follows the written frontier,
//! reading the new bytes back from the stage (still in the page cache) on a core the writer
//! leaves idle. The upload takes over where it got to (never waiting for it) and hashes only
//! the rest as it sends. A writer faster than MD5 (`cp` of a local file, ~1 GB/s) leaves the
//! hasher behind: once it is `MAX_LAG` behind it stops and leaves the rest to the upload,
//! since hashing beside such a writer only slowed it (on a 2-core machine, `cp` wrote 2.6
//! times slower, which the shorter close did not make up). A tool writing its output at a
//! few hundred MB/s or less, the usual case, is followed to the end. Any other change (a write elsewhere than at the frontier, a truncation, bytes
//! copied in from the server) gives the running digest up, and the upload hashes all it
//! sends as before.

use crate::xnat::HashedPrefix;
use md5::{Digest, Md5};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex};

/// Bytes the hasher reads back at a time.
const CHUNK: usize = 1 << 20;
/// How far behind the written frontier the hasher may fall before it stops following.
const MAX_LAG: u64 = 32 << 20;

pub struct StageDigest {
    file: Arc<File>,
    state: Mutex<State>,
    moved: Condvar,
}

struct State {
    /// Bytes written in order from the start so far.
    written: u64,
    /// Bytes hashed so far (at most `written`).
    hashed: u64,
    /// The digest of bytes `0..hashed`; `None` once given up (or while the hasher holds it).
    md5: Option<Md5>,
    given_up: bool,
    /// A hasher thread is running.
    running: bool,
    /// The hasher fell `MAX_LAG` behind and stopped: the upload hashes from where it got.
    outrun: bool,
}

impl StageDigest {
    /// A digest for a stage that holds `size` bytes now: followed only from an empty one.
    pub fn new(file: Arc<File>, size: u64) -> Arc<Self> {
        Arc::new(StageDigest {
            file,
            state: Mutex::new(State {
                written: 0,
                hashed: 0,
                md5: Some(Md5::new()),
                given_up: size != 0,
                running: false,
                outrun: false,
            }),
            moved: Condvar::new(),
        })
    }

    /// Bytes `offset..offset + len` are in the stage: the frontier moves on (and a hasher
    /// follows it) if they start at it; any other write gives the digest up.
    pub fn wrote(self: &Arc<Self>, offset: u64, len: u64) {
        let mut state = self.state.lock().unwrap();
        if state.given_up {
            return;
        }
        if offset != state.written {
            self.give_up(&mut state);
            return;
        }
        state.written += len;
        if !state.running && !state.outrun && len > 0 {
            state.running = true;
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name("xnatfs-stage-md5".into())
                .spawn(move || me.follow());
            if spawned.is_err() {
                state.running = false;
                self.give_up(&mut state);
            }
        }
    }

    /// The stage changed otherwise than by a write at the frontier.
    pub fn changed(&self) {
        let mut state = self.state.lock().unwrap();
        self.give_up(&mut state);
    }

    fn give_up(&self, state: &mut State) {
        state.given_up = true;
        state.md5 = None;
        self.moved.notify_all();
    }

    /// The hasher: reads what was written since it last looked and hashes it, until it has
    /// caught up (or the digest was given up).
    fn follow(&self) {
        lowest_priority();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let (from, n, mut md5) = {
                let mut state = self.state.lock().unwrap();
                let behind = state.written - state.hashed;
                let md5 = if state.given_up || behind == 0 {
                    None
                } else if behind > MAX_LAG {
                    state.outrun = true;
                    None
                } else {
                    state.md5.take()
                };
                let Some(md5) = md5 else {
                    return self.stop(&mut state);
                };
                (state.hashed, behind.min(CHUNK as u64) as usize, md5)
            };
            // Outside the lock: a write only ever waits for the few lines that move the
            // frontier, never for the hashing.
            let read = self.file.read_exact_at(&mut buf[..n], from);
            if read.is_ok() {
                md5.update(&buf[..n]);
            }
            let mut state = self.state.lock().unwrap();
            if read.is_err() {
                self.give_up(&mut state);
            }
            if state.given_up {
                return self.stop(&mut state);
            }
            state.md5 = Some(md5);
            state.hashed = from + n as u64;
            self.moved.notify_all();
        }
    }

    /// The hasher thread ends.
    fn stop(&self, state: &mut State) {
        state.running = false;
        self.moved.notify_all();
    }

    /// The MD5 state of the stage's first bytes, as far as the hasher got, if the stage's
    /// `size` bytes are exactly what was written in order. The hasher stops here (waiting at
    /// most for the megabyte it is on): an upload that takes over hashes the rest, and a
    /// later change starts over with no digest.
    pub fn take_prefix(&self, size: u64) -> Option<HashedPrefix> {
        let mut state = self.state.lock().unwrap();
        while state.running && !state.given_up && state.md5.is_none() {
            state = self.moved.wait(state).unwrap();
        }
        let prefix = (!state.given_up && state.written == size)
            .then(|| state.md5.clone())
            .flatten()
            .map(|md5| HashedPrefix {
                md5,
                len: state.hashed,
            });
        self.give_up(&mut state);
        prefix
    }
}

/// Puts the calling thread in the idle scheduling class (SCHED_IDLE): the hasher runs on CPU
/// time nothing else wants, not the writing program's or the daemon's.
fn lowest_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sets the calling thread's own policy (pid 0); `param` outlives the call.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(f: &tempfile::NamedTempFile) -> Arc<File> {
        Arc::new(f.reopen().unwrap())
    }

    fn stage() -> (tempfile::NamedTempFile, Arc<File>) {
        let f = tempfile::NamedTempFile::new().unwrap();
        let file = Arc::new(f.reopen().unwrap());
        (f, file)
    }

    fn md5_hex(data: &[u8]) -> String {
        Md5::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// What an upload that takes over does: hashes the stage's bytes after the prefix.
    fn finish(prefix: Option<HashedPrefix>, stage: &[u8]) -> Option<String> {
        let mut p = prefix?;
        p.md5.update(&stage[p.len as usize..]);
        Some(
            p.md5
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    #[test]
    fn writes_in_order_are_hashed_as_they_land() {
        let (mut f, file) = stage();
        let d = StageDigest::new(file, 0);
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
        let mut at = 0;
        for chunk in data.chunks(131_072) {
            f.write_all(chunk).unwrap();
            d.wrote(at, chunk.len() as u64);
            at += chunk.len() as u64;
        }
        // Taken over wherever the hasher got to, the rest hashed by the taker: the same.
        let prefix = d.take_prefix(at);
        assert!(prefix.is_some());
        assert_eq!(finish(prefix, &data), Some(md5_hex(&data)));
        // Once taken, the digest is not followed any more.
        assert!(d.take_prefix(at).is_none());

        // Asked for another size than what was written: nothing.
        let d = StageDigest::new(file_of(&f), 0);
        d.wrote(0, at);
        assert!(d.take_prefix(at - 1).is_none());
    }

    #[test]
    fn a_write_off_the_frontier_or_another_change_gives_it_up() {
        let (mut f, file) = stage();
        let d = StageDigest::new(file.clone(), 0);
        f.write_all(b"hello").unwrap();
        d.wrote(0, 5);
        file.write_all_at(b"J", 0).unwrap();
        d.wrote(0, 1);
        assert!(d.take_prefix(5).is_none());

        let d = StageDigest::new(file.clone(), 0);
        d.wrote(0, 5);
        d.changed();
        assert!(d.take_prefix(5).is_none());

        // A stage that held bytes already (from the server, from a journal) is not followed.
        let d = StageDigest::new(file, 5);
        d.wrote(5, 0);
        assert!(d.take_prefix(5).is_none());
    }

    #[test]
    fn a_hasher_outrun_by_the_writer_leaves_the_rest_to_the_upload() {
        let (mut f, file) = stage();
        let data: Vec<u8> = (0..(MAX_LAG as usize * 3))
            .map(|i| (i % 249) as u8)
            .collect();
        f.write_all(&data).unwrap();
        let d = StageDigest::new(file, 0);
        // All of it at once: the hasher is at once more than MAX_LAG behind and stops.
        d.wrote(0, data.len() as u64);
        let prefix = d.take_prefix(data.len() as u64).unwrap();
        assert!(prefix.len < data.len() as u64);
        assert_eq!(finish(Some(prefix), &data), Some(md5_hex(&data)));
    }

    #[test]
    fn an_empty_stage_has_the_empty_digest() {
        let (_f, file) = stage();
        let d = StageDigest::new(file, 0);
        assert_eq!(finish(d.take_prefix(0), b""), Some(md5_hex(b"")));
    }
}
