//! Sending one notification to one destination, and the deliverer that
//! drains the outbox.
//!
//! One deliverer runs at a time across all processes sharing a store: it
//! holds the store lease `notifier` (fencing token checked by every write
//! it makes). Its main thread renews the lease and routes new
//! notifications to their destinations; one worker thread per destination
//! sends that destination's due deliveries in order, so a slow or failing
//! destination never delays another, and none of this runs on a job's or
//! an ingest's thread. A failed attempt is retried after an exponential
//! backoff with jitter (or the destination's `Retry-After`), until
//! `[notify] max_attempts`, then the delivery is dead (`learnloop
//! notifications retry ID` revives it). Delivery is at least once: a
//! process killed between sending and recording sends again after restart,
//! with the same idempotency key.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use learnloop_config::NotifyConfig;
use learnloop_core::{Delivery, Notification, Timestamp};
use learnloop_store::{DeliveryResult, Fence, Lease, Store, StoreError};

use crate::destination::{Destination, Destinations, Target};
use crate::format;

/// The store lease the deliverer holds.
pub const LEASE: &str = "notifier";

/// How delivery behaves (from `[notify]`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Attempts before a delivery is dead.
    pub max_attempts: u32,
    /// First retry delay.
    pub retry_base: Duration,
    /// Longest retry delay (also caps `Retry-After`).
    pub retry_max: Duration,
    /// Deadline of one attempt.
    pub timeout: Duration,
    /// How often to look for work.
    pub poll: Duration,
    /// Older notifications are routed nowhere.
    pub max_age: Duration,
    /// Put in front of links.
    pub public_url: String,
}

impl Settings {
    /// From `[notify]`.
    pub fn from_config(c: &NotifyConfig) -> Settings {
        Settings {
            max_attempts: c.max_attempts,
            retry_base: Duration::from_millis(c.retry_base_ms),
            retry_max: Duration::from_millis(c.retry_max_ms),
            timeout: Duration::from_millis(c.timeout_ms),
            poll: Duration::from_millis(c.poll_ms),
            max_age: Duration::from_secs(c.max_age_hours * 3600),
            public_url: c.public_url.clone(),
        }
    }
}

/// What one attempt came to, before the retry policy.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Accepted (2xx, or written to the file).
    Ok {
        /// The HTTP status (0 for a file).
        status: u16,
    },
    /// Failed.
    Failed {
        /// What went wrong (never a secret).
        error: String,
        /// The destination's `Retry-After`, if it gave one.
        retry_after: Option<Duration>,
    },
}

/// Counts of what this process's deliverer did, per destination (for `/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    inner: Mutex<BTreeMap<String, [u64; 4]>>,
    /// Whether this process holds the deliverer's lease.
    pub leader: AtomicBool,
    /// Notifications routed by this process.
    pub routed: AtomicU64,
}

/// Per destination: attempts, delivered, failed attempts, given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DestinationCounts {
    /// Attempts made.
    pub attempts: u64,
    /// Deliveries accepted.
    pub delivered: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Deliveries given up (dead).
    pub dead: u64,
}

impl Counters {
    fn add(&self, destination: &str, i: usize) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(destination.to_string()).or_default()[i] += 1;
    }

    /// A snapshot, by destination.
    pub fn snapshot(&self) -> Vec<(String, DestinationCounts)> {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .map(|(k, c)| (k.clone(), DestinationCounts { attempts: c[0], delivered: c[1], failed: c[2], dead: c[3] }))
            .collect()
    }
}

/// Sends notifications (one HTTP client for all destinations).
#[derive(Clone)]
pub struct Sender {
    agent: ureq::Agent,
    settings: Settings,
}

