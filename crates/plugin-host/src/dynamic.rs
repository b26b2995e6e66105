//! Loading plugins from shared libraries, and calling them through the C ABI.
//!
//! This module and the guest glue in `learnloop-plugin-api` are the only
//! places with `unsafe` for the plugin boundary. Loading order is fixed: open
//! the library, read [`abi::SYMBOL_ABI_VERSION`] and refuse a mismatch before
//! touching anything else, then create the instance and check the version it
//! reports again. Every host callback catches panics, so unwinding never
//! crosses into the plugin either.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use learnloop_plugin_api::abi::{
    self, ABI_VERSION, AbiVersionFn, Buffer, CreateFn, HostApi, PluginApi, STATUS_ERROR, STATUS_OK, STATUS_PANIC,
    free_buffer, panic_message,
};
use learnloop_plugin_api::protocol::{ContextInfo, HostCall, PluginCall, dispatch_host, parse};
use learnloop_plugin_api::*;
use serde_json::Value;

use crate::LoadError;

/// A plugin living in a loaded library.
pub struct DynamicPlugin {
    api: PluginApi,
    path: PathBuf,
    // Dropped last: the instance and its functions live in the library.
    _lib: Arc<libloading::Library>,
}

// SAFETY: the plugin side is `Plugin: Send + Sync` behind a RwLock (see the
// guest glue); the raw pointers are only an instance handle and functions.
unsafe impl Send for DynamicPlugin {}
unsafe impl Sync for DynamicPlugin {}

impl Drop for DynamicPlugin {
    fn drop(&mut self) {
        // SAFETY: the instance came from this library's create function and
        // is destroyed exactly once, before the library is unloaded.
        unsafe { (self.api.destroy)(self.api.instance) };
    }
}

/// Reads the ABI version a library was built for, without creating anything.
fn abi_version(lib: &libloading::Library, path: &Path) -> Result<u32, LoadError> {
    // SAFETY: the symbol's type is fixed by the ABI.
    let f: libloading::Symbol<'_, AbiVersionFn> = unsafe { lib.get(abi::SYMBOL_ABI_VERSION.as_bytes()) }
        .map_err(|_| LoadError::MissingSymbol { path: path.to_owned(), symbol: abi::SYMBOL_ABI_VERSION })?;
    // SAFETY: a plain `extern "C" fn() -> u32`.
    Ok(unsafe { f() })
}

