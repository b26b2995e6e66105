//! The plugin host: which plugins run, and everything around them.
//!
//! It loads the plugins the config enables — linked-in ones from the
//! [`Registry`] its caller gives it (the binaries' comes from
//! `learnloop-plugins`, one Cargo feature per plugin; the host itself
//! depends on no plugin) or shared libraries from the plugin directory — and
//! then owns the event path: a record is validated by its plugin before it
//! is stored; once stored, the plugin's online update runs from a
//! checkpoint. [`ingest`] is that path, the one every caller (API, CLI,
//! tests) stores events through. It runs jobs and route requests with a [`HostContext`] and
//! records every job run. A shared library is opened here only after
//! [`probe`] has opened it in a child process and it survived there, so a
//! library that crashes while loading is one plugin's [`LoadError::Probe`].
//!
//! **Consistency of plugin state with the event history** (replay from a
//! checkpoint): each (plugin, workspace) has a checkpoint, the store
//! sequence number of the last event its online update has absorbed, kept as
//! a state document under [`context::HOST_PREFIX`]. [`PluginHost::catch_up`]
//! feeds the plugin the events after it, in store order, and commits the
//! plugin's state writes *together with the new checkpoint* in one
//! transaction, with compare-and-set on every document. A crash between
//! storing an event and updating state therefore only delays the update: the
//! next `catch_up` (after the next ingest, at start-up, or by hand) picks up
//! exactly where the last commit left off. Two processes catching up at once
//! cannot both win: the loser's commit fails its compare-and-set and it
//! re-reads. [`PluginHost::replay`] clears a plugin's state and checkpoint
//! atomically and catches up from the beginning.

#![deny(missing_docs)]

#[cfg(feature = "check-answers")]
mod answers;
pub mod context;
mod dynamic;
pub mod ingest;
pub mod lifecycle;
pub mod probe;
mod registry;
mod routes;
pub mod services;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use learnloop_config::{Config, ConfigError, ConfigErrors, Sources};
use learnloop_core::{JobRun, JobStatus, PluginName, Record, Timestamp, ValidationError, WorkspaceId};
use learnloop_plugin_api::{Manifest, Plugin, PluginError, RouteRequest, RouteResponse};
use learnloop_store::{Changes, Expect, Fence, NewJobRun, StateChange, StateKey, Store, StoreError};
use serde::Serialize;
use serde_json::{Value, json};

pub use context::HostContext;
pub use dynamic::DynamicPlugin;
pub use ingest::{CatchUp, Committed, IngestStatus, Learned, Touched};
pub use lifecycle::LifecycleReport;
pub use registry::{Constructor, Registry};
pub use routes::match_route;
pub use services::{Embedder, Llm, Scope, Services, VectorIndex};

/// Why a plugin could not be loaded. Every variant names the file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The library could not be opened.
    #[error("{path}: cannot load the library: {message}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// Built for another ABI version.
    #[error(
        "{path}: built for plugin ABI version {found}, but this learnloop speaks version {expected}; rebuild the plugin against learnloop-plugin-api {expected}"
    )]
    AbiMismatch {
        /// The file.
        path: PathBuf,
        /// The plugin's version.
        found: u32,
        /// The host's version.
        expected: u32,
    },
    /// An entry symbol is missing: not a learnloop plugin, or built without its `dynamic` feature.
    #[error("{path}: missing symbol `{symbol}`; is it a learnloop plugin built with its `dynamic` feature?")]
    MissingSymbol {
        /// The file.
        path: PathBuf,
        /// The symbol.
        symbol: &'static str,
    },
    /// The plugin refused its config section (or panicked reading it).
    #[error("{path}: section [{plugin}]{}: {message}", if key.is_empty() { String::new() } else { format!(", key `{key}`") })]
    Config {
        /// The file (or `static:<name>`).
        path: PathBuf,
        /// The plugin, which is also the section's name.
        plugin: String,
        /// The key within the section (empty when the plugin named none).
        key: String,
        /// What was wrong.
        message: String,
    },
    /// The create function or the manifest failed (or panicked).
    #[error("{path}: {message}")]
    Create {
        /// The file (or `static:<name>`).
        path: PathBuf,
        /// What happened.
        message: String,
    },
    /// Opening the library in a child process to check it ([`probe`])
    /// failed: it crashed, aborted, hung or exited there (or the child
    /// could not be started). Nothing of it was loaded into this process.
    #[error("{path}: {message}")]
    Probe {
        /// The file.
        path: PathBuf,
        /// What happened: how the child ended, the step it was on, the
        /// tail of its stderr.
        message: String,
    },
    /// The plugin's name is not the one it was loaded for.
    #[error("{path}: the plugin calls itself {found:?}, expected {expected:?}")]
    WrongName {
        /// The file.
        path: PathBuf,
        /// Manifest name.
        found: String,
        /// Expected name.
        expected: String,
    },
    /// No static plugin and no library for an enabled plugin.
    #[error("plugin {name:?} is enabled but not built in and not found in {dir} (looked for {candidates}){}", left_out.map(|r| format!("; this binary was built without it: {r}, or remove it from [plugins] enabled")).unwrap_or_default())]
    NotFound {
        /// The plugin name.
        name: String,
        /// The plugin directory.
        dir: PathBuf,
        /// File names tried.
        candidates: String,
        /// How to get it, when it is a known plugin left out of this build
        /// (see [`Registry::without`]).
        left_out: Option<&'static str>,
    },
}

