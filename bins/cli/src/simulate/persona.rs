//! The persona scenario of `learnloop simulate`: users with a preferred
//! model per task type who like it most of the time and now and then like
//! another one too (every seed draws its own users, tasks, preferences and
//! noise). Responses and their feedback (thumbs up / down) are fed causally
//! in batches through the host; the plugin predicts each held-out feedback
//! before it learns from anything later, and the daily `preference_update`
//! job runs after every batch.
//!
//! Decisions reported: the preferred model of each (user, task) against the
//! generating truth and against "the model the user was served most"; the
//! held-out accuracy against its ceiling (the best any (task, model) rule
//! could reach on the same events) and against "always the most common
//! answer".

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use learnloop_core::{Record, Timestamp, WorkspaceId, parse_json_record};
use learnloop_plugin_host::IngestStatus;
use learnloop_stats::SplitMix64 as Rng;
use serde_json::{Value, json};

use super::{Report, Row, TempDir};

const HOUR: i64 = 3_600_000_000;
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
const MODELS: [&str; 4] = ["gpt-4", "claude", "llama3", "mistral"];
const TASKS: [&str; 4] = ["code_generation", "writing", "analysis", "research"];
/// Feedback events per stream and per batch.
const N: usize = 4000;
const BATCH: usize = 250;
const WS: &str = "simulation";

/// One user's generating truth.
struct User {
    name: String,
    /// task → preferred model (index into MODELS); the user's tasks only.
    preferred: BTreeMap<usize, usize>,
    p_liked: f64,
    p_other: f64,
}

fn users(rng: &mut Rng) -> Vec<User> {
    let n = 3 + (rng.next_u64() % 4) as usize;
    (0..n)
        .map(|u| {
            let tasks = 2 + (rng.next_u64() % 3) as usize;
            let first = (rng.next_u64() % 4) as usize;
            let preferred = (0..tasks).map(|k| ((first + k) % 4, (rng.next_u64() % 4) as usize)).collect();
            User {
                name: format!("user-{u}"),
                preferred,
                p_liked: 0.7 + 0.27 * rng.uniform(),
                p_other: 0.03 + 0.3 * rng.uniform(),
            }
        })
        .collect()
}

fn time(us: i64) -> String {
    Timestamp::from_micros(us).map(|t| t.to_rfc3339()).unwrap_or_default()
}

fn record(v: Value) -> Result<Record> {
    parse_json_record(&v.to_string(), &Default::default())
        .map_err(|e| anyhow::anyhow!("generated record is invalid: {e}"))
}

/// One served response and its feedback.
struct Event {
    user: usize,
    task: usize,
    model: usize,
    liked: bool,
}

