//! `learnloop quickstart`: the first thing a newcomer runs.
//!
//! It uses the embedded default (one data directory, no servers), generates
//! the deterministic sample, ingests it, ingests it again to show that
//! retries are duplicates, ingests a file with bad lines to show how they are
//! reported, runs each plugin's first job and prints what the store holds
//! and what the plugins learned: sentences and tables in at most 100
//! columns, or one JSON document with `--json`.
//!
//! It is idempotent: the sample is the same bytes every time (so a second
//! ingest is all duplicates) and a job the quickstart has already run on
//! the data directory is not run again — its recorded report is shown — so
//! a second run stores nothing new (no events, proposals, insights or
//! alerts).

use std::io::Write;

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use learnloop_core::{ImprovementStatus, JobStatus, PluginName, RecordDefaults, WorkspaceId};
use learnloop_store::JobRunQuery;
use serde_json::{Map, Value, json};

use crate::Env;
use crate::ingest::{Options, Source, ingest, summary_lines};
use crate::sample::{Spec, write};

/// What the trust plugin learned about the sample's agents, through the
/// routes a client calls (`learnloop call trust GET /agents`, `/rules`).
/// Returns both answers for `--json`.
fn trust_summary(host: &learnloop_plugin_host::PluginHost, ws: &str, json: bool) -> Result<Value> {
    let ws = WorkspaceId::parse("default_workspace", ws).map_err(anyhow::Error::msg)?;
    let get = |path: &str| -> Result<Value> {
        Ok(host
            .handle("trust", &ws, "GET", path, Default::default(), Value::Null)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .body)
    };
    let agents = get("/agents")?;
    say(json, "");
    say(
        json,
        &format!(
            "-- what trust learned about the agents (`learnloop call trust GET /agents`; weights version {})",
            agents["weights_version"].as_u64().unwrap_or(0)
        ),
    );
    say(
        json,
        &format!(
            "{:10} {:>5}  {:>8}  {:14}  {:>11}  {}",
            "agent", "trust", "approval", "interval", "evaluations", "trend"
        ),
    );
    for a in agents["agents"].as_array().into_iter().flatten().take(4) {
        let b = &a["bayesian"];
        say(
            json,
            &format!(
                "{:10} {:>5.2}  {:>8.2}  [{:.2}, {:.2}]    {:>11}  {}",
                a["agent_id"].as_str().unwrap_or("?"),
                a["overall_trust_score"].as_f64().unwrap_or(f64::NAN),
                a["accuracy_score"].as_f64().unwrap_or(f64::NAN),
                b["credible_interval"][0].as_f64().unwrap_or(f64::NAN),
                b["credible_interval"][1].as_f64().unwrap_or(f64::NAN),
                a["stats"]["evaluated"].as_u64().unwrap_or(0),
                a["trend"].as_str().unwrap_or("?")
            ),
        );
    }
    let rules = get("/rules")?;
    let shown: Vec<&str> =
        rules["rules"].as_array().into_iter().flatten().take(3).filter_map(|r| r["rule"].as_str()).collect();
    if shown.is_empty() {
        say(json, "rules suggested: none yet");
    } else {
        say(json, "rules suggested:");
        for r in shown {
            say(json, &wrap(&format!("  - {r}"), "    "));
        }
    }
    Ok(json!({"agents": agents, "rules": rules}))
}

