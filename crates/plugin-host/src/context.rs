//! The host's [`Context`]: a plugin's window on the store for one call.
//!
//! Reads go to the store, scoped to the plugin and workspace. Writes are
//! buffered and become one [`Changes`] set that the host commits atomically
//! (for online updates, together with the checkpoint), so a failed or
//! abandoned call leaves nothing half-applied. Reads see the call's own
//! writes. Versions a plugin sees for documents it wrote in this call are
//! the versions they will have once committed.

use std::collections::BTreeMap;

use learnloop_core::{NewAlert, NewImprovement, NewInsight, NewNotification, PluginName};
use learnloop_plugin_api::improve::APPLIED_PREFIX;
use learnloop_plugin_api::*;
use learnloop_store::{Changes, StateChange, StateKey, Store, StoreError};
use serde_json::Value;

use crate::services::{Scope, Services};

/// State keys under this prefix belong to the host (checkpoints); plugins cannot touch them.
pub const HOST_PREFIX: &str = "__host/";

/// Maps a store error to what a plugin sees.
pub fn plugin_error(e: StoreError) -> PluginError {
    match e {
        StoreError::VersionConflict { .. } => PluginError::Conflict { message: e.to_string() },
        StoreError::Invalid { field, message } => PluginError::invalid(field, message),
        StoreError::NotFound(m) => PluginError::not_found(m),
        StoreError::OutOfSpace(_) => PluginError::unavailable(e.to_string()),
        other => PluginError::internal(other.to_string()),
    }
}

/// A stored document as a plugin sees it.
fn state_of(key: &dyn std::fmt::Display, doc: learnloop_store::StateDoc) -> Result<State, PluginError> {
    Ok(State {
        value: serde_json::from_slice(&doc.value)
            .map_err(|e| PluginError::internal(format!("state {key} is not JSON: {e}")))?,
        version: doc.version,
    })
}

struct Pending {
    /// New value; `None` deletes.
    value: Option<Value>,
    /// The store's version when this call first touched the key (`None`: absent).
    base: Option<u64>,
}

/// A [`Context`] over a [`Store`] for one plugin, one workspace, one call.
pub struct HostContext<'a> {
    store: &'a dyn Store,
    services: &'a Services,
    plugin: PluginName,
    workspace: WorkspaceId,
    now: Timestamp,
    state: BTreeMap<String, Pending>,
    insights: Vec<NewInsight>,
    alerts: Vec<NewAlert>,
    notifications: Vec<NewNotification>,
    improvements: Vec<NewImprovement>,
}

impl<'a> HostContext<'a> {
    /// A context for `plugin` in `workspace`.
    pub fn new(
        store: &'a dyn Store,
        services: &'a Services,
        plugin: PluginName,
        workspace: WorkspaceId,
        now: Timestamp,
    ) -> Self {
        Self {
            store,
            services,
            plugin,
            workspace,
            now,
            state: BTreeMap::new(),
            insights: Vec::new(),
            alerts: Vec::new(),
            notifications: Vec::new(),
            improvements: Vec::new(),
        }
    }

    fn scope(&self) -> Scope {
        Scope { plugin: self.plugin.clone(), workspace: self.workspace.clone() }
    }

    fn key(&self, key: &str) -> Result<StateKey, PluginError> {
        if key.starts_with(HOST_PREFIX) {
            return Err(PluginError::invalid(
                "key",
                format!("{key:?}: keys starting with {HOST_PREFIX:?} are reserved"),
            ));
        }
        StateKey::new(self.plugin.clone(), self.workspace.clone(), key).map_err(plugin_error)
    }

    fn stored(&self, key: &StateKey) -> Result<Option<State>, PluginError> {
        self.store.get_state(key).map_err(plugin_error)?.map(|doc| state_of(key, doc)).transpose()
    }

    /// For a key: the store's version when this call first touched it, and
    /// the version the plugin sees now (after this call's own writes).
    fn versions(&self, key: &str) -> Result<(Option<u64>, Option<u64>), PluginError> {
        if key.starts_with(APPLIED_PREFIX) {
            return Err(PluginError::invalid(
                "key",
                format!("{key:?}: keys starting with {APPLIED_PREFIX:?} are written by the improvement lifecycle only"),
            ));
        }
        let k = self.key(key)?;
        Ok(match self.state.get(key) {
            Some(p) => (p.base, p.value.as_ref().map(|_| p.base.unwrap_or(0) + 1)),
            None => {
                let v = self.stored(&k)?.map(|s| s.version);
                (v, v)
            }
        })
    }

