//! Running a mount: credentials, login, cache, FUSE session, and the wait for unmount.
//!
//! [`run`] is what both `xnatfs mount` and `mount.xnatfs` do. Without `-f` it resolves the
//! credentials here (prompting if it must), then re-runs itself in the background and returns
//! once that process reports the mount ready or failed (see [`crate::daemon`]). In the
//! foreground it logs in, opens the cache, mounts, and serves until the filesystem is unmounted
//! (`umount`, `fusermount3 -u`) or it gets SIGINT/SIGTERM, when it unmounts itself.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fuser::{Config, MountOption, SessionACL};
use serde::{Deserialize, Serialize};

use crate::cli::MountOptions;
use crate::cluster::RequestBudget;
use crate::config::{self, CredentialArgs, Credentials, Environment, TerminalPrompter};
use crate::daemon::{self, Ready};
use crate::fs::cache::{BlockCache, CacheConfig, DiskConfig};
use crate::fs::namespace::store::{ListingStore, ROOT_LISTING};
use crate::fs::ops::{Core, CoreConfig};
use crate::fs::read::ReadConfig;
use crate::fs::shared::SharedCache;
use crate::fs::write::spool::{spool_key, Spool};
use crate::fs::write::WriteConfig;
use crate::fuse::{KernelCache, XnatFuse};
use crate::xnat::token::Token;
use crate::xnat::{Backend, OfflineStart, XnatClient};

/// What the foreground parent hands the background child on its standard input.
#[derive(Serialize, Deserialize)]
struct Handoff {
    server: String,
    user: String,
    password: String,
}

/// Mount as `opts` says; `args` are this process's own arguments, for the background re-run.
/// Returns the message to print on failure.
pub fn run(opts: MountOptions, args: Vec<OsString>) -> Result<(), String> {
    if let Some(ready) = Ready::from_env() {
        // We are the background process: the parent resolved the credentials for us.
        let handoff: Handoff = match Ready::read_handoff()
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        {
            Ok(h) => h,
            Err(e) => {
                ready.fail(&format!("no credentials from the parent process: {e}"));
                return Err("no credentials from the parent process".into());
            }
        };
        let credentials = (handoff.server, handoff.user, handoff.password);
        return serve(&opts, credentials, Some(ready));
    }
    let mut opts = opts;
    if let Some(path) = &opts.token_file {
        // The background process and mount(8) may run elsewhere than here.
        opts.token_file = Some(
            std::path::absolute(path).map_err(|e| format!("token file {}: {e}", path.display()))?,
        );
    }
    let creds = resolve_credentials(&opts)?;
    check_mountpoint(&opts.mountpoint, opts.allow_non_empty)?;
    if opts.foreground {
        return serve(&opts, (creds.server, creds.user, creds.password), None);
    }
    let handoff = serde_json::to_string(&Handoff {
        server: creds.server,
        user: creds.user,
        password: creds.password,
    })
    .map_err(|e| e.to_string())?;
    daemon::run_in_background(&args, &handoff)
}

fn resolve_credentials(opts: &MountOptions) -> Result<Credentials, String> {
    let args = CredentialArgs {
        server: opts.server.clone(),
        user: opts.user.clone(),
        config_file: opts.config.clone(),
    };
    let env = Environment::from_process();
    let Some(path) = &opts.token_file else {
        return config::resolve(&args, &env, &TerminalPrompter).map_err(|e| e.to_string());
    };
    let token = Token::read(path)?;
    if let Some(expires) = token.expires {
        if expires < std::time::SystemTime::now() {
            return Err(format!(
                "the token in {} expired on {}: issue a new one with `xnatfs token`",
                path.display(),
                httpdate::fmt_http_date(expires)
            ));
        }
    }
    config::resolve_for_token(&args, &env, path, &token).map_err(|e| e.to_string())
}

/// A mount point must be a folder, not mounted on already, and empty unless `non_empty`.
fn check_mountpoint(path: &Path, non_empty: bool) -> Result<(), String> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "mount point {shown} is a file, not a folder: mount on a folder"
            ))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return Err(format!(
                "mount point {shown}: {e}: a mount there has died; `umount {shown}` (or \
                 `fusermount3 -u {shown}`) first"
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "mount point {shown} does not exist: make the folder first (mkdir -p {shown})"
            ))
        }
        Err(e) => return Err(format!("mount point {shown}: {e}")),
    }
    if let Some(kind) = mounted_at(path) {
        return Err(format!(
            "{shown} is already a mount point ({kind}): unmount it first, or mount elsewhere"
        ));
    }
    if !non_empty {
        let entries = std::fs::read_dir(path).map_err(|e| format!("mount point {shown}: {e}"))?;
        if let Some(entry) = entries.flatten().next() {
            return Err(format!(
                "mount point {shown} is not empty (it holds {:?}, which the mount would hide): \
                 use an empty folder, or --allow-non-empty (-o nonempty)",
                entry.file_name()
            ));
        }
    }
    Ok(())
}

