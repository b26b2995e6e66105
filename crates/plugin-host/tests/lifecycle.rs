//! The improvement lifecycle end to end, on a small learner whose world the
//! test controls: outcomes are `actual = slope × predicted`, the plugin
//! learns a multiplier `k` and scores a candidate by the mean absolute error
//! of `k × predicted` on held-out (or post-application) outcomes.
//!
//! Acceptance of issue #10: a deliberately bad candidate is rejected by its
//! backtest; a candidate that backtests well but degrades live is rolled back
//! automatically; a good candidate is kept; approval, rejection and manual
//! rollback; a stale approval changes nothing.

use std::sync::Arc;

use learnloop_config::ImprovementsConfig;
use learnloop_core::{ImprovementStatus, RecordType, Timestamp, WorkspaceId};
use learnloop_plugin_api::*;
use learnloop_plugin_host::{Loaded, Origin, PluginHost};
use learnloop_store::{ImprovementQuery, SqliteOptions, Store};
use serde_json::{Value, json};

/// The learner. Outcome payload: `{"predicted": p}`, value: the actual.
struct Scaler;

const HOLDOUT_SHARE: f64 = 0.25;

/// (event time, predicted, actual) of every outcome with event time at or
/// after `from` and recorded at or after `recorded_from`.
fn pairs(
    ctx: &mut dyn Context,
    from: Option<Timestamp>,
    recorded_from: Option<Timestamp>,
) -> Result<Vec<(Timestamp, f64, f64)>, PluginError> {
    let mut out = Vec::new();
    let mut q = EventQuery { from, order: Order::EventTime, limit: EventQuery::MAX_LIMIT, ..Default::default() };
    loop {
        let page = ctx.outcomes(&q)?;
        for o in page.items.iter().filter(|o| recorded_from.is_none_or(|r| o.ingested_at >= r)) {
            let p = o.record.payload["predicted"].as_f64().unwrap_or(0.0);
            out.push((o.record.event_time.expect("tests set event times"), p, o.record.value.unwrap_or(0.0)));
        }
        match page.next {
            Some(c) => q.after = Some(c),
            None => return Ok(out),
        }
    }
}

fn k_of(params: Option<&Value>) -> f64 {
    params.and_then(|p| p["k"].as_f64()).unwrap_or(1.0)
}

impl Plugin for Scaler {
    fn manifest(&self) -> Manifest {
        Manifest {
            name: "scaler".into(),
            version: "0.0.0".into(),
            abi_version: abi::ABI_VERSION,
            description: "test learner".into(),
            kinds: vec![
                KindSpec {
                    record_type: RecordType::Prediction,
                    kinds: vec![],
                    payload_schema: Value::Null,
                    description: String::new(),
                },
                KindSpec {
                    record_type: RecordType::Outcome,
                    kinds: vec![],
                    payload_schema: Value::Null,
                    description: String::new(),
                },
            ],
            routes: vec![],
            jobs: ["learn", "propose_bad"].iter().map(|j| JobSpec::new(j, "0 0 * * * *", "")).collect(),
            config: vec![],
            schemas: Default::default(),
        }
    }

    fn on_events(&self, _ctx: &mut dyn Context, _events: &[Event]) -> Result<(), PluginError> {
        Ok(())
    }

    fn run_job(&self, ctx: &mut dyn Context, job: &str) -> Result<Value, PluginError> {
        // Learn from the oldest 75%, hold out the newest 25% for the backtest.
        let all = pairs(ctx, None, None)?;
        let cut = ((all.len() as f64) * (1.0 - HOLDOUT_SHARE)) as usize;
        let holdout_from = all.get(cut).map(|x| x.0).unwrap_or_else(|| ctx.now());
        let k = match job {
            "learn" => {
                let (sxy, sxx) = all[..cut].iter().fold((0.0, 0.0), |(a, b), (_, p, y)| (a + p * y, b + p * p));
                sxy / sxx
            }
            _ => 0.2,
        };
        ctx.propose_improvement(ImprovementDraft {
            target: "multiplier".into(),
            params: json!({"k": k}),
            evidence: json!({"holdout_from": holdout_from, "learned_from": cut}),
            metric: "mae".into(),
            expected_gain: 0.0,
        })?;
        let in_force = applied(ctx, "multiplier")?.map(|a| a.version).unwrap_or(0);
        Ok(json!({"proposed_k": k, "in_force": in_force}))
    }

    fn handle(&self, _ctx: &mut dyn Context, _request: &RouteRequest) -> Result<RouteResponse, PluginError> {
        Err(PluginError::not_found("no routes"))
    }

