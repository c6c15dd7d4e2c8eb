//! Bodies the shared cache answers with: from an entry in place (each 1 MiB checked before it
//! goes out), or from a fill, the whole-file download this mount makes into a new entry, read
//! from its temp file as the bytes land.
//!
//! A fill runs to its end whoever still reads it (other mounts wait for its entry). A body
//! that breaks is resumed from the first byte missing (by range; a server that ignores ranges
//! sends the file again and the bytes already written are skipped) while resuming gets
//! somewhere: three breaks in a row that brought nothing fail it. The entry is put in place
//! only when its size is the server's and its MD5 the catalog's; otherwise its readers hear
//! the error and the temp file goes.

use super::entry::{Entry, EntryWriter, PIECE};
use super::{SharedCache, SharedFile};
use crate::cluster::lease::Lease;
use crate::fs::cache::FileKey;
use crate::xnat::{Backend, Download, Result as XnatResult, XnatError};
use bytes::Bytes;
use futures::StreamExt;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Breaks in a row that brought no byte before a fill gives up.
const MAX_FRUITLESS: u32 = 3;

#[derive(Clone, Debug)]
enum State {
    /// No answer from the server yet.
    Asking,
    Running {
        size: Option<u64>,
        written: u64,
        modified: Option<SystemTime>,
    },
    Done {
        size: u64,
        modified: Option<SystemTime>,
    },
    Failed(XnatError),
}

/// A whole-file download into a new entry, as its readers see it (`run` does it).
pub(super) struct Fill {
    reader: File,
    state: watch::Sender<State>,
}

impl Fill {
    /// A fill of what `writer` writes.
    pub fn new(writer: &EntryWriter) -> std::io::Result<Self> {
        Ok(Fill {
            reader: writer.reader()?,
            state: watch::channel(State::Asking).0,
        })
    }

    /// The bytes `range` of the file (all for `None`) as the fill writes them.
    pub async fn download(self: &Arc<Self>, range: Option<Range<u64>>) -> XnatResult<Download> {
        let mut rx = self.state.subscribe();
        let state = rx
            .wait_for(|s| !matches!(s, State::Asking))
            .await
            .map(|s| s.clone())
            .unwrap_or_else(|_| State::Failed(gone()));
        let (size, modified) = match state {
            State::Asking => unreachable!("waited for an answer"),
            State::Failed(e) => return Err(e),
            State::Running { size, modified, .. } => (size, modified),
            State::Done { size, modified } => (Some(size), modified),
        };
        let (start, end) = bounds(&range, size)?;
        let fill = self.clone();
        let body =
            futures::stream::unfold((fill, start, rx), move |(fill, pos, mut rx)| async move {
                loop {
                    let state = rx.borrow_and_update().clone();
                    let (ready, last) = match &state {
                        State::Running { written, .. } => (*written, None),
                        State::Done { size, .. } => (*size, Some(*size)),
                        State::Failed(e) => return Some((Err(e.clone()), (fill, u64::MAX, rx))),
                        State::Asking => (0, None),
                    };
                    let stop = last.map_or(end, |s| end.min(s));
                    if pos >= stop {
                        return None;
                    }
                    if ready > pos {
                        let len = (ready.min(stop) - pos).min(PIECE);
                        let f = fill.clone();
                        let read = tokio::task::spawn_blocking(move || {
                            let mut buf = vec![0u8; len as usize];
                            f.reader
                                .read_exact_at(&mut buf, pos)
                                .map(|_| Bytes::from(buf))
                        })
                        .await;
                        return match read {
                            Ok(Ok(bytes)) => Some((Ok(bytes), (fill, pos + len, rx))),
                            Ok(Err(e)) => Some((
                                Err(XnatError::io("reading a shared cache fill", e)),
                                (fill, u64::MAX, rx),
                            )),
                            Err(_) => None,
                        };
                    }
                    if rx.changed().await.is_err() {
                        return Some((Err(gone()), (fill, u64::MAX, rx)));
                    }
                }
            });
        Ok(Download {
            partial: range.is_some(),
            offset: start,
            length: size.map(|s| end.min(s) - start),
            total_size: size,
            last_modified: modified,
            body: Box::pin(body),
        })
    }
}

fn gone() -> XnatError {
    XnatError::io(
        "shared cache",
        std::io::Error::other("the fill stopped before the file was complete"),
    )
}

