//! The messages that cross the C ABI, and their dispatch on either side.
//!
//! Both the host (for dynamic plugins) and the guest glue (inside a plugin)
//! use this one module, so the two ends cannot drift apart: a
//! [`PluginCall`] is turned into a trait call by [`dispatch_plugin`], a
//! [`HostCall`] into a context call by [`dispatch_host`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    AlertDraft, ColumnSpec, Context, Event, EventQuery, Expect, ImprovementDraft, InsightDraft, LlmRequest, LogLevel,
    NotificationDraft, Plugin, PluginError, Record, RouteRequest, ScoreRequest, Timestamp, VectorPoint, VectorQuery,
    WorkspaceId,
};

/// What a context-bound call needs to rebuild its context on the other side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextInfo {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// "Now" for this call.
    pub now: Timestamp,
}

/// Host → plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum PluginCall {
    /// [`Plugin::manifest`].
    Manifest,
    /// [`Plugin::configure`].
    Configure {
        /// The config section.
        section: Value,
    },
    /// [`Plugin::validate`].
    Validate {
        /// The record.
        record: Record,
    },
    /// [`Plugin::on_events`].
    OnEvents {
        /// Context.
        context: ContextInfo,
        /// The events.
        events: Vec<Event>,
    },
    /// [`Plugin::run_job`].
    RunJob {
        /// Context.
        context: ContextInfo,
        /// Job name.
        job: String,
    },
    /// [`Plugin::handle`].
    Handle {
        /// Context.
        context: ContextInfo,
        /// The request.
        request: RouteRequest,
    },
    /// [`Plugin::score`].
    Score {
        /// Context.
        context: ContextInfo,
        /// The request.
        request: ScoreRequest,
    },
}

impl PluginCall {
    /// The context info, for calls that have one.
    pub fn context(&self) -> Option<&ContextInfo> {
        match self {
            PluginCall::OnEvents { context, .. }
            | PluginCall::RunJob { context, .. }
            | PluginCall::Handle { context, .. }
            | PluginCall::Score { context, .. } => Some(context),
            _ => None,
        }
    }
}

/// Plugin → host: one [`Context`] method each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum HostCall {
    Predictions {
        query: EventQuery,
    },
    Outcomes {
        query: EventQuery,
    },
    PredictionColumns {
        query: EventQuery,
        spec: ColumnSpec,
    },
    GetState {
        key: String,
    },
    GetStates {
        keys: Vec<String>,
    },
    PutState {
        key: String,
        value: Value,
        expect: Expect,
    },
    DeleteState {
        key: String,
        expect: Expect,
    },
    ScanState {
        prefix: String,
        after: Option<String>,
        limit: usize,
    },
    ScanStateRaw {
        prefix: String,
        after: Option<String>,
        limit: usize,
    },
    EmitInsight {
        insight: InsightDraft,
    },
    EmitAlert {
        alert: AlertDraft,
    },
    /// [`Context::emit_notification`].
    EmitNotification {
        notification: NotificationDraft,
    },
    ProposeImprovement {
        improvement: ImprovementDraft,
    },
    UpsertVectors {
        collection: String,
        points: Vec<VectorPoint>,
    },
    SearchVectors {
        collection: String,
        query: VectorQuery,
    },
    Embed {
        texts: Vec<String>,
    },
    LlmGenerate {
        request: LlmRequest,
    },
    Log {
        level: LogLevel,
        message: String,
    },
}

/// Parses a message; an unknown call is `Unavailable`, so a newer peer's
/// additive call reads as "capability absent" rather than as a bug.
pub fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, PluginError> {
    serde_json::from_slice(bytes).map_err(|e| {
        if e.to_string().contains("unknown variant") {
            PluginError::unavailable(format!("unsupported call: {e}"))
        } else {
            PluginError::internal(format!("malformed message across the plugin ABI: {e}"))
        }
    })
}

fn json<T: Serialize>(v: T) -> Result<Value, PluginError> {
    serde_json::to_value(v).map_err(PluginError::from)
}

/// Runs a context-free or context-bound plugin call on a plugin.
/// `configure` needs exclusive access, so it comes through `configure`.
pub fn dispatch_plugin(
    plugin: &dyn Plugin,
    configure: &mut dyn FnMut(&Value) -> Result<(), PluginError>,
    ctx: Option<&mut dyn Context>,
    call: PluginCall,
) -> Result<Value, PluginError> {
    let need_ctx = || PluginError::internal("a context-bound call arrived without a context");
    match call {
        PluginCall::Manifest => json(plugin.manifest()),
        PluginCall::Configure { section } => configure(&section).map(|_| Value::Null),
        PluginCall::Validate { record } => plugin.validate(&record).map(|_| Value::Null).map_err(PluginError::from),
        PluginCall::OnEvents { events, .. } => {
            plugin.on_events(ctx.ok_or_else(need_ctx)?, &events).map(|_| Value::Null)
        }
        PluginCall::RunJob { job, .. } => plugin.run_job(ctx.ok_or_else(need_ctx)?, &job),
        PluginCall::Handle { request, .. } => json(plugin.handle(ctx.ok_or_else(need_ctx)?, &request)?),
        PluginCall::Score { request, .. } => json(plugin.score(ctx.ok_or_else(need_ctx)?, &request)?),
    }
}

/// Runs a host call on a context.
pub fn dispatch_host(ctx: &mut dyn Context, call: HostCall) -> Result<Value, PluginError> {
    match call {
        HostCall::Predictions { query } => json(ctx.predictions(&query)?),
        HostCall::Outcomes { query } => json(ctx.outcomes(&query)?),
        HostCall::PredictionColumns { query, spec } => json(ctx.prediction_columns(&query, &spec)?),
        HostCall::GetState { key } => json(ctx.get_state(&key)?),
        HostCall::GetStates { keys } => json(ctx.get_states(&keys)?),
        HostCall::PutState { key, value, expect } => json(ctx.put_state(&key, value, expect)?),
        HostCall::DeleteState { key, expect } => ctx.delete_state(&key, expect).map(|_| Value::Null),
        HostCall::ScanState { prefix, after, limit } => json(ctx.scan_state(&prefix, after.as_deref(), limit)?),
        HostCall::ScanStateRaw { prefix, after, limit } => {
            json(ctx.scan_state_raw(&prefix, after.as_deref(), limit)?)
        }
        HostCall::EmitInsight { insight } => ctx.emit_insight(insight).map(|_| Value::Null),
        HostCall::EmitAlert { alert } => ctx.emit_alert(alert).map(|_| Value::Null),
        HostCall::EmitNotification { notification } => ctx.emit_notification(notification).map(|_| Value::Null),
        HostCall::ProposeImprovement { improvement } => ctx.propose_improvement(improvement).map(|_| Value::Null),
        HostCall::UpsertVectors { collection, points } => ctx.upsert_vectors(&collection, points).map(|_| Value::Null),
        HostCall::SearchVectors { collection, query } => json(ctx.search_vectors(&collection, &query)?),
        HostCall::Embed { texts } => json(ctx.embed(&texts)?),
        HostCall::LlmGenerate { request } => json(ctx.llm_generate(&request)?),
        HostCall::Log { level, message } => {
            ctx.log(level, &message);
            Ok(Value::Null)
        }
    }
}
