//! The one ingest path: validate → prepare → durable group commit → online
//! learning. The API, the CLI, the simulations and every test store events
//! through it; nothing else appends records and then catches plugins up.
//!
//! * **Validate** — [`PluginHost::validate`] / [`PluginHost::validate_record`]:
//!   the record's own plugin checks it before anything is stored.
//! * **Prepare** — [`Prepared::new`]: hashing and JSON encoding, pure CPU
//!   work the caller does on its own thread (a CLI reader thread, an HTTP
//!   handler), so the writer does only database work.
//! * **Group commit** — [`PluginHost::append`] (blocking) and
//!   [`PluginHost::append_async`] (awaitable) hand the prepared records to
//!   one writer thread per host. While the writer is committing (an fsync),
//!   new batches queue up; the next transaction takes them all at once, up
//!   to [`MAX_GROUP`] records, so many concurrent callers share one
//!   transaction. Every caller is answered only after the transaction
//!   holding its records is durable, with its own part of the receipt.
//! * **Learn** — [`PluginHost::learn`] catches up the (plugin, workspace)
//!   pairs a commit gave new events, each from its checkpoint (see
//!   [`PluginHost::catch_up`]). When it runs is the caller's choice
//!   ([`CatchUp`]): before the call returns (tests, simulations,
//!   [`PluginHost::ingest`]), on the host's learner thread, coalesced at most
//!   every [`LEARN_INTERVAL`] (the API, so ingest latency never waits for
//!   plugins), or when the caller says so (the CLI, once after its whole
//!   input, so plugins absorb large batches).
//!
//! The threads start on the first append and stop with the host (or at
//! [`PluginHost::shutdown_ingest`]): whatever is queued is committed and
//! answered, then the learner finishes what it was handed.
//!
//! **Why a future and a blocking call over the same writer**, rather than
//! the API wrapping the blocking call in `spawn_blocking`: an HTTP request
//! waiting for its commit then holds no thread at all (a `tokio` oneshot,
//! which needs no runtime on the sending side), so hundreds of concurrent
//! ingest requests cost no more than a few; the blocking call waits on a
//! plain channel, which is safe on any thread, also inside a runtime.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use learnloop_core::{Record, Timestamp, WorkspaceId};
use learnloop_store::{AppendMode, AppendReceipt, ItemStatus, Prepared, Store};
use serde::Serialize;

use crate::{CatchUpProgress, HostError, Loaded, PluginHost, Services};

/// Most records in one group commit (a single larger batch is still one
/// transaction: a batch is never split).
pub const MAX_GROUP: usize = 10_000;

/// At most one round of background online updates this often. Each round
/// commits (and fsyncs) on the same store as ingest, so running after every
/// group commit would halve ingest throughput; plugin routes catch up before
/// they answer, so nobody reads a stale answer in between.
pub const LEARN_INTERVAL: Duration = Duration::from_millis(250);

/// What happened to one record given to [`PluginHost::ingest`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum IngestStatus {
    /// Newly stored.
    Inserted,
    /// Already stored with the same content.
    Duplicate,
    /// Not stored.
    Rejected {
        /// The field at fault (empty for the whole record).
        field: String,
        /// Why.
        message: String,
    },
}

/// When the online update of a commit's new events runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// Before the call returns, on the caller's thread: state is up to date
    /// when [`PluginHost::append`] returns (tests, simulations).
    Now,
    /// On the host's learner thread, coalesced with other commits' at most
    /// every [`LEARN_INTERVAL`] (the API).
    Background,
    /// When the caller passes the commit's [`Committed::touched`] to
    /// [`PluginHost::learn`] (the CLI, after its whole input). Should the
    /// process die before, the next catch-up absorbs the events.
    Later,
}

/// How many events each (plugin, workspace) was newly given: what online
/// learning has to absorb.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched(BTreeMap<(String, WorkspaceId), u64>);

impl Touched {
    /// Counts one new event of `plugin` in `workspace`.
    fn add(&mut self, record: &Record) {
        let key = (record.plugin().to_string(), record.workspace().clone());
        *self.0.entry(key).or_default() += 1;
    }