/// The text sections go to stdout as they happen; with `--json` nothing is
/// printed until the end, when one JSON document says everything.
pub fn run(env: &Env) -> Result<()> {
    let config = &env.config;
    let json = env.json;
    let mut doc = Map::new();
    crate::create_dirs(config)?;
    let dir = config.data_dir.join("sample");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let host = crate::open_host(config)?;
    let store = host.store().clone();
    let ws = &config.default_workspace;
    say(json, &format!("== learnloop quickstart: embedded store at {}", config.data_dir.display()));
    doc.insert("data_dir".into(), json!(config.data_dir));
    doc.insert("workspace".into(), json!(ws));

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
        workspace: ws.clone(),
    };
    let written = write(&spec, std::fs::File::create(&events)?, &ProgressBar::hidden())?;
    say(json, "");
    say(
        json,
        &format!("-- generated {} sample events for {} into {}", written.records, plugins.join(", "), events.display()),
    );
    doc.insert("sample".into(), json!({"file": events, "records": written.records, "plugins": written.plugins}));

    let opts = Options {
        format: None,
        defaults: RecordDefaults {
            workspace: Some(WorkspaceId::parse("default_workspace", ws).map_err(anyhow::Error::msg)?),
            record_type: None,
        },
        batch_size: 20_000,
        progress: false,
    };
    let mut ingests = Vec::new();
    let mut step = |title: &str, what: &str, file: &std::path::Path| -> Result<()> {
        say(json, "");
        say(json, &format!("-- {title}"));
        let summary = ingest(&host, vec![Source::File(file.to_path_buf())], &opts)?;
        for line in summary_lines(&summary) {
            say(json, &wrap(&line, "      "));
        }
        let mut v = serde_json::to_value(&summary)?;
        v["step"] = json!(what);
        ingests.push(v);
        Ok(())
    };
    step(&format!("ingest {}", events.display()), "sample", &events)?;
    step("ingest the same file again: retries are duplicates, nothing is counted twice", "sample again", &events)?;

    let bad = dir.join("bad-lines.jsonl");
    let mut f = std::fs::File::create(&bad)?;
    // Its own model and an event time inside the sample's month: windows are
    // measured back from a model's newest prediction, so a "now" here would
    // move price-model's windows away from its history.
    writeln!(
        f,
        r#"{{"type":"prediction","id":"qs-good","workspace":"{ws}","plugin":"drift","subject":"demo-model","kind":"regression","value":12.5,"event_time":"2026-01-15T00:00:00Z"}}"#
    )?;
    writeln!(
        f,
        r#"{{"type":"prediction","id":"qs-nan","workspace":"{ws}","plugin":"drift","subject":"price-model","kind":"regression","value":NaN}}"#
    )?;
    writeln!(
        f,
        r#"{{"type":"prediction","workspace":"{ws}","plugin":"drift","subject":"price-model","kind":"regression","value":1}}"#
    )?;
    writeln!(
        f,
        r#"{{"type":"prediction","id":"qs-unknown","workspace":"{ws}","plugin":"astrology","subject":"x","kind":"y"}}"#
    )?;
    writeln!(
        f,
        r#"{{"type":"outcome","id":"qs-orphan","workspace":"{ws}","plugin":"drift","prediction_id":"never-sent","value":3}}"#
    )?;
    drop(f);
    step("ingest a file with bad lines: each is reported, the good line lands", "bad lines", &bad)?;
    doc.insert("ingests".into(), json!(ingests));

    say(json, "");
    say(json, "-- what the store holds (`learnloop stats`)");
    if !json {
        crate::stats::print(store.as_ref(), None, false)?;
    }
    doc.insert("counts".into(), json!(store.counts(None)?));

    say(json, "");
    say(json, "-- what the plugins learned (each plugin's first job)");
    let mut jobs = Vec::new();
    for (name, loaded) in host.plugins() {
        let Some(job) = loaded.manifest.jobs.first() else { continue };
        // Idempotent: a job the quickstart already ran on this data directory
        // is not run again (a second run would propose the same parameters
        // again and raise the same alerts); its recorded report is shown.
        let plugin = PluginName::parse("plugin", name).map_err(anyhow::Error::msg)?;
        let earlier = store
            .job_runs(&JobRunQuery { plugin: Some(plugin), job: Some(job.name.clone()), slot: None, limit: 1000 })?
            .into_iter()
            .find(|r| r.runner == RUNNER && r.status == JobStatus::Succeeded);
        let (run, fresh) = match earlier {
            Some(r) => (r, false),
            None => (host.run_job(name, &job.name, RUNNER, None, 1)?, true),
        };
        let report = run.report.clone().unwrap_or_default();
        for (w, r) in report["workspaces"].as_object().into_iter().flatten() {
            let t = &r["totals"];
            let rate =
                r["success_rate"].as_f64().map(|x| format!(", success rate {:.1}%", x * 100.0)).unwrap_or_default();
            // Whatever else the job counted (drifted models, patterns, alerts, ...).
            let extra: Vec<String> = t
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| !["predictions", "outcomes"].contains(&k.as_str()) && v.is_u64())
                .map(|(k, v)| format!("{} {v}", k.replace('_', " ")))
                .collect();
            let extra = if extra.is_empty() { String::new() } else { format!("; {}", extra.join(", ")) };
            say(
                json,
                &wrap(
                    &format!(
                        "{name:8} {} {} in {w}: {} subjects, {} predictions, {} outcomes{rate}{extra}",
                        job.name,
                        run.status.as_str(),
                        r["subjects"].as_u64().unwrap_or(0),
                        t["predictions"].as_u64().unwrap_or(0),
                        t["outcomes"].as_u64().unwrap_or(0),
                    ),
                    "         ",
                ),
            );
        }
        if !fresh {
            say(
                json,
                &wrap(
                    &format!(
                        "         (already ran: run #{}; `learnloop jobs run {name} {}` runs it again)",
                        run.id, job.name
                    ),
                    "          ",
                ),
            );
        }
        jobs.push(json!({"plugin": name, "job": job.name, "ran_now": fresh, "run": run}));
    }
    doc.insert("jobs".into(), json!(jobs));
    if host.plugins().contains_key("trust") {
        doc.insert("trust".into(), trust_summary(&host, ws, json)?);
    }
    if host.plugins().contains_key("cost") {
        doc.insert("cost".into(), cost_learned(&host, ws, json)?);
    }
    say(json, "");
    say(json, "-- what the improvement lifecycle did with what was learned (`learnloop improvements list`)");
    let improvements = store.improvements(&learnloop_store::ImprovementQuery::default())?;
    if improvements.is_empty() {
        say(json, "no parameter set proposed yet");
    }
    for i in improvements.iter().rev() {
        say(json, &wrap(&improvement_line(i), "      "));
        if let Some(why) = improvement_reason(i) {
            say(json, &wrap(&format!("      {why}"), "      "));
        }
    }
    if !improvements.is_empty() {
        say(json, "(`learnloop improvements show ID` shows an improvement's parameters, evidence and history)");
    }
    doc.insert("improvements".into(), json!(improvements));
    let alerts = store.alerts(&learnloop_store::AlertQuery { since: None, limit: 100, ..Default::default() })?;
    for a in alerts.iter().take(5) {
        let severity = format!("{:?}", a.severity).to_lowercase();
        say(json, &wrap(&format!("alert    {severity} {} {}: {}", a.plugin, a.kind, a.message), "         "));
    }
    if alerts.len() > 5 {
        say(json, &format!("         ... and {} more alerts (GET /api/v1/alerts)", alerts.len() - 5));
    }
    doc.insert("alerts".into(), json!(alerts));
    doc.insert("notifications".into(), notifications_summary(env, store.clone(), json)?);
    if host.plugins().contains_key("persona") {
        doc.insert("persona".into(), persona_summary(&host, ws, json)?);
    }
    if host.plugins().contains_key("drift") {
        doc.insert("drift".into(), drift_summary(&host, ws, json)?);
    }
    if json {
        outln!("{}", Value::Object(doc))?;
    } else {
        outln!(
            "\nNext: `learnloop plugins list`, `learnloop export --plugin cost | head`,\n      \
             `learnloop ingest your-events.jsonl`, `learnloop stats --json`."
        )?;
    }
    Ok(())
}