/// Where a loaded plugin came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// Linked into this binary.
    Static,
    /// Loaded from a shared library.
    Dynamic {
        /// The library.
        path: PathBuf,
    },
}

/// A loaded, configured plugin.
#[derive(Clone)]
pub struct Loaded {
    /// The plugin.
    pub plugin: Arc<dyn Plugin>,
    /// Its manifest (read once at load).
    pub manifest: Manifest,
    /// Where it came from.
    pub origin: Origin,
}

/// Why the host refused a record or a call.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The record or request is invalid (4xx).
    #[error("{0}")]
    Invalid(ValidationError),
    /// A dynamically loaded plugin failed at run time (it panicked or
    /// answered garbage): the request was not at fault, the plugin is
    /// unavailable (503).
    #[error("plugin {plugin} is unavailable: {reason}")]
    Unavailable {
        /// Which plugin.
        plugin: String,
        /// What went wrong, with the library's path.
        reason: String,
    },
    /// The plugin failed.
    #[error("plugin {plugin}: {error}")]
    Plugin {
        /// Which plugin.
        plugin: String,
        /// What it said.
        error: PluginError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request names something the route does not take (an unknown
    /// query parameter): a 400 naming it.
    #[error("{field}: {message}")]
    BadRequest {
        /// The parameter at fault.
        field: String,
        /// What was wrong.
        message: String,
    },
    /// Ingest has stopped ([`PluginHost::shutdown_ingest`]): the host is
    /// shutting down, nothing was stored.
    #[error("ingest has stopped: the server is shutting down")]
    Stopped,
}

/// The host.
pub struct PluginHost {
    store: Arc<dyn Store>,
    /// The linked-in plugins it was loaded from (also for messages about
    /// plugins that are not running).
    registry: Registry,
    services: Services,
    policy: learnloop_config::ImprovementsConfig,
    plugins: BTreeMap<String, Loaded>,
    enabled: Vec<String>,
    /// Plugins that are enabled but failed to load, with the reason. The
    /// binaries refuse to start when there is any (see
    /// [`PluginHost::config_errors`]); `learnloop plugins list` shows them.
    pub load_errors: Vec<LoadError>,
    /// The plugin each of `load_errors` is about.
    failed: Vec<String>,
    /// The ingest engine's threads, started on first use (see [`ingest`]).
    ingest: OnceLock<ingest::Engine>,
}

/// Events handed to `on_events` at once.
const CATCH_UP_BATCH: usize = 10_000;

/// How far a catch-up (a plugin's online update) has got, reported after
/// each committed batch by [`PluginHost::catch_up_with`].
#[derive(Debug, Clone, Copy)]
pub struct CatchUpProgress<'a> {
    /// The plugin learning.
    pub plugin: &'a str,
    /// The workspace whose events it absorbs.
    pub workspace: &'a WorkspaceId,
    /// Events absorbed so far by this catch-up.
    pub absorbed: u64,
}

