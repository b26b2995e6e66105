//! The HTTP/1.1 server loop: connections with deadlines, a cap on how many
//! are open, and a drain on shutdown.
//!
//! `axum::serve` has no timeouts and no connection cap, so a few hundred
//! clients that send their headers one byte at a time, or that connect and
//! say nothing, hold descriptors forever. Here every connection is served
//! by hyper (the same HTTP implementation axum uses) under a watchdog:
//!
//! * **headers**: a request's headers must arrive within
//!   `api.header_timeout_ms` of their first byte (of the connection's start,
//!   for its first request), else the connection is closed;
//! * **body**: a request's body must arrive within `api.body_timeout_ms`
//!   ([`read_body`], a middleware: 408 and `Connection: close`);
//! * **idle**: a kept-alive connection idle for `api.idle_timeout_ms`
//!   between requests is closed;
//! * **cap**: at most `api.max_connections` are open; further ones wait in
//!   the kernel's listen queue (they are not accepted and then dropped).
//!
//! **Drain** (SIGTERM/SIGINT): `/ready` turns 503 and every answer carries
//! `Connection: close`; what is already queued on the listener is accepted,
//! then the listener closes (new connections are refused, never reset
//! half-way). Requests in flight finish; a connection closes after its
//! current answer, or once it has been quiet for [`DRAIN_QUIET`] (so a
//! request already on the wire when the signal came is still read and
//! answered). After `api.shutdown_timeout_ms` whatever remains is closed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::{ApiError, AppState};

/// How long a connection must have been quiet, once draining, before it is
/// closed without a request.
pub const DRAIN_QUIET: Duration = Duration::from_millis(300);

/// The server's deadlines and limits (from `[api]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `api.header_timeout_ms`.
    pub header_timeout: Duration,
    /// `api.body_timeout_ms`.
    pub body_timeout: Duration,
    /// `api.idle_timeout_ms`.
    pub idle_timeout: Duration,
    /// `api.max_connections`.
    pub max_connections: usize,
    /// `api.shutdown_timeout_ms`.
    pub shutdown_timeout: Duration,
}

impl Limits {
    /// The limits the configuration sets.
    pub fn from_config(api: &learnloop_config::ApiConfig) -> Limits {
        Limits {
            header_timeout: Duration::from_millis(api.header_timeout_ms),
            body_timeout: Duration::from_millis(api.body_timeout_ms),
            idle_timeout: Duration::from_millis(api.idle_timeout_ms),
            max_connections: api.max_connections,
            shutdown_timeout: Duration::from_millis(api.shutdown_timeout_ms),
        }
    }
}

/// Connection counters, for `/metrics`.
#[derive(Default)]
pub struct ConnStats {
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections accepted since start.
    pub accepted: AtomicU64,
    /// Closed because their headers did not arrive in time.
    pub header_timeouts: AtomicU64,
    /// Closed because they sat idle too long.
    pub idle_timeouts: AtomicU64,
    /// Requests whose body did not arrive in time (answered 408).
    pub body_timeouts: AtomicU64,
    /// Closed because the shutdown deadline passed with a request in flight.
    pub shutdown_aborts: AtomicU64,
}

/// Middleware: reads the whole request body within `api.body_timeout_ms`
/// (at most `api.max_body_bytes` + 1 bytes, so the size limit still answers
/// 413 as before). Too slow: 408 with `Connection: close`.
pub async fn read_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.config.api.max_body_bytes;
    let timeout = Duration::from_millis(state.config.api.body_timeout_ms);
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit.saturating_add(1))).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if too_large {
                crate::routes::too_large(limit).into_response()
            } else {
                ApiError::bad_request(format!("cannot read the request body: {e}")).into_response()
            }
        }
        Err(_) => {
            state.conns.body_timeouts.fetch_add(1, Ordering::Relaxed);
            let mut r = ApiError::timeout(format!(
                "the request body did not arrive within {} ms (api.body_timeout_ms); the connection is closed",
                timeout.as_millis()
            ))
            .into_response();
            r.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
            r
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains (see
/// the module documentation). Returns once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    state: AppState,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (drain_tx, drain_rx) = watch::channel(None::<Instant>);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, _)) => {
                spawn_connection(stream, app.clone(), state.clone(), limits, drain_rx.clone(), permit);
            }
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or an aborted handshake:
                // say so, breathe, go on.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // Drain.
    let started = Instant::now();
    state.status.start_draining();
    let _ = drain_tx.send(Some(started));
    tracing::info!(
        "shutting down: no new connections; finishing requests in flight (at most {} ms)",
        limits.shutdown_timeout.as_millis()
    );
    // Connections the kernel already completed are served (and told to
    // close) rather than reset when the listener goes away.
    while let Ok(Ok((stream, _))) = tokio::time::timeout(Duration::ZERO, listener.accept()).await {
        match slots.clone().try_acquire_owned() {
            Ok(permit) => spawn_connection(stream, app.clone(), state.clone(), limits, drain_rx.clone(), permit),
            Err(_) => break,
        }
    }
    drop(listener);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let grace = limits.shutdown_timeout + Duration::from_secs(1);
    if tokio::time::timeout(grace, slots.acquire_many(all)).await.is_err() {
        tracing::warn!("some connections were still open after the shutdown deadline");
    }
    Ok(())
}

