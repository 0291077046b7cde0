//! Closes connections that stay quiet for `http.idle_timeout_secs`, and
//! those that take longer than `http.header_timeout_ms` to send a request's
//! head: once a connection has neither read nor written for the one, or a
//! head begun has not ended (its blank line) within the other, its reads end
//! (the server sees the client leave) and its writes fail. Without the
//! second, a client that trickles a header a byte at a time holds the
//! connection open for as long as it likes: hyper has a header deadline,
//! but poem's server does not give it a timer. A connection that opens with
//! HTTP/2's preface is closed at once (see `Seen::Http2`).
//!
//! poem's own `idle_timeout` does the first by waking a watcher task and
//! re-arming its timer on every read and write, several times per request.
//! Here a read or write only notes the time; the watcher sleeps until the
//! connection could first be idle or a head could first be late, and wakes
//! at most once per header timeout.

use std::io::{Error, ErrorKind, IoSlice, Result as IoResult};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// Wraps each connection `inner` accepts.
pub struct IdleClosingAcceptor<A> {
    inner: A,
    timeouts: Timeouts,
}

/// How long a connection may be quiet, and take over a request's head.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub idle: Duration,
    pub header: Duration,
}

impl<A> IdleClosingAcceptor<A> {
    pub fn new(inner: A, timeouts: Timeouts) -> Self {
        Self { inner, timeouts }
    }
}

impl<A: Acceptor> Acceptor for IdleClosingAcceptor<A> {
    type Io = IdleClosing<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> IoResult<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok((IdleClosing::new(io, self.timeouts), local, remote, scheme))
    }
}

/// No head in progress, in `Activity::head_ms`.
const NO_HEAD: u64 = u64::MAX;

/// What a connection and its watcher share.
struct Activity {
    opened: Instant,
    /// Milliseconds from `opened` to the last read or write.
    last_ms: AtomicU64,
    /// Milliseconds from `opened` to the first byte of the request head the
    /// client is sending, or `NO_HEAD`.
    head_ms: AtomicU64,
    closed: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl Activity {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NO_HEAD - 1)
    }

    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// When the head in progress began, if one is.
    fn head(&self) -> Option<Instant> {
        match self.head_ms.load(Ordering::Relaxed) {
            NO_HEAD => None,
            ms => Some(self.opened + Duration::from_millis(ms)),
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.reader.wake();
        self.writer.wake();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

pub struct IdleClosing<T> {
    inner: T,
    activity: Arc<Activity>,
    watcher: AbortHandle,
    head: HeadTracker,
}

/// Follows the bytes a client sends, to see where a request's head begins
/// and ends (its blank line, `\r\n\r\n`).
struct HeadTracker {
    /// A response went out since the last head ended (or nothing came yet):
    /// the next byte read begins a head.
    awaiting: bool,
    /// A byte other than CR or LF has been read in the head in progress.
    /// HTTP/1.1 skips blank lines before a request line, so a blank line
    /// there ends nothing; counted as the end, it would let a client stop
    /// the clock with `\r\n\r\n` and then trickle a head for ever.
    begun: bool,
    /// The last bytes read, oldest in the highest byte, to find a blank line
    /// split across reads.
    tail: u32,
    /// How much of the HTTP/2 preface the connection's first bytes matched,
    /// until one differs (`None`).
    preface: Option<usize>,
}

/// What a read showed of the request heads.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Nothing,
    HeadBegan,
    HeadEnded,
    /// The connection opened with HTTP/2's preface (cleartext, by prior
    /// knowledge). Its PING and SETTINGS frames would keep it alive with no
    /// request in flight and its heads are frames this tracker cannot time,
    /// and otpd never terminates TLS, where HTTP/2 belongs: it is refused.
    Http2,
}

/// The start of the preface an HTTP/2 client sends first (RFC 9113, 3.4):
/// no HTTP/1 request line begins with it.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl HeadTracker {
    fn new() -> Self {
        Self {
            awaiting: true,
            begun: false,
            tail: 0,
            preface: Some(0),
        }
    }

    /// Notes bytes read, while a head is or isn't in progress.
    fn read(&mut self, bytes: &[u8], in_head: bool) -> Seen {
        if bytes.is_empty() {
            return Seen::Nothing;
        }
        if let Some(matched) = self.preface {
            let rest = &HTTP2_PREFACE[matched..];
            let n = rest.len().min(bytes.len());
            self.preface = (rest[..n] == bytes[..n]).then_some(matched + n);
            if self.preface == Some(HTTP2_PREFACE.len()) {
                return Seen::Http2;
            }
        }
        let began = !in_head && self.awaiting;
        if began {
            self.awaiting = false;
            self.begun = false;
            self.tail = 0;
        }
        if in_head || began {
            for &b in bytes {
                if !self.begun && (b == b'\r' || b == b'\n') {
                    continue;
                }
                self.begun = true;
                self.tail = (self.tail << 8) | u32::from(b);
                if self.tail == u32::from_be_bytes(*b"\r\n\r\n") {
                    return Seen::HeadEnded;
                }
            }
        }
        if began {
            Seen::HeadBegan
        } else {
            Seen::Nothing
        }
    }
}