/// One run of a job to make: which job, who runs it, its schedule slot and
/// attempt (both recorded, the pair unique per slot), and the lease its
/// results commit under, if any.
#[derive(Debug, Clone, Copy)]
pub struct JobRequest<'a> {
    /// Plugin name.
    pub plugin: &'a str,
    /// Job name.
    pub job: &'a str,
    /// Who runs it (recorded).
    pub runner: &'a str,
    /// Schedule slot (µs), for scheduled runs.
    pub slot: Option<i64>,
    /// Attempt of the slot, from 1.
    pub attempt: u32,
    /// Commit only while this lease is at this token (see `Changes::fence`).
    pub fence: Option<&'a Fence>,
}

impl PluginHost {
    /// Loads and configures every enabled plugin, from a library in the
    /// plugin directory or else from `registry` (the plugins linked into the
    /// calling binary). A plugin that fails to load is reported in
    /// [`PluginHost::load_errors`]; the rest work.
    pub fn load(registry: &Registry, config: &Config, store: Arc<dyn Store>) -> PluginHost {
        let mut plugins = BTreeMap::new();
        let mut load_errors = Vec::new();
        let mut failed = Vec::new();
        let dir = config.plugin_dir();
        for name in &config.plugins.enabled {
            let section = plugin_section(config, name);
            match load_one(registry, name, &dir, &section) {
                Ok(loaded) => {
                    plugins.insert(name.clone(), loaded);
                }
                Err(e) => {
                    load_errors.push(e);
                    failed.push(name.clone());
                }
            }
        }
        PluginHost {
            store,
            registry: registry.clone(),
            services: Services::default(),
            policy: config.improvements.clone(),
            plugins,
            enabled: config.plugins.enabled.clone(),
            load_errors,
            failed,
            ingest: OnceLock::new(),
        }
    }

    /// A host over explicitly given plugins (tests, embedding).
    pub fn with_plugins(store: Arc<dyn Store>, plugins: Vec<Loaded>) -> PluginHost {
        let enabled = plugins.iter().map(|l| l.manifest.name.clone()).collect();
        let plugins = plugins.into_iter().map(|l| (l.manifest.name.clone(), l)).collect();
        PluginHost {
            store,
            registry: Registry::new(),
            services: Services::default(),
            policy: Default::default(),
            plugins,
            enabled,
            load_errors: Vec::new(),
            failed: Vec::new(),
            ingest: OnceLock::new(),
        }
    }

    /// Every enabled plugin that failed to load, as a config error naming the
    /// file (or environment variable), the section and key, and the reason.
    /// The three binaries refuse to start when this is not empty: a plugin
    /// the config enables but that does not run would otherwise turn into
    /// 503s, 422s and jobs that silently never run.
    pub fn config_errors(&self, sources: &Sources) -> Vec<ConfigError> {
        self.failed.iter().zip(&self.load_errors).map(|(name, e)| e.config_error(name, sources)).collect()
    }

    /// [`PluginHost::config_errors`] as one error, for a binary to refuse
    /// to start with.
    pub fn require_all_loaded(&self, sources: &Sources) -> Result<(), ConfigErrors> {
        let errors = self.config_errors(sources);
        if errors.is_empty() { Ok(()) } else { Err(ConfigErrors(errors)) }
    }

    /// Lends plugins a vector index, an embedder and/or an LLM.
    pub fn with_services(mut self, services: Services) -> PluginHost {
        self.services = services;
        // The learner thread shares the services: start it again with these.
        self.ingest = OnceLock::new();
        self
    }

    /// Sets the improvement lifecycle's policy (`[improvements]`).
    pub fn with_improvement_policy(mut self, policy: learnloop_config::ImprovementsConfig) -> PluginHost {
        self.policy = policy;
        self
    }

    /// The improvement lifecycle's policy.
    pub fn improvement_policy(&self) -> &learnloop_config::ImprovementsConfig {
        &self.policy
    }

    /// The services lent to plugins.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The linked-in plugins this host was loaded with.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Loaded plugins by name.
    pub fn plugins(&self) -> &BTreeMap<String, Loaded> {
        &self.plugins
    }

