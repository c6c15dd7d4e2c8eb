//! A read handle: one open of one file version. A read plans read-ahead (`plan`), starts the
//! requests the plan asks for, then takes each block it covers from the first place that has
//! it: the memory tier (zero-copy slice, no waiting on anything), the file's requests in flight
//! (as soon as the read's own bytes arrived, not the whole block or file), the disk tier. Only
//! a block that is nowhere makes it start a request of its own and wait.

use super::download;
use super::error::ReadError;
use super::file::{slice_block, FileState, Located, Mode};
use super::plan::{self, Readahead};
use super::shared::{self, Ctx, Files};
use crate::fs::cache::BlockKey;
use bytes::{Bytes, BytesMut};
use std::ops::Range;
use std::sync::{Arc, Mutex};

pub struct ReadHandle {
    ctx: Arc<Ctx>,
    files: Arc<Files>,
    file: Arc<FileState>,
    /// This handle's id within the file.
    id: u64,
    readahead: Mutex<Readahead>,
}

impl ReadHandle {
    pub(crate) fn new(ctx: Arc<Ctx>, files: Arc<Files>, file: Arc<FileState>) -> Self {
        ReadHandle {
            ctx,
            files,
            id: file.new_handle(),
            file,
            readahead: Mutex::new(Readahead::default()),
        }
    }

    /// The file's `Last-Modified`, once a download told it.
    pub fn modified(&self) -> Option<std::time::SystemTime> {
        self.file.modified()
    }

    /// The file's size as the server showed it, once a download told it.
    pub fn real_size(&self) -> Option<u64> {
        self.file.real_size()
    }

    /// The best size known: the real one, else the listing's.
    pub fn size(&self) -> u64 {
        self.real_size().unwrap_or(self.file.listed_size)
    }

    /// Up to `size` bytes at `offset`: fewer only at the end of the file, none past it; a
    /// read that waits longer than the read deadline fails with ETIMEDOUT.
    pub async fn read(&self, offset: u64, size: u32) -> Result<Bytes, ReadError> {
        let deadline = self.ctx.config.read_deadline;
        match tokio::time::timeout(deadline, self.read_within(offset, size)).await {
            Ok(result) => result,
            Err(_) => Err(ReadError::Deadline {
                uri: self.file.uri.clone(),
                secs: deadline.as_secs(),
            }),
        }
    }

    async fn read_within(&self, offset: u64, size: u32) -> Result<Bytes, ReadError> {
        if self.file.is_poisoned() {
            return Err(self.file.digest_error());
        }
        if self.file.real_size().is_none() {
            self.recall_size().await;
        }
        let mut end = offset.saturating_add(size as u64);
        if let Some(real) = self.file.real_size() {
            end = end.min(real);
        }
        if offset >= end {
            return Ok(Bytes::new());
        }
        let bs = self.file.block_size;
        let (first, last) = (offset / bs, (end - 1) / bs);
        let mut waiters: Vec<Waiter> = (first..=last)
            .map(|block| Waiter {
                file: &self.file,
                block,
                waiting: false,
            })
            .collect();
        let epoch = self.plan(offset..end, &mut waiters);
        if first == last {
            return self.piece(offset..end, epoch, &mut waiters[0]).await;
        }
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        for w in &mut waiters {
            let b = w.block;
            let want = offset.max(b * bs)..end.min((b + 1) * bs);
            let piece = self.piece(want.clone(), epoch, w).await?;
            out.extend_from_slice(&piece);
            if (piece.len() as u64) < want.end - want.start {
                break; // the end of the file
            }
        }
        Ok(out.freeze())
    }

    /// Looks once for the real size an earlier download recorded in the cache, so that a file
    /// read before knows its end without a request.
    async fn recall_size(&self) {
        if self.file.size_recall_done() {
            return;
        }
        if let Some((size, modified)) = self.ctx.cache.get_size(self.file.key).await {
            if let Some(t) = modified {
                self.file.set_modified(t);
            }
            self.ctx.learn_size(&self.file, size);
        }
    }