impl Sender {
    /// A sender with `settings`' timeout.
    pub fn new(settings: Settings) -> Sender {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(settings.timeout))
            .user_agent(concat!("learnloop/", env!("CARGO_PKG_VERSION")))
            .max_redirects(0)
            .build()
            .into();
        Sender { agent, settings }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// One attempt to deliver `n` to `d`.
    pub fn send(&self, d: &Destination, n: &Notification) -> Attempt {
        let public = &self.settings.public_url;
        match &d.target {
            Target::Webhook { url, secret } => {
                let body = serde_json::to_vec(&format::webhook_event(n, public)).expect("JSON serialises");
                let t = Timestamp::now().as_micros().div_euclid(1_000_000);
                let sig = format::signature(secret, t, &body);
                self.post(
                    url,
                    &[
                        ("Idempotency-Key", n.uid.as_str()),
                        ("Learnloop-Event", &n.event),
                        ("Learnloop-Signature", &sig),
                    ],
                    body,
                )
            }
            Target::Slack { url } => {
                let body = serde_json::to_vec(&format::slack_message(n, public)).expect("JSON serialises");
                self.post(url, &[], body)
            }
            Target::Pagerduty { url, routing_key } => {
                let body =
                    serde_json::to_vec(&format::pagerduty_event(n, routing_key, public)).expect("JSON serialises");
                self.post(url, &[], body)
            }
            Target::File { path } => {
                let mut line = serde_json::to_vec(&format::webhook_event(n, public)).expect("JSON serialises");
                line.push(b'\n');
                let written = (|| {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
                    f.write_all(&line)?;
                    f.sync_data()
                })();
                match written {
                    Ok(()) => Attempt::Ok { status: 0 },
                    Err(e) => Attempt::Failed { error: format!("{}: {e}", path.display()), retry_after: None },
                }
            }
        }
    }

    fn post(&self, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Attempt {
        let mut req = self.agent.post(url).header("Content-Type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        match req.send(&body[..]) {
            Ok(resp) => {
                let status = resp.status().as_u16();
                if (200..300).contains(&status) {
                    return Attempt::Ok { status };
                }
                let retry_after =
                    resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
                let reason = resp.status().canonical_reason().unwrap_or("");
                Attempt::Failed { error: format!("HTTP {status} {reason}").trim_end().to_string(), retry_after }
            }
            Err(e) => Attempt::Failed { error: transport_error(&e), retry_after: None },
        }
    }
}

/// A transport error in words, without the URL (it may hold a token).
fn transport_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::Io(io) => format!("I/O error: {}", io.kind()),
        other => {
            let s = other.to_string();
            // ureq's messages name the URL for some errors; keep the kind only.
            s.split(" for url").next().unwrap_or(&s).to_string()
        }
    }
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// A random number in [0, 1).
fn unit_random() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// The delay before attempt `attempts + 1`, after `attempts` failures:
/// `retry_base · 2^(attempts-1)`, capped at `retry_max`, times a random
/// factor in [0.5, 1) (so many failures at once do not retry in step);
/// a `Retry-After` is honoured as given (capped at `retry_max`).
pub fn backoff(s: &Settings, attempts: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(r) = retry_after {
        return r.min(s.retry_max);
    }
    let exp = attempts.saturating_sub(1).min(30);
    let full = s.retry_base.saturating_mul(1u32 << exp.min(31)).min(s.retry_max);
    full.mul_f64(0.5 + 0.5 * unit_random())
}

/// The store result of an attempt for a delivery that had made
/// `previous` attempts before.
pub fn outcome(s: &Settings, previous: u32, attempt: &Attempt, now: Timestamp) -> DeliveryResult {
    match attempt {
        Attempt::Ok { .. } => DeliveryResult::Delivered,
        Attempt::Failed { error, retry_after } => {
            let attempts = previous + 1;
            if attempts >= s.max_attempts {
                DeliveryResult::Dead { error: format!("{error} (attempt {attempts} of {}; given up)", s.max_attempts) }
            } else {
                let wait = backoff(s, attempts, *retry_after);
                DeliveryResult::Retry {
                    at: now.add_micros(i64::try_from(wait.as_micros()).unwrap_or(i64::MAX)),
                    error: format!("{error} (attempt {attempts} of {})", s.max_attempts),
                }
            }
        }
    }
}

