//! The plugin author's side of learnloop.
//!
//! A plugin is a learner: it declares what it accepts and serves in a
//! [`Manifest`], validates records before they are stored, updates its state
//! online from stored [`Event`]s, runs jobs (learning cycles) and answers
//! route requests. The host owns everything else — persistence, HTTP, auth,
//! scheduling, retries — and lends it to the plugin through a [`Context`]
//! bound to one workspace.
//!
//! The same plugin crate links statically into the learnloop binaries and,
//! built with its `dynamic` feature as a `cdylib`, loads at run time through
//! the versioned C ABI in [`abi`]. Authors never write `extern "C"`: one line,
//! [`export_plugin!`], generates the entry points.
//!
//! ```ignore
//! #[derive(Default)]
//! pub struct MyPlugin;
//! impl learnloop_plugin_api::Plugin for MyPlugin { /* ... */ }
//! learnloop_plugin_api::export_plugin!(MyPlugin, MyPlugin::default);
//! ```
//!
//! Dependency rule: this crate depends on `learnloop-core` and serde only, so
//! a third-party plugin needs no database, HTTP or async runtime. The host
//! turns on the `loader` feature (module `loader`, which adds `libloading`) to open
//! plugin libraries.
//!
//! This crate owns the C ABI and is the only one where `unsafe` is allowed,
//! and only in [`abi`], `guest` and `loader`.

#![deny(missing_docs)]

pub mod abi;
mod context;
mod error;
#[doc(hidden)]
pub mod guest;
pub mod helpers;
pub mod improve;
#[cfg(feature = "loader")]
pub mod loader;
mod manifest;
mod plugin;
pub mod protocol;
pub mod schema;
pub mod services;
pub mod state;

pub use context::{
    AlertDraft, Context, ImprovementDraft, InsightDraft, LlmRequest, LogLevel, NotificationDraft, RawState, State,
    VectorHit, VectorPoint, VectorQuery,
};
pub use error::PluginError;
pub use improve::{Applied, Score, ScoreRequest, ScoreWindow, applied};
pub use learnloop_core as core;
pub use learnloop_core::columns::{ColumnSpec, PredictionColumns, TextColumn, ValueColumn};
pub use learnloop_core::history::{Event, EventQuery, Expect, Order, Page, StoredOutcome, StoredPrediction};
pub use learnloop_core::{Outcome, Prediction, Record, RecordType, Severity, Timestamp, ValidationError, WorkspaceId};
pub use manifest::{ConfigKey, JobSpec, KindSpec, Manifest, QueryError, QueryParam, RouteSpec, parse_config};
pub use plugin::{Plugin, RouteRequest, RouteResponse};
pub use schema::Schemas;
pub use schemars::{self, JsonSchema};
pub use services::{Embedder, Llm, Scope, VectorIndex};
