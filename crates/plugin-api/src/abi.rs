//! The versioned C ABI between the host and a dynamically loaded plugin (v1).
//!
//! Rust has no stable ABI, so the boundary is deliberately tiny:
//!
//! * The library exports two symbols: [`SYMBOL_ABI_VERSION`] (`extern "C" fn()
//!   -> u32`) and [`SYMBOL_CREATE`] (`extern "C" fn(*mut PluginApi) -> i32`).
//!   The host calls the version function first and refuses a mismatch with
//!   both versions in the message, before touching anything else.
//! * Everything else crosses as JSON bytes through one generic `call`
//!   function in each direction ([`PluginApi::call`], [`HostApi::call`]); the
//!   messages are [`crate::protocol::PluginCall`] and
//!   [`crate::protocol::HostCall`].
//! * Memory is freed by the side that allocated it: a [`Buffer`] returned by
//!   the plugin is released with [`PluginApi::free`], one returned by the host
//!   with [`HostApi::free`].
//! * No panic crosses: both sides wrap every entry point in `catch_unwind`
//!   and return [`STATUS_PANIC`] with the message instead.
//!
//! Versioning rule: [`ABI_VERSION`] changes when these structs or the meaning
//! of a status change. New calls are additive and do not change it: a side
//! that does not know a call answers [`STATUS_ERROR`] with an `unavailable`
//! error, which the other side treats as "capability absent".
//!
//! What remains fatal: a plugin that corrupts memory, aborts, overflows its
//! stack or loops forever takes the host process with it. The learnloop
//! binaries open a library in a child process first (the host's `probe`
//! module), so one that does so *while loading* (initialisers, the version
//! symbol, `create`, the manifest) is refused instead; in any later call it
//! is still fatal. Native code is trusted code; load only plugins you would
//! link.
//!
//! This module does no I/O and defines no behaviour, only shapes.

// Owning the C ABI means raw pointers and `extern "C"` fn types; this crate
// is the one place `unsafe` is allowed (see the workspace lints).
#![allow(unsafe_code)]

use std::ffi::c_void;

/// The ABI version this crate speaks.
pub const ABI_VERSION: u32 = 1;

/// Name of the exported `extern "C" fn() -> u32` giving the plugin's ABI version.
pub const SYMBOL_ABI_VERSION: &str = "learnloop_plugin_abi_version";

/// Name of the exported `extern "C" fn(*mut PluginApi) -> i32` creating an instance.
pub const SYMBOL_CREATE: &str = "learnloop_plugin_create";

/// The call succeeded; the buffer holds the JSON result.
pub const STATUS_OK: i32 = 0;
/// The call failed; the buffer holds a JSON [`crate::PluginError`].
pub const STATUS_ERROR: i32 = 1;
/// The callee panicked; the buffer holds the panic message (UTF-8).
pub const STATUS_PANIC: i32 = 2;

/// Bytes handed across the boundary: the parts of a `Vec<u8>` allocated by
/// the side that returns it, to be released only by that side's `free`.
#[repr(C)]
#[derive(Debug)]
pub struct Buffer {
    /// Start of the bytes (dangling when `cap` is 0).
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
    /// Allocated capacity.
    pub cap: usize,
}

impl Buffer {
    /// An empty buffer (nothing to free).
    pub const fn empty() -> Self {
        Buffer { ptr: std::ptr::null_mut(), len: 0, cap: 0 }
    }

    /// Hands a vector over; the receiver must return it to this side's `free`.
    pub fn from_vec(v: Vec<u8>) -> Self {
        let mut v = std::mem::ManuallyDrop::new(v);
        Buffer { ptr: v.as_mut_ptr(), len: v.len(), cap: v.capacity() }
    }

    /// Takes back a vector this side allocated.
    ///
    /// # Safety
    /// `self` must come from [`Buffer::from_vec`] in this same binary and not
    /// have been freed.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        if self.ptr.is_null() {
            return Vec::new();
        }
        unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
    }

    /// Views the bytes.
    ///
    /// # Safety
    /// The buffer must be live (not yet freed) for the returned lifetime.
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        if self.ptr.is_null() { &[] } else { unsafe { std::slice::from_raw_parts(self.ptr, self.len) } }
    }
}

/// The host's side, handed to the plugin with every call that has a context.
#[repr(C)]
pub struct HostApi {
    /// The host's ABI version.
    pub abi_version: u32,
    /// Opaque host data for this call (the context); passed back to `call`.
    pub host_data: *mut c_void,
    /// Runs a [`crate::protocol::HostCall`] (JSON in `req`), writing the result to `out`.
    pub call: unsafe extern "C" fn(host_data: *mut c_void, req: *const u8, req_len: usize, out: *mut Buffer) -> i32,
    /// Frees a buffer the host returned.
    pub free: unsafe extern "C" fn(buf: Buffer),
}

/// The plugin's side, filled in by [`SYMBOL_CREATE`].
#[repr(C)]
pub struct PluginApi {
    /// The plugin's ABI version (must equal the exported version function's).
    pub abi_version: u32,
    /// Opaque plugin instance.
    pub instance: *mut c_void,
    /// Runs a [`crate::protocol::PluginCall`] (JSON in `req`); `host` is null
    /// for calls without a context.
    pub call: unsafe extern "C" fn(
        instance: *mut c_void,
        host: *const HostApi,
        req: *const u8,
        req_len: usize,
        out: *mut Buffer,
    ) -> i32,
    /// Frees a buffer the plugin returned.
    pub free: unsafe extern "C" fn(buf: Buffer),
    /// Destroys the instance; no call may follow.
    pub destroy: unsafe extern "C" fn(instance: *mut c_void),
}

/// Signature of [`SYMBOL_ABI_VERSION`].
pub type AbiVersionFn = unsafe extern "C" fn() -> u32;
/// Signature of [`SYMBOL_CREATE`].
pub type CreateFn = unsafe extern "C" fn(out: *mut PluginApi) -> i32;

/// Frees a [`Buffer`] allocated by this binary; both sides export this as their `free`.
///
/// # Safety
/// `buf` must come from [`Buffer::from_vec`] in this binary.
pub unsafe extern "C" fn free_buffer(buf: Buffer) {
    // Dropping the vector releases the allocation with this binary's allocator.
    drop(unsafe { buf.into_vec() });
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}