    /// Plans read-ahead for `read` and starts what the plan asks for. The read's blocks not in
    /// memory are counted as waited for from here on, so they are kept for it however fast
    /// their request runs. Returns the failure epoch the read started in.
    fn plan(&self, read: Range<u64>, waiters: &mut [Waiter]) -> u64 {
        let mut readahead = self.readahead.lock().unwrap();
        let file = &self.file;
        let bs = file.block_size;
        let cache = &self.ctx.cache;
        let mut inner = file.lock();
        let (state, plan) = {
            let inner = &*inner;
            plan::plan_blocks(
                &self.ctx.plan,
                *readahead,
                read.clone(),
                file.size_bound(read.end),
                if self.ctx.downloads_full() {
                    usize::MAX
                } else {
                    inner.tasks.len()
                },
                |b| inner.covers(b, bs) || cache.contains(&BlockKey::new(file.key, b)),
            )
        };
        *readahead = state;
        file.set_want(&mut inner, self.id, plan.want.end.max(read.end), false);
        for w in waiters.iter_mut() {
            if !cache.in_memory(&BlockKey::new(file.key, w.block)) {
                w.waiting = true;
                file.add_waiter(&mut inner, w.block);
            }
        }
        let starts = match inner.mode {
            // The first response says whether the server honours Range: until then, one
            // request at a time.
            Mode::Unknown if !inner.tasks.is_empty() => 0,
            Mode::Unknown => 1,
            _ => plan.fetch.len(),
        };
        for range in plan.fetch.into_iter().take(starts) {
            self.start(&mut inner, range);
        }
        inner.epoch
    }

    /// Starts a request for block `b` unless one is on its way (or the first response, which
    /// may turn out to be the whole file, is still awaited). Once a request will deliver the
    /// block, the caller is counted as waiting for it, before it yields, so the block is kept
    /// for it however fast the request runs.
    fn demand(&self, b: u64, waiting: &mut bool) {
        let file = &self.file;
        let bs = file.block_size;
        let end = (b + 1) * bs;
        let mut inner = file.lock();
        file.set_want(&mut inner, self.id, end, true);
        if !inner.covers(b, bs) {
            if inner.mode == Mode::Unknown && !inner.tasks.is_empty() {
                return;
            }
            let range = b * bs..end.min(file.size_bound(end));
            self.start(&mut inner, range);
        }
        if !*waiting {
            *waiting = true;
            file.add_waiter(&mut inner, b);
        }
    }

    fn start(&self, inner: &mut super::file::Inner, range: Range<u64>) {
        if inner.is_closed() {
            return;
        }
        let id = FileState::add_task(inner, range.clone());
        let task = tokio::spawn(download::run(
            self.ctx.clone(),
            self.file.clone(),
            id,
            range,
        ));
        inner.set_abort(id, task.abort_handle());
    }

    /// The bytes `want` of the waiter's block.
    async fn piece(
        &self,
        want: Range<u64>,
        epoch: u64,
        waiter: &mut Waiter<'_>,
    ) -> Result<Bytes, ReadError> {
        let file = &self.file;
        let b = waiter.block;
        let key = BlockKey::new(file.key, b);
        let block_start = b * file.block_size;
        let mut progress = file.subscribe();
        loop {
            if let Some(data) = self.ctx.cache.get_memory(&key) {
                return Ok(slice_block(&data, block_start, &want));
            }
            progress.borrow_and_update();
            if file.is_poisoned() {
                return Err(file.digest_error());
            }
            match file.locate(b, &want, &mut waiter.waiting) {
                Located::Ready(bytes) => return Ok(bytes),
                Located::Eof => return Ok(Bytes::new()),
                Located::Pending => {}
                Located::Missing => {
                    // The block may have been cached just before its request finished.
                    if let Some(data) = self.ctx.cache.get(&key).await {
                        return Ok(slice_block(&data, block_start, &want));
                    }
                    if let Some(e) = file.failure_since(epoch, b) {
                        return Err(e);
                    }
                    // Then wait: the request's first news (or failure) bumps `progress`.
                    self.demand(b, &mut waiter.waiting);
                }
            }
            // The sender lives in the file state, which this handle keeps alive.
            let _ = progress.changed().await;
        }
    }
}

/// Counts a read as waiting for a block while it does (see `FileState::locate`).
struct Waiter<'a> {
    file: &'a FileState,
    block: u64,
    waiting: bool,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if self.waiting {
            self.file.unwait(self.block);
        }
    }
}

impl Drop for ReadHandle {
    fn drop(&mut self) {
        self.file.forget_handle(self.id);
        shared::release(&self.files, self.file.key);
    }
}