/// Delivers what the run put in the outbox (alerts raised, improvements
/// proposed and decided) to a file destination of the quickstart's own,
/// `<data_dir>/quickstart-notifications.jsonl`, one webhook event per line,
/// and shows the first. Configured destinations are not sent sample data.
fn notifications_summary(env: &Env, store: std::sync::Arc<dyn learnloop_store::Store>, json: bool) -> Result<Value> {
    say(json, "");
    say(json, "-- what learnloop pushes out (`learnloop notifications list`; README \"Notifications\")");
    let path = env.config.data_dir.join("quickstart-notifications.jsonl");
    let dests =
        learnloop_notify::Destinations { list: vec![learnloop_notify::Destination::file("quickstart", path.clone())] };
    let settings = learnloop_notify::Settings::from_config(&env.config.notify);
    let deliverer = learnloop_notify::Deliverer::new(store.clone(), dests, settings, "quickstart");
    if deliverer.run_once()?.is_none() {
        say(json, "a learnloop-scheduler is delivering notifications now; see `learnloop notifications list`");
        return Ok(json!({"file": path, "delivered": 0}));
    }
    let query = learnloop_store::DeliveryQuery {
        destination: Some("quickstart".into()),
        status: Some(learnloop_core::DeliveryStatus::Delivered),
        limit: 10_000,
        ..Default::default()
    };
    let delivered = store.deliveries(&query)?;
    let mut by_event: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for d in &delivered {
        *by_event.entry(d.notification.event.clone()).or_default() += 1;
    }
    let counts: Vec<String> = by_event.iter().map(|(e, n)| format!("{n} {e}")).collect();
    say(
        json,
        &wrap(
            &format!(
                "{} notifications delivered to {} ({}), one webhook event per line",
                delivered.len(),
                path.display(),
                if counts.is_empty() { "none".to_string() } else { counts.join(", ") }
            ),
            "  ",
        ),
    );
    // The first event as a receiver gets it (the oldest delivered).
    let first = delivered
        .last()
        .map(|d| learnloop_notify::format::webhook_event(&d.notification, &env.config.notify.public_url));
    if let Some(f) = &first {
        let ws = f.workspace.unwrap_or("-");
        say(
            json,
            &wrap(
                &format!(
                    "first: {} {} ({}, {ws}/{}): {} [id {}; the whole event: `head -1 {}`]",
                    f.kind,
                    f.subject,
                    format!("{:?}", f.severity).to_lowercase(),
                    f.plugin,
                    f.summary,
                    f.id,
                    path.display()
                ),
                "       ",
            ),
        );
    }
    say(
        json,
        &wrap(
            "To send them to a webhook, Slack or PagerDuty, add [[notify.destinations]] to the config and run learnloop-scheduler.",
            "",
        ),
    );
    Ok(json!({"file": path, "delivered": delivered.len(), "by_event": by_event, "first": first}))
}

