//! Accepting connections. `axum::serve` leaves hyper's header-read timeout off and
//! takes every connection offered, so a client trickling a request's headers (or a crowd
//! of idle connections from one address) could hold sockets and file descriptors
//! without end. This loop is axum's, with limits: a request's headers must arrive within
//! `--header-timeout-secs`; one address may hold `--connections-per-ip` connections and
//! the server `--max-connections`, counted for as long as each socket is open (a
//! WebSocket too, after its upgrade); a connection over a limit is closed at once.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// Open connections, per address and in all.
pub struct Admission {
    open: Mutex<Open>,
    max_per_ip: u32,
    max_total: u32,
}

/// The counts, kept together so that one lock covers both.
#[derive(Default)]
struct Open {
    per_ip: HashMap<IpAddr, u32>,
    total: u32,
}

impl Admission {
    /// `max_per_ip` of 0 counts no address (behind a proxy every connection comes from
    /// the proxy's).
    pub fn new(max_per_ip: u32, max_total: u32) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::default(),
            max_per_ip,
            max_total,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A ticket for one more connection from `ip`, if the limits allow it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Ticket> {
        let mut open = self.lock();
        let from_ip = open.per_ip.get(&ip).copied().unwrap_or(0);
        if open.total >= self.max_total || (self.max_per_ip > 0 && from_ip >= self.max_per_ip) {
            return None;
        }
        *open.per_ip.entry(ip).or_insert(0) += 1;
        open.total += 1;
        Some(Ticket {
            admission: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> u32 {
        self.lock().total
    }
}

/// One admitted connection; dropping it frees its place.
pub struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.admission.lock();
        open.total -= 1;
        if let Some(count) = open.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A connection's stream with its ticket: the place is held as long as the socket is
/// open, through a WebSocket upgrade.
struct Counted {
    stream: TcpStream,
    _ticket: Ticket,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the connections in
/// flight finish (WebSockets are the hub's to close) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    admission: Arc<Admission>,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    // Dropping `signal` tells every connection to finish; `closed` waits for them.
    let (signal, signalled) = watch::channel(());
    let (closed, open) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(ticket) = admission.admit(peer.ip()) else {
            tracing::debug!(%peer, "connection refused: over the connection limits");
            continue;
        };
        // Frames go out as soon as they are written: no waiting to fill a segment.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let io = TokioIo::new(Counted {
            stream,
            _ticket: ticket,
        });
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            app.clone().oneshot(request)
        });
        let mut signalled = signalled.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection_with_upgrades(io, service);
            tokio::pin!(conn);
            let mut finishing = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(error) = result {
                            tracing::trace!(%error, "connection ended with an error");
                        }
                        break;
                    }
                    _ = signalled.changed(), if !finishing => {
                        finishing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = signal.send(());
    drop(signalled);
    drop(open);
    closed.closed().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn connections_are_counted_per_address_and_in_all_while_open() {
        let admission = Admission::new(2, 3);
        let a1 = admission.admit(A).expect("first");
        let _a2 = admission.admit(A).expect("second");
        assert!(admission.admit(A).is_none(), "two per address");
        let _b1 = admission.admit(B).expect("another address");
        assert!(admission.admit(B).is_none(), "three in all");
        drop(a1);
        assert_eq!(admission.open(), 2);
        assert!(
            admission.admit(A).is_some(),
            "a closed connection frees its place"
        );
    }

    #[test]
    fn without_a_per_address_limit_only_the_total_counts() {
        let admission = Admission::new(0, 2);
        let _one = admission.admit(A).expect("one");
        let _two = admission.admit(A).expect("two");
        assert!(admission.admit(B).is_none());
    }
}
