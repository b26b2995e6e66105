//! Notifications, for admin keys: the outbox's deliveries, retrying a dead
//! one, and a test event sent to a destination at once. Custom alerts
//! (`POST /api/v1/alerts`) are in `findings.rs`.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use learnloop_core::{Delivery, DeliveryStatus, PluginName, Role, Timestamp, WorkspaceId};
use learnloop_notify::{Attempt, Destinations, Sender, Settings};
use learnloop_store::{DeliveryQuery, StoreError};

use crate::answers::{Notifications, TestNotificationBody, TestNotificationResult};
use crate::auth::Caller;
use crate::{ApiError, AppState};

type Q = Result<Query<BTreeMap<String, String>>, QueryRejection>;

/// `GET /api/v1/notifications?status=&destination=&workspace=&plugin=&limit=`: newest first.
pub async fn list(State(s): State<AppState>, caller: Caller, q: Q) -> Result<Json<Notifications>, ApiError> {
    caller.require(Role::Admin)?;
    let q = super::query(q)?;
    let query = DeliveryQuery {
        status: q
            .get("status")
            .map(|v| {
                DeliveryStatus::parse(v)
                    .ok_or_else(|| ApiError::invalid("status", format!("{v:?} is not pending, delivered or dead")))
            })
            .transpose()?,
        destination: q.get("destination").cloned(),
        workspace: q.get("workspace").map(|w| WorkspaceId::parse("workspace", w)).transpose()?,
        plugin: q.get("plugin").map(|p| PluginName::parse("plugin", p)).transpose()?,
        limit: super::limit(&q, 100, 10_000)?,
    };
    let destinations = s.config.notify.destinations.iter().map(|d| d.name.clone()).collect();
    let store = s.host.store().clone();
    let (deliveries, stats) =
        tokio::task::spawn_blocking(move || Ok::<_, StoreError>((store.deliveries(&query)?, store.outbox_stats()?)))
            .await
            .map_err(ApiError::internal)??;
    Ok(Json(Notifications { deliveries, unrouted: stats.unrouted, destinations }))
}

/// `POST /api/v1/notifications/{id}/retry`: a dead (or pending) delivery is
/// due again now, with its attempts reset; a delivered one is a 409.
pub async fn retry(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Delivery>, ApiError> {
    caller.require(Role::Admin)?;
    let id: i64 = id.parse().map_err(|_| ApiError::invalid("id", format!("{id:?} is not a delivery id")))?;
    let store = s.host.store().clone();
    match tokio::task::spawn_blocking(move || store.retry_delivery(id, Timestamp::now()))
        .await
        .map_err(ApiError::internal)?
    {
        Ok(d) => Ok(Json(d)),
        Err(StoreError::Invalid { message, .. }) => Err(ApiError::conflict(message)),
        Err(e) => Err(e.into()),
    }
}

/// `POST /api/v1/notifications/test` `{"destination": NAME}`: sends a
/// `test` event to the destination now and answers what happened (never
/// stored, never retried).
pub async fn test(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TestNotificationResult>, ApiError> {
    caller.require(Role::Admin)?;
    let bytes = super::body(body, s.config.api.max_body_bytes)?;
    let body: TestNotificationBody = learnloop_core::plain::from_json_value("", super::json(&bytes)?)?;
    let dests = Destinations::from_config(&s.config).map_err(ApiError::unavailable)?;
    let Some(d) = dests.get(&body.destination).cloned() else {
        let known = dests.names().join(", ");
        return Err(ApiError::invalid(
            "destination",
            format!(
                "no destination {:?} in [[notify.destinations]]; configured: {}",
                body.destination,
                if known.is_empty() { "none" } else { &known }
            ),
        ));
    };
    let sender = Sender::new(Settings::from_config(&s.config.notify));
    let n = learnloop_notify::test_notification();
    let result = tokio::task::spawn_blocking(move || {
        let attempt = sender.send(&d, &n);
        (d.name, n, attempt)
    })
    .await
    .map_err(ApiError::internal)?;
    let (destination, notification, attempt) = result;
    Ok(Json(match attempt {
        Attempt::Ok { status } => TestNotificationResult {
            destination,
            delivered: true,
            status: (status != 0).then_some(status),
            error: None,
            notification,
        },
        Attempt::Failed { error, .. } => {
            TestNotificationResult { destination, delivered: false, status: None, error: Some(error), notification }
        }
    }))
}