    /// The buffered writes as one atomic change set.
    pub fn into_changes(self) -> Changes {
        let plugin = self.plugin;
        let workspace = self.workspace;
        Changes {
            state: self
                .state
                .into_iter()
                .map(|(key, p)| StateChange {
                    key: StateKey::new(plugin.clone(), workspace.clone(), key).expect("checked on write"),
                    value: p.value.map(|v| serde_json::to_vec(&v).expect("JSON values serialise")),
                    expect: p.base.map_or(Expect::Absent, Expect::Version),
                })
                .collect(),
            insights: self.insights,
            alerts: self.alerts,
            notifications: self.notifications,
            improvements: self.improvements,
            transitions: Vec::new(),
            fence: None,
        }
    }

    /// Whether the call wrote anything.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty() && self.insights.is_empty() && self.alerts.is_empty() && self.improvements.is_empty()
    }

    /// A page of documents under `prefix` after `after`: the store's,
    /// overlaid with this call's own writes and deletes, in key order.
    fn scan_merged<T>(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        stored: impl Fn(&str, learnloop_store::StateDoc) -> Result<T, PluginError>,
        pending: impl Fn(&Value, u64) -> T,
    ) -> Result<Vec<(String, T)>, PluginError> {
        if prefix.starts_with(HOST_PREFIX) {
            return Err(PluginError::invalid("prefix", format!("{prefix:?} is reserved")));
        }
        let limit = limit.clamp(1, 10_000);
        let extra = self.state.len();
        let docs = self
            .store
            .scan_state(&self.plugin, &self.workspace, prefix, after, limit + extra + 1)
            .map_err(plugin_error)?;
        let mut merged: BTreeMap<String, T> = BTreeMap::new();
        for (k, doc) in docs {
            if k.starts_with(HOST_PREFIX) || (k.starts_with(APPLIED_PREFIX) && !prefix.starts_with(APPLIED_PREFIX)) {
                continue;
            }
            let value = stored(&k, doc)?;
            merged.insert(k, value);
        }
        for (k, p) in &self.state {
            if !k.starts_with(prefix) || after.is_some_and(|a| k.as_str() <= a) {
                continue;
            }
            match &p.value {
                Some(v) => {
                    merged.insert(k.clone(), pending(v, p.base.unwrap_or(0) + 1));
                }
                None => {
                    merged.remove(k);
                }
            }
        }
        Ok(merged.into_iter().take(limit).collect())
    }

    fn scoped(&self, query: &EventQuery) -> EventQuery {
        let mut q = query.clone();
        q.workspace = Some(self.workspace.clone());
        q.plugin = Some(self.plugin.clone());
        q
    }
}