    fn score(&self, ctx: &mut dyn Context, request: &ScoreRequest) -> Result<Score, PluginError> {
        let data = match &request.window {
            ScoreWindow::HeldOut => {
                let from = serde_json::from_value(request.evidence["holdout_from"].clone())
                    .map_err(|e| PluginError::invalid("evidence.holdout_from", e.to_string()))?;
                pairs(ctx, Some(from), None)?
            }
            ScoreWindow::Since { since } => pairs(ctx, None, Some(*since))?,
        };
        let (kc, kb) = (k_of(Some(&request.candidate)), k_of(request.baseline.as_ref()));
        let loss = |k: f64| data.iter().map(|(_, p, y)| (k * p - y).abs()).collect::<Vec<_>>();
        let (lc, lb) = (loss(kc), loss(kb));
        let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
        Ok(Score {
            metric: "mae".into(),
            higher_is_better: false,
            candidate: mean(&lc),
            baseline: mean(&lb),
            n: data.len() as u64,
            confidence: learnloop_stats::paired_improvement_confidence(&lb, &lc)
                .map_err(|e| PluginError::internal(e.to_string()))?,
            detail: json!({"k_candidate": kc, "k_baseline": kb}),
        })
    }
}

struct World {
    _dir: tempfile::TempDir,
    host: PluginHost,
    store: Arc<dyn Store>,
    ws: WorkspaceId,
    next: usize,
}

fn world(policy: ImprovementsConfig) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = learnloop_test_support::store::test_store(dir.path(), &SqliteOptions::default());
    let plugin = Scaler;
    let loaded = Loaded { manifest: plugin.manifest(), plugin: Arc::new(plugin), origin: Origin::Static };
    let host = PluginHost::with_plugins(store.clone(), vec![loaded]).with_improvement_policy(policy);
    World { _dir: dir, host, store, ws: WorkspaceId::parse("workspace", "default").unwrap(), next: 0 }
}

fn policy() -> ImprovementsConfig {
    ImprovementsConfig { min_backtest_samples: 10, monitor_min_samples: 10, monitor_hours: 1, ..Default::default() }
}

impl World {
    /// `n` outcomes of the world `actual = slope × predicted (± 5%)`, with
    /// event times one second apart starting at `start`.
    fn observe(&mut self, n: usize, slope: f64, start: Timestamp) {
        let mut rng = learnloop_stats::SplitMix64::new(self.next as u64 + 7);
        let mut records = Vec::new();
        for i in 0..n {
            let id = self.next + i;
            let p = 10.0 + 90.0 * rng.uniform();
            let y = slope * p * (1.0 + 0.05 * (rng.uniform() - 0.5));
            let t = Timestamp::from_micros(start.as_micros() + i as i64 * 1_000_000).unwrap();
            records.push(learnloop_test_support::records::rec(&format!(
                r#"{{"type":"prediction","id":"p{id}","workspace":"default","plugin":"scaler","kind":"k","subject":"s","value":{p},"event_time":"{t}"}}"#
            )));
            records.push(learnloop_test_support::records::rec(&format!(
                r#"{{"type":"outcome","id":"o{id}","workspace":"default","plugin":"scaler","prediction_id":"p{id}","value":{y},"payload":{{"predicted":{p}}},"event_time":"{t}"}}"#
            )));
        }
        self.next += n;
        let statuses = self.host.ingest(records, Timestamp::now()).unwrap();
        assert!(statuses.iter().all(|s| matches!(s, learnloop_plugin_host::IngestStatus::Inserted)), "{statuses:?}");
    }

    fn job(&self, job: &str) -> Value {
        let run = self.host.run_job("scaler", job, "test", None, 1).unwrap();
        assert_eq!(run.status, learnloop_core::JobStatus::Succeeded, "{run:?}");
        run.report.unwrap()
    }

    fn only_improvement(&self, version: u64) -> learnloop_core::Improvement {
        let all = self
            .store
            .improvements(&ImprovementQuery { workspace: Some(self.ws.clone()), ..Default::default() })
            .unwrap();
        all.into_iter().find(|i| i.version == version).expect("improvement of that version")
    }

    fn in_force(&self) -> u64 {
        self.host.applied_params("scaler", &self.ws, "multiplier").unwrap().map_or(0, |a| a.version)
    }

    fn process_at(&self, at: Timestamp) -> learnloop_plugin_host::LifecycleReport {
        self.host.process_improvements("scaler", &self.ws, at).unwrap()
    }
}

fn hours_after(t: Timestamp, h: f64) -> Timestamp {
    Timestamp::from_micros(t.as_micros() + (h * 3.6e9) as i64).unwrap()
}

fn past(hours: f64) -> Timestamp {
    hours_after(Timestamp::now(), -hours)
}

