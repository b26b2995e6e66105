//! The plugin side of the C ABI, used by [`export_plugin!`](crate::export_plugin).
//!
//! Everything here runs inside the plugin library. Every entry point catches
//! panics and turns them into [`STATUS_PANIC`] with the message, so no
//! unwinding ever crosses into the host.

// The plugin side of the C ABI: this crate is the one place `unsafe` is
// allowed (see the workspace lints).
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::RwLock;

use serde_json::Value;

use crate::abi::{
    ABI_VERSION, Buffer, HostApi, PluginApi, STATUS_ERROR, STATUS_OK, STATUS_PANIC, free_buffer, panic_message,
};
use crate::protocol::{ContextInfo, HostCall, PluginCall, dispatch_plugin, parse};
use crate::*;

/// A plugin instance behind the ABI. `configure` takes the write lock once
/// at start-up; every other call shares the read lock.
struct Instance<P> {
    plugin: RwLock<P>,
}

fn write_result(out: *mut Buffer, result: std::thread::Result<Result<Value, PluginError>>) -> i32 {
    let (status, bytes) = match result {
        Ok(Ok(v)) => (STATUS_OK, serde_json::to_vec(&v).unwrap_or_else(|_| b"null".to_vec())),
        Ok(Err(e)) => (STATUS_ERROR, serde_json::to_vec(&e).unwrap_or_default()),
        Err(panic) => (STATUS_PANIC, panic_message(panic.as_ref()).into_bytes()),
    };
    if !out.is_null() {
        // SAFETY: the host passes a valid, writable Buffer slot.
        unsafe { out.write(Buffer::from_vec(bytes)) };
    }
    status
}

/// Creates an instance and fills in `out`. Called by the generated
/// `learnloop_plugin_create`.
///
/// # Safety
/// `out` must point to writable memory for one [`PluginApi`].
pub unsafe fn create<P: Plugin>(out: *mut PluginApi, make: fn() -> P) -> i32 {
    match catch_unwind(make) {
        Ok(plugin) => {
            let instance = Box::new(Instance { plugin: RwLock::new(plugin) });
            let api = PluginApi {
                abi_version: ABI_VERSION,
                instance: Box::into_raw(instance).cast::<c_void>(),
                call: call::<P>,
                free: free_buffer,
                destroy: destroy::<P>,
            };
            // SAFETY: caller guarantees `out` is writable.
            unsafe { out.write(api) };
            STATUS_OK
        }
        Err(_) => STATUS_PANIC,
    }
}

unsafe extern "C" fn destroy<P: Plugin>(instance: *mut c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `instance` came from `create::<P>` and is destroyed once.
        drop(unsafe { Box::from_raw(instance.cast::<Instance<P>>()) });
    }));
}

unsafe extern "C" fn call<P: Plugin>(
    instance: *mut c_void,
    host: *const HostApi,
    req: *const u8,
    req_len: usize,
    out: *mut Buffer,
) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<Value, PluginError> {
        // SAFETY: `instance` came from `create::<P>`; `req` points to `req_len` bytes.
        let instance = unsafe { &*instance.cast::<Instance<P>>() };
        let bytes = if req.is_null() { &[][..] } else { unsafe { std::slice::from_raw_parts(req, req_len) } };
        let call: PluginCall = parse(bytes)?;
        if let PluginCall::Configure { section } = &call {
            let mut plugin = instance.plugin.write().map_err(|_| PluginError::internal("plugin lock poisoned"))?;
            return plugin.configure(section).map(|_| Value::Null);
        }
        let plugin = instance.plugin.read().map_err(|_| PluginError::internal("plugin lock poisoned"))?;
        let mut no_configure = |_: &Value| Err(PluginError::internal("configure is handled above"));
        match (call.context().cloned(), host.is_null()) {
            (Some(info), false) => {
                let mut ctx = RemoteContext { host, info };
                dispatch_plugin(&*plugin, &mut no_configure, Some(&mut ctx), call)
            }
            (Some(_), true) => Err(PluginError::internal("a context-bound call arrived without a host")),
            (None, _) => dispatch_plugin(&*plugin, &mut no_configure, None, call),
        }
    }));
    write_result(out, result)
}

/// A [`Context`] that forwards every call to the host through [`HostApi`].
struct RemoteContext {
    host: *const HostApi,
    info: ContextInfo,
}

impl RemoteContext {
    fn call<T: serde::de::DeserializeOwned>(&mut self, call: HostCall) -> Result<T, PluginError> {
        let req = serde_json::to_vec(&call)?;
        let mut out = Buffer::empty();
        // SAFETY: the host keeps `HostApi` alive for the duration of the plugin call.
        let host = unsafe { &*self.host };
        let status = unsafe { (host.call)(host.host_data, req.as_ptr(), req.len(), &mut out) };
        // Copy, then give the host's allocation back to the host.
        let bytes = unsafe { out.as_slice() }.to_vec();
        unsafe { (host.free)(out) };
        match status {
            STATUS_OK => serde_json::from_slice(&bytes).map_err(PluginError::from),
            STATUS_ERROR => Err(parse::<PluginError>(&bytes)?),
            STATUS_PANIC => Err(PluginError::internal(format!("host panicked: {}", String::from_utf8_lossy(&bytes)))),
            other => Err(PluginError::internal(format!("host returned unknown status {other}"))),
        }
    }
}

