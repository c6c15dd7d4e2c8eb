//! The spool: where staged files live on local disk, with a journal record beside each one.
//!
//! A stage is `<id>.data`; its record `<id>.json` says where it goes on the server and how far
//! it got (still being written, waiting to be uploaded, failed and why). A record is written
//! before an upload starts and removed once the server has the bytes, so after a crash or an
//! unmount the next mount finds every upload that was not finished, and `xnatfs status` can list
//! them without the daemon. One spool folder serves one server and user at a time (a lock file
//! keeps a second mount off it).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::xnat::Owner;

/// How far a staged file got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// Open for writing, or written since its last upload and not closed yet.
    Writing,
    /// Closed and waiting for its upload (first try or a retry after a failure).
    Pending,
    /// The server refused it for a reason a retry won't fix (permissions, a name taken); kept
    /// in the spool and tried again at the next mount.
    Failed,
}

impl UploadState {
    /// The state's name, as the journal and `xnatfs status` give it.
    pub fn name(self) -> &'static str {
        match self {
            UploadState::Writing => "writing",
            UploadState::Pending => "pending",
            UploadState::Failed => "failed",
        }
    }
}

/// The journal record of one staged file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: u64,
    pub owner: Owner,
    /// The resource as requests name it (label, or numeric ID where the listing gave one).
    pub resource: String,
    /// The file's path inside the resource, as the server holds it.
    pub path: String,
    /// Where the file shows under the mount point, for people reading `xnatfs status`.
    pub shown: String,
    /// Replace a file of that name on the server (`overwrite=true`).
    pub replace: bool,
    pub state: UploadState,
    /// Why the last upload failed.
    pub reason: Option<String>,
    pub attempts: u32,
    pub size: u64,
    /// Seconds since the epoch of the last change of this record.
    pub updated: u64,
    /// Set while an upload runs from a stage not yet synced to disk: the kernel's boot ID then.
    /// The stage is synced only if the upload fails (a close that uploads needs no fsync, as
    /// on a local disk); after a machine restart its bytes may be incomplete, so such a stage
    /// is kept but not uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsynced_boot: Option<String>,
}

impl Record {
    /// The record of a new stage: being written, nothing tried yet.
    pub fn new(
        id: u64,
        owner: Owner,
        resource: String,
        path: String,
        shown: String,
        replace: bool,
    ) -> Record {
        let mut record = Record {
            id,
            owner,
            resource,
            path,
            shown,
            replace,
            state: UploadState::Writing,
            reason: None,
            attempts: 0,
            size: 0,
            updated: 0,
            unsynced_boot: None,
        };
        record.touch();
        record
    }

    /// Whether the stage's bytes can be trusted after this boot: not when it was being uploaded
    /// unsynced during an earlier boot (the page cache that held it is gone).
    pub fn stage_survived(&self) -> bool {
        match (&self.unsynced_boot, boot_id()) {
            (Some(then), Some(now)) => *then == now,
            (Some(_), None) => false,
            (None, _) => true,
        }
    }

    pub fn touch(&mut self) {
        self.updated = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
    }
}

/// The spool folder of one mount.
pub struct Spool {
    dir: PathBuf,
    next_id: AtomicU64,
    /// Held for the life of the mount: an exclusive `flock` on `lock`.
    _lock: File,
}

/// The spool folder's name for a server and user: readable, and safe as one path segment.
pub fn spool_key(server: &str, user: &str) -> String {
    let host = server
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(server)
        .trim_end_matches('/');
    format!("{user}@{host}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Spool {
    /// Open (creating it, private to the user) the spool folder `root/<key>`.
    pub fn open(root: &Path, key: &str) -> io::Result<Spool> {
        let dir = root.join(key);
        crate::fs::owned_dir::claim(&dir, "spool", |name| {
            let stem = name.split('.').next().unwrap_or("");
            name == "lock" || (!stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()))
        })?;
        let lock = crate::fs::owned_dir::lock(&dir, || {
            format!(
                "spool {} is in use by another xnatfs mount of the same server and user; give \
                 this one its own with --spool-dir",
                dir.display()
            )
        })?;
        let highest = ids(&dir)?.into_iter().max().unwrap_or(0);
        Ok(Spool {
            dir,
            next_id: AtomicU64::new(highest + 1),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn data_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.data"))
    }

    fn record_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// A new, empty stage file and its id.
    pub fn create_stage(&self) -> io::Result<(u64, File)> {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(self.data_path(id))
            {
                Ok(file) => return Ok((id, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Write `record` durably: to a temporary file, synced, renamed over the old one, and the
    /// folder synced so the rename itself survives a crash. Blocks on the disk: call it off the
    /// async threads.
    pub fn save(&self, record: &Record) -> io::Result<()> {
        // A name of its own per save: a save never renames another's half-written file.
        static SAVES: AtomicU64 = AtomicU64::new(0);
        let n = SAVES.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!("{}.json.{n}.tmp", record.id));
        let body = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let written = file.write_all(&body).and_then(|_| file.sync_data());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, self.record_path(record.id))?;
        sync_dir(&self.dir)
    }

    /// Forget a record, keeping its stage (the server has the bytes; handles may still read).
    pub fn drop_record(&self, id: u64) {
        remove_quietly(&self.record_path(id));
    }

    /// Remove a stage and its record.
    pub fn remove(&self, id: u64) {
        remove_quietly(&self.record_path(id));
        remove_quietly(&self.data_path(id));
    }

    /// Every record in the spool; stages without a record (their upload finished, or they
    /// were never closed into one) are removed.
    pub fn recover(&self) -> Vec<Record> {
        let records = read_records(&self.dir).unwrap_or_default();
        // Half-written records of a save cut short by a crash; the record before it stands.
        for entry in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().ends_with(".tmp") {
                remove_quietly(&entry.path());
            }
        }
        for id in ids(&self.dir).unwrap_or_default() {
            if !records.iter().any(|r| r.id == id) {
                tracing::debug!(id, "removing a stage without a journal record");
                remove_quietly(&self.data_path(id));
            }
        }
        records
    }

    /// The size and room of the spool's disk (zeros if it cannot be read).
    pub fn space(&self) -> Space {
        disk_space(&self.dir).unwrap_or_default()
    }
}

/// Make the entries of folder `dir` (a rename, a new file) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!("removing {}: {e}", path.display());
        }
    }
}