impl DynamicPlugin {
    /// Loads `path`, checking the ABI version first.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        // SAFETY: loading a library runs its initialisers; plugin libraries
        // are trusted code (see the ABI docs: native plugins are not sandboxed).
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| LoadError::Open { path: path.to_owned(), message: e.to_string() })?;
        let found = abi_version(&lib, path)?;
        if found != ABI_VERSION {
            return Err(LoadError::AbiMismatch { path: path.to_owned(), found, expected: ABI_VERSION });
        }
        // SAFETY: the symbol's type is fixed by the ABI.
        let create: libloading::Symbol<'_, CreateFn> = unsafe { lib.get(abi::SYMBOL_CREATE.as_bytes()) }
            .map_err(|_| LoadError::MissingSymbol { path: path.to_owned(), symbol: abi::SYMBOL_CREATE })?;
        let mut api = std::mem::MaybeUninit::<PluginApi>::uninit();
        // SAFETY: `api` is writable; the create function fills it on success.
        let status = unsafe { create(api.as_mut_ptr()) };
        if status != STATUS_OK {
            return Err(LoadError::Create {
                path: path.to_owned(),
                message: format!("create returned status {status} (panicked)"),
            });
        }
        // SAFETY: status OK means the plugin wrote a complete PluginApi.
        let api = unsafe { api.assume_init() };
        let plugin = DynamicPlugin { api, path: path.to_owned(), _lib: Arc::new(lib) };
        if plugin.api.abi_version != ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                path: path.to_owned(),
                found: plugin.api.abi_version,
                expected: ABI_VERSION,
            });
        }
        Ok(plugin)
    }

    /// The library file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn call(&self, call: &PluginCall, ctx: Option<&mut dyn Context>) -> Result<Value, PluginError> {
        let req = serde_json::to_vec(call)?;
        let mut out = Buffer::empty();
        let status = match ctx {
            Some(ctx) => {
                // The plugin gets a thin pointer to our fat `&mut dyn Context`.
                let mut ctx_ref: &mut dyn Context = ctx;
                let host = HostApi {
                    abi_version: ABI_VERSION,
                    host_data: (&mut ctx_ref as *mut &mut dyn Context).cast::<c_void>(),
                    call: host_call,
                    free: free_buffer,
                };
                // SAFETY: `host` and `ctx_ref` outlive the call; the instance is live.
                unsafe { (self.api.call)(self.api.instance, &host, req.as_ptr(), req.len(), &mut out) }
            }
            // SAFETY: as above, with no host for context-free calls.
            None => unsafe { (self.api.call)(self.api.instance, std::ptr::null(), req.as_ptr(), req.len(), &mut out) },
        };
        // Copy the plugin's bytes, then hand its allocation back to it.
        let bytes = unsafe { out.as_slice() }.to_vec();
        unsafe { (self.api.free)(out) };
        match status {
            STATUS_OK => serde_json::from_slice(&bytes).map_err(PluginError::from),
            STATUS_ERROR => Err(parse::<PluginError>(&bytes)?),
            STATUS_PANIC => Err(PluginError::internal(format!(
                "plugin {} panicked: {}",
                self.path.display(),
                String::from_utf8_lossy(&bytes)
            ))),
            other => {
                Err(PluginError::internal(format!("plugin {} returned unknown status {other}", self.path.display())))
            }
        }
    }

    fn ctx_call(
        &self,
        ctx: &mut dyn Context,
        make: impl FnOnce(ContextInfo) -> PluginCall,
    ) -> Result<Value, PluginError> {
        let info = ContextInfo { workspace: ctx.workspace().clone(), now: ctx.now() };
        self.call(&make(info), Some(ctx))
    }

    /// `configure` through the ABI (the trait's `configure` takes `&mut self`,
    /// which a shared dynamic instance does not need).
    pub fn configure_shared(&self, section: &Value) -> Result<(), PluginError> {
        self.call(&PluginCall::Configure { section: section.clone() }, None).map(|_| ())
    }
}

/// The host's side of [`HostApi::call`]: runs one context method.
unsafe extern "C" fn host_call(host_data: *mut c_void, req: *const u8, req_len: usize, out: *mut Buffer) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<Value, PluginError> {
        // SAFETY: `host_data` is the `&mut &mut dyn Context` set up in `DynamicPlugin::call`,
        // alive for the whole plugin call; `req` points to `req_len` bytes.
        let ctx = unsafe { &mut *host_data.cast::<&mut dyn Context>() };
        let bytes = if req.is_null() { &[][..] } else { unsafe { std::slice::from_raw_parts(req, req_len) } };
        let call: HostCall = parse(bytes)?;
        dispatch_host(&mut **ctx, call)
    }));
    let (status, bytes) = match result {
        Ok(Ok(v)) => (STATUS_OK, serde_json::to_vec(&v).unwrap_or_else(|_| b"null".to_vec())),
        Ok(Err(e)) => (STATUS_ERROR, serde_json::to_vec(&e).unwrap_or_default()),
        Err(p) => (STATUS_PANIC, panic_message(p.as_ref()).into_bytes()),
    };
    if !out.is_null() {
        // SAFETY: the plugin passes a writable Buffer slot.
        unsafe { out.write(Buffer::from_vec(bytes)) };
    }
    status
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
        self.call(&PluginCall::Validate { record: record.clone() }, None).map(|_| ())
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

impl DynamicPlugin {
    /// The manifest, or the error (including a panic) the plugin gave.
    pub fn try_manifest(&self) -> Result<Manifest, PluginError> {
        let v = self.call(&PluginCall::Manifest, None)?;
        serde_json::from_value(v).map_err(|e| PluginError::internal(format!("malformed manifest: {e}")))
    }
}