impl Context for RemoteContext {
    fn workspace(&self) -> &WorkspaceId {
        &self.info.workspace
    }
    fn now(&self) -> Timestamp {
        self.info.now
    }
    fn predictions(&mut self, query: &EventQuery) -> Result<Page<StoredPrediction>, PluginError> {
        self.call(HostCall::Predictions { query: query.clone() })
    }
    fn outcomes(&mut self, query: &EventQuery) -> Result<Page<StoredOutcome>, PluginError> {
        self.call(HostCall::Outcomes { query: query.clone() })
    }
    fn prediction_columns(&mut self, query: &EventQuery, spec: &ColumnSpec) -> Result<PredictionColumns, PluginError> {
        self.call(HostCall::PredictionColumns { query: query.clone(), spec: spec.clone() })
    }
    fn get_state(&mut self, key: &str) -> Result<Option<State>, PluginError> {
        self.call(HostCall::GetState { key: key.to_string() })
    }
    fn get_states(&mut self, keys: &[String]) -> Result<Vec<Option<State>>, PluginError> {
        self.call(HostCall::GetStates { keys: keys.to_vec() })
    }
    fn put_state(&mut self, key: &str, value: Value, expect: Expect) -> Result<u64, PluginError> {
        self.call(HostCall::PutState { key: key.to_string(), value, expect })
    }
    fn delete_state(&mut self, key: &str, expect: Expect) -> Result<(), PluginError> {
        self.call::<Value>(HostCall::DeleteState { key: key.to_string(), expect }).map(|_| ())
    }
    fn scan_state(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, State)>, PluginError> {
        self.call(HostCall::ScanState { prefix: prefix.to_string(), after: after.map(str::to_string), limit })
    }
    fn scan_state_raw(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, RawState)>, PluginError> {
        self.call(HostCall::ScanStateRaw { prefix: prefix.to_string(), after: after.map(str::to_string), limit })
    }
    fn emit_insight(&mut self, insight: InsightDraft) -> Result<(), PluginError> {
        self.call::<Value>(HostCall::EmitInsight { insight }).map(|_| ())
    }
    fn emit_alert(&mut self, alert: AlertDraft) -> Result<(), PluginError> {
        self.call::<Value>(HostCall::EmitAlert { alert }).map(|_| ())
    }

    fn emit_notification(&mut self, notification: NotificationDraft) -> Result<(), PluginError> {
        self.call::<Value>(HostCall::EmitNotification { notification }).map(|_| ())
    }
    fn propose_improvement(&mut self, improvement: ImprovementDraft) -> Result<(), PluginError> {
        self.call::<Value>(HostCall::ProposeImprovement { improvement }).map(|_| ())
    }
    fn upsert_vectors(&mut self, collection: &str, points: Vec<VectorPoint>) -> Result<(), PluginError> {
        self.call::<Value>(HostCall::UpsertVectors { collection: collection.to_string(), points }).map(|_| ())
    }
    fn search_vectors(&mut self, collection: &str, query: &VectorQuery) -> Result<Vec<VectorHit>, PluginError> {
        self.call(HostCall::SearchVectors { collection: collection.to_string(), query: query.clone() })
    }
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, PluginError> {
        self.call(HostCall::Embed { texts: texts.to_vec() })
    }
    fn llm_generate(&mut self, request: &LlmRequest) -> Result<Option<String>, PluginError> {
        self.call(HostCall::LlmGenerate { request: request.clone() })
    }
    fn log(&mut self, level: LogLevel, message: &str) {
        let _ = self.call::<Value>(HostCall::Log { level, message: message.to_string() });
    }
}

/// Makes a plugin crate loadable by the host: generates the two C entry
/// points of [`crate::abi`], wrapping the plugin type in the ABI glue.
///
/// The symbols are emitted only when the invoking crate's `dynamic` feature
/// is on (declare `dynamic = []` in its `[features]`), because several
/// plugins linked statically into one binary would otherwise define the
/// same symbol twice. Build the loadable library with
/// `cargo build --release -p <crate> --features dynamic`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty, $constructor:expr) => {
        #[cfg(feature = "dynamic")]
        // The entry points are `no_mangle` and take raw pointers; they expand
        // in the plugin crate, whose lints deny `unsafe` everywhere else.
        #[allow(unsafe_code)]
        const _: () = {
            #[unsafe(no_mangle)]
            pub extern "C" fn learnloop_plugin_abi_version() -> u32 {
                $crate::abi::ABI_VERSION
            }

            /// # Safety
            /// `out` must point to writable memory for one `PluginApi`.
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn learnloop_plugin_create(out: *mut $crate::abi::PluginApi) -> i32 {
                unsafe { $crate::guest::create::<$plugin>(out, $constructor) }
            }
        };
    };
}