    /// Adds another commit's counts to these.
    pub fn merge(&mut self, other: Touched) {
        for (k, n) in other.0 {
            *self.0.entry(k).or_default() += n;
        }
    }

    /// Each (plugin, workspace) with its count of new events, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &WorkspaceId, u64)> {
        self.0.iter().map(|((p, w), n)| (p.as_str(), w, *n))
    }

    /// Whether no plugin got a new event.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What one append did, for the caller's own records.
#[derive(Debug)]
pub struct Committed {
    /// One status per record, in input order, with the counts.
    pub receipt: AppendReceipt,
    /// The records, given back (a caller reuses the allocation, or names a
    /// rejected record by its id).
    pub records: Vec<Prepared>,
    /// New events per (plugin, workspace).
    pub touched: Touched,
    /// The online updates that ran before the call returned
    /// ([`CatchUp::Now`] only; empty otherwise).
    pub learned: Vec<Learned>,
}

/// One (plugin, workspace) online update.
#[derive(Debug)]
pub struct Learned {
    /// The plugin.
    pub plugin: String,
    /// The workspace.
    pub workspace: WorkspaceId,
    /// Events absorbed, or why the update is deferred (the events are
    /// stored; the next catch-up retries).
    pub result: Result<u64, HostError>,
}

impl PluginHost {
    /// Validates, stores and learns from records — the whole ingest path in
    /// one blocking call: each record is validated by its plugin, the valid
    /// ones go through the group commit (with ingestion time `now`), and
    /// the plugins that got new events catch up before it returns
    /// ([`CatchUp::Now`]). Returns one status per record.
    pub fn ingest(&self, records: Vec<Record>, now: Timestamp) -> Result<Vec<IngestStatus>, HostError> {
        let mut statuses: Vec<Option<IngestStatus>> = vec![None; records.len()];
        let mut prepared = Vec::new();
        let mut positions = Vec::new();
        for (i, r) in records.into_iter().enumerate() {
            match self.validate(&r) {
                Ok(()) => {
                    positions.push(i);
                    prepared.push(Prepared::new(r));
                }
                Err(e) => statuses[i] = Some(IngestStatus::Rejected { field: e.field, message: e.message }),
            }
        }
        if !prepared.is_empty() {
            let committed = self.append(prepared, Some(now), CatchUp::Now)?;
            for learned in &committed.learned {
                log_deferred(learned);
            }
            for (pos, status) in positions.into_iter().zip(committed.receipt.items) {
                statuses[pos] = Some(match status {
                    ItemStatus::Inserted => IngestStatus::Inserted,
                    ItemStatus::Duplicate => IngestStatus::Duplicate,
                    ItemStatus::Rejected(r) => IngestStatus::Rejected { field: r.field().into(), message: r.message() },
                });
            }
        }
        Ok(statuses.into_iter().map(|s| s.expect("every record has a status")).collect())
    }

    /// Stores records already validated (by [`PluginHost::validate`] or
    /// [`PluginHost::validate_record`]) through the group commit and
    /// returns once their transaction is durable; rejected records (a
    /// conflict, an unknown prediction) are reported, the others stored.
    /// `now` is the ingestion time (`None`: the commit's clock); only
    /// batches with the same `now` share a transaction. `catch_up` says when
    /// the plugins learn from the new events.
    pub fn append(
        &self,
        records: Vec<Prepared>,
        now: Option<Timestamp>,
        catch_up: CatchUp,
    ) -> Result<Committed, HostError> {
        let (reply, answer) = sync_channel(1);
        self.engine().send(Job {
            records,
            now,
            background: catch_up == CatchUp::Background,
            reply: Reply::Wait(reply),
        })?;
        let mut committed = answer.recv().map_err(|_| HostError::Stopped)??;
        if catch_up == CatchUp::Now {
            committed.learned = self.learn(&committed.touched, &mut |_| {});
        }
        Ok(committed)
    }