impl<T> IdleClosing<T> {
    fn new(inner: T, timeouts: Timeouts) -> Self {
        let activity = Arc::new(Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
            head_ms: AtomicU64::new(NO_HEAD),
            closed: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            writer: AtomicWaker::new(),
        });
        let watched = Arc::clone(&activity);
        let watcher = tokio::spawn(async move {
            loop {
                let now = Instant::now();
                let idle = watched.last() + timeouts.idle;
                // A head begun since the last look is seen at the next,
                // at most one header timeout later, and closed on time.
                let late = watched
                    .head()
                    .map_or(now + timeouts.header, |at| at + timeouts.header);
                if idle <= now || late <= now {
                    watched.close();
                    return;
                }
                tokio::time::sleep_until(idle.min(late)).await;
            }
        })
        .abort_handle();
        Self {
            inner,
            activity,
            watcher,
            head: HeadTracker::new(),
        }
    }
}

impl<T: AsyncWrite + Unpin> IdleClosing<T> {
    /// A write, refused once the connection is closed for idleness.
    fn write_with(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<IoResult<usize>>,
    ) -> Poll<IoResult<usize>> {
        if self.activity.is_closed() {
            let idle = Error::new(ErrorKind::TimedOut, "the connection was idle too long");
            return Poll::Ready(Err(idle));
        }
        self.activity.writer.register(cx.waker());
        let polled = write(Pin::new(&mut self.inner), cx);
        if polled.is_ready() {
            self.activity.touch();
            // A response: the head it answers has arrived (whether or not
            // its blank line was seen, as in HTTP/2), and the next byte
            // read begins another.
            self.head.awaiting = true;
            self.activity.head_ms.store(NO_HEAD, Ordering::Relaxed);
        }
        polled
    }
}

impl<T> Drop for IdleClosing<T> {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleClosing<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<IoResult<()>> {
        if self.activity.is_closed() {
            // No bytes and no error: the end of the stream.
            return Poll::Ready(Ok(()));
        }
        self.activity.reader.register(cx.waker());
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if polled.is_ready() {
            let this = &mut *self;
            this.activity.touch();
            let in_head = this.activity.head().is_some();
            match this.head.read(&buf.filled()[before..], in_head) {
                Seen::HeadBegan => this
                    .activity
                    .head_ms
                    .store(this.activity.now_ms(), Ordering::Relaxed),
                Seen::HeadEnded => this.activity.head_ms.store(NO_HEAD, Ordering::Relaxed),
                Seen::Http2 => {
                    this.activity.close();
                    buf.set_filled(before);
                }
                Seen::Nothing => {}
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleClosing<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<IoResult<usize>> {
        self.get_mut()
            .write_with(cx, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<IoResult<usize>> {
        self.get_mut()
            .write_with(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
