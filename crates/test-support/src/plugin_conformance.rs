//! The suite every plugin must pass, statically linked or loaded from a
//! library: run it on both builds of a plugin and compare the snapshots.
//!
//! [`check`] drives a plugin through a [`PluginHost`] the way learnloop
//! does: manifest sanity, validation of the given records, ingest (all
//! inserted), ingest again (all duplicates, state unchanged), replay (the
//! same state rebuilt from history), every job, every parameter-free GET
//! route. It returns a [`Snapshot`] of everything observable, so two builds
//! of the same plugin can be compared for equality.

use std::collections::BTreeMap;

use learnloop_core::{PluginName, Record, Timestamp, WorkspaceId};
use learnloop_store::StateKey;
use serde::Serialize;
use serde_json::Value;

use learnloop_plugin_host::context::HOST_PREFIX;
use learnloop_plugin_host::{IngestStatus, PluginHost};

/// Everything observable about a plugin after the suite ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Plugin state documents by workspace and key (host documents excluded).
    pub state: BTreeMap<String, BTreeMap<String, Value>>,
    /// Each job's report.
    pub jobs: BTreeMap<String, Value>,
    /// Each parameter-free GET route's body, per workspace.
    pub routes: BTreeMap<String, Value>,
}

fn fail(msg: String) -> String {
    format!("conformance: {msg}")
}

/// Reads every state document of a plugin (sorted), excluding the host's.
pub fn state_of(host: &PluginHost, plugin: &str) -> Result<BTreeMap<String, BTreeMap<String, Value>>, String> {
    let name = PluginName::parse("plugin", plugin).map_err(|e| e.to_string())?;
    let store = host.store();
    let mut out = BTreeMap::new();
    for ws in store.workspaces(&name).map_err(|e| e.to_string())? {
        let mut docs = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.scan_state(&name, &ws, "", after.as_deref(), 1000).map_err(|e| e.to_string())?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (k, doc) in page {
                if k.starts_with(HOST_PREFIX) {
                    continue;
                }
                let v: Value = serde_json::from_slice(&doc.value).map_err(|e| format!("state {k}: {e}"))?;
                docs.insert(k, v);
            }
        }
        out.insert(ws.to_string(), docs);
    }
    Ok(out)
}

/// Runs the suite for `plugin` on `host` with `records` (which must all be
/// valid for the plugin and new to the store).
pub fn check(host: &PluginHost, plugin: &str, records: &[Record]) -> Result<Snapshot, String> {
    let loaded = host.plugin(plugin).map_err(|e| fail(e.to_string()))?;
    let m = &loaded.manifest;
    if m.name != plugin {
        return Err(fail(format!("manifest name {:?} is not {plugin:?}", m.name)));
    }
    if m.abi_version != learnloop_plugin_api::abi::ABI_VERSION {
        return Err(fail(format!("manifest ABI version {}", m.abi_version)));
    }
    if m.version.is_empty() || m.description.is_empty() || m.kinds.is_empty() {
        return Err(fail("manifest needs a version, a description and at least one kind".into()));
    }
    for r in &m.routes {
        if !["GET", "POST", "PUT", "DELETE"].contains(&r.method.as_str()) || !r.path.starts_with('/') {
            return Err(fail(format!(
                "route {} {}: method must be GET/POST/PUT/DELETE, path must start with /",
                r.method, r.path
            )));
        }
    }
    let mut names: Vec<&str> = m.jobs.iter().map(|j| j.name.as_str()).collect();
    names.sort();
    names.dedup();
    if names.len() != m.jobs.len() {
        return Err(fail("job names must be unique".into()));
    }
    for j in &m.jobs {
        if j.schedule.split_whitespace().count() != 6 {
            return Err(fail(format!("job {}: schedule {:?} is not a 6-field cron expression", j.name, j.schedule)));
        }
    }
    for (i, r) in records.iter().enumerate() {
        host.validate(r).map_err(|e| fail(format!("record {i} ({}) rejected: {e}", r.id())))?;
    }

    let now = Timestamp::now();
    let statuses = host.ingest(records.to_vec(), now).map_err(|e| fail(format!("ingest: {e}")))?;
    if let Some((i, s)) = statuses.iter().enumerate().find(|(_, s)| **s != IngestStatus::Inserted) {
        return Err(fail(format!("record {i} was not inserted: {s:?}")));
    }
    let state = state_of(host, plugin)?;
    if state.values().all(|docs| docs.is_empty()) && !records.is_empty() {
        return Err(fail("the online update wrote no state".into()));
    }

    let again = host.ingest(records.to_vec(), now).map_err(|e| fail(format!("re-ingest: {e}")))?;
    if let Some((i, s)) = again.iter().enumerate().find(|(_, s)| **s != IngestStatus::Duplicate) {
        return Err(fail(format!("re-ingested record {i} was not a duplicate: {s:?}")));
    }
    if state_of(host, plugin)? != state {
        return Err(fail("re-ingesting duplicates changed the state".into()));
    }

    host.replay(plugin, None).map_err(|e| fail(format!("replay: {e}")))?;
    let replayed = state_of(host, plugin)?;
    if replayed != state {
        return Err(fail("replay rebuilt a different state: the online update is not deterministic".into()));
    }

    let mut jobs = BTreeMap::new();
    for j in &m.jobs {
        let run =
            host.run_job(plugin, &j.name, "conformance", None, 1).map_err(|e| fail(format!("job {}: {e}", j.name)))?;
        if run.status != learnloop_core::JobStatus::Succeeded {
            return Err(fail(format!("job {} ended {:?}: {:?}", j.name, run.status, run.error)));
        }
        jobs.insert(j.name.clone(), run.report.unwrap_or(Value::Null));
    }

    let mut routes = BTreeMap::new();
    let workspaces: Vec<WorkspaceId> = records.iter().map(|r| r.workspace().clone()).collect();
    for r in m.routes.iter().filter(|r| r.method == "GET" && !r.path.contains('{')) {
        for ws in workspaces.iter().take(1) {
            let resp = host
                .handle(plugin, ws, "GET", &r.path, BTreeMap::new(), Value::Null)
                .map_err(|e| fail(format!("GET {}: {e}", r.path)))?;
            if !(200..300).contains(&resp.status) {
                return Err(fail(format!("GET {} answered {}", r.path, resp.status)));
            }
            routes.insert(format!("{ws} GET {}", r.path), resp.body);
        }
    }
    // The checkpoint is the host's, not the plugin's; make sure it exists.
    let name = PluginName::parse("plugin", plugin).map_err(|e| e.to_string())?;
    if let Some(ws) = workspaces.first() {
        let key = StateKey::new(name, ws.clone(), format!("{}checkpoint", HOST_PREFIX)).map_err(|e| e.to_string())?;
        if host.store().get_state(&key).map_err(|e| e.to_string())?.is_none() {
            return Err(fail("no checkpoint after ingest".into()));
        }
    }
    Ok(Snapshot { state, jobs, routes })
}