    /// One loaded plugin, or why it is not available.
    pub fn plugin(&self, name: &str) -> Result<&Loaded, ValidationError> {
        if let Some(l) = self.plugins.get(name) {
            return Ok(l);
        }
        let enabled = self.plugins.keys().cloned().collect::<Vec<_>>().join(", ");
        let message = if self.enabled.iter().any(|e| e == name) {
            format!("plugin {name:?} is enabled but failed to load (see `learnloop plugins list`)")
        } else if let Some(remedy) = self.registry.left_out(name) {
            format!("plugin {name:?} is not built into this binary ({remedy}) (enabled: {enabled})")
        } else if learnloop_config::BUILTIN_PLUGINS.contains(&name) || self.registry.contains(name) {
            format!("plugin {name:?} is disabled in the config (enabled: {enabled})")
        } else {
            format!("unknown plugin {name:?} (enabled: {enabled})")
        };
        Err(ValidationError::new("plugin", message))
    }

    /// Checks a record with its plugin, before anything is stored.
    pub fn validate(&self, record: &Record) -> Result<(), ValidationError> {
        let loaded = self.plugin(record.plugin().as_str())?;
        loaded.plugin.validate(record)
    }

    /// [`PluginHost::validate`] that tells a bad record
    /// ([`HostError::Invalid`]) from a plugin that could not look at it
    /// ([`HostError::Unavailable`]: a loaded library that failed).
    pub fn validate_record(&self, record: &Record) -> Result<(), HostError> {
        let name = record.plugin().as_str();
        let loaded = self.plugin(name).map_err(HostError::Invalid)?;
        loaded.plugin.try_validate(record).map_err(|e| match e {
            PluginError::Invalid { field, message } => HostError::Invalid(ValidationError::new(field, message)),
            error => plugin_failure(loaded, name, error),
        })
    }

    fn checkpoint_key(plugin: &PluginName, workspace: &WorkspaceId) -> StateKey {
        StateKey::new(plugin.clone(), workspace.clone(), format!("{}checkpoint", context::HOST_PREFIX))
            .expect("valid key")
    }

    /// Feeds a plugin the events of a workspace it has not seen yet, in
    /// store order, committing state and checkpoint together. Returns how
    /// many events were absorbed.
    pub fn catch_up(&self, plugin: &str, workspace: &WorkspaceId) -> Result<u64, HostError> {
        self.catch_up_with(plugin, workspace, &mut |_| {})
    }

