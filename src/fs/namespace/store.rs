//! Listings kept on disk, with the block cache, so that a mount can show the last known tree
//! when the server cannot be reached, and at once after a remount.
//!
//! One file per listing asked (a project's subjects, a session's scan files, …), named by a
//! hash of the server, the user and the request, holding the rows as JSON with a format version;
//! a file of another version, scope or request is ignored and replaced. The folder is private
//! (0700, files 0600, never through a link), and bounded: past its byte budget the listings
//! saved longest ago go first (by the file's time). Saves run off the async threads, written to
//! a temporary name and renamed, so a crash leaves the old listing or the new one, never half
//! of one; rows the same as those last kept are not written again.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fs::owned_dir;

/// The format of the files; another number is not read.
const VERSION: u32 = 2;

/// The key of the root listing (every project): kept once a mount has listed anything.
pub const ROOT_LISTING: &str = "projects";

/// The default byte budget of the store.
pub const DEFAULT_BUDGET: u64 = 256 << 20;

/// The listings of one server and user, under a folder of the cache.
pub struct ListingStore {
    dir: PathBuf,
    /// Server and user: part of every file's name and checked in its body.
    scope: String,
    budget: u64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// File name → what is known of it, for the budget and to skip rewriting the same rows.
    files: HashMap<String, Kept>,
    used: u64,
    /// Requests already answered once in this mount.
    seen: HashSet<String>,
}

struct Kept {
    size: u64,
    saved: SystemTime,
    /// CRC-32 of the file's bytes, when this mount wrote it.
    crc: Option<u32>,
}

#[derive(Serialize)]
struct Saving<'a, T> {
    version: u32,
    scope: &'a str,
    key: &'a str,
    rows: &'a [T],
}

#[derive(Deserialize)]
struct Saved<T> {
    version: u32,
    scope: String,
    key: String,
    rows: Vec<T>,
}

impl ListingStore {
    /// Open (making it) the store in `dir` for `scope` (server and user), within `budget` bytes.
    pub fn open(dir: &Path, scope: &str, budget: u64) -> io::Result<ListingStore> {
        owned_dir::subdir(dir)?;
        let mut state = State::default();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata()?;
            if name.starts_with(".tmp") {
                // A save a crash cut short.
                let _ = fs::remove_file(entry.path());
                continue;
            }
            if !meta.is_file() || !name.ends_with(".json") {
                continue;
            }
            let saved = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            state.used += meta.len();
            state.files.insert(
                name,
                Kept {
                    size: meta.len(),
                    saved,
                    crc: None,
                },
            );
        }
        let store = ListingStore {
            dir: dir.to_path_buf(),
            scope: scope.to_string(),
            budget,
            state: Mutex::new(state),
        };
        store.trim(&mut store.lock());
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn file_name(&self, key: &str) -> String {
        let digest = Sha256::digest(format!("{}\n{key}", self.scope).as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}.json")
    }

    /// Whether a listing of `key` is kept.
    pub fn has(&self, key: &str) -> bool {
        self.lock().files.contains_key(&self.file_name(key))
    }

    /// Bytes kept, and the budget.
    pub fn usage(&self) -> (u64, u64) {
        (self.lock().used, self.budget)
    }

    /// True the first time `key` is asked in this mount.
    pub fn first_use(&self, key: &str) -> bool {
        self.lock().seen.insert(key.to_string())
    }

    /// The rows kept for `key` (reads a file: call it off the async
    /// threads).
    pub fn load<T: DeserializeOwned>(&self, key: &str) -> Option<Vec<T>> {
        let path = self.dir.join(self.file_name(key));
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .ok()?;
        let saved: Saved<T> = match serde_json::from_reader(io::BufReader::new(file)) {
            Ok(saved) => saved,
            Err(e) => {
                tracing::info!(path = %path.display(), "kept listing unreadable, dropped: {e}");
                self.remove(&path);
                return None;
            }
        };
        if saved.version != VERSION || saved.scope != self.scope || saved.key != key {
            self.remove(&path);
            return None;
        }
        Some(saved.rows)
    }

    /// Keep `rows` as the listing of `key` (writes a file: call it off the async threads;
    /// rows the same as those this mount kept last are not written again).
    pub fn save<T: Serialize>(&self, key: &str, rows: &[T]) -> io::Result<()> {
        match self.encode(key, rows)? {
            Some(body) => self.write(key, &body),
            None => Ok(()),
        }
    }

    /// The file body of `rows` as the listing of `key`; None past the budget.
    fn encode<T: Serialize>(&self, key: &str, rows: &[T]) -> io::Result<Option<Vec<u8>>> {
        let body = serde_json::to_vec(&Saving {
            version: VERSION,
            scope: &self.scope,
            key,
            rows,
        })
        .map_err(io::Error::other)?;
        Ok((body.len() as u64 <= self.budget).then_some(body))
    }

    /// Writes an encoded listing (skipped when it is the one this mount kept last).
    fn write(&self, key: &str, body: &[u8]) -> io::Result<()> {
        let name = self.file_name(key);
        let tmp = self.dir.join(format!(".tmp{}-{name}", std::process::id()));
        let now = SystemTime::now();
        let size = body.len() as u64;
        let crc = crc32fast::hash(body);
        if let Some(kept) = self.lock().files.get_mut(&name) {
            if kept.size == size && kept.crc == Some(crc) {
                kept.saved = now;
                return Ok(());
            }
        }
        owned_dir::replace_private(&tmp, &self.dir.join(&name), body, false)?;
        let mut state = self.lock();
        let kept = Kept {
            size,
            saved: now,
            crc: Some(crc),
        };
        if let Some(old) = state.files.insert(name, kept) {
            state.used -= old.size;
        }
        state.used += size;
        self.trim(&mut state);
        Ok(())
    }

