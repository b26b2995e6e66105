//! Plugins loaded from shared libraries, as [`Plugin`]s.
//!
//! The C ABI and all of its `unsafe` (opening the library, calling the entry
//! points, the host callback) live in `learnloop_plugin_api::loader`, the
//! crate that owns the ABI; this module maps its safe [`PluginLibrary`] onto
//! the [`Plugin`] trait and its failures onto [`LoadError`]s naming the file.
//!
//! [`DynamicPlugin::load`] opens a library in this process only after
//! [`crate::probe`] has opened it in a child process and it survived there
//! (when the process has a probe program: the binaries do, see
//! [`crate::probe::init`]), so a library that crashes while loading is a
//! [`LoadError`] for that plugin, not the end of the process.

use std::path::Path;

use learnloop_plugin_api::loader::{LoadFailure, LoadStep, PluginLibrary};
use learnloop_plugin_api::protocol::{ContextInfo, PluginCall};
use learnloop_plugin_api::*;
use serde_json::Value;

use crate::LoadError;

/// A plugin living in a loaded library.
pub struct DynamicPlugin {
    lib: PluginLibrary,
}

impl DynamicPlugin {
    /// Loads `path`, checking the ABI version first. With a probe program
    /// set ([`crate::probe`]), the library is first opened in a child
    /// process, and a library that crashes, hangs or fails there is refused
    /// without being opened here.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        crate::probe::inspect(path)?;
        Self::load_in_process(path, &mut |_| {})
    }

    /// Loads `path` in this process, telling `step` what it is about to do
    /// (the probe's child reports each step to its parent).
    pub(crate) fn load_in_process(path: &Path, step: &mut dyn FnMut(LoadStep)) -> Result<Self, LoadError> {
        let path_buf = path.to_owned();
        let lib = PluginLibrary::open_traced(path, step).map_err(|e| match e {
            LoadFailure::Open(message) => LoadError::Open { path: path_buf, message },
            LoadFailure::MissingSymbol(symbol) => LoadError::MissingSymbol { path: path_buf, symbol },
            LoadFailure::AbiMismatch { found, expected } => LoadError::AbiMismatch { path: path_buf, found, expected },
            LoadFailure::Create(status) => {
                LoadError::Create { path: path_buf, message: format!("create returned status {status} (panicked)") }
            }
        })?;
        Ok(DynamicPlugin { lib })
    }

    /// The library file.
    pub fn path(&self) -> &Path {
        self.lib.path()
    }

    fn ctx_call(
        &self,
        ctx: &mut dyn Context,
        make: impl FnOnce(ContextInfo) -> PluginCall,
    ) -> Result<Value, PluginError> {
        let info = ContextInfo { workspace: ctx.workspace().clone(), now: ctx.now() };
        self.lib.call(&make(info), Some(ctx))
    }

    /// `configure` through the ABI (the trait's `configure` takes `&mut self`,
    /// which a shared dynamic instance does not need).
    pub fn configure_shared(&self, section: &Value) -> Result<(), PluginError> {
        self.lib.call(&PluginCall::Configure { section: section.clone() }, None).map(|_| ())
    }

    /// The manifest, or the error (including a panic) the plugin gave.
    pub fn try_manifest(&self) -> Result<Manifest, PluginError> {
        let v = self.lib.call(&PluginCall::Manifest, None)?;
        serde_json::from_value(v).map_err(|e| PluginError::internal(format!("malformed manifest: {e}")))
    }
}

impl Plugin for DynamicPlugin {
    fn manifest(&self) -> Manifest {
        // The host calls `try_manifest` at load time; by the time anyone
        // calls this, the manifest is known to load.
        self.try_manifest().expect("manifest was checked at load time")
    }

    fn configure(&mut self, section: &Value) -> Result<(), PluginError> {
        self.configure_shared(section)
    }

    fn validate(&self, record: &Record) -> Result<(), ValidationError> {
        match self.try_validate(record) {
            Ok(()) => Ok(()),
            Err(PluginError::Invalid { field, message }) => Err(ValidationError::new(field, message)),
            Err(e) => Err(ValidationError::new("", format!("plugin could not validate the record: {e}"))),
        }
    }

    fn try_validate(&self, record: &Record) -> Result<(), PluginError> {
        self.lib.call(&PluginCall::Validate { record: record.clone() }, None).map(|_| ())
    }

    fn on_events(&self, ctx: &mut dyn Context, events: &[Event]) -> Result<(), PluginError> {
        self.ctx_call(ctx, |context| PluginCall::OnEvents { context, events: events.to_vec() }).map(|_| ())
    }

    fn run_job(&self, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
        self.ctx_call(ctx, |context| PluginCall::RunJob { context, job: job.to_string() })
    }

    fn handle(&self, ctx: &mut dyn Context, request: &RouteRequest) -> Result<RouteResponse, PluginError> {
        let v = self.ctx_call(ctx, |context| PluginCall::Handle { context, request: request.clone() })?;
        serde_json::from_value(v).map_err(PluginError::from)
    }

    fn score(&self, ctx: &mut dyn Context, request: &ScoreRequest) -> Result<Score, PluginError> {
        let v = self.ctx_call(ctx, |context| PluginCall::Score { context, request: request.clone() })?;
        serde_json::from_value(v).map_err(PluginError::from)
    }
}
