//! One download in flight: it GETs a byte range, cuts the body into blocks, puts each block in
//! the cache and tells the file's readers, chunk by chunk, what arrived.
//!
//! - If the server ignores the Range (a 200 with the whole body), the request becomes the file's
//!   stream: it delivers every block from the start and pauses (stops reading the socket, so TCP
//!   pushes back on the server) once it is a window past what any reader wants. Bytes before
//!   where it was asked to start still pass through it, into the MD5 check, but blocks already
//!   cached are not cached again.
//! - A body that breaks is resumed once from the first byte not yet delivered (with Range; a
//!   server that ignores it streams from 0 again and the bytes before are skipped). A second
//!   break, or an error answer, fails the request and the reads waiting on it.
//! - Per byte the work is one copy, from the network's chunks into the block (contiguous blocks
//!   are what makes every later read a zero-copy slice), made when the block is complete; until
//!   then the block is the network's chunks, which its waiting readers get slices of.
//! - A request reads no further while the disk cache's writer is behind (see
//!   `cache::writer`): every block reaches the disk, and readers still get each block first.

use super::digest::{DigestCheck, Hasher};
use super::error::ReadError;
use super::file::{FileState, Mode};
use super::shared::{Ctx, InFlight};
use crate::fs::cache::BlockKey;
use crate::xnat::{BodyStream, Download, XnatError};
use bytes::{Buf, Bytes};
use futures::StreamExt;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(crate) async fn run(ctx: Arc<Ctx>, file: Arc<FileState>, id: u64, range: Range<u64>) {
    let _counted = InFlight::new(&ctx);
    let mut task = Task {
        bs: file.block_size,
        ctx,
        file,
        id,
        next: range.start,
        end: range.end,
        whole_body: false,
        pieces: Vec::new(),
        hasher: None,
        hold_all: None,
        held: None,
    };
    match task.run().await {
        Ok(hasher) => {
            task.file.finish_task(id);
            if let Some(h) = hasher {
                task.check_digest(h).await;
            }
        }
        Err(e) => {
            // The reads waiting for these bytes return the error, and it is logged there.
            tracing::debug!(uri = %task.file.uri, error = %e, "download failed");
            task.file.fail_task(id, e);
        }
    }
}

enum PumpError {
    /// The body broke: worth one resume.
    Broken(XnatError),
    Fatal(ReadError),
}

struct Task {
    ctx: Arc<Ctx>,
    file: Arc<FileState>,
    id: u64,
    bs: u64,
    /// The first byte not yet taken into `pieces`.
    next: u64,
    end: u64,
    /// The server ignored the Range: this is a whole-file stream.
    whole_body: bool,
    /// The block being filled, as the network's chunks (the same slices its waiting readers
    /// were given): bytes from `next`'s block start (or resume point) to `next`. They are
    /// copied into one block buffer when the block is complete, so a download in flight holds
    /// its bytes once, not a copy beside them.
    pieces: Vec<Bytes>,
    hasher: Option<Hasher>,
    /// Strict digest check: the latest complete block, released once the next one completes
    /// or the digest matched.
    held: Option<(u64, Bytes)>,
    /// A small file checked whole: every complete block, released only once the digest
    /// matched (`ReadConfig::verify_whole_max`).
    hold_all: Option<Vec<(u64, Bytes)>>,
}

impl Drop for Task {
    fn drop(&mut self) {
        // A download stopped mid-block (failed, or aborted when its readers left).
        self.drop_pieces();
    }
}

impl Task {
    /// Lets go of the pieces of the block being filled, and of their share of the budget.
    fn drop_pieces(&mut self) {
        let len: usize = self.pieces.drain(..).map(|p| p.len()).sum();
        self.ctx.cache.hold_outside(-(len as i64));
    }