/// The start and exclusive end of `range` in a file of `size`; a start past the end is the
/// server's 416.
fn bounds(range: &Option<Range<u64>>, size: Option<u64>) -> XnatResult<(u64, u64)> {
    let (start, end) = match range {
        Some(r) => (r.start, r.end),
        None => (0, u64::MAX),
    };
    if let Some(size) = size {
        if range.is_some() && start >= size && !(start == 0 && size == 0) {
            return Err(XnatError::RangeNotSatisfiable {
                method: "GET".into(),
                url: "shared cache".into(),
                size: Some(size),
            });
        }
    }
    Ok((start, end))
}

/// The bytes `range` from an entry in place, each piece checked before it goes out; a piece
/// that fails its check removes the entry and breaks the body (the reader's resume then
/// fetches the file again).
pub(super) fn entry_download(
    cache: Arc<SharedCache>,
    key: FileKey,
    entry: Entry,
    range: Option<Range<u64>>,
) -> XnatResult<Download> {
    let size = entry.size;
    let (start, end) = bounds(&range, Some(size))?;
    let end = end.min(size);
    let modified = entry.modified;
    let entry = Arc::new(entry);
    let body = futures::stream::unfold(start, move |pos| {
        let (entry, cache) = (entry.clone(), cache.clone());
        async move {
            if pos >= end {
                return None;
            }
            let index = pos / PIECE;
            let e = entry.clone();
            let piece = tokio::task::spawn_blocking(move || e.piece(index)).await;
            let failed = |detail: String| {
                Some((
                    Err(XnatError::Network {
                        method: "GET".into(),
                        url: "shared cache".into(),
                        attempts: 1,
                        detail,
                    }),
                    u64::MAX,
                ))
            };
            match piece {
                Ok(Ok(Some(bytes))) => {
                    let from = (pos - index * PIECE) as usize;
                    let to = ((end - index * PIECE) as usize).min(bytes.len());
                    let next = index * PIECE + to as u64;
                    Some((Ok(bytes.slice(from..to)), next))
                }
                Ok(Ok(None)) => {
                    let ino = entry.ino;
                    tokio::task::spawn_blocking(move || cache.drop_damaged(&key, ino));
                    failed("a shared cache entry failed its check".into())
                }
                Ok(Err(e)) => failed(format!("reading a shared cache entry: {e}")),
                Err(_) => None,
            }
        }
    });
    Ok(Download {
        partial: range.is_some(),
        offset: start,
        length: Some(end.saturating_sub(start)),
        total_size: Some(size),
        last_modified: modified,
        body: Box::pin(body),
    })
}

/// What a fill is made with: where it writes, and the lease it holds while it runs.
pub(super) struct FillStart {
    pub writer: EntryWriter,
    pub tmp: PathBuf,
    pub lease: Lease,
}

/// Runs a fill to its end: downloads, writes, checks, publishes, and tells its readers.
pub(super) async fn run(
    cache: Arc<SharedCache>,
    backend: Arc<dyn Backend>,
    file: SharedFile,
    fill: Arc<Fill>,
    start: FillStart,
) {
    let FillStart { writer, tmp, lease } = start;
    // Whatever happens to this task (a panic), the fill ends and its readers hear it.
    let _ends = Ends {
        cache: cache.clone(),
        key: file.key,
        fill: fill.clone(),
    };
    let outcome = async {
        let done = download_into(&backend, &file, &fill, writer).await?;
        let (c, key, t) = (cache.clone(), file.key, tmp.clone());
        match tokio::task::spawn_blocking(move || c.publish(&key, &t)).await {
            Ok(Ok(())) => Ok(done),
            Ok(Err(e)) => Err(XnatError::io("putting a shared cache entry in place", e)),
            Err(e) => Err(XnatError::io("shared cache", std::io::Error::other(e))),
        }
    }
    .await;
    match outcome {
        Ok((size, modified)) => {
            fill.state.send_replace(State::Done { size, modified });
        }
        Err(e) => {
            tracing::info!(uri = %file.uri, error = %e, "shared cache fill failed");
            let _ = std::fs::remove_file(&tmp);
            if matches!(e, XnatError::Io { .. }) {
                // Our disk, not the server: readers start again, past the shared folder.
                cache.bypass(&e);
            }
            fill.state.send_replace(State::Failed(e));
        }
    }
    drop(lease);
}

/// Ends a fill when its task does: takes it out of the mount's fills, and fails its readers if
/// it had not finished.
struct Ends {
    cache: Arc<SharedCache>,
    key: FileKey,
    fill: Arc<Fill>,
}