/// What one [`Deliverer::run_once`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Notifications routed.
    pub routed: usize,
    /// Deliveries accepted.
    pub delivered: usize,
    /// Attempts that failed (retried later).
    pub failed: usize,
    /// Deliveries given up.
    pub dead: usize,
}

/// Drains the outbox: routes notifications and sends deliveries.
pub struct Deliverer {
    store: Arc<dyn Store>,
    destinations: Arc<Destinations>,
    sender: Sender,
    holder: String,
    counters: Arc<Counters>,
}

impl Deliverer {
    /// A deliverer for `store` and `destinations`; `holder` names this
    /// process in the lease (`scheduler@host:pid`).
    pub fn new(store: Arc<dyn Store>, destinations: Destinations, settings: Settings, holder: &str) -> Deliverer {
        Deliverer {
            store,
            destinations: Arc::new(destinations),
            sender: Sender::new(settings),
            holder: holder.to_string(),
            counters: Arc::new(Counters::default()),
        }
    }

    /// What this deliverer counted.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    fn ttl_ms(&self) -> u64 {
        (self.sender.settings.poll.as_millis() as u64 * 5).max(15_000)
    }

    fn route_all(&self, fence: Option<&Fence>) -> Result<usize, StoreError> {
        let max_age = i64::try_from(self.sender.settings.max_age.as_micros()).unwrap_or(i64::MAX);
        let mut total = 0;
        loop {
            let now = Timestamp::now();
            let dests = &self.destinations;
            let mut route = |n: &Notification| {
                if now.as_micros().saturating_sub(n.occurred_at.as_micros()) > max_age {
                    Vec::new()
                } else {
                    dests.route(n)
                }
            };
            let n = self.store.route_notifications(500, &mut route, fence, now)?;
            total += n;
            if n < 500 {
                self.counters.routed.fetch_add(total as u64, Ordering::Relaxed);
                return Ok(total);
            }
        }
    }

    /// Sends what is due to `d` now (at most `limit`); stops early when
    /// `stop` is set or the lease moved on.
    fn drain(
        &self,
        d: &Destination,
        fence: Option<&Fence>,
        limit: usize,
        stop: &AtomicBool,
    ) -> Result<PassReport, StoreError> {
        let mut report = PassReport::default();
        let due = self.store.due_deliveries(&d.name, Timestamp::now(), limit)?;
        for delivery in due {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            self.attempt(d, &delivery, fence, &mut report)?;
        }
        Ok(report)
    }

    fn attempt(
        &self,
        d: &Destination,
        delivery: &Delivery,
        fence: Option<&Fence>,
        report: &mut PassReport,
    ) -> Result<(), StoreError> {
        let started = Instant::now();
        let attempt = self.sender.send(d, &delivery.notification);
        let result = outcome(&self.sender.settings, delivery.attempts, &attempt, Timestamp::now());
        self.counters.add(&d.name, 0);
        match &result {
            DeliveryResult::Delivered => {
                report.delivered += 1;
                self.counters.add(&d.name, 1);
            }
            DeliveryResult::Retry { error, .. } => {
                report.failed += 1;
                self.counters.add(&d.name, 2);
                tracing::warn!(destination = %d.name, delivery = delivery.id, error = %error, "notification delivery failed; will retry");
            }
            DeliveryResult::Dead { error } => {
                report.dead += 1;
                self.counters.add(&d.name, 2);
                self.counters.add(&d.name, 3);
                tracing::error!(destination = %d.name, delivery = delivery.id, error = %error, "notification delivery given up");
            }
        }
        tracing::debug!(destination = %d.name, delivery = delivery.id, event = %delivery.notification.event,
            ms = started.elapsed().as_millis() as u64, "notification attempt");
        self.store.record_delivery(delivery.id, &result, fence, Timestamp::now()).map(|_| ())
    }

    /// One pass in the calling thread (the CLI's `notifications deliver`
    /// and the quickstart): takes the lease if it is free, routes, sends
    /// everything due to every destination once, releases the lease.
    /// `Ok(None)` when another process (a scheduler) holds the lease.
    pub fn run_once(&self) -> Result<Option<PassReport>, StoreError> {
        let Some(lease) = self.store.acquire_lease(LEASE, &self.holder, self.ttl_ms(), Timestamp::now())? else {
            return Ok(None);
        };
        let fence = Fence::from(&lease);
        let stop = AtomicBool::new(false);
        let result = (|| {
            let mut report = PassReport { routed: self.route_all(Some(&fence))?, ..Default::default() };
            for d in &self.destinations.list {
                let r = self.drain(d, Some(&fence), 10_000, &stop)?;
                report.delivered += r.delivered;
                report.failed += r.failed;
                report.dead += r.dead;
            }
            Ok(report)
        })();
        let _ = self.store.release_lease(&lease);
        result.map(Some)
    }

    /// Runs in the background until `stop` is set: the lease and routing on
    /// one thread, one sender per destination. Join the handle to wait for
    /// it to finish (the lease is released on the way out).
    pub fn spawn(self, stop: Arc<AtomicBool>) -> JoinHandle<()> {
        std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || self.run(stop))
            .expect("spawning the deliverer thread")
    }

    fn run(self, stop: Arc<AtomicBool>) {
        let this = Arc::new(self);
        let fence: Arc<Mutex<Option<Fence>>> = Arc::new(Mutex::new(None));
        let poll = this.sender.settings.poll;
        let mut workers = Vec::new();
        for d in this.destinations.list.clone() {
            let (this, fence, stop) = (this.clone(), fence.clone(), stop.clone());
            let handle = std::thread::Builder::new().name(format!("notify-{}", d.name)).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let current = fence.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let worked = match current {
                        None => false,
                        Some(f) => match this.drain(&d, Some(&f), 50, &stop) {
                            Ok(r) => r.delivered + r.failed + r.dead > 0,
                            Err(StoreError::Fenced { .. }) => false,
                            Err(e) => {
                                tracing::error!(destination = %d.name, error = %e, "notification deliverer: store error");
                                false
                            }
                        },
                    };
                    if !worked {
                        sleep_unless(&stop, poll);
                    }
                }
            });
            match handle {
                Ok(h) => workers.push(h),
                Err(e) => tracing::error!(error = %e, "notification deliverer: cannot start a sender thread"),
            }
        }
        let mut lease: Option<Lease> = None;
        while !stop.load(Ordering::Relaxed) {
            let now = Timestamp::now();
            let ttl = this.ttl_ms();
            let next = match &lease {
                Some(l) => this.store.renew_lease(l, ttl, now),
                None => this.store.acquire_lease(LEASE, &this.holder, ttl, now),
            };
            lease = match next {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "notification deliverer: lease");
                    None
                }
            };
            let f = lease.as_ref().map(Fence::from);
            let was = this.counters.leader.swap(f.is_some(), Ordering::Relaxed);
            if was != f.is_some() {
                tracing::info!(leader = f.is_some(), "notification deliverer lease");
            }
            *fence.lock().unwrap_or_else(|e| e.into_inner()) = f.clone();
            if let Some(f) = &f
                && let Err(e) = this.route_all(Some(f))
                && !matches!(e, StoreError::Fenced { .. })
            {
                tracing::error!(error = %e, "notification deliverer: routing");
            }
            sleep_unless(&stop, poll);
        }
        *fence.lock().unwrap_or_else(|e| e.into_inner()) = None;
        for w in workers {
            let _ = w.join();
        }
        if let Some(l) = lease {
            let _ = this.store.release_lease(&l);
        }
        this.counters.leader.store(false, Ordering::Relaxed);
    }
}

/// Sleeps `d`, waking early (within 50 ms) when `stop` is set.
fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}