    /// [`PluginHost::catch_up`], telling `progress` how many events have
    /// been absorbed after each committed batch (at most 10,000 events
    /// apart), so a caller can show how far a long catch-up has got.
    pub fn catch_up_with(
        &self,
        plugin: &str,
        workspace: &WorkspaceId,
        progress: &mut dyn FnMut(CatchUpProgress<'_>),
    ) -> Result<u64, HostError> {
        let loaded = self.plugin(plugin).map_err(HostError::Invalid)?;
        catch_up_loaded(self.store.as_ref(), &self.services, loaded, plugin, workspace, progress)
    }

    /// Catches up every loaded plugin in every workspace it has events in.
    pub fn catch_up_all(&self) -> Result<u64, HostError> {
        let mut n = 0;
        for name in self.plugins.keys() {
            let plugin = PluginName::parse("plugin", name).map_err(HostError::Invalid)?;
            for ws in self.store.workspaces(&plugin)? {
                n += self.catch_up(name, &ws)?;
            }
        }
        Ok(n)
    }

    /// Rebuilds a plugin's state from the event history: clears its state
    /// documents and checkpoint in one transaction, then catches up from the
    /// first event. `workspace = None` replays every workspace.
    pub fn replay(&self, plugin: &str, workspace: Option<&WorkspaceId>) -> Result<BTreeMap<String, u64>, HostError> {
        self.replay_with(plugin, workspace, &mut |_| {})
    }

    /// [`PluginHost::replay`], reporting each workspace's catch-up to
    /// `progress` as [`PluginHost::catch_up_with`] does.
    pub fn replay_with(
        &self,
        plugin: &str,
        workspace: Option<&WorkspaceId>,
        progress: &mut dyn FnMut(CatchUpProgress<'_>),
    ) -> Result<BTreeMap<String, u64>, HostError> {
        self.plugin(plugin).map_err(HostError::Invalid)?;
        let name = PluginName::parse("plugin", plugin).map_err(HostError::Invalid)?;
        let workspaces = match workspace {
            Some(w) => vec![w.clone()],
            None => self.store.workspaces(&name)?,
        };
        let mut out = BTreeMap::new();
        for ws in workspaces {
            let mut changes = learnloop_store::Changes::default();
            let mut after: Option<String> = None;
            loop {
                let page = self.store.scan_state(&name, &ws, "", after.as_deref(), 1000)?;
                let Some((last, _)) = page.last() else { break };
                after = Some(last.clone());
                for (k, doc) in page {
                    changes.state.push(StateChange {
                        key: StateKey::new(name.clone(), ws.clone(), k)?,
                        value: None,
                        expect: Expect::Version(doc.version),
                    });
                }
            }
            self.store.commit(&changes, Timestamp::now())?;
            out.insert(ws.to_string(), self.catch_up_with(plugin, &ws, progress)?);
        }
        Ok(out)
    }

    /// Runs a job of a plugin in every workspace the plugin has events in,
    /// recording the run. Each workspace's results commit atomically; a
    /// workspace whose job fails commits nothing and fails the run.
    pub fn run_job(
        &self,
        plugin: &str,
        job: &str,
        runner: &str,
        slot: Option<i64>,
        attempt: u32,
    ) -> Result<JobRun, HostError> {
        self.run_job_request(JobRequest { plugin, job, runner, slot, attempt, fence: None })
    }

    /// [`PluginHost::run_job`] as a [`JobRequest`]; with a `fence` (the
    /// scheduler's lease), each workspace's results commit only while the
    /// lease is still at its token. Once another process has taken the lease
    /// over, nothing more is committed and the run fails, saying so.
    pub fn run_job_request(&self, r: JobRequest<'_>) -> Result<JobRun, HostError> {
        let JobRequest { plugin, job, runner, slot, attempt, fence } = r;
        let loaded = self.plugin(plugin).map_err(HostError::Invalid)?;
        if !loaded.manifest.jobs.iter().any(|j| j.name == job) {
            let jobs: Vec<&str> = loaded.manifest.jobs.iter().map(|j| j.name.as_str()).collect();
            return Err(HostError::Invalid(ValidationError::new(
                "job",
                format!("plugin {plugin:?} has no job {job:?} (jobs: {})", jobs.join(", ")),
            )));
        }
        let name = PluginName::parse("plugin", plugin).map_err(HostError::Invalid)?;
        // Everything the run logs (the plugin's own lines included) carries
        // plugin, job, slot and attempt; a scheduler's `job` span around it
        // adds nothing new but nests.
        let span = tracing::info_span!("run", plugin, job, slot, attempt, runner);
        let _entered = span.enter();
        let started = std::time::Instant::now();
        let run = self.store.start_job_run(&NewJobRun {
            plugin: name.clone(),
            job: job.to_string(),
            slot,
            attempt,
            runner: runner.to_string(),
            now: Timestamp::now(),
        })?;
        tracing::info!(run = run.id, "job {plugin}.{job} started");
        let mut reports = serde_json::Map::new();
        let mut lifecycle = serde_json::Map::new();
        let mut errors = Vec::new();
        for ws in self.store.workspaces(&name)? {
            // Learning sees everything stored so far.
            if let Err(e) = self.catch_up(plugin, &ws) {
                errors.push(format!("{ws}: catch-up: {e}"));
                continue;
            }
            let mut ctx =
                HostContext::new(self.store.as_ref(), &self.services, name.clone(), ws.clone(), Timestamp::now());
            match loaded.plugin.run_job(&mut ctx, job) {
                Ok(report) => match self
                    .store
                    .commit(&Changes { fence: fence.cloned(), ..ctx.into_changes() }, Timestamp::now())
                {
                    Ok(_) => {
                        reports.insert(ws.to_string(), report);
                        // What the job proposed is backtested now; applied versions are monitored.
                        match self.process_improvements(plugin, &ws, Timestamp::now()) {
                            Ok(r) if r.is_empty() => {}
                            Ok(r) => {
                                lifecycle
                                    .insert(ws.to_string(), serde_json::to_value(r).expect("JSON values serialise"));
                            }
                            Err(e) => errors.push(format!("{ws}: improvement lifecycle: {e}")),
                        }
                    }
                    Err(e @ StoreError::Fenced { .. }) => {
                        // The lease is someone else's now: stop here.
                        errors.push(format!("{ws}: {e}"));
                        break;
                    }
                    Err(e) => errors.push(format!("{ws}: {e}")),
                },
                Err(e) => errors.push(format!("{ws}: {e}")),
            }
        }
        let mut report = json!({ "workspaces": reports });
        if !lifecycle.is_empty() {
            report["improvements"] = Value::Object(lifecycle);
        }
        let (status, error) =
            if errors.is_empty() { (JobStatus::Succeeded, None) } else { (JobStatus::Failed, Some(errors.join("; "))) };
        let finished = self.store.finish_job_run(run.id, status, Some(&report), error.as_deref(), Timestamp::now())?;
        let duration_ms = started.elapsed().as_millis() as u64;
        match &error {
            None => tracing::info!(
                run = finished.id,
                outcome = status.as_str(),
                duration_ms,
                "job {plugin}.{job} succeeded"
            ),
            Some(e) => tracing::warn!(
                run = finished.id,
                outcome = status.as_str(),
                duration_ms,
                "job {plugin}.{job} failed: {e}"
            ),
        }
        Ok(finished)
    }

    /// Answers a request to a plugin route (`path` relative to
    /// `/api/v1/<plugin>`), committing whatever the plugin wrote.
    pub fn handle(
        &self,
        plugin: &str,
        workspace: &WorkspaceId,
        method: &str,
        path: &str,
        query: BTreeMap<String, String>,
        body: Value,
    ) -> Result<RouteResponse, HostError> {
        let loaded = self.plugin(plugin).map_err(HostError::Invalid)?;
        let Some((route, params)) = match_route(&loaded.manifest.routes, method, path) else {
            return Err(HostError::Plugin {
                plugin: plugin.to_string(),
                error: PluginError::not_found(format!("no route {method} {path} in plugin {plugin:?}")),
            });
        };
        // The query is checked against the route's declared parameters
        // before anything is read: an unknown parameter is never ignored.
        route.check_query(&query).map_err(|e| {
            if e.unknown {
                HostError::BadRequest { field: e.parameter, message: e.message }
            } else {
                HostError::Invalid(ValidationError::new(e.parameter, e.message))
            }
        })?;
        let name = PluginName::parse("plugin", plugin).map_err(HostError::Invalid)?;
        tracing::debug!(plugin, workspace = %workspace, route = %route.path, "{method} {}: catching up, then answering", route.path);
        // Answers reflect everything stored so far.
        self.catch_up(plugin, workspace)?;
        let mut ctx = HostContext::new(self.store.as_ref(), &self.services, name, workspace.clone(), Timestamp::now());
        let request = RouteRequest { method: method.to_string(), route: route.path.clone(), params, query, body };
        let response =
            loaded.plugin.handle(&mut ctx, &request).map_err(|error| plugin_failure(loaded, plugin, error))?;
        #[cfg(feature = "check-answers")]
        answers::check(&loaded.manifest, route, &response);
        if !ctx.is_empty() {
            self.store.commit(&ctx.into_changes(), Timestamp::now())?;
        }
        Ok(response)
    }
}

/// A (plugin, workspace) checkpoint document: the store sequence number of
/// the last event its online update absorbed.
#[derive(serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    seq: i64,
}

/// [`PluginHost::catch_up_with`] for a plugin already looked up: the
/// checkpointed online update itself, shared with the ingest engine's
/// learner thread (which holds the host's parts, not the host).
fn catch_up_loaded(
    store: &dyn Store,
    services: &Services,
    loaded: &Loaded,
    plugin: &str,
    workspace: &WorkspaceId,
    progress: &mut dyn FnMut(CatchUpProgress<'_>),
) -> Result<u64, HostError> {
    let name = PluginName::parse("plugin", plugin).map_err(HostError::Invalid)?;
    let key = PluginHost::checkpoint_key(&name, workspace);
    let mut absorbed = 0u64;
    let mut conflicts = 0;
    loop {
        let doc = store.get_state(&key)?;
        let (after, version) = match &doc {
            Some(d) => (serde_json::from_slice::<Checkpoint>(&d.value).map_or(0, |c| c.seq), Some(d.version)),
            None => (0, None),
        };
        let events = store.events(workspace, &name, after, CATCH_UP_BATCH)?;
        let Some(last) = events.last().map(|e| e.seq()) else { return Ok(absorbed) };
        let mut ctx = HostContext::new(store, services, name.clone(), workspace.clone(), Timestamp::now());
        match loaded.plugin.on_events(&mut ctx, &events) {
            Ok(()) => {}
            // Another process (or this one's other thread) committed the same
            // state between the plugin's read and its write: the batch is
            // re-run from the new checkpoint, as for a conflict on commit.
            Err(PluginError::Conflict { .. }) if conflicts < 100 => {
                conflicts += 1;
                continue;
            }
            Err(error) => return Err(plugin_failure(loaded, plugin, error)),
        }
        let mut changes = ctx.into_changes();
        changes.state.push(StateChange {
            key: key.clone(),
            value: Some(serde_json::to_vec(&Checkpoint { seq: last }).expect("serialises")),
            expect: version.map_or(Expect::Absent, Expect::Version),
        });
        match store.commit(&changes, Timestamp::now()) {
            Ok(_) => {
                absorbed += events.len() as u64;
                progress(CatchUpProgress { plugin, workspace, absorbed });
            }
            Err(StoreError::VersionConflict { .. }) if conflicts < 100 => {
                // Another process advanced the checkpoint or touched the
                // same state: re-read and go on from where it left off.
                conflicts += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The error for a plugin call that failed: an internal failure of a
/// loaded library (a panic, an answer that does not parse) makes the plugin
/// unavailable; everything else is the plugin's answer.
fn plugin_failure(loaded: &Loaded, plugin: &str, error: PluginError) -> HostError {
    match (&loaded.origin, error) {
        (Origin::Dynamic { .. }, PluginError::Internal { message }) => {
            HostError::Unavailable { plugin: plugin.to_string(), reason: message }
        }
        (_, error) => HostError::Plugin { plugin: plugin.to_string(), error },
    }
}

impl LoadError {
    /// This error as a config error about plugin `plugin`: a refused section
    /// names its key (`drift.pvalue`), anything else `plugins.enabled`.
    pub fn config_error(&self, plugin: &str, sources: &Sources) -> ConfigError {
        match self {
            LoadError::Config { path, key, message, .. } => {
                let key = if key.is_empty() { plugin.to_string() } else { format!("{plugin}.{key}") };
                ConfigError::Invalid {
                    origin: sources.origin_of(&key),
                    key,
                    message: format!("section [{plugin}] refused by the plugin ({}): {message}", path.display()),
                }
            }
            other => ConfigError::Invalid {
                origin: sources.origin_of("plugins.enabled"),
                key: "plugins.enabled".into(),
                message: format!("plugin {plugin:?} is enabled but cannot be loaded: {other}"),
            },
        }
    }
}

/// What [`check_plugins`] found: the manifests of the plugins that load,
/// and every error of those that do not, with the plugin each is about.
#[derive(Default)]
pub struct PluginCheck {
    /// Manifests of the enabled plugins that loaded, by name.
    pub manifests: BTreeMap<String, Manifest>,
    /// Errors, with the plugin each is about.
    pub errors: Vec<(String, LoadError)>,
}

/// Loads and configures every enabled plugin (from `registry` or the plugin
/// directory, as [`PluginHost::load`] does) without a store, as
/// `learnloop config check` and the CLI's start-up check do; a refused
/// section is probed key by key so that every bad key is reported, not only
/// the first.
pub fn check_plugins(registry: &Registry, config: &Config) -> PluginCheck {
    let dir = config.plugin_dir();
    let mut out = PluginCheck::default();
    for name in &config.plugins.enabled {
        let section = plugin_section(config, name);
        match load_one(registry, name, &dir, &section) {
            Ok(loaded) => {
                out.manifests.insert(name.clone(), loaded.manifest);
            }
            Err(LoadError::Config { path, plugin, key, message }) => {
                let mut found: Vec<(String, String)> = Vec::new();
                if let Value::Object(keys) = &section {
                    for (k, v) in keys {
                        let single = json!({ k.as_str(): v });
                        if let Err(LoadError::Config { key, message, .. }) = load_one(registry, name, &dir, &single) {
                            let key = if key.is_empty() { k.clone() } else { key };
                            if !found.iter().any(|(f, _)| *f == key) {
                                found.push((key, message));
                            }
                        }
                    }
                }
                if found.is_empty() {
                    found.push((key, message));
                }
                for (key, message) in found {
                    let e = LoadError::Config { path: path.clone(), plugin: plugin.clone(), key, message };
                    out.errors.push((name.clone(), e));
                }
            }
            Err(e) => out.errors.push((name.clone(), e)),
        }
    }
    out
}

/// Refuses a configuration whose enabled plugins do not all load and
/// accept their sections, before anything is opened: what the three
/// binaries check first, so a config error never leaves a half-started
/// process (or a freshly created data directory) behind.
pub fn require_plugins(registry: &Registry, config: &Config, sources: &Sources) -> Result<PluginCheck, ConfigErrors> {
    let check = check_plugins(registry, config);
    if check.errors.is_empty() {
        return Ok(check);
    }
    Err(ConfigErrors(check.errors.iter().map(|(name, e)| e.config_error(name, sources)).collect()))
}

/// A refused config section as a [`LoadError::Config`], with the key taken
/// out of the plugin's error (`[drift] pvalue` → `pvalue`).
fn config_refused(path: &Path, plugin: &str, error: PluginError) -> LoadError {
    let (key, message) = match error {
        PluginError::Invalid { field, message } => {
            let key = field.strip_prefix(&format!("[{plugin}]")).unwrap_or(&field).trim().trim_start_matches('.');
            (key.to_string(), message)
        }
        other => (String::new(), other.to_string()),
    };
    LoadError::Config { path: path.to_owned(), plugin: plugin.to_string(), key, message }
}

/// A plugin's config section as JSON (null when absent).
pub fn plugin_section(config: &Config, name: &str) -> Value {
    config.plugin_sections.get(name).map(|t| serde_json::to_value(t).unwrap_or(Value::Null)).unwrap_or(Value::Null)
}

/// File names a dynamic plugin called `name` may have in the plugin directory.
pub fn library_candidates(name: &str) -> Vec<String> {
    let ext = std::env::consts::DLL_EXTENSION;
    vec![format!("liblearnloop_plugin_{name}.{ext}"), format!("lib{name}.{ext}"), format!("{name}.{ext}")]
}

/// Loads one plugin: a library in `dir` wins over a linked-in plugin of
/// `registry` of the same name (so a team can upgrade one plugin without
/// rebuilding learnloop).
fn load_one(registry: &Registry, name: &str, dir: &Path, section: &Value) -> Result<Loaded, LoadError> {
    let candidates = library_candidates(name);
    if let Some(path) = candidates.iter().map(|c| dir.join(c)).find(|p| p.is_file()) {
        let loaded = load_library_as(&path, section, Some(name))?;
        if loaded.manifest.name != name {
            return Err(LoadError::WrongName { path, found: loaded.manifest.name, expected: name.to_string() });
        }
        return Ok(loaded);
    }
    match registry.create(name) {
        Some(mut plugin) => {
            let path = PathBuf::from(format!("static:{name}"));
            plugin.configure(section).map_err(|e| config_refused(&path, name, e))?;
            let manifest = plugin.manifest();
            Ok(Loaded { plugin: Arc::from(plugin), manifest, origin: Origin::Static })
        }
        None => Err(LoadError::NotFound {
            name: name.to_string(),
            dir: dir.to_owned(),
            candidates: candidates.join(", "),
            left_out: registry.left_out(name),
        }),
    }
}

/// Loads and configures a plugin library (also what `learnloop plugins check` does).
pub fn load_library(path: &Path, section: &Value) -> Result<Loaded, LoadError> {
    load_library_as(path, section, None)
}

/// [`load_library`], naming the section `plugin` in a refused-config error
/// (the manifest's name when `None`).
fn load_library_as(path: &Path, section: &Value, name: Option<&str>) -> Result<Loaded, LoadError> {
    let plugin = DynamicPlugin::load(path)?;
    let manifest = plugin
        .try_manifest()
        .map_err(|e| LoadError::Create { path: path.to_owned(), message: format!("manifest: {e}") })?;
    if manifest.abi_version != learnloop_plugin_api::abi::ABI_VERSION {
        return Err(LoadError::AbiMismatch {
            path: path.to_owned(),
            found: manifest.abi_version,
            expected: learnloop_plugin_api::abi::ABI_VERSION,
        });
    }
    plugin.configure_shared(section).map_err(|e| config_refused(path, name.unwrap_or(&manifest.name), e))?;
    Ok(Loaded { plugin: Arc::new(plugin), manifest, origin: Origin::Dynamic { path: path.to_owned() } })
}
