//! Starting and stopping the emulator: [`SimServer`] in a tokio runtime,
//! [`BlockingSimServer`] with its own runtime for plain `#[test]`s. Both
//! listen on a free port by default and stop when dropped.

use crate::accept;
use crate::auth::{AuthConfig, AuthState};
use crate::http::{self, AppState};
use crate::knobs::{self, Faults, Knobs, StatsSnapshot};
use crate::store::Store;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Everything a server needs; `..Default::default()` fills the rest.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Storage root (`archive.json`, `blobs/`).
    pub root: PathBuf,
    pub listen: SocketAddr,
    /// (name, password): created or updated at start.
    pub users: Vec<(String, String)>,
    /// Users who read and write every project.
    pub admins: Vec<String>,
    /// (user, project) memberships granted at start.
    pub members: Vec<(String, String)>,
    /// (user, project) read-only collaborator roles granted at start: listings and
    /// downloads work, every upload, create and delete is refused with 403.
    pub collaborators: Vec<(String, String)>,
    /// Knob settings at start.
    pub faults: Faults,
    pub session_timeout: Duration,
    pub lockout_after: Option<u32>,
    pub lockout_for: Duration,
    pub request_log: Option<PathBuf>,
    /// What `/data/version` says.
    pub version: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            root: PathBuf::from("xnat-sim-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            users: Vec::new(),
            admins: Vec::new(),
            members: Vec::new(),
            collaborators: Vec::new(),
            faults: Faults::default(),
            session_timeout: Duration::from_secs(900),
            lockout_after: None,
            lockout_for: Duration::from_secs(3600),
            request_log: None,
            version: "1.8.10".into(),
        }
    }
}

/// How long `stop` lets responses in flight finish before it cuts their connections.
const GRACE: Duration = Duration::from_secs(2);

/// A running emulator.
pub struct SimServer {
    addr: SocketAddr,
    store: Arc<Store>,
    knobs: Arc<Knobs>,
    auth: Arc<AuthState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Opens the store and applies the configured users and memberships.
pub fn open_store(config: &SimConfig) -> io::Result<Arc<Store>> {
    let store = Arc::new(Store::open(&config.root)?);
    if !(config.users.is_empty()
        && config.admins.is_empty()
        && config.members.is_empty()
        && config.collaborators.is_empty())
    {
        store.write(|a| {
            for (u, p) in &config.users {
                a.add_user(u, p, false);
            }
            for u in &config.admins {
                if let Some(user) = a.users.get_mut(u) {
                    user.admin = true;
                }
            }
            // One role per user and project, as in XNAT: a new role replaces the old one.
            for (u, p) in &config.members {
                if let Some(project) = a.projects.get_mut(p) {
                    project.collaborators.remove(u);
                    project.members.insert(u.clone());
                }
            }
            for (u, p) in &config.collaborators {
                if let Some(project) = a.projects.get_mut(p) {
                    project.owners.remove(u);
                    project.members.remove(u);
                    project.collaborators.insert(u.clone());
                }
            }
        })?;
    }
    Ok(store)
}

impl SimServer {
    pub async fn start(config: SimConfig) -> io::Result<SimServer> {
        let store = open_store(&config)?;
        let log = match &config.request_log {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
            None => None,
        };
        let knobs = Arc::new(Knobs::new(config.faults.clone(), log));
        let auth = Arc::new(AuthState::new(
            AuthConfig {
                session_timeout: config.session_timeout,
                lockout_after: config.lockout_after,
                lockout_for: config.lockout_for,
                ..Default::default()
            },
            store.clone(),
        ));
        let state = AppState {
            store: store.clone(),
            auth: auth.clone(),
            version: config.version.clone().into(),
        };
        let app = knobs::admin::router(knobs.clone())
            .merge(knobs::wrap(http::router(state), knobs.clone()));
        let listener = accept::bind(config.listen)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let counted = knobs.clone();
        let hook: accept::ConnectionHook = std::sync::Arc::new(move |opened| {
            counted.stats.update(|s| {
                if opened {
                    s.connections_open += 1;
                    s.peak_connections = s.peak_connections.max(s.connections_open);
                } else {
                    s.connections_open = s.connections_open.saturating_sub(1);
                }
            })
        });
        let task = tokio::spawn(accept::serve(listener, app, rx, GRACE, hook));
        Ok(SimServer {
            addr,
            store,
            knobs,
            auth,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The archive, for tests that plant data (hostile names, stale files) directly.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn faults(&self) -> Faults {
        self.knobs.faults()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.knobs.set_faults(faults)
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.knobs.stats.snapshot()
    }

    pub fn reset_stats(&self) {
        self.knobs.stats.reset()
    }

    /// Forgets every session at once, as the session timeout would: the next request with
    /// an old JSESSIONID is a 401. For tests that would otherwise wait out the timeout.
    pub fn expire_sessions(&self) {
        self.auth.end_all_sessions()
    }

    /// Closes the listener, lets responses in flight finish (up to 2 s), then closes every
    /// connection that is left, idle keep-alive ones included. When it returns, the address
    /// is free for a new server (`SimConfig::listen`), which may open the same root.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(GRACE + Duration::from_secs(1), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        // As Tomcat writes its sessions out on a clean shutdown.
        if let Err(e) = self.auth.save() {
            tracing::warn!("sessions and tokens not kept: {e}");
        }
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_signal(self) -> io::Result<()> {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await?;
        self.stop().await;
        Ok(())
    }
}

/// Dropping cuts every connection at once (the accept loop owns them), without grace.
impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A server with its own runtime, for code without tokio (plain `#[test]`).
pub struct BlockingSimServer {
    server: Option<SimServer>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingSimServer {
    pub fn start(config: SimConfig) -> io::Result<BlockingSimServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("xnat-sim")
            .enable_all()
            .build()?;
        let server = runtime.block_on(SimServer::start(config))?;
        Ok(BlockingSimServer {
            server: Some(server),
            runtime: Some(runtime),
        })
    }

    /// [`SimServer::stop`], then the runtime goes; dropping does the same.
    pub fn stop(self) {
        drop(self)
    }
}

impl std::ops::Deref for BlockingSimServer {
    type Target = SimServer;
    fn deref(&self) -> &SimServer {
        self.server.as_ref().expect("server present until drop")
    }
}

impl Drop for BlockingSimServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            if let Some(server) = self.server.take() {
                rt.block_on(server.stop());
            }
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}