    /// [`PluginHost::append`] for async callers (the API): resolves once the
    /// records are durable, without holding a thread while it waits. The
    /// plugins learn on the host's learner thread ([`CatchUp::Background`]):
    /// waiting for them here would block the caller's runtime.
    pub async fn append_async(&self, records: Vec<Prepared>) -> Result<Committed, HostError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.engine().send(Job { records, now: None, background: true, reply: Reply::Async(reply) })?;
        answer.await.map_err(|_| HostError::Stopped)?
    }

    /// Catches up every (plugin, workspace) of `touched`, in order, each
    /// from its checkpoint (see [`PluginHost::catch_up_with`]). `progress`
    /// hears of each pair once as it starts (`absorbed` 0) and then after
    /// every committed batch. A failure of one pair does not stop the others.
    pub fn learn(&self, touched: &Touched, progress: &mut dyn FnMut(CatchUpProgress<'_>)) -> Vec<Learned> {
        learn_with(self.store.as_ref(), &self.services, &self.plugins, touched, progress)
    }

    /// Stops ingest: commits and answers whatever is queued, lets the
    /// learner finish the online updates it was handed, and joins both
    /// threads. Appends after this fail with [`HostError::Stopped`]. The
    /// API calls it on graceful shutdown; dropping the host does the same.
    pub fn shutdown_ingest(&self) {
        if let Some(engine) = self.ingest.get() {
            engine.shutdown();
        }
    }

    /// The writer and learner threads, started on first use, when the host
    /// is fully built (its services lent).
    fn engine(&self) -> &Engine {
        self.ingest.get_or_init(|| {
            Engine::start(
                self.store.clone(),
                Learning { store: self.store.clone(), services: self.services.clone(), plugins: self.plugins.clone() },
            )
        })
    }
}

/// The one implementation of "catch up the pairs a commit touched", shared
/// by [`PluginHost::learn`] and the learner thread.
fn learn_with(
    store: &dyn Store,
    services: &Services,
    plugins: &BTreeMap<String, Loaded>,
    touched: &Touched,
    progress: &mut dyn FnMut(CatchUpProgress<'_>),
) -> Vec<Learned> {
    let mut out = Vec::new();
    for (plugin, workspace, _) in touched.iter() {
        progress(CatchUpProgress { plugin, workspace, absorbed: 0 });
        let result = match plugins.get(plugin) {
            Some(loaded) => crate::catch_up_loaded(store, services, loaded, plugin, workspace, progress),
            // Only records of loaded plugins pass validation; a host
            // rebuilt in between may have lost it.
            None => Err(HostError::Invalid(learnloop_core::ValidationError::new(
                "plugin",
                format!("plugin {plugin:?} is not loaded"),
            ))),
        };
        out.push(Learned { plugin: plugin.to_string(), workspace: workspace.clone(), result });
    }
    out
}

/// A deferred online update, logged: the events are stored, and the next
/// catch-up retries.
fn log_deferred(learned: &Learned) {
    if let Err(e) = &learned.result {
        tracing::warn!(
            plugin = %learned.plugin,
            workspace = %learned.workspace,
            "online update of {} in {} deferred: {e}",
            learned.plugin,
            learned.workspace
        );
    }
}

/// What the learner thread needs to catch plugins up: the host's store,
/// services and plugins, shared (the host itself is not).
struct Learning {
    store: Arc<dyn Store>,
    services: Services,
    plugins: BTreeMap<String, Loaded>,
}

/// How a caller waits for its answer.
enum Reply {
    /// A blocking caller, on a plain channel.
    Wait(SyncSender<Result<Committed, HostError>>),
    /// An async caller.
    Async(tokio::sync::oneshot::Sender<Result<Committed, HostError>>),
}

impl Reply {
    fn send(self, answer: Result<Committed, HostError>) {
        // A caller that gave up waiting has nobody to tell.
        match self {
            Reply::Wait(tx) => {
                let _ = tx.send(answer);
            }
            Reply::Async(tx) => {
                let _ = tx.send(answer);
            }
        }
    }
}

/// One caller's batch, queued for the writer.
struct Job {
    records: Vec<Prepared>,
    now: Option<Timestamp>,
    /// Hand the new events to the learner thread.
    background: bool,
    reply: Reply,
}

/// The writer and learner threads of one host.
pub(crate) struct Engine {
    tx: Mutex<Option<Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Engine {
    fn start(store: Arc<dyn Store>, learning: Learning) -> Engine {
        let (tx, rx) = channel::<Job>();
        let (learn_tx, learn_rx) = channel::<Touched>();
        let writer = std::thread::Builder::new()
            .name("learnloop-commit".into())
            .spawn(move || write_loop(store.as_ref(), rx, learn_tx))
            .expect("spawn the commit thread");
        let learner = std::thread::Builder::new()
            .name("learnloop-learn".into())
            .spawn(move || learn_loop(&learning, learn_rx))
            .expect("spawn the learner thread");
        Engine { tx: Mutex::new(Some(tx)), threads: Mutex::new(vec![writer, learner]) }
    }

    fn send(&self, job: Job) -> Result<(), HostError> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        tx.as_ref().ok_or(HostError::Stopped)?.send(job).map_err(|_| HostError::Stopped)
    }

    fn shutdown(&self) {
        // Closing the queue ends the writer once it has committed what is
        // queued; the writer's end closes the learner's queue in turn.
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn write_loop(store: &dyn Store, rx: Receiver<Job>, learn: Sender<Touched>) {
    let mut held: Option<Job> = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        let mut total = first.records.len();
        let mut jobs = vec![first];
        while total < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) if job.now == jobs[0].now => {
                    total += job.records.len();
                    jobs.push(job);
                }
                // Another ingestion time: the next transaction's.
                Ok(job) => {
                    held = Some(job);
                    break;
                }
                Err(_) => break,
            }
        }
        commit_group(store, jobs, &learn);
    }
}

