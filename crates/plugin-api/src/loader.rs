//! The host's side of the C ABI: opening a plugin library and calling into it
//! (feature `loader`, which pulls in `libloading`).
//!
//! This crate owns the C ABI, so it owns all of its `unsafe`: [`abi`] (the
//! shapes), [`guest`](crate::guest) (the plugin side) and this module (the
//! host side). The host crate uses only the safe [`PluginLibrary`].
//!
//! Loading order is fixed: open the library, read
//! [`abi::SYMBOL_ABI_VERSION`] and refuse a mismatch before touching anything
//! else, then create the instance and check the version it reports again.
//! The host callback catches panics, so unwinding never crosses into the
//! plugin either.
//!
//! Opening a library runs its initialisers: native plugins are trusted code
//! and are not sandboxed (see [`abi`] for what remains fatal).
//! [`PluginLibrary::open_traced`] announces each step before it runs, so
//! the host can open an unknown library in a child process first and say
//! what it was doing if the child dies.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::abi::{
    self, ABI_VERSION, AbiVersionFn, Buffer, CreateFn, HostApi, PluginApi, STATUS_ERROR, STATUS_OK, STATUS_PANIC,
    free_buffer, panic_message,
};
use crate::protocol::{HostCall, PluginCall, dispatch_host, parse};
use crate::{Context, PluginError};

/// Why a library could not be opened as a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadFailure {
    /// The library could not be opened (the loader's message).
    Open(String),
    /// An entry symbol is missing.
    MissingSymbol(&'static str),
    /// The library (or the instance it created) speaks another ABI version.
    AbiMismatch {
        /// The plugin's version.
        found: u32,
        /// This crate's version.
        expected: u32,
    },
    /// The create function failed (it panicked) with this status.
    Create(i32),
}

/// A step of [`PluginLibrary::open_traced`], announced before it runs, so
/// that a caller watching from outside (the host's probe, which opens an
/// unknown library in a child process) can say what the library was doing
/// when it crashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStep {
    /// Opening the library, which runs its initialisers.
    Open,
    /// Calling [`abi::SYMBOL_ABI_VERSION`].
    AbiVersion,
    /// Calling [`abi::SYMBOL_CREATE`].
    Create,
}

/// A plugin instance living in a loaded library.
pub struct PluginLibrary {
    api: PluginApi,
    path: PathBuf,
    // Dropped after the instance (see `Drop`): its functions live in the library.
    _lib: libloading::Library,
}

// SAFETY: the plugin side is `Plugin: Send + Sync` behind a RwLock (see the
// guest glue); the raw pointers are only an instance handle and functions.
unsafe impl Send for PluginLibrary {}
// SAFETY: as above.
unsafe impl Sync for PluginLibrary {}

impl Drop for PluginLibrary {
    fn drop(&mut self) {
        // SAFETY: the instance came from this library's create function and
        // is destroyed exactly once, before the library is unloaded (fields
        // drop after this).
        unsafe { (self.api.destroy)(self.api.instance) };
    }
}

/// Reads the ABI version a library was built for, without creating anything.
fn abi_version(lib: &libloading::Library) -> Result<u32, LoadFailure> {
    // SAFETY: the symbol's type is fixed by the ABI.
    let f: libloading::Symbol<'_, AbiVersionFn> = unsafe { lib.get(abi::SYMBOL_ABI_VERSION.as_bytes()) }
        .map_err(|_| LoadFailure::MissingSymbol(abi::SYMBOL_ABI_VERSION))?;
    // SAFETY: a plain `extern "C" fn() -> u32`.
    Ok(unsafe { f() })
}

impl PluginLibrary {
    /// Opens `path` and creates the plugin instance, checking the ABI version
    /// first (before creating anything) and again on the created instance.
    pub fn open(path: &Path) -> Result<Self, LoadFailure> {
        Self::open_traced(path, &mut |_| {})
    }

    /// [`PluginLibrary::open`], telling `step` what it is about to do before
    /// each step.
    pub fn open_traced(path: &Path, step: &mut dyn FnMut(LoadStep)) -> Result<Self, LoadFailure> {
        step(LoadStep::Open);
        // A bare file name would make the system loader search its library
        // path instead of opening the file named (`plugin.so` in the
        // current directory).
        let file = if path.is_relative() && path.components().count() == 1 {
            Path::new(".").join(path)
        } else {
            path.to_owned()
        };
        // SAFETY: loading a library runs its initialisers; plugin libraries
        // are trusted code (see the ABI docs: native plugins are not sandboxed).
        let lib = unsafe { libloading::Library::new(&file) }.map_err(|e| {
            // libloading says only "dlopen failed"; the loader's reason is its source.
            let reason = std::error::Error::source(&e).map(ToString::to_string);
            LoadFailure::Open(reason.map_or_else(|| e.to_string(), |r| format!("{e}: {r}")))
        })?;
        step(LoadStep::AbiVersion);
        let found = abi_version(&lib)?;
        if found != ABI_VERSION {
            return Err(LoadFailure::AbiMismatch { found, expected: ABI_VERSION });
        }
        // SAFETY: the symbol's type is fixed by the ABI.
        let create: libloading::Symbol<'_, CreateFn> = unsafe { lib.get(abi::SYMBOL_CREATE.as_bytes()) }
            .map_err(|_| LoadFailure::MissingSymbol(abi::SYMBOL_CREATE))?;
        step(LoadStep::Create);
        let mut api = std::mem::MaybeUninit::<PluginApi>::uninit();
        // SAFETY: `api` is writable; the create function fills it on success.
        let status = unsafe { create(api.as_mut_ptr()) };
        if status != STATUS_OK {
            return Err(LoadFailure::Create(status));
        }
        // SAFETY: status OK means the plugin wrote a complete PluginApi.
        let api = unsafe { api.assume_init() };
        let plugin = PluginLibrary { api, path: path.to_owned(), _lib: lib };
        if plugin.api.abi_version != ABI_VERSION {
            return Err(LoadFailure::AbiMismatch { found: plugin.api.abi_version, expected: ABI_VERSION });
        }
        Ok(plugin)
    }

    /// The library file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one message to the plugin and decodes its answer; `ctx` serves
    /// the plugin's context calls (none for context-free calls). A panic in
    /// the plugin is an internal error naming the library.
    pub fn call(&self, call: &PluginCall, ctx: Option<&mut dyn Context>) -> Result<Value, PluginError> {
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
        // SAFETY: the plugin filled `out` (or left it empty) and has not freed it.
        let bytes = unsafe { out.as_slice() }.to_vec();
        // SAFETY: `out` came from the plugin and is freed once, by the plugin.
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
}

/// The host's side of [`HostApi::call`]: runs one context method.
unsafe extern "C" fn host_call(host_data: *mut c_void, req: *const u8, req_len: usize, out: *mut Buffer) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<Value, PluginError> {
        // SAFETY: `host_data` is the `&mut &mut dyn Context` set up in `PluginLibrary::call`,
        // alive for the whole plugin call; `req` points to `req_len` bytes.
        let ctx = unsafe { &mut *host_data.cast::<&mut dyn Context>() };
        // SAFETY: as above.
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
