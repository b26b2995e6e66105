//! `POST /api/v1/predictions` and `POST /api/v1/outcomes`.
//!
//! One JSON object is one record: the answer is 201 (stored), 200
//! (duplicate) or a problem naming the field. A JSON array is a batch of at
//! most `api.max_batch` records: every valid record is stored in one durable
//! transaction and the answer lists each item's result. Nothing from a
//! request that fails as a whole (malformed JSON, too large, another
//! workspace) is stored. A key repeated in one object refuses its record
//! (422 naming the key, e.g. `payload.region`; in a batch, that item).
//!
//! The workspace of each record: its `workspace` field, else the
//! `workspace` query parameter, else the key's own. A record naming another
//! workspace than the query parameter fails the request (422), one outside a
//! reader or writer key's workspace too (403, naming both). An admin key
//! covers every workspace, so with it a record must name its workspace (or
//! the query parameter must): otherwise it is rejected (422). The only query
//! parameter is `workspace`; any other is refused (400), never ignored.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use learnloop_core::{RawRecord, RecordDefaults, RecordType, Role, parse_json_record};
use learnloop_store::Prepared;
use serde_json::Value;

use crate::answers::{Batch, ItemResult, ItemStatus, Stored};
use crate::auth::Caller;
use crate::{ApiError, AppState};

type Q = Result<Query<BTreeMap<String, String>>, QueryRejection>;

/// `POST /api/v1/predictions[?workspace=]`.
pub async fn predictions(
    State(s): State<AppState>,
    caller: Caller,
    q: Q,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest(s, caller, RecordType::Prediction, q, b).await
}

/// `POST /api/v1/outcomes[?workspace=]`.
pub async fn outcomes(
    State(s): State<AppState>,
    caller: Caller,
    q: Q,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest(s, caller, RecordType::Outcome, q, b).await
}

enum Item {
    Valid(usize),
    Invalid { field: String, message: String },
}

