//! The request budget: how many requests a mount has in flight against its server at once
//! (`--max-connections`), and, optionally, how many all the mounts sharing a folder have
//! (`--cluster-connections`, slots as lease files under `<shared>/slots/<server>/`).
//!
//! A request takes a permit before it is sent and gives it back when its answer's body is
//! done (a download's permit lives as long as its body). The local bound is a semaphore; the
//! cluster bound is N lease files `slot-0 … slot-(N-1)`: a request holds one for as long as
//! it runs, a mount that finds all N held polls (20 ms, growing to 250 ms, with jitter), and a
//! slot whose holder died is taken over within [`lease::STALE`]. Waits are counted for
//! `xnatfs status` and logged (at most every 10 s).

use super::lease::{Holder, Lease, Watcher, STALE};
use rand::seq::SliceRandom;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests in flight per mount unless `--max-connections` says otherwise. Half of today's 32:
/// a sequential read saturates loopback with 2-4 range requests, and 16 requests of 20 ms
/// each in flight still carry a series of 512 KiB files at 400 MiB/s; dax's cluster templates
/// hold a user's sessions under 20 for the same servers.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

pub struct RequestBudget {
    max: usize,
    local: Arc<Semaphore>,
    cluster: Option<ClusterSlots>,
    /// Requests waiting for a permit now.
    waiting: AtomicU64,
    /// Requests that had to wait for a cluster slot, ever.
    slot_waits: AtomicU64,
    last_log: Mutex<Option<Instant>>,
}

struct ClusterSlots {
    dir: PathBuf,
    slots: usize,
    mode: u32,
    watcher: Mutex<Watcher>,
}

/// Leave to send one request; dropped when its answer is done.
pub struct Permit {
    _local: OwnedSemaphorePermit,
    _slot: Option<Lease>,
}

/// One request waiting for a permit, counted while the guard lives.
struct Waiting<'a>(&'a AtomicU64);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicU64) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What `xnatfs status` shows of the budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BudgetStats {
    /// Requests allowed in flight on this mount, and those holding its permits now (sending,
    /// or waiting for a cluster slot).
    pub max_connections: usize,
    pub in_flight: usize,
    /// Slots shared by every mount of the shared cache (0: no cluster-wide budget).
    pub cluster_slots: usize,
    /// Requests waiting for leave to go now (for a local permit or a cluster slot).
    pub waiting: u64,
    /// Requests that found every cluster slot taken and waited, since the mount.
    pub slot_waits: u64,
}

impl RequestBudget {
    /// A budget of `max` requests at once on this mount.
    pub fn local(max: usize) -> Arc<Self> {
        Arc::new(Self::new(max, None))
    }

    /// `max` on this mount and `slots` across every mount that uses `dir` (made if missing,
    /// with `mode` for its files; folders get the execute bits to match).
    pub fn clustered(
        max: usize,
        dir: PathBuf,
        slots: usize,
        mode: u32,
    ) -> std::io::Result<Arc<Self>> {
        crate::fs::shared::make_dir(&dir, mode)?;
        Ok(Arc::new(Self::new(
            max,
            Some(ClusterSlots {
                dir,
                slots: slots.max(1),
                mode,
                watcher: Mutex::new(Watcher::default()),
            }),
        )))
    }