#[test]
fn a_deliberately_bad_candidate_is_rejected_by_its_backtest() {
    let mut w = world(policy());
    w.observe(80, 2.0, past(10.0));
    let report = w.job("propose_bad");
    assert_eq!(report["improvements"]["default"]["rejected"].as_array().map(Vec::len), Some(1), "{report}");
    let imp = w.only_improvement(1);
    assert_eq!(imp.status, ImprovementStatus::Rejected);
    let bt = imp.backtest.expect("the backtest is recorded");
    assert_eq!(bt["n"], 20, "scored on the held-out quarter only");
    assert!(bt["candidate"].as_f64().unwrap() > bt["baseline"].as_f64().unwrap(), "{bt}");
    assert!(bt["relative_gain"].as_f64().unwrap() < 0.0);
    let steps: Vec<_> = imp.history.iter().map(|e| e.status).collect();
    assert_eq!(steps, [ImprovementStatus::Proposed, ImprovementStatus::Backtested, ImprovementStatus::Rejected]);
    assert!(imp.history[2].note["reason"].as_str().unwrap().contains("not better"), "{:?}", imp.history[2].note);
    assert_eq!(w.in_force(), 0, "nothing was applied: the defaults stay in force");
}

#[test]
fn a_good_candidate_is_applied_monitored_and_kept() {
    let mut w = world(policy());
    w.observe(80, 2.0, past(10.0));
    let report = w.job("learn");
    assert_eq!(report["improvements"]["default"]["applied"].as_array().map(Vec::len), Some(1), "{report}");
    let imp = w.only_improvement(1);
    assert_eq!(imp.status, ImprovementStatus::Applied);
    assert!(imp.backtest.as_ref().unwrap()["confidence"].as_f64().unwrap() > 0.99);
    let applied = w.host.applied_params("scaler", &w.ws, "multiplier").unwrap().expect("in force");
    assert_eq!((applied.version, applied.improvement_id), (1, Some(imp.id)));
    assert!((applied.params["k"].as_f64().unwrap() - 2.0).abs() < 0.05, "{applied:?}");
    assert!(applied.previous.is_none(), "it replaced the built-in defaults");

    // The world stays the same: live outcomes confirm it.
    let applied_at = applied.applied_at;
    w.observe(30, 2.0, hours_after(applied_at, 0.01));
    let interim = w.process_at(hours_after(applied_at, 0.5));
    assert_eq!(interim.monitoring.len(), 1, "still inside the monitoring period: {interim:?}");
    assert_eq!(w.only_improvement(1).status, ImprovementStatus::Applied);
    let done = w.process_at(hours_after(applied_at, 1.5));
    assert_eq!(done.kept.len(), 1, "{done:?}");
    let imp = w.only_improvement(1);
    assert_eq!(imp.status, ImprovementStatus::Kept);
    let note = &imp.history.last().unwrap().note;
    assert_eq!(note["monitoring"]["n"], 30, "{note}");
    assert!(note["monitoring"]["relative_gain"].as_f64().unwrap() > 0.0, "{note}");
    assert_eq!(w.in_force(), 1, "kept in force");
}

#[test]
fn a_candidate_that_backtests_well_but_degrades_live_is_rolled_back() {
    let mut w = world(policy());
    w.observe(80, 2.0, past(10.0));
    w.job("learn");
    assert_eq!(w.in_force(), 1);
    let applied_at = w.host.applied_params("scaler", &w.ws, "multiplier").unwrap().unwrap().applied_at;

    // The world changes after the version is applied: actual = predicted.
    w.observe(9, 1.0, hours_after(applied_at, 0.01));
    let early = w.process_at(hours_after(applied_at, 0.2));
    assert!(early.rolled_back.is_empty(), "9 outcomes are fewer than monitor_min_samples: {early:?}");
    w.observe(21, 1.0, hours_after(applied_at, 0.1));
    let report = w.process_at(hours_after(applied_at, 0.3));
    assert_eq!(report.rolled_back.len(), 1, "{report:?}");
    let imp = w.only_improvement(1);
    assert_eq!(imp.status, ImprovementStatus::RolledBack);
    let note = &imp.history.last().unwrap().note;
    assert_eq!((note["by"].as_str(), note["restored_version"].as_u64()), (Some("monitoring"), Some(0)), "{note}");
    assert_eq!(note["monitoring"]["n"], 30);
    assert!(note["reason"].as_str().unwrap().contains("worse"), "{note}");
    assert_eq!(w.in_force(), 0, "the previous version (the defaults) is back in force");
    // Nothing is left to monitor.
    assert!(w.process_at(hours_after(applied_at, 2.0)).is_empty());
}