async fn ingest(
    state: AppState,
    caller: Caller,
    rt: RecordType,
    q: Q,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(Role::Writer)?;
    // Only `workspace`: anything else was refused by `contract::check_query`.
    let query = super::query(q)?;
    let requested = query.get("workspace").map(String::as_str);
    let default_ws = caller.record_default(requested, &state.config.default_workspace)?;
    let bytes = super::body(b, state.config.api.max_body_bytes)?;
    let (value, duplicates) = super::json_with_duplicates(&bytes)?;
    let (items, single) = match value {
        Value::Array(items) => (items, false),
        v @ Value::Object(_) => (vec![v], true),
        _ => return Err(ApiError::bad_request("send a JSON object (one record) or an array of objects (a batch)")),
    };
    let max = state.config.api.max_batch;
    if items.len() > max {
        return Err(ApiError::too_large(format!(
            "a batch holds at most {max} records (api.max_batch); this one has {}",
            items.len()
        )));
    }
    if items.is_empty() {
        return Err(ApiError::bad_request("the batch is empty"));
    }
    let defaults = RecordDefaults { workspace: default_ws, record_type: Some(rt) };
    let mut prepared = Vec::new();
    let mut results = Vec::with_capacity(items.len());
    let mut ids = Vec::with_capacity(items.len());
    // The first repeated key of each item (of the object, for one record).
    let mut repeated: BTreeMap<usize, String> = BTreeMap::new();
    for d in duplicates {
        repeated.entry(d.item.unwrap_or(0)).or_insert(d.path);
    }
    for (index, item) in items.into_iter().enumerate() {
        ids.push(item.get("id").and_then(Value::as_str).map(str::to_string));
        if !item.is_object() {
            results.push(Item::Invalid { field: String::new(), message: "each record must be a JSON object".into() });
            continue;
        }
        // A key given twice is refused, not resolved: which one was meant?
        if let Some(path) = repeated.remove(&index) {
            results.push(Item::Invalid { field: path, message: learnloop_core::json::DUPLICATE_KEY_MESSAGE.into() });
            continue;
        }
        let named = item.get("workspace").filter(|w| !w.is_null());
        if defaults.workspace.is_none() && named.is_none() {
            results.push(Item::Invalid {
                field: "workspace".into(),
                message: "is required for admin keys, which cover every workspace: name it in the record or as \
                          ?workspace= (a reader or writer key defaults to its own workspace)"
                    .into(),
            });
            continue;
        }
        if let (Some(asked), Some(named)) = (requested, named.and_then(Value::as_str))
            && asked != named
        {
            return Err(ApiError::invalid(
                "workspace",
                format!(
                    "a record names workspace {named:?} but the query parameter asks for {asked:?}; make them agree or leave one out"
                ),
            ));
        }
        // The body is parsed already: deserialise the record from the value.
        // Only a record that fails is turned back into text, so that
        // `parse_json_record` can name the offending field.
        let parsed = match <RawRecord as serde::Deserialize>::deserialize(&item) {
            Ok(raw) => raw.validate(&defaults),
            Err(_) => parse_json_record(&item.to_string(), &defaults),
        };
        match parsed {
            Ok(record) => {
                // A record for another workspace fails the whole request:
                // a key never writes outside its workspace.
                caller.check_workspace(record.workspace())?;
                match state.host.validate_record(&record) {
                    Ok(()) => {
                        results.push(Item::Valid(prepared.len()));
                        prepared.push(Prepared::new(record));
                    }
                    Err(learnloop_plugin_host::HostError::Invalid(e)) => {
                        results.push(Item::Invalid { field: e.field, message: e.message })
                    }
                    // The plugin failed, not the record: 503 for the whole request.
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => results.push(Item::Invalid { field: e.field, message: e.message }),
        }
    }
    let receipt = if prepared.is_empty() {
        None
    } else {
        Some(state.host.append_async(prepared).await.map_err(store_failure)?.receipt)
    };
    let statuses: Vec<learnloop_store::ItemStatus> = receipt.map(|r| r.items).unwrap_or_default();
    let type_name = rt.as_str();
    let (mut inserted, mut duplicates, mut rejected) = (0u64, 0u64, 0u64);
    let mut out = Vec::with_capacity(results.len());
    let mut conflict = false;
    for (index, (item, id)) in results.into_iter().zip(ids).enumerate() {
        let (status, field, message) = match item {
            Item::Invalid { field, message } => (ItemStatus::Rejected, Some(field), Some(message)),
            Item::Valid(i) => match &statuses[i] {
                learnloop_store::ItemStatus::Inserted => (ItemStatus::Inserted, None, None),
                learnloop_store::ItemStatus::Duplicate => (ItemStatus::Duplicate, None, None),
                learnloop_store::ItemStatus::Rejected(reason) => {
                    conflict = reason.is_conflict();
                    (ItemStatus::Rejected, Some(reason.field().to_string()), Some(reason.message().to_string()))
                }
            },
        };
        match status {
            ItemStatus::Inserted => inserted += 1,
            ItemStatus::Duplicate => duplicates += 1,
            ItemStatus::Rejected => rejected += 1,
        }
        out.push(ItemResult { index, id, status, field, message });
    }
    tracing::debug!(
        record_type = type_name,
        inserted,
        duplicates,
        rejected,
        "stored {type_name} batch: {inserted} inserted, {duplicates} duplicate, {rejected} rejected"
    );
    state.metrics.ingested(type_name, "inserted", inserted);
    state.metrics.ingested(type_name, "duplicate", duplicates);
    state.metrics.ingested(type_name, "rejected", rejected);
    if single {
        let item = out.pop().expect("one item");
        let id = item.id.unwrap_or_default();
        return Ok(match item.status {
            ItemStatus::Inserted => (StatusCode::CREATED, Json(Stored { id, status: item.status })).into_response(),
            ItemStatus::Duplicate => (StatusCode::OK, Json(Stored { id, status: item.status })).into_response(),
            ItemStatus::Rejected => {
                let message = item.message.unwrap_or_default();
                let field = item.field.unwrap_or_default();
                if conflict {
                    // The field the rejection names (the id): a problem names its field.
                    ApiError { field: (!field.is_empty()).then_some(field), ..ApiError::conflict(message) }
                        .into_response()
                } else {
                    ApiError::invalid(field, message).into_response()
                }
            }
        });
    }
    Ok(Json(Batch { inserted, duplicates, rejected, results: out }).into_response())
}

/// A failed commit: the server stopping is a 503, a full store a 507 (with
/// `Retry-After`); any other store failure is logged and says nothing to
/// the client (500).
fn store_failure(e: learnloop_plugin_host::HostError) -> ApiError {
    match e {
        learnloop_plugin_host::HostError::Stopped => e.into(),
        learnloop_plugin_host::HostError::Store(learnloop_store::StoreError::OutOfSpace(reason)) => {
            ApiError::out_of_space(reason)
        }
        other => ApiError::internal(format!("append failed: {other}")),
    }
}