    fn new(max: usize, cluster: Option<ClusterSlots>) -> Self {
        let max = max.max(1);
        RequestBudget {
            max,
            local: Arc::new(Semaphore::new(max)),
            cluster,
            waiting: AtomicU64::new(0),
            slot_waits: AtomicU64::new(0),
            last_log: Mutex::new(None),
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// How many idle connections to the server a mount keeps open: as many as it may use at
    /// once; none with a cluster-wide budget, where every connection a mount holds then
    /// carries a request that holds a slot, so the server sees no more connections from the
    /// cluster than the budget (a login now and then aside). A request then opens its own
    /// connection, a handshake next to a body of megabytes.
    pub fn idle_connections(&self) -> usize {
        match self.cluster {
            Some(_) => 0,
            None => self.max,
        }
    }

    /// Waits for leave to send a request.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        // Counted while this waits, also when the wait is dropped (its request given up).
        let _waiting = Waiting::new(&self.waiting);
        let local = self
            .local
            .clone()
            .acquire_owned()
            .await
            .expect("the budget's semaphore is never closed");
        let slot = match &self.cluster {
            Some(_) => Some(self.take_slot().await),
            None => None,
        };
        Permit {
            _local: local,
            _slot: slot,
        }
    }

    async fn take_slot(self: &Arc<Self>) -> Lease {
        let mut pause = Duration::from_millis(20);
        let mut waited = false;
        loop {
            let me = self.clone();
            let taken = tokio::task::spawn_blocking(move || me.try_slots())
                .await
                .ok()
                .flatten();
            if let Some(lease) = taken {
                return lease;
            }
            if !waited {
                waited = true;
                self.slot_waits.fetch_add(1, Ordering::Relaxed);
                self.log_wait();
            }
            let jitter = rand::random::<u64>() % (pause.as_millis() as u64 / 2 + 1);
            tokio::time::sleep(pause + Duration::from_millis(jitter)).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// One pass over the slots in random order: the first free one (or dead one, taken over).
    fn try_slots(&self) -> Option<Lease> {
        let c = self.cluster.as_ref()?;
        let mut order: Vec<usize> = (0..c.slots).collect();
        order.shuffle(&mut rand::thread_rng());
        for i in order {
            let path = c.dir.join(format!("slot-{i}"));
            match Lease::try_take(&path, c.mode) {
                Ok(Some(lease)) => return Some(lease),
                Ok(None) => {
                    let mut watcher = c.watcher.lock().unwrap();
                    if watcher.check(&path, STALE) == Holder::Dead {
                        watcher.break_dead(&path);
                    }
                }
                Err(e) => {
                    tracing::warn!(dir = %c.dir.display(), error = %e,
                        "cannot make a cluster connection slot");
                    return None;
                }
            }
        }
        None
    }

    fn log_wait(&self) {
        let mut last = self.last_log.lock().unwrap();
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            *last = Some(Instant::now());
            let c = self
                .cluster
                .as_ref()
                .expect("only the cluster budget waits here");
            tracing::info!(
                slots = c.slots,
                dir = %c.dir.display(),
                "waiting for a cluster-wide connection slot (every slot is in use by some mount)"
            );
        }
    }

    pub fn stats(&self) -> BudgetStats {
        BudgetStats {
            max_connections: self.max,
            in_flight: self.max - self.local.available_permits(),
            cluster_slots: self.cluster.as_ref().map_or(0, |c| c.slots),
            waiting: self.waiting.load(Ordering::Relaxed),
            slot_waits: self.slot_waits.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_bound_holds() {
        let budget = RequestBudget::local(2);
        let a = budget.acquire().await;
        let _b = budget.acquire().await;
        assert_eq!(budget.stats().in_flight, 2);
        let b2 = budget.clone();
        let third = tokio::spawn(async move { b2.acquire().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!third.is_finished());
        drop(a);
        third.await.unwrap();
    }

    #[tokio::test]
    async fn a_wait_given_up_is_no_longer_counted() {
        let budget = RequestBudget::local(1);
        let _held = budget.acquire().await;
        let b2 = budget.clone();
        let waiter = tokio::spawn(async move { b2.acquire().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(budget.stats().waiting, 1);
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(budget.stats().waiting, 0);
    }

    #[tokio::test]
    async fn two_budgets_share_the_cluster_slots() {
        let dir = tempfile::tempdir().unwrap();
        let slots = dir.path().join("slots");
        let one = RequestBudget::clustered(4, slots.clone(), 2, 0o600).unwrap();
        let two = RequestBudget::clustered(4, slots.clone(), 2, 0o600).unwrap();
        let a = one.acquire().await;
        let _b = two.acquire().await;
        let waiter = {
            let two = two.clone();
            tokio::spawn(async move { two.acquire().await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiter.is_finished(), "both slots are held");
        assert_eq!(two.stats().slot_waits, 1);
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("a freed slot is taken")
            .unwrap();
    }
}