    /// Runs the request and its resumes. Returns the background hasher to consult.
    ///
    /// A broken body is resumed while resuming gets somewhere: `max_resumes` breaks in a row
    /// that brought no new byte fail the download, and so does a total beyond `max_resumes`
    /// plus one per 64 KiB of the file (a server that cuts every body after a few bytes). A
    /// resume after a break that brought nothing waits first (1, 2, 4 s).
    async fn run(&mut self) -> Result<Option<Hasher>, ReadError> {
        let max = self.ctx.config.max_resumes;
        let size = self.file.real_size().unwrap_or(self.file.listed_size);
        let budget = match max {
            0 => 0,
            _ => max.saturating_add(u32::try_from(size >> 16).unwrap_or(u32::MAX)),
        };
        let (mut resumes, mut fruitless) = (0u32, 0u32);
        // A small file with a digest is fetched whole even when ranges work, so that it is
        // checked before any byte of it is served.
        let mut whole_file = self.verifies_whole();
        loop {
            let request = (!whole_file).then(|| self.next..self.request_end());
            self.ctx.stats.requests.fetch_add(1, Ordering::Relaxed);
            let response = match self.ctx.fetch(&self.file, request).await {
                Ok(r) => r,
                Err(e) => match e {
                    // The listing's size was too large and the range starts past the end.
                    XnatError::RangeNotSatisfiable { size, .. } if !whole_file => {
                        match size.or((self.next == 0).then_some(0)) {
                            Some(size) if size <= self.next => {
                                self.learn_size(size);
                                return Ok(None);
                            }
                            // The size is unknown: ask for the whole file once.
                            _ => {
                                whole_file = true;
                                continue;
                            }
                        }
                    }
                    e => return Err(ReadError::Backend(e)),
                },
            };
            let mark = self.next;
            let result = match self.accept(&response, resumes > 0) {
                Ok(pos) => self.pump(response.body, pos).await,
                Err(e) => Err(PumpError::Fatal(e)),
            };
            if let Err(PumpError::Broken(_)) = &result {
                fruitless = if self.next > mark { 0 } else { fruitless + 1 };
            }
            match result {
                Ok(()) => return self.finish().await,
                Err(PumpError::Broken(e)) if fruitless <= max && resumes < budget => {
                    resumes += 1;
                    let base = self.ctx.config.resume_backoff;
                    if fruitless > 0 && !base.is_zero() {
                        // Nothing came through: give a proxy or a restarting server a moment
                        // (1, 2, 4 s) rather than spending the resumes in a millisecond.
                        tokio::time::sleep(base * (1 << (fruitless - 1).min(6))).await;
                    }
                    tracing::info!(uri = %self.file.uri, at = self.next, error = %e, resumes,
                        "download broke; resuming");
                    self.ctx.stats.resumes.fetch_add(1, Ordering::Relaxed);
                    // The rest only, where the server honours ranges (it ignores them else).
                    whole_file = false;
                }
                Err(PumpError::Broken(e)) => return Err(ReadError::Backend(e)),
                Err(PumpError::Fatal(e)) => return Err(e),
            }
        }
    }

    fn request_end(&self) -> u64 {
        match (self.whole_body, self.file.real_size()) {
            (true, Some(size)) => size,
            (true, None) => u64::MAX,
            (false, _) => self.end,
        }
    }

    /// The server's answer does not fit what was asked.
    fn body_error(&self, message: String) -> ReadError {
        ReadError::Body {
            uri: self.file.uri.clone(),
            message,
        }
    }

    /// Takes in a response's framing; returns the file offset of its first body byte.
    fn accept(&mut self, response: &Download, resumed: bool) -> Result<u64, ReadError> {
        if let Some(t) = response.last_modified {
            self.file.set_modified(t);
        }
        if response.partial {
            if response.offset > self.next {
                return Err(self.body_error(format!(
                    "asked for bytes from {}, got a body from {}",
                    self.next, response.offset
                )));
            }
            self.file.set_mode(Mode::Ranges);
            if let Some(total) = response.total_size {
                self.learn_size(total);
            }
            return Ok(response.offset);
        }
        if !self.whole_body {
            self.whole_body = true;
            if !resumed {
                // Deliver the file from its start: the bytes pass by anyway.
                self.next = 0;
                self.drop_pieces();
            }
            self.end = u64::MAX;
            let check = self.ctx.config.digest_check;
            if self.next == 0 && self.verifies_whole() {
                self.hasher = Some(Hasher::start(true));
                self.hold_all = Some(Vec::new());
            } else if self.next == 0 && self.file.md5.is_some() && check != DigestCheck::Off {
                self.hasher = Some(Hasher::start(check == DigestCheck::Strict));
            }
        }
        if let Some(total) = response.total_size {
            self.learn_size(total);
        }
        self.file.retarget(self.id, self.next, self.end);
        // Only now, with this request covering the whole file: set_mode wakes the waiting
        // readers, and one that saw Stream mode before the retarget would find its block
        // uncovered and start another whole-file download.
        self.file.set_mode(Mode::Stream);
        Ok(0)
    }