pub fn run(seed: u64, config: &learnloop_config::Config) -> Result<Report> {
    let mut rng = Rng::new(seed ^ 0x9E25_05A5);
    let people = users(&mut rng);
    let events: Vec<Event> = (0..N)
        .map(|_| {
            let user = (rng.next_u64() % people.len() as u64) as usize;
            let tasks: Vec<usize> = people[user].preferred.keys().copied().collect();
            let task = tasks[(rng.next_u64() % tasks.len() as u64) as usize];
            let model = (rng.next_u64() % MODELS.len() as u64) as usize;
            let p = if people[user].preferred[&task] == model { people[user].p_liked } else { people[user].p_other };
            Event { user, task, model, liked: rng.uniform() < p }
        })
        .collect();
    let dir = TempDir::new("persona")?;
    let host = super::host(dir.path(), "persona", config)?;
    let ws = WorkspaceId::parse("workspace", WS).map_err(anyhow::Error::msg)?;
    let now = Timestamp::from_micros(T0 + (N as i64 + 10) * HOUR).context("simulation clock out of range")?;
    for (b, batch) in events.chunks(BATCH).enumerate() {
        let mut recs = Vec::with_capacity(batch.len() * 2);
        for (k, e) in batch.iter().enumerate() {
            let i = b * BATCH + k;
            let t = T0 + i as i64 * HOUR;
            recs.push(record(json!({"type": "prediction", "id": format!("resp-{i}"), "workspace": WS, "plugin": "persona",
                "subject": people[e.user].name, "kind": TASKS[e.task], "label": MODELS[e.model], "event_time": time(t)}))?);
            recs.push(record(
                json!({"type": "outcome", "id": format!("fb-{i}"), "workspace": WS, "plugin": "persona",
                "prediction_id": format!("resp-{i}"), "label": if e.liked { "thumbs_up" } else { "thumbs_down" },
                "event_time": time(t + 60_000_000)}),
            )?);
        }
        let statuses = host.ingest(recs, now)?;
        if let Some(bad) = statuses.iter().find(|s| !matches!(s, IngestStatus::Inserted)) {
            bail!("the host did not take a generated record: {bad:?}");
        }
        host.run_job("persona", "preference_update", "simulate", None, 1)?;
    }
    let get = |path: &str| -> Result<Value> {
        Ok(host
            .handle("persona", &ws, "GET", path, Default::default(), Value::Null)
            .map_err(|e| anyhow::anyhow!("GET {path}: {e}"))?
            .body)
    };
    // Preferred model per (user, task): learned vs truth vs most served.
    let (mut pairs, mut right, mut naive_right) = (0usize, 0usize, 0usize);
    let mut fraction = 0.2;
    for (u, person) in people.iter().enumerate() {
        let p = get(&format!("/users/{}/preferences", person.name))?;
        fraction = p["held_out"]["fraction"].as_f64().unwrap_or(fraction);
        for (&task, &truth) in &person.preferred {
            pairs += 1;
            right += usize::from(p["preferred_models"][TASKS[task]]["preferred_model"] == MODELS[truth]);
            let mut served = [0usize; 4];
            for e in events.iter().filter(|e| e.user == u && e.task == task) {
                served[e.model] += 1;
            }
            let most = (0..4).max_by_key(|&m| (served[m], std::cmp::Reverse(m))).unwrap_or(0);
            naive_right += usize::from(most == truth);
        }
    }
    // Held-out feedback: accuracy, its ceiling, and "always the most common answer".
    let stats = get("/stats")?;
    let acc = stats["preference_accuracy"].as_f64().context("/stats has no preference_accuracy")?;
    let ceiling = stats["accuracy_ceiling"].as_f64().context("/stats has no accuracy_ceiling")?;
    let scored = stats["held_out_scored"].as_u64().unwrap_or(0);
    let (mut held, mut held_liked) = (0usize, 0usize);
    for (i, e) in events.iter().enumerate() {
        if learnloop_plugin_persona::persona::held_out(&format!("fb-{i}"), fraction) {
            held += 1;
            held_liked += usize::from(e.liked);
        }
    }
    if held == 0 || pairs == 0 {
        bail!("the stream produced no held-out feedback");
    }
    let majority = held_liked.max(held - held_liked) as f64 / held as f64;
    let rows = vec![
        Row {
            decision: "preferred model per user and task".into(),
            metric: "share right".into(),
            learned: right as f64 / pairs as f64,
            truth: Some(1.0),
            baseline: naive_right as f64 / pairs as f64,
            baseline_rule: "the model the user was served most".into(),
            lower_is_better: false,
            beats_baseline: right > naive_right,
        },
        Row {
            decision: "liked or not (held out)".into(),
            metric: "accuracy".into(),
            learned: acc,
            truth: Some(ceiling),
            baseline: majority,
            baseline_rule: "always the most common answer".into(),
            lower_is_better: false,
            beats_baseline: acc > majority,
        },
        Row {
            decision: "held-out accuracy of its ceiling".into(),
            metric: "accuracy / ceiling".into(),
            learned: acc / ceiling,
            truth: Some(1.0),
            baseline: majority / ceiling,
            baseline_rule: "always the most common answer".into(),
            lower_is_better: false,
            beats_baseline: acc > majority,
        },
    ];
    Ok(Report {
        plugin: "persona",
        seed,
        stream: json!({
            "users": people.len(), "user_task_pairs": pairs, "feedback_events": N, "batch": BATCH, "held_out_scored": scored,
            "models": MODELS.len(),
            "like_rates": people.iter().map(|p| json!({"user": p.name, "preferred": (p.p_liked * 100.0).round() / 100.0, "others": (p.p_other * 100.0).round() / 100.0})).collect::<Vec<_>>(),
        }),
        rows,
    })
}