/// Commits a group of batches in one transaction and answers each caller
/// with its own part.
fn commit_group(store: &dyn Store, mut jobs: Vec<Job>, learn: &Sender<Touched>) {
    let now = jobs[0].now.unwrap_or_else(Timestamp::now);
    let lens: Vec<usize> = jobs.iter().map(|j| j.records.len()).collect();
    let records = if jobs.len() == 1 {
        std::mem::take(&mut jobs[0].records)
    } else {
        let mut all = Vec::with_capacity(lens.iter().sum());
        for job in &mut jobs {
            all.append(&mut job.records);
        }
        all
    };
    let receipt = match store.append_prepared(&records, AppendMode::SkipRejected, now) {
        Ok(r) => r,
        Err(e) => {
            // The first caller gets the error itself, the others its text.
            let other = e.for_another_caller();
            let mut first = Some(e);
            for job in jobs {
                let e = first.take().unwrap_or_else(|| other.for_another_caller());
                job.reply.send(Err(HostError::Store(e)));
            }
            return;
        }
    };
    // Split records and statuses back per caller, from the end.
    let (mut records, mut items) = (records, receipt.items);
    let mut parts = Vec::with_capacity(jobs.len());
    for len in lens[1..].iter().rev() {
        parts.push((records.split_off(records.len() - len), items.split_off(items.len() - len)));
    }
    parts.push((records, items));
    let mut background = Touched::default();
    for (job, (mine, part)) in jobs.into_iter().zip(parts.into_iter().rev()) {
        let mut touched = Touched::default();
        for (p, s) in mine.iter().zip(&part) {
            if *s == ItemStatus::Inserted {
                touched.add(p.record());
            }
        }
        let inserted = part.iter().filter(|s| **s == ItemStatus::Inserted).count();
        let duplicates = part.iter().filter(|s| **s == ItemStatus::Duplicate).count();
        let rejected = part.len() - inserted - duplicates;
        if job.background {
            background.merge(touched.clone());
        }
        let receipt = AppendReceipt { items: part, inserted, duplicates, rejected };
        job.reply.send(Ok(Committed { receipt, records: mine, touched, learned: Vec::new() }));
    }
    if !background.is_empty() {
        // The learner has stopped only when the host is going away.
        let _ = learn.send(background);
    }
}

fn learn_loop(learning: &Learning, rx: Receiver<Touched>) {
    let mut open = true;
    while open {
        let Ok(mut pending) = rx.recv() else { break };
        // Coalesce: one catch-up per (plugin, workspace) however many
        // commits touched it in the interval.
        let deadline = Instant::now() + LEARN_INTERVAL;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(more) => pending.merge(more),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let learned = learn_with(learning.store.as_ref(), &learning.services, &learning.plugins, &pending, &mut |_| {});
        for l in &learned {
            log_deferred(l);
        }
    }
}