    /// A file small enough to hold whole until its digest is checked, with a digest to check.
    fn verifies_whole(&self) -> bool {
        let size = self.file.real_size().unwrap_or(self.file.listed_size);
        self.file.md5.is_some()
            && self.ctx.config.digest_check != DigestCheck::Off
            && size <= self.ctx.config.verify_whole_max
    }

    fn learn_size(&mut self, size: u64) {
        self.ctx.learn_size(&self.file, size);
        let real = self.file.real_size().unwrap_or(size);
        if !self.whole_body && self.end < real {
            // Never cut a block short of the real end.
            self.end = self.end.div_ceil(self.bs) * self.bs;
        }
        self.end = self.end.min(real);
    }

    async fn pump(&mut self, mut body: BodyStream, mut pos: u64) -> Result<(), PumpError> {
        while self.next < self.end {
            if self.whole_body {
                self.wait_until_wanted().await;
            }
            let Some(chunk) = body.next().await else {
                return self.end_of_body();
            };
            let chunk = chunk.map_err(PumpError::Broken)?;
            // A body that is always ready must still let readers run.
            tokio::task::coop::consume_budget().await;
            let len = chunk.len() as u64;
            self.ctx.stats.bytes.fetch_add(len, Ordering::Relaxed);
            self.feed(pos, chunk).await?;
            pos += len;
        }
        Ok(())
    }

    /// Pauses a stream that is far enough ahead of every reader.
    async fn wait_until_wanted(&self) {
        if self.hold_all.is_some() {
            // Nothing goes to readers before the end: pausing would wait for ever.
            return;
        }
        // A held block is only released by the next one, so hold one block more.
        let slack = if self.held.is_some() { self.bs } else { 0 };
        let next = self.next;
        let wanted = |w: &u64| w.saturating_add(slack) > next;
        if wanted(&self.file.want_now()) {
            return;
        }
        let _ = self.file.want().wait_for(wanted).await;
    }

    /// The body ended before `end`: the end of the file, unless the size says otherwise.
    fn end_of_body(&mut self) -> Result<(), PumpError> {
        if let Some(size) = self.file.real_size() {
            if self.next < size.min(self.end) {
                return Err(PumpError::Broken(XnatError::Network {
                    method: "GET".into(),
                    url: self.file.uri.clone(),
                    attempts: 1,
                    detail: format!("body ended at byte {} of {size}", self.next),
                }));
            }
        }
        self.learn_size(self.next);
        Ok(())
    }

    async fn feed(&mut self, pos: u64, mut chunk: Bytes) -> Result<(), PumpError> {
        let len = chunk.len() as u64;
        if pos + len <= self.next {
            return Ok(()); // before the resume point
        }
        if pos > self.next {
            return Err(PumpError::Fatal(self.body_error(format!(
                "gap in body: at {pos}, expected {}",
                self.next
            ))));
        }
        chunk.advance((self.next - pos) as usize);
        let publish = !self.hasher.as_ref().is_some_and(Hasher::is_strict);
        while !chunk.is_empty() && self.next < self.end {
            let block_end = (self.next / self.bs + 1) * self.bs;
            let n = (block_end.min(self.end) - self.next).min(chunk.len() as u64) as usize;
            let piece = chunk.split_to(n);
            self.next += n as u64;
            if publish {
                self.file.publish_chunk(self.id, piece.clone());
            }
            self.ctx.cache.hold_outside(n as i64);
            self.pieces.push(piece);
            if self.next == block_end {
                self.complete_block().await;
            }
        }
        Ok(())
    }