/// The filesystem type mounted at `path`, if something is (from /proc/self/mountinfo, whose
/// mount points are escaped octal for space, tab, newline and backslash).
fn mounted_at(path: &Path) -> Option<String> {
    let path = std::fs::canonicalize(path).ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let unescape = |s: &str| -> Vec<u8> {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let octal = b.get(i + 1..i + 4).and_then(|d| {
                std::str::from_utf8(d)
                    .ok()
                    .and_then(|d| u8::from_str_radix(d, 8).ok())
            });
            match (b[i], octal) {
                (b'\\', Some(c)) => {
                    out.push(c);
                    i += 4;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        out
    };
    let want = path.as_os_str().as_encoded_bytes();
    info.lines().find_map(|line| {
        let mut fields = line.split(' ');
        let point = fields.nth(4)?;
        if unescape(point) != want {
            return None;
        }
        let kind = line.split(" - ").nth(1)?.split(' ').next()?;
        Some(kind.to_string())
    })
}

/// The folder of the cache where listings are kept.
pub const LISTINGS_DIR: &str = "listings";

/// The byte budget of the kept listings: a sixteenth of the cache, within 16 MiB..256 MiB.
fn listing_budget(cache_size: u64) -> u64 {
    (cache_size / 16).clamp(16 << 20, crate::fs::namespace::store::DEFAULT_BUDGET)
}

/// Where the disk cache lives when no `--cache-dir` is given.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("xnatfs");
    }
    match crate::config::home_dir() {
        Some(home) => home.join(".cache").join("xnatfs"),
        None => PathBuf::from("/var/cache/xnatfs"),
    }
}

/// Where files written are staged when no `--spool-dir` is given: data, not cache, since a
/// staged file may be the only copy of what was written.
pub fn default_spool_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("xnatfs").join("spool");
    }
    match crate::config::home_dir() {
        Some(home) => home.join(".local/share/xnatfs").join("spool"),
        None => PathBuf::from("/var/spool/xnatfs"),
    }
}

