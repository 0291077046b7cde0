//! Closes connections that stay quiet for `http.idle_timeout_secs`: once a
//! connection has neither read nor written for that long, its reads end (the
//! server sees the client leave) and its writes fail.
//!
//! poem's own `idle_timeout` does the same by waking a watcher task and
//! re-arming its timer on every read and write, several times per request.
//! Here a read or write only notes the time; the watcher sleeps until the
//! connection could first be idle, and wakes once per timeout at most.

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
    timeout: Duration,
}

impl<A> IdleClosingAcceptor<A> {
    pub fn new(inner: A, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl<A: Acceptor> Acceptor for IdleClosingAcceptor<A> {
    type Io = IdleClosing<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> IoResult<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok((IdleClosing::new(io, self.timeout), local, remote, scheme))
    }
}

/// What a connection and its watcher share.
struct Activity {
    opened: Instant,
    /// Milliseconds from `opened` to the last read or write.
    last_ms: AtomicU64,
    closed: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
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
}

impl<T> IdleClosing<T> {
    fn new(inner: T, timeout: Duration) -> Self {
        let activity = Arc::new(Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            writer: AtomicWaker::new(),
        });
        let watched = Arc::clone(&activity);
        let watcher = tokio::spawn(async move {
            loop {
                let due = watched.last() + timeout;
                if due <= Instant::now() {
                    watched.close();
                    return;
                }
                tokio::time::sleep_until(due).await;
            }
        })
        .abort_handle();
        Self {
            inner,
            activity,
            watcher,
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
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if polled.is_ready() {
            self.activity.touch();
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
