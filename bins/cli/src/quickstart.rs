//! `learnloop quickstart`: the first thing a newcomer runs.
//!
//! It uses the embedded default (one data directory, no servers), generates
//! the deterministic sample, ingests it, ingests it again to show that
//! retries are duplicates, ingests a file with bad lines to show how they are
//! reported, and prints what the store now holds.

use std::io::Write;

use anyhow::{Context, Result};
use learnloop_core::{RecordDefaults, WorkspaceId};

use crate::ingest::{Options, Source, ingest, print_summary};
use crate::sample::{Spec, write};
use crate::Env;

/// What the trust plugin learned about the sample's agents, through the
/// routes a client calls (`learnloop call trust GET /agents`, `/rules`).
fn trust_summary(host: &learnloop_plugin_host::PluginHost, ws: &str) -> Result<()> {
    use serde_json::Value;
    let ws = WorkspaceId::parse("default_workspace", ws).map_err(anyhow::Error::msg)?;
    let get = |path: &str| -> Result<Value> {
        Ok(host.handle("trust", &ws, "GET", path, Default::default(), Value::Null).map_err(|e| anyhow::anyhow!("{e}"))?.body)
    };
    let agents = get("/agents")?;
    outln!(
        "\n-- what trust learned about the agents (`learnloop call trust GET /agents`; weights version {})",
        agents["weights_version"]
    )?;
    for a in agents["agents"].as_array().into_iter().flatten().take(4) {
        let b = &a["bayesian"];
        outln!(
            "{:10} trust {:.2}  approval {:.2} [{:.2}, {:.2}] from {} evaluations, {}",
            a["agent_id"].as_str().unwrap_or("?"),
            a["overall_trust_score"].as_f64().unwrap_or(f64::NAN),
            a["accuracy_score"].as_f64().unwrap_or(f64::NAN),
            b["credible_interval"][0].as_f64().unwrap_or(f64::NAN),
            b["credible_interval"][1].as_f64().unwrap_or(f64::NAN),
            a["stats"]["evaluated"],
            a["trend"].as_str().unwrap_or("?")
        )?;
    }
    let rules = get("/rules")?;
    let shown: Vec<String> = rules["rules"].as_array().into_iter().flatten().take(3).filter_map(|r| r["rule"].as_str().map(str::to_string)).collect();
    outln!("rules suggested: {}", if shown.is_empty() { "none yet".to_string() } else { shown.join("; ") })?;
    Ok(())
}

