//! The state one file version shares between all its open handles and its fetch tasks: which
//! bytes are on their way (one `TaskSlot` per request in flight, with the chunks that arrived
//! of the block being filled), whether the server honours Range, the real size once known,
//! what each handle wants next (which paces a whole-body stream), which blocks reads wait for
//! (kept in `ready` once complete, so a memory-tier eviction cannot starve a waiting read), and
//! the failures waiting reads must hear about.
//!
//! Readers wait on `progress` (a `watch` bumped whenever anything here changes) and re-check;
//! the lock is only ever held for a few field updates, never across an await.

use super::error::ReadError;
use super::version::FileVersion;
use crate::fs::cache::FileKey;
use crate::fs::mtime::AtomicTime;
use bytes::{Bytes, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::watch;
use tokio::task::AbortHandle;

const UNKNOWN: u64 = u64::MAX;
/// Failures remembered for readers that were waiting when they happened.
const MAX_FAILURES: usize = 16;

/// Whether the server honours Range, learnt from the first response, never assumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// No response yet: one request at a time, so a server that ignores Range is not asked for
    /// the whole file several times over.
    Unknown,
    /// Parallel range requests.
    Ranges,
    /// Whole-body streams.
    Stream,
}

pub(crate) struct FileState {
    pub key: FileKey,
    pub uri: String,
    pub listed_size: u64,
    pub md5: Option<[u8; 16]>,
    pub block_size: u64,
    inner: Mutex<Inner>,
    progress: watch::Sender<u64>,
    /// The furthest byte any handle wants soon (its latest read plus read-ahead, or a block a
    /// read waits for); a whole-body stream pauses beyond it.
    want: watch::Sender<u64>,
    real_size: AtomicU64,
    /// The `Last-Modified` of the latest answer.
    modified: AtomicTime,
    size_recalled: AtomicBool,
    poisoned: AtomicBool,
}

pub(crate) struct Inner {
    pub mode: Mode,
    pub tasks: Vec<TaskSlot>,
    next_id: u64,
    /// Bumped by each failure.
    pub epoch: u64,
    failures: VecDeque<Failure>,
    closed: bool,
    next_handle: u64,
    /// Handle → the end of what it wants soon.
    wants: HashMap<u64, u64>,
    /// Block → reads waiting for it. A completed block with waiters is kept in `ready` until
    /// they took it, so no memory-tier eviction can make a waiting read miss it.
    waiting: HashMap<u64, usize>,
    ready: HashMap<u64, Bytes>,
}

/// A request in flight.
pub(crate) struct TaskSlot {
    pub id: u64,
    /// Bytes before this are in released blocks (cached): blocks from `released`'s block up to
    /// `end` are on their way.
    released: u64,
    /// The first byte not yet shown to readers.
    next: u64,
    /// Exclusive end of what this request delivers (`u64::MAX`: to the end of the file).
    end: u64,
    /// Arrived bytes of the block being filled, from `chunks_start` (its start, or the resume
    /// point) up to `next`.
    chunks: Vec<Bytes>,
    chunks_start: u64,
    /// The block completed last, for readers that woke after the memory tier dropped it.
    last: Option<(u64, Bytes)>,
    abort: Option<AbortHandle>,
}

struct Failure {
    epoch: u64,
    bytes: Range<u64>,
    error: ReadError,
}

/// Where the bytes a reader wants stand.
pub(crate) enum Located {
    Ready(Bytes),
    /// On their way: wait for progress.
    Pending,
    /// Not cached by the file state and not in flight.
    Missing,
    /// At or past the real end of the file.
    Eof,
}

