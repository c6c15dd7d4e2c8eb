//! The MD5 of a staged file, computed while it is written, so that its upload does not hash it.
//!
//! An upload must know the MD5 of what it sends: the server's listing is checked against it.
//! Hashing while sending caps the upload at MD5's pace (~0.5 GB/s on one core, well below a
//! fast link) and puts that time on the `close` that waits for the upload. Most files are
//! written once, in order, from the start (`cp`, a tool writing its output), so the digest is
//! computed as those writes land instead: a hasher thread follows the written frontier,
//! reading the new bytes back from the stage (still in the page cache) on the other core,
//! and is usually done when the file is closed. Any other change (a write elsewhere than at
//! the frontier, a truncation, bytes copied in from the server) gives the running digest up,
//! and the upload hashes what it sends as before.

use md5::{Digest, Md5};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex};

/// Bytes the hasher reads back at a time.
const CHUNK: usize = 1 << 20;

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
        if !state.running && len > 0 {
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
        let mut buf = vec![0u8; CHUNK];
        loop {
            let (from, n, mut md5) = {
                let mut state = self.state.lock().unwrap();
                if state.given_up || state.hashed == state.written {
                    state.running = false;
                    self.moved.notify_all();
                    return;
                }
                let n = (state.written - state.hashed).min(CHUNK as u64) as usize;
                let Some(md5) = state.md5.take() else {
                    state.running = false;
                    return;
                };
                (state.hashed, n, md5)
            };
            let read = self.file.read_exact_at(&mut buf[..n], from);
            let mut state = self.state.lock().unwrap();
            if read.is_err() {
                self.give_up(&mut state);
                state.running = false;
                return;
            }
            if state.given_up {
                state.running = false;
                self.moved.notify_all();
                return;
            }
            md5.update(&buf[..n]);
            state.md5 = Some(md5);
            state.hashed = from + n as u64;
            self.moved.notify_all();
        }
    }

    /// The MD5 (lower-case hex) of the stage's first `size` bytes, if they are exactly what was
    /// written in order and hashed; waits for the hasher to catch up. Blocking.
    pub fn digest_of(&self, size: u64) -> Option<String> {
        let mut state = self.state.lock().unwrap();
        while state.running && !state.given_up {
            state = self.moved.wait(state).unwrap();
        }
        if state.given_up || state.written != size || state.hashed != size {
            return None;
        }
        let digest = state.md5.clone()?.finalize();
        Some(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
        assert_eq!(d.digest_of(at), Some(md5_hex(&data)));
        // Asked for another size than what was written: no digest.
        assert_eq!(d.digest_of(at - 1), None);
    }

    #[test]
    fn a_write_off_the_frontier_or_another_change_gives_it_up() {
        let (mut f, file) = stage();
        let d = StageDigest::new(file.clone(), 0);
        f.write_all(b"hello").unwrap();
        d.wrote(0, 5);
        file.write_all_at(b"J", 0).unwrap();
        d.wrote(0, 1);
        assert_eq!(d.digest_of(5), None);

        let d = StageDigest::new(file.clone(), 0);
        d.wrote(0, 5);
        d.changed();
        assert_eq!(d.digest_of(5), None);

        // A stage that held bytes already (from the server, from a journal) is not followed.
        let d = StageDigest::new(file, 5);
        d.wrote(5, 0);
        assert_eq!(d.digest_of(5), None);
    }

    #[test]
    fn an_empty_stage_has_the_empty_digest() {
        let (_f, file) = stage();
        let d = StageDigest::new(file, 0);
        assert_eq!(d.digest_of(0), Some(md5_hex(b"")));
    }
}
