//! Jobs: the list with effective schedules, run now, run history. Jobs
//! span every workspace, so these routes need an admin key.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use learnloop_core::{JobRun, PluginName, Role};
use learnloop_store::JobRunQuery;

use crate::answers::{JobRuns, Jobs};
use crate::auth::Caller;
use crate::{ApiError, AppState};

/// `GET /api/v1/jobs`: every job of every loaded plugin with its effective
/// schedule (the scheduler's own rule, so API, CLI and scheduler agree).
pub async fn list(State(s): State<AppState>, caller: Caller) -> Result<Json<Jobs>, ApiError> {
    caller.require(Role::Admin)?;
    let jobs = learnloop_scheduler::effective_jobs(&s.config, &s.host);
    Ok(Json(Jobs { jobs }))
}

/// `POST /api/v1/jobs/{plugin}/{job}/run`: runs it now, in every workspace; answers with the recorded run.
pub async fn run(
    State(s): State<AppState>,
    caller: Caller,
    Path((plugin, job)): Path<(String, String)>,
) -> Result<Json<JobRun>, ApiError> {
    caller.require(Role::Admin)?;
    let host = s.host.clone();
    let started = Instant::now();
    let (p, j) = (plugin.clone(), job.clone());
    // In the request's span: the run's own lines carry the request id.
    let span = tracing::Span::current();
    let run = tokio::task::spawn_blocking(move || span.in_scope(|| host.run_job(&p, &j, "api", None, 1)))
        .await
        .map_err(ApiError::internal)?;
    let run = match run {
        Ok(r) => r,
        Err(e) => {
            if matches!(e, learnloop_plugin_host::HostError::Plugin { .. }) {
                s.metrics.plugin_error(&plugin);
            }
            return Err(e.into());
        }
    };
    s.metrics.job(&plugin, &job, run.status.as_str(), started.elapsed().as_secs_f64());
    if run.status == learnloop_core::JobStatus::Failed {
        s.metrics.plugin_error(&plugin);
    }
    Ok(Json(run))
}

/// `GET /api/v1/jobs/runs?plugin=&job=&limit=`: recorded runs, newest first.
pub async fn history(
    State(s): State<AppState>,
    caller: Caller,
    q: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<JobRuns>, ApiError> {
    caller.require(Role::Admin)?;
    let q = super::query(q)?;
    let query = JobRunQuery {
        plugin: q.get("plugin").map(|p| PluginName::parse("plugin", p)).transpose()?,
        job: q.get("job").cloned(),
        slot: None,
        limit: super::limit(&q, 100, 10_000)?,
    };
    let store = s.host.store().clone();
    let runs = tokio::task::spawn_blocking(move || store.job_runs(&query)).await.map_err(ApiError::internal)??;
    Ok(Json(JobRuns { runs }))
}