#[test]
fn held_candidates_wait_for_a_person_who_approves_rejects_and_rolls_back() {
    let mut w = world(ImprovementsConfig { auto_apply: false, ..policy() });
    w.observe(80, 2.0, past(10.0));
    let report = w.job("learn");
    let held = &report["improvements"]["default"]["held"][0];
    assert!(held["note"]["reasons"][0].as_str().unwrap().contains("auto_apply"), "{report}");
    assert_eq!(w.only_improvement(1).status, ImprovementStatus::Backtested);
    assert_eq!(w.in_force(), 0);

    // A newer proposal supersedes the held one when it is backtested.
    w.job("learn");
    assert_eq!(w.only_improvement(1).status, ImprovementStatus::Rejected);
    let v2 = w.only_improvement(2);
    assert_eq!(v2.status, ImprovementStatus::Backtested);

    // Approval applies it, atomically with its status.
    let approved = w.host.approve_improvement(&w.ws, v2.id, Timestamp::now()).unwrap();
    assert_eq!(approved.status, ImprovementStatus::Applied);
    assert_eq!(approved.history.last().unwrap().note["by"], "approval");
    assert_eq!(w.in_force(), 2);
    let err = w.host.approve_improvement(&w.ws, v2.id, Timestamp::now()).unwrap_err().to_string();
    assert!(err.contains("applied") && err.contains("backtested"), "{err}");
    let err = w.host.reject_improvement(&w.ws, v2.id, "no", Timestamp::now()).unwrap_err().to_string();
    assert!(err.contains("only a proposed or backtested"), "{err}");

    // The same data again gives the same candidate: no gain, rejected.
    w.job("learn");
    assert_eq!(w.only_improvement(3).status, ImprovementStatus::Rejected);
    // The world moves; a fourth version, approved, then rolled back by hand to version 2.
    w.observe(40, 2.5, past(5.0));
    w.job("learn");
    let v4 = w.only_improvement(4);
    w.host.approve_improvement(&w.ws, v4.id, Timestamp::now()).unwrap();
    assert_eq!(w.in_force(), 4);
    let restored =
        w.host.rollback_improvement("scaler", &w.ws, "multiplier", Some(2), "checking", Timestamp::now()).unwrap();
    assert_eq!((restored.version, w.in_force()), (2, 2));
    assert_eq!(w.only_improvement(4).status, ImprovementStatus::RolledBack);
    let err = w
        .host
        .rollback_improvement("scaler", &w.ws, "multiplier", Some(1), "", Timestamp::now())
        .unwrap_err()
        .to_string();
    assert!(err.contains("never in force"), "{err}");
    let err = w
        .host
        .rollback_improvement("scaler", &w.ws, "multiplier", Some(9), "", Timestamp::now())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no version 9"), "{err}");
    // And to the built-in defaults.
    w.host.rollback_improvement("scaler", &w.ws, "multiplier", Some(0), "", Timestamp::now()).unwrap();
    assert_eq!(w.in_force(), 0);
    let err =
        w.host.rollback_improvement("scaler", &w.ws, "multiplier", None, "", Timestamp::now()).unwrap_err().to_string();
    assert!(err.contains("built-in defaults are in force"), "{err}");

    // A person's rejection is recorded with the reason.
    w.observe(40, 3.0, past(4.0));
    w.job("learn");
    let v5 = w.only_improvement(5);
    assert_eq!(v5.status, ImprovementStatus::Backtested);
    let r = w.host.reject_improvement(&w.ws, v5.id, "not this week", Timestamp::now()).unwrap();
    assert_eq!(
        (r.status, r.history.last().unwrap().note["reason"].as_str()),
        (ImprovementStatus::Rejected, Some("not this week"))
    );
}

#[test]
fn plugins_read_what_is_in_force_and_cannot_write_it() {
    let mut w = world(policy());
    w.observe(80, 2.0, past(10.0));
    w.job("learn");
    let report = w.job("learn");
    assert_eq!(report["workspaces"]["default"]["in_force"], 1, "the job saw version 1 through ctx: {report}");
    let mut ctx = learnloop_plugin_host::HostContext::new(
        w.store.as_ref(),
        w.host.services(),
        learnloop_core::PluginName::parse("plugin", "scaler").unwrap(),
        w.ws.clone(),
        Timestamp::now(),
    );
    let err = ctx.put_state("__applied/multiplier", json!({"version": 99}), Expect::Any).unwrap_err();
    assert!(err.to_string().contains("improvement lifecycle"), "{err}");
    assert!(ctx.scan_state("", None, 100).unwrap().is_empty(), "hidden from plain scans");
}
