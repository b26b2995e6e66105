//! What learnloop's tests and benchmarks share, in one crate used only as a
//! dev-dependency (as nushell ships `nu-plugin-test-support`): a new store
//! backend or plugin gets its conformance suite from here, and a plugin's
//! tests get their store and host set-up in one line.
//!
//! Modules:
//! * [`store_conformance`] — the behaviour every `Store` backend must show;
//! * [`plugin_conformance`] — the suite every plugin must pass, statically
//!   linked or loaded from a library, returning a comparable snapshot;
//! * [`store`] — the store a plugin or host test runs on (SQLite, or
//!   PostgreSQL with `LEARNLOOP_TEST_STORE=postgres`), and benchmark stores;
//! * [`host`] — a plugin host with one plugin enabled;
//! * [`cdylib`] — building a plugin (or fixture) as a loadable library and
//!   installing it where the host looks;
//! * [`records`] — parsing test records, and sample records for each
//!   built-in plugin;
//! * [`quiet`] — a plugin that learns nothing, for tests of the host itself;
//! * [`receiver`] — a loopback HTTP server that records requests and
//!   answers as scripted (notification tests).
//!
//! Only integration tests (`tests/`) and benchmarks may use this crate: a
//! crate's unit tests would see a second copy of the crate's own types.

pub mod cdylib;
pub mod contract;
pub mod host;
pub mod plugin_conformance;
pub mod quiet;
pub mod receiver;
pub mod records;
pub mod store;
pub mod store_conformance;
