//! The TCP listener and HTTP/1.1 server behind `auspex serve`: at most
//! `limits.max_connections` connections are open at once (accepting waits for one to close, the
//! kernel's backlog holding the next); a connection with no byte read or written for
//! `limits.connection_idle_timeout` while the server waits to read is closed, and so is one
//! that has not sent a request's complete headers within `limits.header_read_timeout` of the
//! server being ready for them (slow headers, and keep-alive connections idle that long). The
//! HTTP server buffers up to a few hundred KiB per connection, so this is what bounds that
//! memory, and a client that trickles bytes cannot hold a slot for long. One address holds at
//! most `limits.max_connections_per_address` of them: a connection beyond it is closed at
//! once (and counted), so one client cannot take every slot from the others.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
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
    /// Connections closed by `limits.header_read_timeout`.
    pub header_timeouts: AtomicU64,
    /// Requests answered 408 for a body slower than `limits.request_body_min_rate`.
    pub slow_bodies: AtomicU64,
    /// Connections closed at once: their address already held `per_address`.
    pub over_address_limit: AtomicU64,
    /// Open connections by remote address (only addresses with one open).
    by_address: Mutex<HashMap<IpAddr, usize>>,
    per_address: usize,
}

impl Connections {
    /// Room for `max` connections at once, at most `per_address` from one address.
    pub fn new(max: usize, per_address: usize) -> Arc<Self> {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            idle_closed: AtomicU64::new(0),
            header_timeouts: AtomicU64::new(0),
            slow_bodies: AtomicU64::new(0),
            over_address_limit: AtomicU64::new(0),
            by_address: Mutex::new(HashMap::new()),
            per_address: per_address.max(1),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// Counts a connection from `ip` in, unless `ip` holds `per_address` already.
    fn admit(&self, ip: IpAddr) -> bool {
        let mut m = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= self.per_address {
            self.over_address_limit.fetch_add(1, Relaxed);
            return false;
        }
        *n += 1;
        true
    }

    /// Counts a connection from `ip` out.
    fn leave(&self, ip: IpAddr) {
        let mut m = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }
}

/// The answer to a connection over its address's share, before it is closed.
const TOO_MANY: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\n\
content-type: text/plain; charset=utf-8\r\ncontent-length: 74\r\nconnection: close\r\n\r\n\
too many connections from this address (limits.max_connections_per_address)";

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

    /// The next connection, once one of the `max_connections` slots is free.
    async fn accept(&mut self) -> Conn {
        // Never closed: the semaphore lives as long as `conns`.
        let Ok(slot) = self.conns.slots.clone().acquire_owned().await else {
            return std::future::pending().await;
        };
        loop {
            match self.inner.accept().await {
                // Over its address's share: told so if its buffer takes it (never waited
                // for), and closed at once; the slot is kept for the next.
                Ok((io, peer)) if !self.conns.admit(peer.ip()) => {
                    let _ = io.try_write(TOO_MANY);
                }
                Ok((io, peer)) => {
                    let conns = self.conns.clone();
                    let ip = peer.ip();
                    return Conn { io, _slot: slot, idle: self.idle, timer: None, conns, ip };
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
}

/// Serves `router` on `listener` over HTTP/1.1 until `shutdown` completes, then stops
/// accepting and waits for the open connections to finish their requests.
pub async fn serve(
    mut listener: Limited,
    router: axum::Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let io = tokio::select! {
            conn = listener.accept() => conn,
            () = &mut shutdown => break,
        };
        let conns = listener.conns.clone();
        let svc = hyper_util::service::TowerToHyperService::new(router.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(io), svc));
        tokio::spawn(async move {
            if let Err(e) = conn.await
                && e.is_timeout()
            {
                conns.header_timeouts.fetch_add(1, Relaxed);
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
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
    ip: IpAddr,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.conns.leave(self.ip);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_share() {
        let c = Connections::new(10, 2);
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        assert!(c.admit(a) && c.admit(a));
        assert!(!c.admit(a), "a's share is full");
        assert!(c.admit(b), "b is not held back by a");
        c.leave(a);
        assert!(c.admit(a), "a is admitted again once one of its connections left");
        assert_eq!(c.over_address_limit.load(Relaxed), 1);
        for _ in 0..2 {
            c.leave(a);
        }
        c.leave(b);
        assert!(c.by_address.lock().unwrap().is_empty(), "no address kept once it has none open");
    }
}