/// Log in, mount and serve until unmounted. Reports readiness through `ready`.
fn serve(
    opts: &MountOptions,
    (server, user, password): (String, String, String),
    ready: Option<Ready>,
) -> Result<(), String> {
    let fail = |ready: Option<Ready>, message: String| -> Result<(), String> {
        tracing::error!("{message}");
        if let Some(ready) = ready {
            ready.fail(&message);
        }
        Err(message)
    };
    if let Err(e) = init_logging(opts, ready.is_some()) {
        return fail(ready, e);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .thread_name("xnatfs")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(ready, format!("cannot start the runtime: {e}")),
    };
    // By default one cache per user and server, so that mounts of two servers both work (a
    // cache folder is locked by its mount).
    let cache_dir = opts.cache_dir.clone().unwrap_or_else(|| {
        default_cache_dir().join(crate::fs::write::spool::spool_key(&server, &user))
    });
    let bids_map = match &opts.bids_map {
        None => Default::default(),
        Some(path) => match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|json| crate::fs::views::bids_map::BidsMap::parse(&json, ""))
        {
            Ok(map) => map,
            Err(e) => return fail(ready, format!("BIDS mapping file {}: {e}", path.display())),
        },
    };
    let cache = match BlockCache::new(CacheConfig {
        disk: Some(DiskConfig::new(cache_dir.clone(), opts.cache_size)),
        ..CacheConfig::default()
    }) {
        Ok(c) => Arc::new(c),
        Err(e) => return fail(ready, format!("cache folder {}: {e}", cache_dir.display())),
    };
    let listings = match ListingStore::open(
        &cache_dir.join(LISTINGS_DIR),
        &format!("{server}\n{user}"),
        listing_budget(opts.cache_size),
    ) {
        Ok(store) => Arc::new(store),
        Err(e) => return fail(ready, format!("cache folder {}: {e}", cache_dir.display())),
    };
    let shared = match &opts.shared_cache {
        None => None,
        Some(dir) => match SharedCache::open(dir, opts.shared_cache_size) {
            Ok(s) => Some(s),
            Err(e) => return fail(ready, format!("shared cache folder {}: {e}", dir.display())),
        },
    };
    let budget = match (&shared, opts.cluster_connections) {
        (Some(shared), Some(slots)) => {
            let dir = shared.slots_dir(&server);
            match RequestBudget::clustered(opts.max_connections, dir, slots, shared.file_mode()) {
                Ok(b) => b,
                Err(e) => return fail(ready, format!("cluster connection slots: {e}")),
            }
        }
        _ => RequestBudget::local(opts.max_connections),
    };
    let mut client_config = crate::xnat::ClientConfig::new(&server, &user, &password);
    client_config.budget = budget;
    client_config.ca_cert = opts.ca_cert.clone();
    client_config.listing_deadline = opts.listing_timeout;
    client_config.listing_max_bytes = opts.max_listing_size;
    client_config.token_file = opts.token_file.clone();
    // Without the server, a mount is worth starting only if an earlier one kept the tree.
    client_config.offline = if opts.offline {
        OfflineStart::Always
    } else if listings.has(ROOT_LISTING) {
        OfflineStart::Allow
    } else {
        OfflineStart::Refuse
    };
    let client = match runtime.block_on(XnatClient::connect(client_config)) {
        Ok(c) => c,
        Err(e) => return fail(ready, format!("cannot log in to {server} as {user}: {e}")),
    };
    let online = client.health().offline_since.is_none();
    if online {
        tracing::info!(server, user, "logged in");
    }
    if let (Some(project), true) = (&opts.project, online) {
        if let Err(e) = runtime.block_on(client.subjects(project)) {
            return fail(ready, format!("project {project} on {server}: {e}"));
        }
    }
    let spool = if opts.read_only {
        None
    } else {
        let root = opts.spool_dir.clone().unwrap_or_else(default_spool_dir);
        match Spool::open(&root, &spool_key(&server, &user)) {
            Ok(s) => Some(s),
            Err(e) => return fail(ready, format!("spool folder under {}: {e}", root.display())),
        }
    };
    let core = Arc::new(Core::new(
        Arc::new(client.clone()),
        cache.clone(),
        spool,
        CoreConfig {
            metadata_ttl: opts.metadata_ttl,
            project: opts.project.clone(),
            read_only: opts.read_only,
            read: ReadConfig {
                read_deadline: opts.read_timeout,
                digest_check: opts.md5_check,
                // Files fetched ahead leave a quarter of the connections to what is read now.
                series_parallel: opts.max_connections - opts.max_connections / 4,
                shared,
                ..ReadConfig::default()
            },
            write: WriteConfig {
                allow_delete: opts.allow_delete,
                session_type: opts.session_type.clone(),
                retry_max: opts.upload_retry_max,
                upload_deadline: opts.upload_timeout,
            },
            bids_map,
            listings: Some(listings),
        },
    ));
    let waiting = runtime.block_on(async { core.start() });
    if waiting > 0 {
        tracing::info!(
            "{waiting} file(s) an earlier mount left in the spool are back in the tree; \
             their uploads resume"
        );
    }
    let kernel = Arc::new(KernelCache::new(runtime.handle().clone()));
    let fs = XnatFuse::new(
        core.clone(),
        runtime.handle().clone(),
        kernel.clone(),
        opts.metadata_ttl,
    );
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(format!("xnatfs:{server}")),
        // As a kernel option (fuser keeps its `Subtype` for fusermount), so that a mount made
        // directly by root is type `fuse.xnatfs` too; fusermount reads it the same way.
        MountOption::CUSTOM("subtype=xnatfs".into()),
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoAtime,
    ];
    config.mount_options.push(if opts.read_only {
        MountOption::RO
    } else {
        MountOption::RW
    });
    if opts.allow_other {
        config.acl = SessionACL::All;
        // Other users act through the daemon, which runs as the mounting user: the kernel
        // must hold them to the modes shown (theirs: read and list, never change).
        config.mount_options.push(MountOption::DefaultPermissions);
    }
    config.n_threads = Some(crate::fuse::SESSION_THREADS);
    let mut session = match fuser::Session::new(fs, &opts.mountpoint, &config) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                ready,
                format!(
                    "cannot mount at {}: {e}{}",
                    opts.mountpoint.display(),
                    fuse_device_hint()
                ),
            )
        }
    };
    kernel.set_notifier(session.notifier());
    if let Some(mut resizes) = core.resizes() {
        // Sizes that fetches ahead found wrong, before anyone opened the files.
        runtime.spawn(async move {
            while let Some(resize) = resizes.recv().await {
                kernel.resized(resize);
            }
        });
    }
    let mut unmounter = session.unmount_callable();
    // The session loop runs on its own thread. Not `Session::spawn`: that moves the mount out
    // of the handle `unmount_callable` shares, so a signal's unmount would find nothing to do.
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
    let session_thread = std::thread::Builder::new()
        .name("fuser-session".into())
        .spawn(move || {
            let _ = ended_tx.send(session.run());
        });
    if let Err(e) = session_thread {
        return fail(ready, format!("cannot start the FUSE session: {e}"));
    }
    tracing::info!(mountpoint = %opts.mountpoint.display(), "mounted");
    if let Some(ready) = ready {
        ready.ok();
    }
    let mountpoint = opts.mountpoint.clone();
    let ended = runtime.block_on(async move {
        let mut ended_rx = ended_rx;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| e.to_string())?;
        tokio::select! {
            ended = &mut ended_rx => return session_result(ended),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: unmounting"),
            _ = term.recv() => tracing::info!("terminated: unmounting"),
        }
        if let Err(e) = unmounter.unmount() {
            // Busy (a shell sits in the tree, a file is open): detach it now, as
            // `fusermount -u -z` would; it goes away when the last user leaves.
            tracing::warn!("unmount: {e}; detaching the mount lazily");
            detach(&mountpoint).map_err(|e| format!("unmount: {e}"))?;
        }
        // The session loop ends once the kernel lets go of the connection.
        match tokio::time::timeout(SESSION_END_WAIT, &mut ended_rx).await {
            // We asked for the unmount: however the session loop noticed (a clean end, or an
            // error from a connection torn down under it), the mount is gone as asked.
            Ok(ended) => {
                if let Err(e) = session_result(ended) {
                    tracing::info!("session ended after the unmount: {e}");
                }
                Ok(())
            }
            Err(_) => {
                tracing::warn!("the mount is still in use; exiting anyway");
                Ok(())
            }
        }
    });
    cache.flush();
    let _ = runtime.block_on(client.logout());
    // Never wait forever for a blocking task at exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    tracing::info!("unmounted");
    ended
}