    async fn complete_block(&mut self) {
        let pieces = std::mem::take(&mut self.pieces);
        let len: usize = pieces.iter().map(Bytes::len).sum();
        self.ctx.cache.hold_outside(-(len as i64));
        let index = (self.next - 1) / self.bs;
        let buffers = self.ctx.cache.buffers();
        // One contiguous block, so every later read is a zero-copy slice of it: a recycled
        // block buffer, or for a short last block an allocation of its own size (never the
        // network's buffers, which a cached slice would pin).
        let mut buf = if (len as u64) < self.bs / 2 {
            Vec::with_capacity(len)
        } else {
            buffers.take()
        };
        for piece in &pieces {
            buf.extend_from_slice(piece);
        }
        drop(pieces);
        let data = buffers.freeze(buf);
        if self.hold_all.is_some() {
            self.hold_block(index, data).await;
            return;
        }
        let strict = self.hasher.as_ref().is_some_and(Hasher::is_strict);
        // Unless the check is strict, the block is cached before anything here can wait: its
        // last bytes already went to readers, and a reader that closes the file at once
        // aborts this download at its next await (a re-read would fetch the block again).
        if !strict {
            self.release((index, data.clone()));
        }
        if let Some(h) = self.hasher.as_mut() {
            h.push(data.clone()).await;
        }
        let released = if strict {
            self.held
                .replace((index, data))
                .map(|block| self.release(block))
        } else {
            Some(())
        };
        if released.is_some() {
            // The block went to readers first; only the download waits for the disk.
            self.ctx.cache.wait_for_disk_room().await;
        }
    }

    /// Keeps a block of a file checked whole. A file that turns out larger than the listing
    /// said goes on under the strict check: all but the latest block are released.
    async fn hold_block(&mut self, index: u64, data: Bytes) {
        if let Some(h) = self.hasher.as_mut() {
            h.push(data.clone()).await;
        }
        let all = self.hold_all.as_mut().expect("holding blocks");
        all.push((index, data));
        if all.len() as u64 * self.bs > self.ctx.config.verify_whole_max {
            let mut blocks = self.hold_all.take().unwrap_or_default();
            self.held = blocks.pop();
            for block in blocks {
                self.release(block);
            }
        }
    }

    /// Caches a block and hands it to readers.
    fn release(&self, (index, data): (u64, Bytes)) {
        let key = BlockKey::new(self.file.key, index);
        if !self.file.is_poisoned() && !self.ctx.cache.contains(&key) {
            self.ctx.cache.insert(key, data.clone());
        }
        self.file.block_done(self.id, index, data);
    }

    /// The request delivered everything: completes the last (short) block and, for a strict
    /// check, verifies the digest before releasing it.
    async fn finish(&mut self) -> Result<Option<Hasher>, ReadError> {
        if !self.pieces.is_empty() {
            self.complete_block().await;
        }
        let Some(hasher) = self.hasher.take() else {
            return Ok(None);
        };
        if !hasher.is_strict() {
            return Ok(Some(hasher));
        }
        if self.digest_matches(hasher).await {
            for block in self.hold_all.take().unwrap_or_default() {
                self.release(block);
            }
            if let Some(held) = self.held.take() {
                self.release(held);
            }
            Ok(None)
        } else {
            let e = self.file.digest_error();
            self.poison().await;
            Err(e)
        }
    }

    async fn check_digest(&self, hasher: Hasher) {
        if !self.digest_matches(hasher).await {
            self.poison().await;
        }
    }

    /// False only when a completed check found a different digest.
    async fn digest_matches(&self, hasher: Hasher) -> bool {
        let Some(expected) = self.file.md5 else {
            return true;
        };
        // Weak: a catch-up still running when the mount goes away gives the check up rather
        // than keep the cache (and its folder's lock) alive.
        let (cache, file) = (Arc::downgrade(&self.ctx.cache), self.file.key);
        let read = Box::new(move |index| cache.upgrade()?.read_back(&BlockKey::new(file, index)));
        let Some(actual) = hasher.finish(read).await else {
            return true;
        };
        if expected != actual {
            tracing::warn!(uri = %self.file.uri,
                expected = %crate::fs::cache::hex_digest(&expected),
                actual = %crate::fs::cache::hex_digest(&actual),
                "download does not match the catalog's MD5 digest; its cached blocks are dropped");
        }
        expected == actual
    }

    /// Fails the version's reads from now on and drops its cached blocks (after the disk
    /// writer's queue, which may still hold some of them).
    async fn poison(&self) {
        self.file.poison();
        let blocks = self.file.size_bound(0).div_ceil(self.bs);
        let cache = self.ctx.cache.clone();
        let key = self.file.key;
        let _ = tokio::task::spawn_blocking(move || {
            cache.flush();
            cache.remove_blocks(key, 0..blocks);
        })
        .await;
        // Waiting readers wake to the error only now, with the blocks gone.
        self.file.notify();
    }
}
