//! Body wrappers the layers use: one that counts bytes and reports when the
//! body is finished (or dropped), and one that shapes a body: bandwidth
//! pacing, a connection reset after K bytes, a stall after K bytes.

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

type BoxError = axum::Error;

/// How long a reset waits for the bytes before it to be written out.
const FLUSH_BEFORE_RESET: Duration = Duration::from_millis(50);

/// Counts data bytes and calls `done(bytes)` once, at the end or on drop.
pub struct Counted {
    inner: Body,
    bytes: u64,
    done: Option<Box<dyn FnOnce(u64) + Send>>,
}

impl Counted {
    pub fn wrap(inner: Body, done: impl FnOnce(u64) + Send + 'static) -> Body {
        Body::new(Counted {
            inner,
            bytes: 0,
            done: Some(Box::new(done)),
        })
    }

    fn finish(&mut self) {
        if let Some(f) = self.done.take() {
            f(self.bytes)
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.finish();
    }
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &polled {
            Some(Ok(frame)) => {
                if let Some(d) = frame.data_ref() {
                    self.bytes += d.len() as u64;
                }
            }
            _ => self.finish(),
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What to do to a body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    pub bandwidth: Option<u64>,
    pub reset_after: Option<u64>,
    pub stall_after: Option<u64>,
    /// None = stall forever.
    pub stall_for: Option<Duration>,
}

impl Shape {
    pub fn is_noop(&self) -> bool {
        self.bandwidth.is_none() && self.reset_after.is_none() && self.stall_after.is_none()
    }
}

pub struct Shaped {
    inner: Body,
    shape: Shape,
    sent: u64,
    start: Instant,
    /// Data taken from `inner` and not yet sent, in order.
    queue: VecDeque<Bytes>,
    /// The front of `queue` passed every check and only waited for its time.
    front_cleared: bool,
    sleep: Option<Pin<Box<Sleep>>>,
    stalled: bool,
    /// The reset is due and the bytes before it were given time to leave.
    reset_flushed: bool,
}

impl Shaped {
    pub fn wrap(inner: Body, shape: Shape) -> Body {
        if shape.is_noop() {
            return inner;
        }
        Body::new(Shaped {
            inner,
            shape,
            sent: 0,
            start: Instant::now(),
            queue: VecDeque::new(),
            front_cleared: false,
            sleep: None,
            stalled: false,
            reset_flushed: false,
        })
    }

    /// Keeps at most `room` bytes in `chunk`, queueing the rest in front.
    fn keep_first(&mut self, chunk: &mut Bytes, room: u64) {
        if (chunk.len() as u64) > room && room > 0 {
            let rest = chunk.split_off(room as usize);
            self.queue.push_front(rest);
        }
    }
}

impl HttpBody for Shaped {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(s) = this.sleep.as_mut() {
                ready!(s.as_mut().poll(cx));
                this.sleep = None;
            }
            if this.queue.is_empty() {
                match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                    None => return Poll::Ready(None),
                    Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(d) => this.queue.push_back(d),
                        Err(other) => return Poll::Ready(Some(Ok(other))),
                    },
                }
            }
            let Some(mut chunk) = this.queue.pop_front() else {
                continue;
            };
            let cleared = std::mem::take(&mut this.front_cleared);
            if !cleared {
                if let Some(k) = this.shape.reset_after {
                    if this.sent >= k && !this.reset_flushed {
                        // hyper writes what it holds while the body is pending: the K bytes
                        // reach the client before the connection breaks, as on a real reset.
                        this.reset_flushed = true;
                        this.sleep = Some(Box::pin(tokio::time::sleep(FLUSH_BEFORE_RESET)));
                        this.queue.push_front(chunk);
                        continue;
                    }
                    if this.sent >= k {
                        return Poll::Ready(Some(Err(axum::Error::new(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "xnat-sim: injected connection reset",
                        )))));
                    }
                    this.keep_first(&mut chunk, k - this.sent);
                }
                if let (Some(k), false) = (this.shape.stall_after, this.stalled) {
                    if this.sent >= k {
                        this.stalled = true;
                        let d = this
                            .shape
                            .stall_for
                            .unwrap_or(Duration::from_secs(365 * 24 * 3600));
                        this.sleep = Some(Box::pin(tokio::time::sleep(d)));
                        this.queue.push_front(chunk);
                        continue;
                    }
                    this.keep_first(&mut chunk, k - this.sent);
                }
                if let Some(rate) = this.shape.bandwidth.filter(|r| *r > 0) {
                    this.keep_first(&mut chunk, (rate / 20).max(1024));
                    let secs = (this.sent + chunk.len() as u64) as f64 / rate as f64;
                    let due = this.start + Duration::from_secs_f64(secs);
                    if due > Instant::now() {
                        this.sleep = Some(Box::pin(tokio::time::sleep_until(due)));
                        this.queue.push_front(chunk);
                        this.front_cleared = true;
                        continue;
                    }
                }
            }
            this.sent += chunk.len() as u64;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
