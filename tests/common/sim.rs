//! An in-process xnat-sim on loopback for mount tests, and what a mount of it must show: every
//! file's path in the tree, size and MD5, computed from the sim's own store (the blob bytes, not
//! the catalog), so a test checks xnatfs against the server's data rather than against itself.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use md5::{Digest, Md5};
use xnat_sim::model::{Archive, ResourceOwner};
use xnat_sim::{add_file, populate, BlockingSimServer, Shape, SimConfig, Store};

pub const USER: &str = "alice";
pub const PASS: &str = "secret";

pub struct Sim {
    pub server: BlockingSimServer,
    _root: tempfile::TempDir,
}

/// Alice owns the populated projects (she creates, edits and deletes through the mount) unless
/// the shape names her as a member or an owner already.
fn give_alice_a_role(shape: &mut Shape) {
    if !shape.members.iter().chain(&shape.owners).any(|m| m == USER) {
        shape.owners.push(USER.into());
    }
}

impl Sim {
    /// A sim with user alice/secret, populated with `shape` (alice made an owner, who may also
    /// delete, unless the shape gives her a role).
    pub fn start(shape: Shape) -> Sim {
        Self::start_with(Some(shape), |_| {})
    }

    /// A sim with user alice/secret; `configure` may change the config before start.
    pub fn start_with(shape: Option<Shape>, configure: impl FnOnce(&mut SimConfig)) -> Sim {
        let root = tempfile::tempdir().expect("sim root");
        let mut config = SimConfig {
            root: root.path().to_path_buf(),
            users: vec![(USER.into(), PASS.into())],
            ..Default::default()
        };
        configure(&mut config);
        let server = BlockingSimServer::start(config).expect("start xnat-sim");
        if let Some(mut shape) = shape {
            give_alice_a_role(&mut shape);
            populate(server.store(), &shape).expect("populate");
        }
        Sim {
            server,
            _root: root,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn store(&self) -> &Store {
        self.server.store()
    }

    /// Add a resource to `owner` and return its numeric id.
    pub fn add_resource(&self, owner: ResourceOwner, label: &str) -> u64 {
        self.store()
            .write(|a| a.add_resource(owner, label))
            .expect("add resource")
    }

    pub fn add_file(&self, resource: u64, path: &str, data: &[u8]) {
        add_file(self.store(), resource, path, data).expect("add file");
    }

    /// Download requests the sim served since the last reset.
    pub fn downloads(&self) -> u64 {
        self.server
            .stats()
            .by_kind
            .get("download")
            .copied()
            .unwrap_or(0)
    }

    pub fn listings(&self) -> u64 {
        self.server
            .stats()
            .by_kind
            .get("listing")
            .copied()
            .unwrap_or(0)
    }
}

/// A sim whose server can be stopped and started again at the same address over the same
/// archive: the server going down and coming back.
pub struct Restartable {
    config: SimConfig,
    server: Option<BlockingSimServer>,
    _root: tempfile::TempDir,
}

impl Restartable {
    /// A sim with user alice/secret, populated with `shape` (alice made an owner, as in
    /// [`Sim::start`]).
    pub fn start(mut shape: Shape) -> Restartable {
        let root = tempfile::tempdir().unwrap();
        let config = SimConfig {
            root: root.path().to_path_buf(),
            users: vec![(USER.into(), PASS.into())],
            ..Default::default()
        };
        let server = BlockingSimServer::start(config.clone()).expect("start xnat-sim");
        give_alice_a_role(&mut shape);
        populate(server.store(), &shape).expect("populate");
        let config = SimConfig {
            listen: server.addr(),
            ..config
        };
        Restartable {
            config,
            server: Some(server),
            _root: root,
        }
    }

    pub fn server(&self) -> &BlockingSimServer {
        self.server.as_ref().expect("the server is up")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.config.listen)
    }

    pub fn stop(&mut self) {
        drop(self.server.take());
    }

    pub fn start_again(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match BlockingSimServer::start(self.config.clone()) {
                Ok(server) => {
                    self.server = Some(server);
                    return;
                }
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("restarting the sim: {e}; again");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("cannot restart the sim at {}: {e}", self.config.listen),
            }
        }
    }
}