impl FileState {
    pub fn new(file: &FileVersion, block_size: u64) -> Self {
        FileState {
            key: file.key(),
            uri: file.uri.clone(),
            listed_size: file.size,
            md5: file.md5(),
            block_size,
            inner: Mutex::new(Inner {
                mode: Mode::Unknown,
                tasks: Vec::new(),
                next_id: 0,
                epoch: 0,
                failures: VecDeque::new(),
                closed: false,
                next_handle: 0,
                wants: HashMap::new(),
                waiting: HashMap::new(),
                ready: HashMap::new(),
            }),
            progress: watch::channel(0).0,
            want: watch::channel(0).0,
            real_size: AtomicU64::new(UNKNOWN),
            modified: AtomicTime::default(),
            size_recalled: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// The server's `Last-Modified` for the file, once an answer gave it.
    pub fn modified(&self) -> Option<std::time::SystemTime> {
        self.modified.get()
    }

    pub fn set_modified(&self, t: std::time::SystemTime) {
        self.modified.set(t);
    }

    /// The size the server showed, once a response or the end of a body told it.
    pub fn real_size(&self) -> Option<u64> {
        match self.real_size.load(Ordering::Acquire) {
            UNKNOWN => None,
            n => Some(n),
        }
    }

    /// The size to plan with: the real one, or else the listing's, stretched to cover a read
    /// past it and rounded up to a block (the listing may be stale, and a request must not cut
    /// a block short; a server clamps a range that runs past the end).
    pub fn size_bound(&self, read_end: u64) -> u64 {
        self.real_size().unwrap_or_else(|| {
            let bs = self.block_size;
            self.listed_size.max(read_end).div_ceil(bs) * bs
        })
    }

    /// Records the real size; true the first time.
    pub fn set_real_size(&self, size: u64) -> bool {
        let first = self
            .real_size
            .compare_exchange(UNKNOWN, size, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if first {
            self.notify();
        }
        first
    }

    /// True from the second call on: the cache's size record is looked up once.
    pub fn size_recall_done(&self) -> bool {
        self.size_recalled.swap(true, Ordering::AcqRel)
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Fails reads from now on; waiting readers hear it at the next `notify`.
    pub fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    pub fn digest_error(&self) -> ReadError {
        ReadError::DigestMismatch {
            uri: self.uri.clone(),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.progress.subscribe()
    }

    pub fn notify(&self) {
        self.progress.send_modify(|g| *g = g.wrapping_add(1));
    }

    pub fn new_handle(&self) -> u64 {
        let mut inner = self.lock();
        inner.next_handle += 1;
        inner.next_handle
    }

    /// Sets what `handle` wants soon: `end`, or the larger of it and the current want.
    pub fn set_want(&self, inner: &mut Inner, handle: u64, end: u64, keep_higher: bool) {
        let w = inner.wants.entry(handle).or_insert(0);
        *w = if keep_higher { end.max(*w) } else { end };
        self.publish_want(inner);
    }

    pub fn forget_handle(&self, handle: u64) {
        let mut inner = self.lock();
        inner.wants.remove(&handle);
        self.publish_want(&inner);
    }

    fn publish_want(&self, inner: &Inner) {
        let bs = self.block_size;
        let handles = inner.wants.values().copied().max().unwrap_or(0);
        let waits = inner
            .waiting
            .keys()
            .map(|b| (b + 1) * bs)
            .max()
            .unwrap_or(0);
        let want = handles.max(waits);
        self.want.send_if_modified(|w| {
            let changed = *w != want;
            *w = want;
            changed
        });
    }

    /// Counts one more read waiting for block `b`.
    pub fn add_waiter(&self, inner: &mut Inner, b: u64) {
        *inner.waiting.entry(b).or_insert(0) += 1;
        self.publish_want(inner);
    }

    /// A read that waited for block `b` (see `locate`) is done with it.
    pub fn unwait(&self, b: u64) {
        let mut inner = self.lock();
        if let Some(n) = inner.waiting.get_mut(&b) {
            *n -= 1;
            if *n == 0 {
                inner.waiting.remove(&b);
                inner.ready.remove(&b);
            }
        }
        self.publish_want(&inner);
    }

    pub fn want_now(&self) -> u64 {
        *self.want.borrow()
    }

    pub fn want(&self) -> watch::Receiver<u64> {
        self.want.subscribe()
    }

    pub fn set_mode(&self, mode: Mode) {
        let mut inner = self.lock();
        if inner.mode == Mode::Unknown {
            inner.mode = mode;
        }
        drop(inner);
        self.notify();
    }

    /// Where the bytes `want` (within block `block`) stand. When they are on their way, the
    /// caller is counted as waiting for the block (once: `waiting` turns true) and must call
    /// `unwait` when done.
    pub fn locate(&self, block: u64, want: &Range<u64>, waiting: &mut bool) -> Located {
        if self.real_size().is_some_and(|s| want.start >= s) {
            return Located::Eof;
        }
        let bs = self.block_size;
        let mut inner = self.lock();
        if let Some(data) = inner.ready.get(&block) {
            return Located::Ready(slice_block(data, block * bs, want));
        }
        for t in &inner.tasks {
            if let Some((b, data)) = &t.last {
                if *b == block {
                    return Located::Ready(slice_block(data, block * bs, want));
                }
            }
        }
        let pending = match inner.tasks.iter().find(|t| t.covers(block, bs)) {
            None => return Located::Missing,
            Some(t) => match t.arrived(want) {
                Some(bytes) => return Located::Ready(bytes),
                None => Located::Pending,
            },
        };
        if !*waiting {
            *waiting = true;
            self.add_waiter(&mut inner, block);
        }
        pending
    }

    /// A failure since `epoch` of a request that was to deliver `block`.
    pub fn failure_since(&self, epoch: u64, block: u64) -> Option<ReadError> {
        let bs = self.block_size;
        let range = block * bs..(block + 1) * bs;
        let inner = self.lock();
        inner
            .failures
            .iter()
            .rev()
            .take_while(|f| f.epoch > epoch)
            .find(|f| f.bytes.start < range.end && range.start < f.bytes.end)
            .map(|f| f.error.clone())
    }

    // The calls below are made by the fetch task that owns slot `id`.

    /// The request now delivers `next..end` (a whole body came back for a range request).
    pub fn retarget(&self, id: u64, next: u64, end: u64) {
        if let Some(t) = self.lock().slot(id) {
            // A resume at the same byte keeps the chunks already shown.
            if next != t.next {
                t.chunks.clear();
                t.chunks_start = next;
                t.released = next;
            }
            t.next = next;
            t.end = end;
        }
        self.notify();
    }

    /// Shows readers a chunk that arrived at the slot's `next`.
    pub fn publish_chunk(&self, id: u64, chunk: Bytes) {
        if let Some(t) = self.lock().slot(id) {
            if t.chunks.is_empty() {
                t.chunks_start = t.next;
            }
            t.next += chunk.len() as u64;
            t.chunks.push(chunk);
        }
        self.notify();
    }

    /// Block `index` is complete (and already in the cache): readers may take it.
    pub fn block_done(&self, id: u64, index: u64, data: Bytes) {
        let end = index * self.block_size + data.len() as u64;
        let mut inner = self.lock();
        if inner.waiting.contains_key(&index) {
            inner.ready.insert(index, data.clone());
        }
        if let Some(t) = inner.slot(id) {
            t.released = end;
            t.next = t.next.max(end);
            t.chunks.clear();
            t.chunks_start = t.next;
            t.last = Some((index, data));
        }
        drop(inner);
        self.notify();
    }

    /// Registers a request for `range`; the caller spawns its task and calls `set_abort`.
    pub fn add_task(inner: &mut Inner, range: Range<u64>) -> u64 {
        let id = inner.next_id;
        inner.next_id += 1;
        inner.tasks.push(TaskSlot {
            id,
            released: range.start,
            next: range.start,
            end: range.end,
            chunks: Vec::new(),
            chunks_start: range.start,
            last: None,
            abort: None,
        });
        id
    }

    pub fn finish_task(&self, id: u64) {
        self.lock().tasks.retain(|t| t.id != id);
        self.notify();
    }

    pub fn fail_task(&self, id: u64, error: ReadError) {
        let mut inner = self.lock();
        if let Some(pos) = inner.tasks.iter().position(|t| t.id == id) {
            let t = inner.tasks.remove(pos);
            inner.epoch += 1;
            let epoch = inner.epoch;
            let start = t.released - t.released % self.block_size;
            inner.failures.push_back(Failure {
                epoch,
                bytes: start..t.end,
                error,
            });
            if inner.failures.len() > MAX_FAILURES {
                inner.failures.pop_front();
            }
        }
        drop(inner);
        self.notify();
    }

    /// The last handle is gone: stop every request at once.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        for t in inner.tasks.drain(..) {
            if let Some(a) = t.abort {
                a.abort();
            }
        }
    }
}

impl Inner {
    /// Whether some request in flight will deliver block `b`.
    pub fn covers(&self, b: u64, bs: u64) -> bool {
        self.tasks.iter().any(|t| t.covers(b, bs))
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn set_abort(&mut self, id: u64, abort: AbortHandle) {
        match self.slot(id) {
            Some(t) => t.abort = Some(abort),
            // Already finished (or the file closed): nothing to abort later.
            None => {
                if self.closed {
                    abort.abort();
                }
            }
        }
    }

    fn slot(&mut self, id: u64) -> Option<&mut TaskSlot> {
        self.tasks.iter_mut().find(|t| t.id == id)
    }
}

impl TaskSlot {
    fn covers(&self, b: u64, bs: u64) -> bool {
        b >= self.released / bs && b * bs < self.end
    }

    /// The bytes `want`, if they all arrived in the block being filled.
    fn arrived(&self, want: &Range<u64>) -> Option<Bytes> {
        if want.start < self.chunks_start || want.end > self.next {
            return None;
        }
        let mut pieces = Vec::new();
        let mut at = self.chunks_start;
        for c in &self.chunks {
            let c_end = at + c.len() as u64;
            if c_end > want.start && at < want.end {
                let s = want.start.max(at) - at;
                let e = want.end.min(c_end) - at;
                pieces.push(c.slice(s as usize..e as usize));
            }
            at = c_end;
        }
        Some(match pieces.len() {
            1 => pieces.pop().unwrap(),
            _ => {
                let mut out = BytesMut::with_capacity((want.end - want.start) as usize);
                for p in pieces {
                    out.extend_from_slice(&p);
                }
                out.freeze()
            }
        })
    }
}

/// The part of a block (starting at byte `start`) that `want` covers, cut at the block's end.
pub(crate) fn slice_block(data: &Bytes, start: u64, want: &Range<u64>) -> Bytes {
    let len = data.len() as u64;
    let s = (want.start - start).min(len);
    let e = (want.end - start).min(len);
    data.slice(s as usize..e as usize)
}