impl Context for HostContext<'_> {
    fn workspace(&self) -> &WorkspaceId {
        &self.workspace
    }

    fn now(&self) -> Timestamp {
        self.now
    }

    fn predictions(&mut self, query: &EventQuery) -> Result<Page<StoredPrediction>, PluginError> {
        self.store.predictions(&self.scoped(query)).map_err(plugin_error)
    }

    fn outcomes(&mut self, query: &EventQuery) -> Result<Page<StoredOutcome>, PluginError> {
        self.store.outcomes(&self.scoped(query)).map_err(plugin_error)
    }

    fn prediction_columns(&mut self, query: &EventQuery, spec: &ColumnSpec) -> Result<PredictionColumns, PluginError> {
        self.store.prediction_columns(&self.scoped(query), spec).map_err(plugin_error)
    }

    fn get_state(&mut self, key: &str) -> Result<Option<State>, PluginError> {
        let k = self.key(key)?;
        match self.state.get(key) {
            Some(p) => Ok(p.value.clone().map(|value| State { value, version: p.base.unwrap_or(0) + 1 })),
            None => self.stored(&k),
        }
    }

    fn get_states(&mut self, keys: &[String]) -> Result<Vec<Option<State>>, PluginError> {
        // This call's own writes win; the rest come from the store at once.
        let mut out: Vec<Option<Option<State>>> = Vec::with_capacity(keys.len());
        let mut wanted = Vec::new();
        for key in keys {
            let k = self.key(key)?;
            match self.state.get(key.as_str()) {
                Some(p) => {
                    out.push(Some(p.value.clone().map(|value| State { value, version: p.base.unwrap_or(0) + 1 })))
                }
                None => {
                    out.push(None);
                    wanted.push(k);
                }
            }
        }
        let mut stored = self.store.get_states(&wanted).map_err(plugin_error)?.into_iter().zip(&wanted);
        out.into_iter()
            .map(|o| match o {
                Some(own) => Ok(own),
                None => {
                    let (doc, key) = stored.next().expect("one stored answer per key not written here");
                    doc.map(|doc| state_of(key, doc)).transpose()
                }
            })
            .collect()
    }

    fn put_state(&mut self, key: &str, value: Value, expect: Expect) -> Result<u64, PluginError> {
        let (base, current) = self.versions(key)?;
        check_expect(key, expect, current)?;
        self.state.insert(key.to_string(), Pending { value: Some(value), base });
        Ok(base.unwrap_or(0) + 1)
    }

    fn delete_state(&mut self, key: &str, expect: Expect) -> Result<(), PluginError> {
        let (base, current) = self.versions(key)?;
        check_expect(key, expect, current)?;
        if base.is_none() {
            // Never stored: forgetting the pending write is the whole delete.
            self.state.remove(key);
        } else {
            self.state.insert(key.to_string(), Pending { value: None, base });
        }
        Ok(())
    }

    fn scan_state(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, State)>, PluginError> {
        self.scan_merged(
            prefix,
            after,
            limit,
            |k, doc| state_of(&k, doc),
            |value, version| State { value: value.clone(), version },
        )
    }

    fn scan_state_raw(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, RawState)>, PluginError> {
        self.scan_merged(
            prefix,
            after,
            limit,
            |k, doc| {
                Ok(RawState {
                    json: String::from_utf8(doc.value)
                        .map_err(|e| PluginError::internal(format!("state {k} is not UTF-8 JSON: {e}")))?,
                    version: doc.version,
                })
            },
            |value, version| RawState { json: value.to_string(), version },
        )
    }

    fn emit_insight(&mut self, d: InsightDraft) -> Result<(), PluginError> {
        let insight = NewInsight {
            workspace: self.workspace.clone(),
            plugin: self.plugin.clone(),
            kind: d.kind,
            title: d.title,
            detail: d.detail,
            confidence: d.confidence,
            impact: d.impact,
            data: d.data,
        };
        insight.validate()?;
        self.insights.push(insight);
        Ok(())
    }

    fn emit_alert(&mut self, d: AlertDraft) -> Result<(), PluginError> {
        let alert = NewAlert {
            workspace: self.workspace.clone(),
            plugin: self.plugin.clone(),
            severity: d.severity,
            kind: d.kind,
            subject: d.subject,
            message: d.message,
            dedup_key: d.dedup_key,
            data: d.data,
        };
        alert.validate()?;
        self.alerts.push(alert);
        Ok(())
    }

    fn emit_notification(&mut self, d: NotificationDraft) -> Result<(), PluginError> {
        let n = NewNotification {
            workspace: Some(self.workspace.clone()),
            plugin: self.plugin.clone(),
            event: d.event,
            severity: d.severity,
            subject: d.subject,
            summary: d.summary,
            dedup_key: d.dedup_key,
            link: d.link,
            data: d.data,
        };
        n.validate()?;
        self.notifications.push(n);
        Ok(())
    }

    fn propose_improvement(&mut self, d: ImprovementDraft) -> Result<(), PluginError> {
        let imp = NewImprovement {
            workspace: self.workspace.clone(),
            plugin: self.plugin.clone(),
            target: d.target,
            params: d.params,
            evidence: d.evidence,
            metric: d.metric,
            expected_gain: d.expected_gain,
        };
        imp.validate()?;
        self.improvements.push(imp);
        Ok(())
    }

    fn upsert_vectors(&mut self, collection: &str, points: Vec<VectorPoint>) -> Result<(), PluginError> {
        // The index is derived data: written directly, rebuilt from the store of record when lost.
        match &self.services.vectors {
            Some(v) => v.upsert(&self.scope(), collection, points),
            None => Err(PluginError::unavailable("no vector index is configured")),
        }
    }

    fn search_vectors(&mut self, collection: &str, query: &VectorQuery) -> Result<Vec<VectorHit>, PluginError> {
        match &self.services.vectors {
            Some(v) => v.search(&self.scope(), collection, query),
            None => Err(PluginError::unavailable("no vector index is configured")),
        }
    }

    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, PluginError> {
        match &self.services.embedder {
            Some(e) => e.embed(texts),
            None => Err(PluginError::unavailable("no embedder is configured")),
        }
    }

    fn llm_generate(&mut self, request: &LlmRequest) -> Result<Option<String>, PluginError> {
        match &self.services.llm {
            Some(l) => l.generate(request),
            // No LLM: callers take their deterministic path.
            None => Ok(None),
        }
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        if matches!(level, LogLevel::Warn | LogLevel::Error) {
            log_line(format_args!("[{} {}] {:?}: {message}", self.plugin, self.workspace, level));
        }
    }
}

fn check_expect(key: &str, expect: Expect, current: Option<u64>) -> Result<(), PluginError> {
    let ok = match (expect, current) {
        (Expect::Any, _) | (Expect::Absent, None) => true,
        (Expect::Version(v), Some(c)) => v == c,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(PluginError::Conflict {
            message: format!(
                "state {key}: expected {expect}, found {}",
                current.map_or("no document".to_string(), |v| format!("version {v}"))
            ),
        })
    }
}

/// A line on stderr. A closed stderr loses it: `eprintln!` would panic and
/// take the process (and, in the scheduler, its lease) down with it.
fn log_line(args: std::fmt::Arguments<'_>) {
    let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("{args}\n"));
}