/// Why a mount may have been refused that is not the mount point's fault: `/dev/fuse` that this
/// user cannot open (FUSE is opened before `fusermount3` is tried).
fn fuse_device_hint() -> String {
    let path = c"/dev/fuse";
    // SAFETY: a NUL-terminated path; access has no other preconditions.
    if unsafe { libc::access(path.as_ptr(), libc::R_OK | libc::W_OK) } == 0 {
        return String::new();
    }
    let why = std::io::Error::last_os_error();
    format!(
        " (/dev/fuse: {why}: this user must be able to read and write it; the fuse3 package \
         makes it 0666, a site may limit it to a group)"
    )
}

/// How long a signalled mount waits for the kernel to end the session after unmounting.
const SESSION_END_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn session_result(
    ended: Result<std::io::Result<()>, tokio::sync::oneshot::error::RecvError>,
) -> Result<(), String> {
    match ended {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("FUSE session: {e}")),
        Err(_) => Err("the FUSE session thread ended without a result".into()),
    }
}

/// `umount -l`: detach the mount from the tree; the kernel ends it when no one uses it.
fn detach(mountpoint: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(mountpoint.as_os_str().as_bytes())?;
    // SAFETY: a NUL-terminated path; umount2 has no other preconditions.
    if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EPERM) {
        return Err(err);
    }
    // Not root: the setuid helper may.
    let status = std::process::Command::new("fusermount3")
        .args(["-u", "-z"])
        .arg(mountpoint)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "fusermount3 -u -z: {status}"
        )))
    }
}

fn init_logging(opts: &MountOptions, background: bool) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    use tracing_subscriber::EnvFilter;
    let level = &opts.log_level;
    // fuser's one warning there is its session's unmount failing after an `umount` from
    // outside had already done it: every clean unmount would log it.
    let directives = if level.contains(['=', ',']) {
        level.clone()
    } else {
        format!("xnatfs={level},{level},fuser::session=error")
    };
    let filter = EnvFilter::try_new(directives).map_err(|e| format!("log level {level}: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match (&opts.log_file, background) {
        (Some(path), _) => {
            // Private (labels and paths are in it), and never through a link.
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| format!("log file {}: {e}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(Arc::new(file))
                .try_init()
        }
        (None, true) => builder.with_writer(std::io::sink).try_init(),
        (None, false) => {
            // Colours only for a person at a terminal who did not ask for none.
            use std::io::IsTerminal;
            let colour = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder
                .with_ansi(colour)
                .with_writer(std::io::stderr)
                .try_init()
        }
    };
    result.map_err(|e| format!("logging: {e}"))
}