/// Milliseconds since the connection started; 0 is reserved for "none".
struct Activity {
    start: Instant,
    /// Last byte read or written.
    last: AtomicU64,
    /// When the headers of the next request started to arrive (0: none).
    head_started: AtomicU64,
    /// Requests being handled.
    in_flight: AtomicUsize,
}

impl Activity {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }
    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms.saturating_sub(1))
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(a: &Arc<Activity>) -> InFlight {
        a.in_flight.fetch_add(1, Ordering::SeqCst);
        a.head_started.store(0, Ordering::SeqCst);
        InFlight(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last.store(self.0.now(), Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A TCP stream that notes when bytes move.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let a = &self.activity;
            let now = a.now();
            a.last.store(now, Ordering::SeqCst);
            if a.in_flight.load(Ordering::SeqCst) == 0 {
                let _ = a.head_started.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst);
            }
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.last.store(self.activity.now(), Ordering::SeqCst);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.last.store(self.activity.now(), Ordering::SeqCst);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

fn spawn_connection(
    stream: TcpStream,
    app: Router,
    state: AppState,
    limits: Limits,
    mut drain: watch::Receiver<Option<Instant>>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity {
        start: Instant::now(),
        last: AtomicU64::new(1),
        // The first request's headers are due from the moment of connecting.
        head_started: AtomicU64::new(1),
        in_flight: AtomicUsize::new(0),
    });
    let conns = state.conns.clone();
    conns.accepted.fetch_add(1, Ordering::Relaxed);
    conns.open.fetch_add(1, Ordering::Relaxed);
    let io = hyper_util::rt::TokioIo::new(Watched { inner: stream, activity: activity.clone() });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let guard = InFlight::begin(&activity);
            let mut app = app.clone();
            async move {
                let r = tower::Service::call(&mut app, req.map(Body::new)).await;
                drop(guard);
                r
            }
        })
    };
    tokio::spawn(async move {
        let _permit = permit;
        let mut conn = std::pin::pin!(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        let mut draining: Option<Instant> = *drain.borrow();
        let mut closing = false;
        loop {
            // The next moment a rule could close this connection.
            let a = &activity;
            let idle = a.in_flight.load(Ordering::SeqCst) == 0;
            let head = a.head_started.load(Ordering::SeqCst);
            let last = a.at(a.last.load(Ordering::SeqCst));
            let deadline = if !idle {
                Instant::now() + Duration::from_secs(1)
            } else if head != 0 {
                a.at(head) + limits.header_timeout
            } else {
                last + limits.idle_timeout
            };
            let deadline = match draining {
                Some(since) if !closing => deadline.min(last.max(since) + DRAIN_QUIET),
                _ => deadline,
            };
            let deadline = match draining {
                Some(since) => deadline.min(since + limits.shutdown_timeout),
                None => deadline,
            };
            tokio::select! {
                _ = conn.as_mut() => break,
                _ = drain.changed(), if draining.is_none() => {
                    draining = *drain.borrow();
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let now = Instant::now();
                    let idle = a.in_flight.load(Ordering::SeqCst) == 0;
                    let head = a.head_started.load(Ordering::SeqCst);
                    let last = a.at(a.last.load(Ordering::SeqCst));
                    if let Some(since) = draining
                        && now >= since + limits.shutdown_timeout
                    {
                        if !idle {
                            conns.shutdown_aborts.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                    if idle && head != 0 && now >= a.at(head) + limits.header_timeout {
                        conns.header_timeouts.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    if idle && head == 0 && now >= last + limits.idle_timeout {
                        conns.idle_timeouts.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    if let Some(since) = draining
                        && idle
                        && head == 0
                        && !closing
                        && now >= last.max(since) + DRAIN_QUIET
                    {
                        // Nothing on the wire: close it the polite way.
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
        conns.open.fetch_sub(1, Ordering::Relaxed);
    });
}