    /// Keeps `rows` as the listing of `key` and gives them back: they are encoded on a blocking
    /// thread (the answer waits for that, not for the disk) and the file is written in the
    /// background, logging a failure (a full disk costs the copy, not the answer). The rows are
    /// never copied: a listing of 200,000 files holds its rows and their encoding at most.
    pub async fn keep<T: Serialize + Send + 'static>(
        self: &Arc<Self>,
        key: String,
        rows: Vec<T>,
    ) -> Vec<T> {
        let store = self.clone();
        let encoded = tokio::task::spawn_blocking(move || {
            let body = store.encode(&key, &rows);
            (rows, key, body, store)
        })
        .await;
        let (rows, key, body, store) = match encoded {
            Ok(done) => done,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        match body {
            Ok(Some(body)) => {
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = store.write(&key, &body) {
                        tracing::info!(key, "cannot keep the listing on disk: {e}");
                    }
                });
            }
            Ok(None) => {}
            Err(e) => tracing::info!(key, "cannot keep the listing on disk: {e}"),
        }
        rows
    }

    fn remove(&self, path: &Path) {
        let _ = fs::remove_file(path);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let mut state = self.lock();
        if let Some(kept) = name.and_then(|n| state.files.remove(&n)) {
            state.used -= kept.size;
        }
    }

    /// Drop the listings saved longest ago until the store is within its budget.
    fn trim(&self, state: &mut State) {
        if state.used <= self.budget {
            return;
        }
        let mut by_age: Vec<(SystemTime, String, u64)> = state
            .files
            .iter()
            .map(|(name, kept)| (kept.saved, name.clone(), kept.size))
            .collect();
        by_age.sort();
        for (_, name, size) in by_age {
            if state.used <= self.budget {
                break;
            }
            let _ = fs::remove_file(self.dir.join(&name));
            state.files.remove(&name);
            state.used -= size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xnat::Subject;

    fn subject(label: &str) -> Subject {
        Subject {
            id: format!("ID_{label}"),
            label: label.into(),
            ..Subject::default()
        }
    }

    #[test]
    fn kept_rows_come_back_for_their_scope_and_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = ListingStore::open(&dir.path().join("l"), "http://a\nalice", 1 << 20).unwrap();
        store
            .save("subjects/P", &[subject("S1"), subject("S2")])
            .unwrap();
        let rows = store.load::<Subject>("subjects/P").unwrap();
        assert_eq!(rows, vec![subject("S1"), subject("S2")]);
        assert!(store.load::<Subject>("subjects/Q").is_none());
        drop(store);
        let other = ListingStore::open(&dir.path().join("l"), "http://b\nalice", 1 << 20).unwrap();
        assert!(other.load::<Subject>("subjects/P").is_none());
        let again = ListingStore::open(&dir.path().join("l"), "http://a\nalice", 1 << 20).unwrap();
        assert!(again.has("subjects/P"));
        assert_eq!(again.load::<Subject>("subjects/P").unwrap().len(), 2);
    }

    #[test]
    fn private_and_bounded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("l");
        let store = ListingStore::open(&root, "s", 600).unwrap();
        let mode = fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        for i in 0..10 {
            store.save(&format!("k{i}"), &[subject("S")]).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let (used, budget) = store.usage();
        assert!(used <= budget, "{used} > {budget}");
        assert!(store.has("k9"), "the newest is kept");
        assert!(!store.has("k0"), "the oldest went");
        for entry in fs::read_dir(&root).unwrap() {
            let mode = entry.unwrap().metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn a_damaged_or_other_version_file_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("l");
        let store = ListingStore::open(&root, "s", 1 << 20).unwrap();
        store.save("k", &[subject("S")]).unwrap();
        let path = root.join(store.file_name("k"));
        fs::write(&path, b"{\"version\":1,").unwrap();
        assert!(store.load::<Subject>("k").is_none());
        assert!(!path.exists());
        store.save("k", &[subject("S")]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replace("\"version\":2", "\"version\":99")).unwrap();
        assert!(store.load::<Subject>("k").is_none());
    }

    #[test]
    fn the_same_rows_are_not_written_again() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let store = ListingStore::open(&dir.path().join("l"), "s", 1 << 20).unwrap();
        store.save("k", &[subject("S")]).unwrap();
        let path = dir.path().join("l").join(store.file_name("k"));
        let inode = fs::metadata(&path).unwrap().ino();
        store.save("k", &[subject("S")]).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode, "not rewritten");
        store.save("k", &[subject("S"), subject("T")]).unwrap();
        assert_ne!(
            fs::metadata(&path).unwrap().ino(),
            inode,
            "new rows are written"
        );
        assert_eq!(store.load::<Subject>("k").unwrap().len(), 2);
    }

    #[test]
    fn first_use_is_once_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = ListingStore::open(&dir.path().join("l"), "s", 1 << 20).unwrap();
        assert!(store.first_use("a"));
        assert!(!store.first_use("a"));
        assert!(store.first_use("b"));
    }
}
