//! What the server knows about its own condition, beyond a single request:
//! whether the store has run out of space, and whether it is draining
//! (SIGTERM received). `/ready` answers from it, the response middleware
//! keeps it current, and `/metrics` shows it.
//!
//! Out of space: the first write that fails with
//! [`learnloop_store::StoreError::OutOfSpace`] marks the store full (one
//! error-level log line says why); `/ready` is 503 while it is marked, and
//! checks at most once per [`ServerStatus::PROBE_EVERY`] with a small probe
//! write whether space has come back; any write that succeeds clears it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Set on a 507 answer: why the store refused the write.
#[derive(Clone)]
pub struct StoreFull(pub String);

/// The server's condition.
#[derive(Default)]
pub struct ServerStatus {
    full: Mutex<Option<Full>>,
    draining: AtomicBool,
    /// Writes refused because the store was out of space, since start.
    pub out_of_space_writes: AtomicU64,
}

struct Full {
    since: Instant,
    reason: String,
    probed: Option<Instant>,
}

impl ServerStatus {
    /// How often `/ready` probes a full store for space.
    pub const PROBE_EVERY: Duration = Duration::from_secs(1);
    /// The `Retry-After` (seconds) of a 507 and of a 503 from `/ready`.
    pub const RETRY_AFTER_SECS: u32 = 5;

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Full>> {
        self.full.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A write failed for want of space.
    pub fn out_of_space(&self, reason: &str) {
        self.out_of_space_writes.fetch_add(1, Ordering::Relaxed);
        let mut full = self.lock();
        if full.is_none() {
            tracing::error!(
                "the store is out of space; writes are refused with 507 and /ready answers 503 until space is freed: {reason}"
            );
            *full = Some(Full { since: Instant::now(), reason: reason.to_string(), probed: None });
        }
    }

    /// A write succeeded: there is space.
    pub fn wrote(&self) {
        let mut full = self.lock();
        if let Some(f) = full.take() {
            tracing::info!(
                "the store has space again after {:.0} s; writes are accepted",
                f.since.elapsed().as_secs_f64()
            );
        }
    }

    /// Why the store is marked full, if it is.
    pub fn full_reason(&self) -> Option<String> {
        self.lock().as_ref().map(|f| f.reason.clone())
    }

    /// Whether the store is marked full and a probe is due (and marks it
    /// probed now).
    pub fn probe_due(&self) -> bool {
        let mut full = self.lock();
        match full.as_mut() {
            Some(f) if f.probed.is_none_or(|p| p.elapsed() >= Self::PROBE_EVERY) => {
                f.probed = Some(Instant::now());
                true
            }
            _ => false,
        }
    }

    /// SIGTERM or SIGINT arrived: the server is finishing what it has.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the server is draining.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}
