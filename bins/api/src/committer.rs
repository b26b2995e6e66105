//! Group commit: many concurrent ingest requests share one transaction.
//!
//! Handlers send their prepared records to one writer thread and wait.
//! While the writer is committing (an fsync), new requests queue up; the
//! next transaction takes them all at once. Every request is answered only
//! after the transaction holding its records is durable. Online updates
//! run on a separate learner thread afterwards, so ingest latency never
//! waits for plugins; a plugin's answers catch up before they are computed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use learnloop_core::{Timestamp, WorkspaceId};
use learnloop_plugin_host::PluginHost;
use learnloop_store::{AppendMode, AppendReceipt, ItemStatus, Prepared};

/// Most records in one group commit.
const MAX_GROUP: usize = 10_000;

struct Job {
    records: Vec<Prepared>,
    reply: tokio::sync::oneshot::Sender<Result<AppendReceipt, String>>,
}

/// The writer and learner threads.
pub struct Committer {
    tx: Option<Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    learner: Option<JoinHandle<()>>,
}

impl Committer {
    /// Starts the threads.
    pub fn start(host: Arc<PluginHost>) -> Committer {
        let (tx, rx) = channel::<Job>();
        let (learn_tx, learn_rx) = channel::<(String, WorkspaceId)>();
        let h = host.clone();
        let writer = std::thread::Builder::new()
            .name("learnloop-commit".into())
            .spawn(move || write_loop(&h, rx, learn_tx))
            .expect("spawn commit thread");
        let learner = std::thread::Builder::new()
            .name("learnloop-learn".into())
            .spawn(move || learn_loop(&host, learn_rx))
            .expect("spawn learner thread");
        Committer { tx: Some(tx), writer: Some(writer), learner: Some(learner) }
    }

    /// Appends records durably; resolves when they are committed.
    pub async fn append(&self, records: Vec<Prepared>) -> Result<AppendReceipt, String> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx
            .as_ref()
            .ok_or("shutting down")?
            .send(Job { records, reply })
            .map_err(|_| "the commit thread stopped".to_string())?;
        rx.await.map_err(|_| "the commit thread stopped".to_string())?
    }

    /// Commits what is queued, lets the learner finish, and stops.
    pub fn shutdown(&mut self) {
        self.tx.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        if let Some(l) = self.learner.take() {
            let _ = l.join();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn write_loop(host: &PluginHost, rx: Receiver<Job>, learn: Sender<(String, WorkspaceId)>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut total = jobs[0].records.len();
        while total < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => {
                    total += job.records.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let mut all = Vec::with_capacity(total);
        let mut lens = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            lens.push(job.records.len());
            all.extend(job.records);
            replies.push(job.reply);
        }
        match host.store().append_prepared(&all, AppendMode::SkipRejected, Timestamp::now()) {
            Ok(receipt) => {
                let mut touched = BTreeSet::new();
                for (p, s) in all.iter().zip(&receipt.items) {
                    if *s == ItemStatus::Inserted {
                        touched.insert((p.record().plugin().to_string(), p.record().workspace().clone()));
                    }
                }
                let mut items = receipt.items.into_iter();
                for (len, reply) in lens.into_iter().zip(replies) {
                    let part: Vec<ItemStatus> = items.by_ref().take(len).collect();
                    let inserted = part.iter().filter(|s| **s == ItemStatus::Inserted).count();
                    let duplicates = part.iter().filter(|s| **s == ItemStatus::Duplicate).count();
                    let rejected = part.len() - inserted - duplicates;
                    let _ = reply.send(Ok(AppendReceipt { items: part, inserted, duplicates, rejected }));
                }
                for t in touched {
                    let _ = learn.send(t);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                let _ = std::io::Write::write_fmt(
                    &mut std::io::stderr(),
                    format_args!("learnloop-api: append failed: {msg}\n"),
                );
                for reply in replies {
                    let _ = reply.send(Err(msg.clone()));
                }
            }
        }
    }
}

/// At most one round of online updates this often. Each round commits (and
/// fsyncs) on the same writer as ingest, so running after every group
/// commit would halve ingest throughput; plugin routes catch up before they
/// answer, so nobody reads a stale answer in between.
const LEARN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

fn learn_loop(host: &PluginHost, rx: Receiver<(String, WorkspaceId)>) {
    let mut open = true;
    while open {
        let Ok(first) = rx.recv() else { break };
        // Coalesce: one catch-up per (plugin, workspace) however many commits touched it.
        let mut pending = BTreeSet::from([first]);
        let deadline = std::time::Instant::now() + LEARN_INTERVAL;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
                Ok(more) => {
                    pending.insert(more);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        for (plugin, ws) in pending {
            if let Err(e) = host.catch_up(&plugin, &ws) {
                let _ = std::io::Write::write_fmt(
                    &mut std::io::stderr(),
                    format_args!("learnloop-api: online update of {plugin} in {ws} deferred: {e}\n"),
                );
            }
        }
    }
}