/// Stage ids present in `dir` (from `<id>.data` names).
fn ids(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name.strip_suffix(".data").and_then(|n| n.parse().ok()) {
            out.push(id);
        }
    }
    Ok(out)
}

/// The journal records in a spool folder, oldest first. Unreadable ones are logged and skipped.
pub fn read_records(dir: &Path) -> io::Result<Vec<Record>> {
    let mut records = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        match fs::read(&path).map(|b| serde_json::from_slice::<Record>(&b)) {
            Ok(Ok(record)) => records.push(record),
            Ok(Err(e)) => tracing::warn!("skipping journal record {}: {e}", path.display()),
            Err(e) => tracing::warn!("reading journal record {}: {e}", path.display()),
        }
    }
    records.sort_by_key(|r| r.id);
    Ok(records)
}

/// The size and room of the filesystem holding `path`.
pub fn disk_space(path: &Path) -> io::Result<Space> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a zeroed out-struct.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let frsize = st.f_frsize as u64;
    Ok(Space {
        total: st.f_blocks as u64 * frsize,
        free: st.f_bfree as u64 * frsize,
        available: st.f_bavail as u64 * frsize,
    })
}

/// A filesystem's size and room, in bytes (as `statvfs` gives them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Space {
    pub total: u64,
    /// Not in use (root's reserve included).
    pub free: u64,
    /// What an unprivileged user can still write.
    pub available: u64,
}

/// This boot of the kernel, from `/proc/sys/kernel/random/boot_id`.
pub fn boot_id() -> Option<String> {
    static BOOT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT.get_or_init(|| {
        fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64) -> Record {
        Record {
            id,
            owner: Owner::Scan {
                experiment: "XNAT_E00001".into(),
                scan: "1".into(),
            },
            resource: "NIFTI".into(),
            path: "sub/a.nii.gz".into(),
            shown: "P/S/E/1-mprage/NIFTI/sub/a.nii.gz".into(),
            replace: false,
            state: UploadState::Pending,
            reason: None,
            attempts: 0,
            size: 3,
            updated: 0,
            unsynced_boot: None,
        }
    }

    #[test]
    fn an_unsynced_stage_is_trusted_only_in_the_boot_that_wrote_it() {
        let mut r = record(1);
        assert!(r.stage_survived(), "a synced stage");
        r.unsynced_boot = boot_id();
        assert!(boot_id().is_some(), "this Linux names its boot");
        assert!(
            r.stage_survived(),
            "unsynced, but this boot's page cache has it"
        );
        r.unsynced_boot = Some("an-earlier-boot".into());
        assert!(!r.stage_survived(), "unsynced before a restart");
        let json = serde_json::to_string(&record(2)).unwrap();
        assert!(
            !json.contains("unsynced_boot"),
            "absent when synced: {json}"
        );
    }

    #[test]
    fn records_survive_a_reopen_and_stages_without_one_go() {
        let root = tempfile::tempdir().unwrap();
        let key = spool_key("https://xnat.example.org:8443/", "alice");
        assert_eq!(key, "alice@xnat.example.org_8443");
        let spool = Spool::open(root.path(), &key).unwrap();
        let (kept, mut f) = spool.create_stage().unwrap();
        f.write_all(b"abc").unwrap();
        spool.save(&record(kept)).unwrap();
        let (orphan, _) = spool.create_stage().unwrap();
        assert!(
            Spool::open(root.path(), &key).is_err(),
            "the lock keeps a second mount off"
        );
        let cut_short = spool.dir.join(format!("{kept}.json.7.tmp"));
        fs::write(&cut_short, b"{\"id\":").unwrap();
        drop(spool);

        let spool = Spool::open(root.path(), &key).unwrap();
        let found = spool.recover();
        assert_eq!(found, vec![record(kept)]);
        assert!(!cut_short.exists(), "a save cut short is cleared away");
        assert_eq!(fs::read(spool.data_path(kept)).unwrap(), b"abc");
        assert!(!spool.data_path(orphan).exists());
        let (next, _) = spool.create_stage().unwrap();
        assert!(
            next > orphan,
            "ids are not reused while records may name them"
        );
        spool.remove(kept);
        assert!(read_records(spool.dir()).unwrap().is_empty());
    }
}