pub fn run(env: &Env) -> Result<()> {
    let config = &env.config;
    let dir = config.data_dir.join("sample");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let host = crate::open_host(config)?;
    let store = host.store().clone();
    outln!("== learnloop quickstart: embedded store at {}", config.data_dir.display())?;

    let events = dir.join("events.jsonl");
    let plugins: Vec<String> = config
        .plugins
        .enabled
        .iter()
        .filter(|p| learnloop_config::BUILTIN_PLUGINS.contains(&p.as_str()))
        .cloned()
        .collect();
    let spec = Spec {
        plugins: plugins.clone(),
        per_plugin: 250,
        outcome_rate: 0.8,
        only: None,
        seed: 42,
        workspace: config.default_workspace.clone(),
    };
    let n = write(&spec, std::fs::File::create(&events)?)?;
    outln!("\n-- generated {n} sample events for {} into {}", plugins.join(", "), events.display())?;

    let opts = Options {
        format: None,
        defaults: RecordDefaults {
            workspace: Some(WorkspaceId::parse("default_workspace", &config.default_workspace).map_err(anyhow::Error::msg)?),
            record_type: None,
        },
        batch_size: 20_000,
        progress: false,
    };
    outln!("\n-- ingest {}", events.display())?;
    print_summary(&ingest(&host, vec![Source::File(events.clone())], &opts)?)?;
    outln!("\n-- ingest the same file again: retries are duplicates, nothing is counted twice")?;
    print_summary(&ingest(&host, vec![Source::File(events)], &opts)?)?;

    let bad = dir.join("bad-lines.jsonl");
    let mut f = std::fs::File::create(&bad)?;
    let ws = &config.default_workspace;
    // Its own model and an event time inside the sample's month: windows are
    // measured back from a model's newest prediction, so a "now" here would
    // move price-model's windows away from its history.
    writeln!(f, r#"{{"type":"prediction","id":"qs-good","workspace":"{ws}","plugin":"drift","subject":"demo-model","kind":"regression","value":12.5,"event_time":"2026-01-15T00:00:00Z"}}"#)?;
    writeln!(f, r#"{{"type":"prediction","id":"qs-nan","workspace":"{ws}","plugin":"drift","subject":"price-model","kind":"regression","value":NaN}}"#)?;
    writeln!(f, r#"{{"type":"prediction","workspace":"{ws}","plugin":"drift","subject":"price-model","kind":"regression","value":1}}"#)?;
    writeln!(f, r#"{{"type":"prediction","id":"qs-unknown","workspace":"{ws}","plugin":"astrology","subject":"x","kind":"y"}}"#)?;
    writeln!(f, r#"{{"type":"outcome","id":"qs-orphan","workspace":"{ws}","plugin":"drift","prediction_id":"never-sent","value":3}}"#)?;
    drop(f);
    outln!("\n-- ingest a file with bad lines: each is reported, the good line lands")?;
    print_summary(&ingest(&host, vec![Source::File(bad)], &opts)?)?;

    outln!("\n-- what the store holds (`learnloop stats`)")?;
    crate::stats::print(store.as_ref(), None, false)?;
    outln!("\n-- what the plugins learned (each plugin's first job, run now)")?;
    for (name, loaded) in host.plugins() {
        let Some(job) = loaded.manifest.jobs.first() else { continue };
        let run = host.run_job(name, &job.name, "quickstart", None, 1)?;
        let report = run.report.unwrap_or_default();
        for (ws, r) in report["workspaces"].as_object().into_iter().flatten() {
            let t = &r["totals"];
            let rate = r["success_rate"].as_f64().map(|x| format!(", success rate {:.1}%", x * 100.0)).unwrap_or_default();
            // Whatever else the job counted (drifted models, patterns, alerts, ...).
            let extra: Vec<String> = t
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| !["predictions", "outcomes"].contains(&k.as_str()) && v.is_u64())
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let extra = if extra.is_empty() { String::new() } else { format!("; {}", extra.join(", ")) };
            outln!(
                "{name:8} {} ({:?}) in {ws}: {} subjects, {} predictions, {} outcomes{rate}{extra}",
                job.name, run.status, r["subjects"], t["predictions"], t["outcomes"]
            )?;
        }
    }
    if host.plugins().contains_key("trust") {
        trust_summary(&host, &config.default_workspace)?;
    }
    if host.plugins().contains_key("cost") {
        cost_learned(&host, &config.default_workspace)?;
    }
    outln!("\n-- what the improvement lifecycle did with what was learned (`learnloop improvements list`)")?;
    let improvements = store.improvements(&learnloop_store::ImprovementQuery::default())?;
    if improvements.is_empty() {
        outln!("no parameter set proposed yet")?;
    }
    for i in improvements.iter().rev() {
        let b = i.backtest.clone().unwrap_or_default();
        let decision = i.history.last().map(|e| e.note["decision"].as_str().unwrap_or("").to_string()).unwrap_or_default();
        outln!(
            "{}/{} v{}: {} — backtest {} {:.4} vs {:.4} in force ({:+.1}%, confidence {:.2}, {} held-out outcomes); params {}",
            i.plugin,
            i.target,
            i.version,
            if decision.is_empty() { i.status.as_str().to_string() } else { decision },
            i.metric,
            b["candidate"].as_f64().unwrap_or(f64::NAN),
            b["baseline"].as_f64().unwrap_or(f64::NAN),
            b["relative_gain"].as_f64().unwrap_or(f64::NAN) * 100.0,
            b["confidence"].as_f64().unwrap_or(f64::NAN),
            b["n"],
            i.params
        )?;
    }
    let alerts = store.alerts(&learnloop_store::AlertQuery { since: None, limit: 100, ..Default::default() })?;
    for a in alerts.iter().take(5) {
        outln!("alert    {:?} {} {}: {}", a.severity, a.plugin, a.kind, a.message)?;
    }
    if alerts.len() > 5 {
        outln!("         ... and {} more alerts (GET /api/v1/alerts)", alerts.len() - 5)?;
    }
    if host.plugins().contains_key("persona") {
        persona_summary(&host, &config.default_workspace)?;
    }
    if host.plugins().contains_key("drift") {
        drift_summary(&host, &config.default_workspace)?;
    }
    outln!(
        "\nNext: `learnloop plugins list`, `learnloop export --plugin cost | head`, \
         `learnloop ingest your-events.jsonl`, `learnloop stats --json`."
    )?;
    Ok(())
}

/// What the persona plugin learned about the sample's users, through the
/// same routes a client calls (`learnloop call persona GET /users/user-0`).
fn persona_summary(host: &learnloop_plugin_host::PluginHost, ws: &str) -> Result<()> {
    use serde_json::{Value, json};
    let ws = WorkspaceId::parse("default_workspace", ws).map_err(anyhow::Error::msg)?;
    let call = |method: &str, path: &str, body: Value| -> Result<Value> {
        Ok(host.handle("persona", &ws, method, path, Default::default(), body).map_err(|e| anyhow::anyhow!("{e}"))?.body)
    };
    let list = |v: &Value| -> String {
        let items: Vec<&str> = v.as_array().into_iter().flatten().filter_map(|m| m["content"].as_str()).collect();
        if items.is_empty() { "none".into() } else { items.join("; ") }
    };
    outln!("\n-- what persona learned per user (`learnloop call persona GET /users/USER` and `/users/USER/preferences`)")?;
    for user in ["user-0", "user-1", "user-2"] {
        let Ok(p) = call("GET", &format!("/users/{user}"), Value::Null) else { continue };
        let facets: Vec<String> = p["facets"].as_object().into_iter().flatten().map(|(k, v)| format!("{k} {v}")).collect();
        outln!("{user}: {} interactions; facets {}", p["interaction_count"], facets.join(", "))?;
        outln!("        goals: {}", list(&p["goals"]))?;
        outln!("        preferences: {}", list(&p["preferences"]))?;
        let f = call("GET", &format!("/users/{user}/preferences"), Value::Null)?;
        let models: Vec<String> = f["preferred_models"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(task, m)| format!("{task} → {}", m["preferred_model"].as_str().unwrap_or("?")))
            .collect();
        let acc = f["preference_accuracy"].as_f64().map_or("n/a".to_string(), |a| format!("{:.1}%", a * 100.0));
        let next = f["next_activity"]["task_type"].as_str().unwrap_or("?");
        outln!("        preferred models: {}; held-out accuracy {acc} ({} scored); next activity: {next}", models.join(", "), f["held_out"]["scored"])?;
    }
    let h = call("POST", "/hypothesize", json!({"user_id": "user-0", "input_text": "deploy api"}))?;
    outln!("hypotheses for user-0 \"deploy api\" ({}):", h["source"].as_str().unwrap_or("?"))?;
    for x in h["hypotheses"].as_array().into_iter().flatten() {
        outln!("        {} {} ({})", x["id"].as_str().unwrap_or("?"), x["text"].as_str().unwrap_or("?"), x["confidence"])?;
    }
    Ok(())
}

/// What the drift plugin learned about the sample's two models, through the
/// same routes a client calls (`learnloop call drift GET /models/price-model/drift`).
fn drift_summary(host: &learnloop_plugin_host::PluginHost, ws: &str) -> Result<()> {
    use serde_json::{Value, json};
    let ws = WorkspaceId::parse("default_workspace", ws).map_err(anyhow::Error::msg)?;
    let call = |method: &str, path: &str, body: Value| -> Result<Value> {
        Ok(host.handle("drift", &ws, method, path, Default::default(), body).map_err(|e| anyhow::anyhow!("{e}"))?.body)
    };
    outln!("\n-- what drift learned about the models (`learnloop call drift GET /models/MODEL/drift`, `.../retrain`, `.../weights`)")?;
    for model in ["price-model", "demand-model"] {
        let Ok(d) = call("GET", &format!("/models/{model}/drift"), Value::Null) else { continue };
        let r = call("GET", &format!("/models/{model}/retrain"), Value::Null)?;
        let w = call("GET", &format!("/models/{model}/weights"), Value::Null)?;
        let weights: Vec<String> = w["ranking"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| format!("{} {:.2}", x["feature"].as_str().unwrap_or("?"), x["weight"].as_f64().unwrap_or(f64::NAN)))
            .collect();
        outln!(
            "{model}: drift {} (features {}, concept {}, predictions {}); retrain {}{}{}",
            d["severity"].as_str().unwrap_or("?"),
            d["feature_drift"]["affected_features"],
            d["concept_drift"]["severity"].as_str().unwrap_or("?"),
            d["prediction_drift"]["severity"].as_str().unwrap_or("?"),
            r["should_retrain"],
            r["reasons"].as_array().filter(|a| !a.is_empty()).map_or(String::new(), |a| format!(
                " ({})",
                a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")
            )),
            r["blocked_by"].as_str().map_or(String::new(), |b| format!(", not yet: {b}"))
        )?;
        outln!("             feature weights: {}", if weights.is_empty() { "too few outcomes".into() } else { weights.join(", ") })?;
    }
    // The sample's demand-model serves v1 and v2 half-and-half over its 30 days.
    let t = call("POST", "/ab_tests", json!({"id": "demand-v1-v2", "model": "demand-model", "versions": ["v1", "v2"],
        "split": [0.5, 0.5], "start": "2026-01-01T00:00:00Z", "duration_days": 31}))?;
    let r = call("GET", &format!("/ab_tests/{}", t["id"].as_str().unwrap_or("")), Value::Null)?;
    let arms: Vec<String> = r["arms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| format!("{} MAE {:.3} (n {})", a["version"].as_str().unwrap_or("?"), a["mae"].as_f64().unwrap_or(f64::NAN), a["n"]))
        .collect();
    outln!("A/B test demand-v1-v2 (`learnloop call drift GET /ab_tests/demand-v1-v2`): {}; {}", arms.join(" vs "), r["conclusion"].as_str().unwrap_or(""))?;
    Ok(())
}

/// What the cost plugin learned from the sample, through its routes
/// (the same answers as `GET /api/v1/cost/params` and `POST /api/v1/cost/assess`).
fn cost_learned(host: &learnloop_plugin_host::PluginHost, ws: &str) -> Result<()> {
    use serde_json::{Value, json};
    let ws = WorkspaceId::parse("default_workspace", ws).map_err(anyhow::Error::msg)?;
    let call = |method: &str, path: &str, body: Value| -> Result<Value> {
        Ok(host.handle("cost", &ws, method, path, Default::default(), body)?.body)
    };
    let p = call("GET", "/params", Value::Null)?;
    let metrics = call("GET", "/metrics", Value::Null)?;
    outln!("\n-- what the cost plugin learned (`learnloop call cost GET /params`, `... GET /metrics`; versions in force {})", p["versions"])?;
    let params = &p["params"];
    let by_type: Vec<String> = params["calibration"]["calibration"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !k.contains('|'))
        .map(|(k, v)| format!("{k} {:.0}%", v["mean"].as_f64().unwrap_or(0.0).exp() * 100.0))
        .collect();
    outln!("realised / predicted savings by type: {}", by_type.join(", "))?;
    let last = &metrics["last_cycle"];
    if let (Some(raw), Some(new)) = (last["raw_error"].as_f64(), last["calibrated_error"].as_f64()) {
        outln!(
            "savings error on the {} newest recommendations (held out): raw predictions {:.1}%, calibrated {:.1}%",
            last["held_out"], raw * 100.0, new * 100.0
        )?;
    }
    let risks: Vec<String> = params["risk_levels"]["risk"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !k.contains('|'))
        .map(|(k, v)| format!("{k} {} ({:.0}% fail)", v["risk_level"].as_str().unwrap_or("?"), v["failure_rate"].as_f64().unwrap_or(0.0) * 100.0))
        .collect();
    outln!("learned risk levels: {}", risks.join(", "))?;
    let weights: Vec<String> = params["scoring_weights"]["weights"].as_object().into_iter().flatten().map(|(k, v)| format!("{k} {:.2}", v.as_f64().unwrap_or(0.0))).collect();
    outln!("scoring weights (toward factors that predict success): {}", weights.join(", "))?;
    let example = json!({"recommendation_type": "spot_instances", "resource_type": "ec2", "region": "ap-south-1",
        "predicted_savings": 1000.0, "risk_level": "low", "scoring_factors": {"utilization_gap": 0.9, "age_days": 0.2}, "similar_cases": 0});
    let a = call("POST", "/assess", example)?;
    outln!(
        "assess spot_instances / ec2 / ap-south-1, predicted $1000/month, stated risk low (`learnloop call cost POST /assess --body ...`):\n  \
         calibrated ${:.0} [{:.0}, {:.0}] ({:.0}% interval), P(success) {:.2}, risk {} -> {}, adjusted score {:.2}",
        a["calibrated_savings"].as_f64().unwrap_or(0.0),
        a["interval"]["lower"].as_f64().unwrap_or(f64::NAN),
        a["interval"]["upper"].as_f64().unwrap_or(f64::NAN),
        a["interval"]["level"].as_f64().unwrap_or(0.0) * 100.0,
        a["probability_of_success"].as_f64().unwrap_or(0.0),
        a["stated_risk_level"].as_str().unwrap_or("?"),
        a["updated_risk_level"].as_str().unwrap_or("?"),
        a["adjusted_score"].as_f64().unwrap_or(f64::NAN),
    )?;
    Ok(())
}
