//! Core tests without FUSE: the operations the adapter calls, over the fake XNAT, each
//! behaviour of docs/SEMANTICS.md's write path checked on the server's side (its bytes, its
//! listings, the calls it got) and on the spool's (the journal records).
//!
//! Time is paused where a test waits for a background retry, so backoffs cost nothing.

mod moves;
mod objects;
mod recovery;
mod uploads;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::fs::cache::{BlockCache, CacheConfig};
use crate::fs::error::FsResult;
use crate::fs::inode::{Ino, ROOT_INO};
use crate::fs::ops::{Core, CoreConfig};
use crate::fs::read::ReadConfig;
use crate::fs::write::spool::{spool_key, Record, Spool, UploadState};
use crate::fs::write::WriteConfig;
use crate::xnat::fake::FakeXnat;
use crate::xnat::Owner;

/// The scan resource folder of the test archive, and its file.
pub const NIFTI: &str = "P/s1/s1_MR1/1-T1w/NIFTI";
pub const T1: &[u8] = b"the server's T1 volume";

/// A core over a fake archive: project P, subject s1, session s1_MR1 with scan 1 (T1w) whose
/// NIFTI resource holds `t1.nii`; the spool in a temporary folder.
pub struct Rig {
    pub fake: Arc<FakeXnat>,
    pub core: Core,
    pub session: String,
    pub spool: PathBuf,
    _dirs: Arc<tempfile::TempDir>,
    config: WriteConfig,
}

/// This process, as FUSE names the caller of a request.
pub fn me() -> u32 {
    std::process::id()
}

impl Rig {
    pub fn new(config: WriteConfig) -> Rig {
        let fake = FakeXnat::new();
        fake.add_project("P");
        fake.add_subject("P", "s1");
        let session = fake.add_session("P", "s1", "s1_MR1");
        fake.add_scan(&session, "1", "T1w");
        fake.add_file(&scan(&session), "NIFTI", "t1.nii", T1.to_vec());
        let dirs = Arc::new(tempfile::tempdir().unwrap());
        let spool = dirs.path().join("spool");
        let core = core_on(&fake, &spool, config.clone(), false);
        core.start();
        Rig {
            fake,
            core,
            session,
            spool,
            _dirs: dirs,
            config,
        }
    }

    /// Delete allowed.
    pub fn deleting() -> Rig {
        Rig::new(WriteConfig {
            allow_delete: true,
            ..WriteConfig::default()
        })
    }

    /// The mount ends (as a crash would: nothing is closed) and a new one starts on the same
    /// spool and server, once the old one's background tasks let go of the spool.
    pub async fn remount(self) -> Rig {
        let Rig {
            fake,
            core,
            session,
            spool,
            _dirs,
            config,
        } = self;
        drop(core);
        let key = spool_key("http://fake.invalid", "alice");
        for _ in 0..100 {
            match Spool::open(&spool, &key) {
                Ok(free) => {
                    drop(free);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        let core = core_on(&fake, &spool, config.clone(), false);
        core.start();
        Rig {
            fake,
            core,
            session,
            spool,
            _dirs,
            config,
        }
    }

    /// The same server through a read-only mount.
    pub fn read_only(&self) -> Core {
        core_on(&self.fake, &self.spool, self.config.clone(), true)
    }

    /// The inode at `path` (`/`-separated, from the root), loading listings as needed.
    pub async fn ino(&self, path: &str) -> FsResult<Ino> {
        let mut ino = ROOT_INO;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            ino = self
                .core
                .namespace()
                .lookup(ino, part.as_bytes())
                .await?
                .ino;
        }
        Ok(ino)
    }

    /// Create `name` in folder `dir` and write `data` into it; the open handle.
    pub async fn create(&self, dir: &str, name: &str, data: &[u8]) -> FsResult<u64> {
        let parent = self.ino(dir).await?;
        let (_, fh) = self.core.create(parent, name.as_bytes(), me()).await?;
        self.write(fh, 0, data).await?;
        Ok(fh)
    }

    pub async fn write(&self, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        match self.core.write_now(fh, offset, data) {
            Some(done) => done,
            None => self.core.write(fh, offset, data.to_vec()).await,
        }
    }

    /// `close()` in this process: the flush's answer, then the release.
    pub async fn close(&self, fh: u64) -> FsResult<()> {
        let flushed = self.core.flush(fh, me()).await;
        self.core.release(fh).await;
        flushed
    }

    /// Every byte of the file at `path`, as a reader of the mount gets it.
    pub async fn read(&self, path: &str) -> FsResult<Vec<u8>> {
        let ino = self.ino(path).await?;
        let (fh, _) = self.core.open(ino).await?;
        let mut out = Vec::new();
        loop {
            let got = self.core.read(ino, fh, out.len() as u64, 1 << 16).await?;
            if got.data.is_empty() {
                break;
            }
            out.extend_from_slice(&got.data);
        }
        self.core.release(fh).await;
        Ok(out)
    }

    /// The bytes the server holds at `path` of the NIFTI resource of scan 1.
    pub fn on_server(&self, path: &str) -> Option<Vec<u8>> {
        self.fake.file_bytes(&scan(&self.session), "NIFTI", path)
    }

    /// The spool's journal records, as `xnatfs status` reads them (without the daemon).
    pub fn records(&self) -> Vec<Record> {
        let dir = self.spool.join(spool_key("http://fake.invalid", "alice"));
        crate::fs::write::spool::read_records(&dir).unwrap_or_default()
    }

    /// Wait (in paused time, so for free) until `done` holds, or fail with `what`.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&Rig) -> bool) {
        for _ in 0..600 {
            if done(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what} did not happen; records: {:?}", self.records());
    }
}

pub fn scan(session: &str) -> Owner {
    Owner::Scan {
        experiment: session.to_string(),
        scan: "1".into(),
    }
}

pub fn state_of(records: &[Record], shown_suffix: &str) -> Option<UploadState> {
    records
        .iter()
        .find(|r| r.shown.ends_with(shown_suffix))
        .map(|r| r.state)
}

fn core_on(
    fake: &Arc<FakeXnat>,
    spool: &std::path::Path,
    write: WriteConfig,
    read_only: bool,
) -> Core {
    let cache = Arc::new(
        BlockCache::new(CacheConfig {
            memory_bytes: 16 << 20,
            ..CacheConfig::default()
        })
        .unwrap(),
    );
    let spool = (!read_only).then(|| {
        Spool::open(spool, &spool_key("http://fake.invalid", "alice")).expect("the spool opens")
    });
    Core::new(
        fake.clone(),
        cache,
        spool,
        CoreConfig {
            metadata_ttl: Duration::from_secs(60),
            project: None,
            read_only,
            read: ReadConfig::default(),
            write,
            bids_map: Default::default(),
            listings: None,
        },
    )
}