pub fn small_shape() -> Shape {
    Shape {
        subjects: 2,
        sessions: 1,
        scans: 2,
        files: 2,
        file_size: 8 * 1024,
        assessors: 1,
        ..Default::default()
    }
}

/// One file of the archive as the mount must show it.
#[derive(Clone, Debug)]
pub struct Expected {
    pub size: u64,
    /// MD5 of the bytes in the sim's blob store.
    pub md5: String,
    /// The digest the catalog lists (what `user.xnat.digest` must say).
    pub digest: String,
    pub blob: PathBuf,
}

impl Expected {
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.blob).expect("read sim blob")
    }
}

pub fn md5_hex(bytes: &[u8]) -> String {
    let mut h = Md5::new();
    h.update(bytes);
    format!("{:x}", h.finalize())
}

pub fn md5_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// The folder name of a scan: `<ID>-<type>`, the type's odd characters as `_` (the rule lives in
/// the library; `mount_names.rs` checks it on a scan type with odd characters).
pub fn scan_folder(id: &str, scan_type: &str) -> String {
    xnatfs::fs::node::scan_folder_name(id, scan_type)
}

/// Every file of the projects `alice` can read (or just `only`), by its path in the mount
/// (relative, `/`-separated). Assumes ordinary names (no escaping).
pub fn expected_files(store: &Store, only: Option<&str>) -> BTreeMap<String, Expected> {
    store.read(|a| {
        let mut out = BTreeMap::new();
        for (pid, _) in a
            .projects
            .iter()
            .filter(|(pid, _)| a.can_access(USER, pid) && only.is_none_or(|o| o == pid.as_str()))
        {
            add_resources(
                store,
                a,
                &ResourceOwner::Project(pid.clone()),
                &format!("{pid}/.resources"),
                &mut out,
            );
            for s in a.subjects.values().filter(|s| &s.project == pid) {
                let sdir = format!("{pid}/{}", s.label);
                add_resources(
                    store,
                    a,
                    &ResourceOwner::Subject(s.id.clone()),
                    &format!("{sdir}/.resources"),
                    &mut out,
                );
                for e in a
                    .experiments
                    .values()
                    .filter(|e| e.subject_id == s.id && !e.is_assessor())
                {
                    let edir = format!("{sdir}/{}", e.label);
                    add_resources(
                        store,
                        a,
                        &ResourceOwner::Experiment(e.id.clone()),
                        &format!("{edir}/.resources"),
                        &mut out,
                    );
                    for scan in &e.scans {
                        let owner = ResourceOwner::Scan {
                            experiment: e.id.clone(),
                            scan: scan.id.clone(),
                        };
                        add_resources(
                            store,
                            a,
                            &owner,
                            &format!("{edir}/{}", scan_folder(&scan.id, &scan.scan_type)),
                            &mut out,
                        );
                    }
                    for q in a.assessors_of(&e.id) {
                        add_resources(
                            store,
                            a,
                            &ResourceOwner::Experiment(q.id.clone()),
                            &format!("{edir}/.assessors/{}", q.label),
                            &mut out,
                        );
                    }
                }
            }
        }
        out
    })
}

fn add_resources(
    store: &Store,
    a: &Archive,
    owner: &ResourceOwner,
    dir: &str,
    out: &mut BTreeMap<String, Expected>,
) {
    for rid in a.resource_ids(owner) {
        let r = &a.resources[&rid];
        for f in &r.files {
            let blob = store.blob_path(f.blob);
            let md5 = md5_file(&blob).expect("hash blob");
            out.insert(
                format!("{dir}/{}/{}", r.label, f.path),
                Expected {
                    size: f.size,
                    md5,
                    digest: f.digest.clone(),
                    blob,
                },
            );
        }
    }
}

/// Every regular file under `root`, relative and `/`-separated, with its size from `stat`.
pub fn walk_files(root: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("readdir {}: {e}", dir.display()))
        {
            let entry = entry.expect("dir entry");
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)
                .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
            if meta.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, meta.len());
            }
        }
    }
    out
}

/// Run `f` on a thread and wait at most `limit` for it: a hung filesystem fails the test with
/// `what` instead of hanging it (the mount's Drop then unmounts and frees the thread).
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} did not finish within {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}
