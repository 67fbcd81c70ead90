//! The TCP listener behind `auspex serve`: at most `limits.max_connections` connections are
//! open at once (accepting waits for one to close, the kernel's backlog holding the next), and a
//! connection with no byte read or written for `limits.idle_timeout` while the server waits to
//! read is closed. The HTTP server buffers up to a few hundred KiB per connection, so this is
//! what bounds that memory; idle keep-alive connections give their slot back.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Counters of the listener, for `/metrics`.
#[derive(Debug)]
pub struct Connections {
    slots: Arc<Semaphore>,
    max: usize,
    /// Connections closed for idling.
    pub idle_closed: AtomicU64,
}

impl Connections {
    /// Room for `max` connections at once.
    pub fn new(max: usize) -> Arc<Self> {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Self { slots: Arc::new(Semaphore::new(max)), max, idle_closed: AtomicU64::new(0) })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }
}

/// A [`TcpListener`] that holds to the limits above.
#[derive(Debug)]
pub struct Limited {
    inner: TcpListener,
    conns: Arc<Connections>,
    idle: Duration,
}

impl Limited {
    /// Wraps `inner`.
    pub fn new(inner: TcpListener, conns: Arc<Connections>, idle: Duration) -> Self {
        Self { inner, conns, idle }
    }
}

impl axum::serve::Listener for Limited {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        // Never closed: the semaphore lives as long as `conns`.
        let Ok(slot) = self.conns.slots.clone().acquire_owned().await else {
            return std::future::pending().await;
        };
        loop {
            match self.inner.accept().await {
                Ok((io, addr)) => {
                    let conn = Conn {
                        io,
                        _slot: slot,
                        idle: self.idle,
                        timer: None,
                        conns: self.conns.clone(),
                    };
                    return (conn, addr);
                }
                // The peer gave up before we accepted: take the next.
                Err(e) if is_connection_error(&e) => {}
                // Out of file descriptors and the like: wait rather than spin.
                Err(e) => {
                    eprintln!("auspex: accept failed: {e}; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// An accepted connection: holds its slot until dropped, and fails a read that has waited
/// `idle` since the last byte either way.
#[derive(Debug)]
pub struct Conn {
    io: TcpStream,
    _slot: OwnedSemaphorePermit,
    idle: Duration,
    /// Started when a read found nothing; cleared by a byte read, restarted by one written.
    timer: Option<Pin<Box<Sleep>>>,
    conns: Arc<Connections>,
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.conns.idle_closed.fetch_add(1, Relaxed);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle longer than limits.idle_timeout",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl Conn {
    /// A byte written restarts a waiting read's timer. The timer is moved, not dropped: the
    /// server polls the read again only when woken, and the timer is what wakes it.
    fn progressed(&mut self, r: &Poll<io::Result<usize>>) {
        if matches!(r, Poll::Ready(Ok(n)) if *n > 0)
            && let Some(t) = self.timer.as_mut()
        {
            t.as_mut().reset(tokio::time::Instant::now() + self.idle);
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.progressed(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.progressed(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