/// Who the quickstart's job runs are recorded as; a second quickstart finds
/// them by it.
const RUNNER: &str = "quickstart";

/// Text output is kept within this many columns (sentences wrap).
const WIDTH: usize = 100;

/// Prints a line of the text output (nothing with `--json`). A closed
/// stdout is recorded by `outln!` and ends the command quietly in `main`.
fn say(json: bool, line: &str) {
    if !json {
        let _ = outln!("{line}");
    }
}

/// Wraps a sentence at [`WIDTH`] columns on spaces, keeping its spacing
/// (leading spaces, aligned columns); continuation lines start with
/// `indent`. A single word longer than a line is left whole.
pub fn wrap(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        // The next word with the spaces before it.
        let word_start = rest.len() - rest.trim_start_matches(' ').len();
        let word_end = rest[word_start..].find(' ').map_or(rest.len(), |i| word_start + i);
        let (spaces, word) = (&rest[..word_start], &rest[word_start..word_end]);
        rest = &rest[word_end..];
        let has_word = !line.trim().is_empty();
        if has_word && line.chars().count() + spaces.len() + word.chars().count() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = format!("{indent}{word}");
        } else {
            line.push_str(spaces);
            line.push_str(word);
        }
    }
    out.push_str(line.trim_end());
    out
}

/// One improvement as a sentence: what, its status (the store's name, the
/// one `learnloop improvements list --status` takes) and its backtest.
fn improvement_line(i: &learnloop_core::Improvement) -> String {
    let b = i.backtest.clone().unwrap_or_default();
    let backtest = match (b["candidate"].as_f64(), b["baseline"].as_f64()) {
        (Some(c), Some(base)) => format!(
            "backtest {} {c:.4} vs {base:.4} in force ({:+.1}%, confidence {:.2}, {} held-out outcomes)",
            i.metric,
            b["relative_gain"].as_f64().unwrap_or(f64::NAN) * 100.0,
            b["confidence"].as_f64().unwrap_or(f64::NAN),
            b["n"].as_u64().unwrap_or(0)
        ),
        _ => "not backtested".to_string(),
    };
    format!("#{:<4} {}/{} v{} {}: {backtest}", i.id, i.plugin, i.target, i.version, i.status.as_str())
}