impl Drop for Ends {
    fn drop(&mut self) {
        self.fill.state.send_if_modified(|s| match s {
            State::Done { .. } | State::Failed(_) => false,
            _ => {
                *s = State::Failed(gone());
                true
            }
        });
        self.cache.finished(&self.key);
    }
}

/// The download itself: returns the size and `Last-Modified` once the bytes are written,
/// their size and MD5 checked and the trailer written.
async fn download_into(
    backend: &Arc<dyn Backend>,
    file: &SharedFile,
    fill: &Arc<Fill>,
    writer: EntryWriter,
) -> XnatResult<(u64, Option<SystemTime>)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let state = fill.state.clone();
    let writing = tokio::task::spawn_blocking(move || -> std::io::Result<EntryWriter> {
        let mut writer = writer;
        while let Some(chunk) = rx.blocking_recv() {
            writer.append(&chunk)?;
            let written = writer.written();
            state.send_modify(|s| {
                if let State::Running { written: w, .. } = s {
                    *w = written;
                }
            });
        }
        Ok(writer)
    });
    // The writer ends when `receive` drops its sender, or first when it fails.
    let received = receive(backend, file, fill, tx).await;
    let context = || format!("{} into the shared cache", file.uri);
    let writer = match writing.await {
        Ok(w) => w.map_err(|e| XnatError::io(context(), e)),
        Err(e) => Err(XnatError::io(context(), std::io::Error::other(e))),
    };
    // The server's failure first: a writer cut short by it has nothing to say.
    let (got, size, modified) = received?;
    let writer = writer?;
    if let Some(s) = size {
        if s != got {
            return Err(XnatError::protocol(
                &file.uri,
                format!("the server said {s} bytes and sent {got}"),
            ));
        }
    }
    let key = file.key;
    let finished = tokio::task::spawn_blocking(move || writer.finish(&key, modified)).await;
    let (written, md5) = match finished {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return Err(XnatError::io(context(), e)),
        Err(e) => return Err(XnatError::io(context(), std::io::Error::other(e))),
    };
    if file.md5.is_some_and(|listed| listed != md5) {
        return Err(XnatError::protocol(
            &file.uri,
            "the bytes' MD5 differs from the catalog's: not kept in the shared cache",
        ));
    }
    Ok((written, modified))
}

/// Fetches the file and hands its bytes to the writer through `tx`, resuming broken bodies;
/// returns the bytes handed over, and the size and `Last-Modified` the server gave. Stops
/// early, without an error, when the writer is gone (it failed: its error is the one to tell).
async fn receive(
    backend: &Arc<dyn Backend>,
    file: &SharedFile,
    fill: &Arc<Fill>,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) -> XnatResult<(u64, Option<u64>, Option<SystemTime>)> {
    let mut got = 0u64;
    let mut size: Option<u64> = None;
    let mut modified = None;
    let mut fruitless = 0u32;
    loop {
        let range = (got > 0).then_some(got..u64::MAX);
        let download = backend.fetch(&file.uri, range).await?;
        if size.is_none() {
            size = download.total_size;
            modified = download.last_modified;
            fill.state.send_replace(State::Running {
                size,
                written: got,
                modified,
            });
        }
        let mut skip = match download.partial {
            true if download.offset != got => {
                return Err(XnatError::protocol(
                    &file.uri,
                    format!(
                        "asked for bytes from {got}, got them from {}",
                        download.offset
                    ),
                ))
            }
            true => 0,
            false => got,
        };
        let before = got;
        let mut body = download.body;
        let mut broke = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(mut c) => {
                    if skip > 0 {
                        let s = skip.min(c.len() as u64);
                        skip -= s;
                        c = c.slice(s as usize..);
                    }
                    if c.is_empty() {
                        continue;
                    }
                    got += c.len() as u64;
                    if tx.send(c).await.is_err() {
                        return Ok((got, size, modified));
                    }
                }
                Err(e) => {
                    broke = Some(e);
                    break;
                }
            }
        }
        let Some(e) = broke else {
            return Ok((got, size, modified));
        };
        fruitless = if got > before { 0 } else { fruitless + 1 };
        if fruitless > MAX_FRUITLESS || tx.is_closed() {
            return Err(e);
        }
        tracing::info!(uri = %file.uri, at = got, error = %e, "shared cache fill broke; resuming");
        if fruitless > 0 {
            tokio::time::sleep(Duration::from_secs(1 << (fruitless - 1))).await;
        }
    }
}
