//! Streaming a file (or a byte range of it) as a response body: a blocking
//! thread reads 1 MiB chunks and hands them over a short channel, so reads
//! overlap sends and memory stays flat whatever the file size.

use axum::body::Body;
use std::io::{Read, Seek, SeekFrom};

const CHUNK: usize = 1 << 20;
/// Chunks in flight between the reader thread and the connection.
const DEPTH: usize = 4;

/// A body streaming `len` bytes of `file` from `offset`.
pub fn file_body(mut file: std::fs::File, offset: u64, len: u64) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(DEPTH);
    tokio::task::spawn_blocking(move || {
        if offset > 0 {
            if let Err(e) = file.seek(SeekFrom::Start(offset)) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
        let mut left = len;
        while left > 0 {
            let want = left.min(CHUNK as u64) as usize;
            // read_to_end through `take` fills uninitialised capacity: no zeroing per chunk
            let mut buf = Vec::with_capacity(want);
            if let Err(e) = (&mut file).take(want as u64).read_to_end(&mut buf) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            let got = buf.len();
            if got == 0 {
                let _ = tx.blocking_send(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "file shorter than its catalog size",
                )));
                return;
            }
            left -= got as u64;
            if tx.blocking_send(Ok(bytes::Bytes::from(buf))).is_err() {
                return; // client went away
            }
        }
    });
    Body::from_stream(tokio_stream_from(rx))
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