/// Why an improvement is where it is, from its last lifecycle step:
/// waiting for approval (and why), or why it was rejected.
fn improvement_reason(i: &learnloop_core::Improvement) -> Option<String> {
    let note = &i.history.last()?.note;
    let reasons: Vec<&str> = note["reasons"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    match i.status {
        ImprovementStatus::Backtested => Some(format!(
            "waiting for approval (`learnloop improvements approve {}`): {}",
            i.id,
            if reasons.is_empty() { "the policy does not apply it on its own".to_string() } else { reasons.join("; ") }
        )),
        ImprovementStatus::Rejected | ImprovementStatus::RolledBack => {
            note["reason"].as_str().map(|r| format!("why: {r}"))
        }
        ImprovementStatus::Applied => note["by"].as_str().map(|by| format!("applied by {by}; being monitored")),
        _ => None,
    }
}

/// What the persona plugin learned about the sample's users, through the
/// same routes a client calls (`learnloop call persona GET /users/user-0`).
/// Returns the answers for `--json`.
fn persona_summary(host: &learnloop_plugin_host::PluginHost, ws: &str, json: bool) -> Result<Value> {
    let ws = WorkspaceId::parse("default_workspace", ws).map_err(anyhow::Error::msg)?;
    let call = |method: &str, path: &str, body: Value| -> Result<Value> {
        Ok(host
            .handle("persona", &ws, method, path, Default::default(), body)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .body)
    };
    let list = |v: &Value| -> String {
        let items: Vec<&str> = v.as_array().into_iter().flatten().filter_map(|m| m["content"].as_str()).collect();
        if items.is_empty() { "none".into() } else { items.join("; ") }
    };
    let number = |v: &Value| {
        v.as_f64()
            .map_or_else(|| v.to_string(), |x| if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.2}") })
    };
    say(json, "");
    say(json, "-- what persona learned per user (`learnloop call persona GET /users/USER`, `.../preferences`)");
    let mut users = Map::new();
    for user in ["user-0", "user-1", "user-2"] {
        let Ok(p) = call("GET", &format!("/users/{user}"), Value::Null) else { continue };
        let facets: Vec<String> = p["facets"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{} {}", k.replace('_', " "), number(v)))
            .collect();
        say(
            json,
            &wrap(
                &format!("{user}: {} interactions; facets {}", number(&p["interaction_count"]), facets.join(", ")),
                "        ",
            ),
        );
        say(json, &wrap(&format!("        goals: {}", list(&p["goals"])), "          "));
        say(json, &wrap(&format!("        preferences: {}", list(&p["preferences"])), "          "));
        let f = call("GET", &format!("/users/{user}/preferences"), Value::Null)?;
        let models: Vec<String> = f["preferred_models"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(task, m)| format!("{task} → {}", m["preferred_model"].as_str().unwrap_or("?")))
            .collect();
        let acc = f["preference_accuracy"].as_f64().map_or("n/a".to_string(), |a| format!("{:.1}%", a * 100.0));
        let next = f["next_activity"]["task_type"].as_str().unwrap_or("?");
        say(
            json,
            &wrap(
                &format!(
                    "        preferred models: {}; held-out accuracy {acc} ({} scored); next activity: {next}",
                    models.join(", "),
                    number(&f["held_out"]["scored"])
                ),
                "          ",
            ),
        );
        users.insert(user.to_string(), json!({"persona": p, "preferences": f}));
    }
    let h = call("POST", "/hypothesize", json!({"user_id": "user-0", "input_text": "deploy api"}))?;
    say(json, &format!("hypotheses for user-0 \"deploy api\" ({}):", h["source"].as_str().unwrap_or("?")));
    for x in h["hypotheses"].as_array().into_iter().flatten() {
        say(
            json,
            &wrap(
                &format!(
                    "        {} {} (confidence {})",
                    x["id"].as_str().unwrap_or("?"),
                    x["text"].as_str().unwrap_or("?"),
                    number(&x["confidence"])
                ),
                "          ",
            ),
        );
    }
    Ok(json!({"users": users, "hypothesize": h}))
}

/// What the drift plugin learned about the sample's two models, through the
/// same routes a client calls (`learnloop call drift GET /models/price-model/drift`).
/// Returns the answers for `--json`.
fn drift_summary(host: &learnloop_plugin_host::PluginHost, ws: &str, json: bool) -> Result<Value> {
    let ws = WorkspaceId::parse("default_workspace", ws).map_err(anyhow::Error::msg)?;
    let call = |method: &str, path: &str, body: Value| -> Result<Value> {
        Ok(host.handle("drift", &ws, method, path, Default::default(), body).map_err(|e| anyhow::anyhow!("{e}"))?.body)
    };
    say(json, "");
    say(json, "-- what drift learned (`learnloop call drift GET /models/MODEL/drift`, `.../retrain`, `.../weights`)");
    let mut models = Map::new();
    for model in ["price-model", "demand-model"] {
        let Ok(d) = call("GET", &format!("/models/{model}/drift"), Value::Null) else { continue };
        let r = call("GET", &format!("/models/{model}/retrain"), Value::Null)?;
        let w = call("GET", &format!("/models/{model}/weights"), Value::Null)?;
        let weights: Vec<String> = w["ranking"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                format!("{} {:.2}", x["feature"].as_str().unwrap_or("?"), x["weight"].as_f64().unwrap_or(f64::NAN))
            })
            .collect();
        let affected = match &d["feature_drift"]["affected_features"] {
            Value::Array(a) if a.is_empty() => "none".to_string(),
            Value::Array(a) => a
                .iter()
                .map(|f| f.as_str().map_or_else(|| f.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(", "),
            Value::Null => "none".to_string(),
            other => other.as_u64().map_or_else(|| other.to_string(), |n| n.to_string()),
        };
        let reasons = r["reasons"].as_array().filter(|a| !a.is_empty()).map_or(String::new(), |a| {
            format!(" ({})", a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
        });
        let retrain = if r["should_retrain"].as_bool() == Some(true) { "yes" } else { "no" };
        say(
            json,
            &wrap(
                &format!(
                    "{model}: drift {} (affected features: {affected}; concept {}, predictions {}); retrain: {retrain}{reasons}{}",
                    d["severity"].as_str().unwrap_or("?"),
                    d["concept_drift"]["severity"].as_str().unwrap_or("?"),
                    d["prediction_drift"]["severity"].as_str().unwrap_or("?"),
                    r["blocked_by"].as_str().map_or(String::new(), |b| format!(", not yet: {b}"))
                ),
                "             ",
            ),
        );
        say(
            json,
            &wrap(
                &format!(
                    "             feature weights: {}",
                    if weights.is_empty() { "too few outcomes".into() } else { weights.join(", ") }
                ),
                "               ",
            ),
        );
        models.insert(model.to_string(), json!({"drift": d, "retrain": r, "weights": w}));
    }
    // The sample's demand-model serves v1 and v2 half-and-half over its 30
    // days. Creating the test again with the same definition changes nothing.
    let t = call(
        "POST",
        "/ab_tests",
        json!({"id": "demand-v1-v2", "model": "demand-model", "versions": ["v1", "v2"],
        "split": [0.5, 0.5], "start": "2026-01-01T00:00:00Z", "duration_days": 31}),
    )?;
    let r = call("GET", &format!("/ab_tests/{}", t["id"].as_str().unwrap_or("")), Value::Null)?;
    let arms: Vec<String> = r["arms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "{} MAE {:.3} (n {})",
                a["version"].as_str().unwrap_or("?"),
                a["mae"].as_f64().unwrap_or(f64::NAN),
                a["n"].as_u64().unwrap_or(0)
            )
        })
        .collect();
    say(
        json,
        &wrap(
            &format!(
                "A/B test demand-v1-v2 (`learnloop call drift GET /ab_tests/demand-v1-v2`): {}; {}",
                arms.join(" vs "),
                r["conclusion"].as_str().unwrap_or("")
            ),
            "  ",
        ),
    );
    Ok(json!({"models": models, "ab_test": r}))
}

/// What the cost plugin learned from the sample, through its routes
/// (the same answers as `GET /api/v1/cost/params` and `POST /api/v1/cost/assess`).
/// Returns the answers for `--json`.
fn cost_learned(host: &learnloop_plugin_host::PluginHost, ws: &str, json: bool) -> Result<Value> {
    let ws = WorkspaceId::parse("default_workspace", ws).map_err(anyhow::Error::msg)?;
    let call = |method: &str, path: &str, body: Value| -> Result<Value> {
        Ok(host.handle("cost", &ws, method, path, Default::default(), body)?.body)
    };
    let p = call("GET", "/params", Value::Null)?;
    let metrics = call("GET", "/metrics", Value::Null)?;
    let versions: Vec<String> = p["versions"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(target, v)| format!("{} v{}", target.replace('_', " "), v.as_u64().unwrap_or(0)))
        .collect();
    say(json, "");
    say(json, "-- what the cost plugin learned (`learnloop call cost GET /params`, `... GET /metrics`)");
    say(
        json,
        &wrap(
            &format!(
                "versions in force: {}",
                if versions.is_empty() { "built-in defaults".to_string() } else { versions.join(", ") }
            ),
            "  ",
        ),
    );
    let params = &p["params"];
    let by_type: Vec<String> = params["calibration"]["calibration"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !k.contains('|'))
        .map(|(k, v)| format!("{k} {:.0}%", v["mean"].as_f64().unwrap_or(0.0).exp() * 100.0))
        .collect();
    say(json, &wrap(&format!("realised / predicted savings by type: {}", by_type.join(", ")), "  "));
    let last = &metrics["last_cycle"];
    if let (Some(raw), Some(new)) = (last["raw_error"].as_f64(), last["calibrated_error"].as_f64()) {
        say(
            json,
            &wrap(
                &format!(
                    "savings error on the {} newest recommendations (held out): raw predictions {:.1}%, calibrated {:.1}%",
                    last["held_out"].as_u64().unwrap_or(0),
                    raw * 100.0,
                    new * 100.0
                ),
                "  ",
            ),
        );
    }
    let risks: Vec<String> = params["risk_levels"]["risk"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !k.contains('|'))
        .map(|(k, v)| {
            format!(
                "{k} {} ({:.0}% fail)",
                v["risk_level"].as_str().unwrap_or("?"),
                v["failure_rate"].as_f64().unwrap_or(0.0) * 100.0
            )
        })
        .collect();
    say(json, &wrap(&format!("learned risk levels: {}", risks.join(", ")), "  "));
    let weights: Vec<String> = params["scoring_weights"]["weights"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k} {:.2}", v.as_f64().unwrap_or(0.0)))
        .collect();
    let weights = if weights.is_empty() { "the built-in defaults".to_string() } else { weights.join(", ") };
    say(json, &wrap(&format!("scoring weights (toward factors that predict success): {weights}"), "  "));
    let example = json!({"recommendation_type": "spot_instances", "resource_type": "ec2", "region": "ap-south-1",
        "predicted_savings": 1000.0, "risk_level": "low", "scoring_factors": {"utilization_gap": 0.9, "age_days": 0.2}, "similar_cases": 0});
    let a = call("POST", "/assess", example)?;
    say(json, "assess spot_instances / ec2 / ap-south-1, predicted $1000/month, stated risk low");
    say(json, "(`learnloop call cost POST /assess --body ...`):");
    say(
        json,
        &format!(
            "  calibrated ${:.0} [{:.0}, {:.0}] ({:.0}% interval), P(success) {:.2}, risk {} -> {}, score {:.2}",
            a["calibrated_savings"].as_f64().unwrap_or(0.0),
            a["interval"]["lower"].as_f64().unwrap_or(f64::NAN),
            a["interval"]["upper"].as_f64().unwrap_or(f64::NAN),
            a["interval"]["level"].as_f64().unwrap_or(0.0) * 100.0,
            a["probability_of_success"].as_f64().unwrap_or(0.0),
            a["stated_risk_level"].as_str().unwrap_or("?"),
            a["updated_risk_level"].as_str().unwrap_or("?"),
            a["adjusted_score"].as_f64().unwrap_or(f64::NAN),
        ),
    );
    Ok(json!({"params": p, "metrics": metrics, "assess": a}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_spacing_and_indents_continuations() {
        assert_eq!(wrap("  short  line", "    "), "  short  line");
        let long = format!("cost     {}", "word ".repeat(30));
        let wrapped = wrap(&long, "         ");
        assert!(wrapped.starts_with("cost     word"), "{wrapped}");
        for line in wrapped.lines() {
            assert!(line.chars().count() <= WIDTH, "{line:?}");
        }
        assert!(wrapped.lines().skip(1).all(|l| l.starts_with("         word")), "{wrapped}");
        assert_eq!(wrapped.split_whitespace().filter(|w| *w == "word").count(), 30);
    }
}
