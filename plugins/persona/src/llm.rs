//! The LLM path: prompts for hypotheses and for interaction analysis, and
//! strict validation of the model's structured (JSON) answers. Anything
//! that does not validate is a handled error: the caller takes the
//! rule-based path and records why.

use std::collections::BTreeMap;

use learnloop_plugin_api::{Context, LlmRequest};
use serde_json::{Value, json};

use crate::config::Config;
use crate::rules::Hypothesis;

/// Why the LLM's answer was not used.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmStatus {
    /// Used.
    Used,
    /// `use_llm = false`.
    Disabled,
    /// No usable answer: no LLM configured, unreachable, timed out, or a
    /// reply the client already rejected (JSON asked for, prose answered).
    NoAnswer,
    /// The batch was larger than `llm_max_batch`.
    SkippedBatch,
    /// The answer did not validate (the reason).
    Malformed(String),
    /// Queued for the `enrich` job: the rules' analysis stands until it
    /// asks the LLM.
    Pending,
    /// The enrichment queue was full (`llm_queue_cap`): rules only.
    QueueFull,
    /// The interaction was undone before the `enrich` job reached it, so
    /// the LLM was not asked.
    Undone,
}

impl LlmStatus {
    /// The label recorded in persona updates and responses.
    pub fn label(&self) -> &'static str {
        match self {
            LlmStatus::Used => "used",
            LlmStatus::Disabled => "disabled",
            LlmStatus::NoAnswer => "no_answer",
            LlmStatus::SkippedBatch => "skipped_batch",
            LlmStatus::Malformed(_) => "malformed",
            LlmStatus::Pending => "pending",
            LlmStatus::QueueFull => "queue_full",
            LlmStatus::Undone => "undone",
        }
    }
}

/// Asks the LLM for JSON and parses it; `Err(status)` when it cannot be used.
fn ask(ctx: &mut dyn Context, system: &str, prompt: String) -> Result<Value, LlmStatus> {
    let answer = match ctx.llm_generate(&LlmRequest { system: system.into(), prompt, json: true }) {
        Ok(Some(a)) => a,
        Ok(None) | Err(_) => return Err(LlmStatus::NoAnswer),
    };
    serde_json::from_str(answer.trim()).map_err(|e| LlmStatus::Malformed(format!("not JSON: {e}")))
}

const HYPOTHESIZE_SYSTEM: &str = "You guess what a user of a coding assistant wants from a short input. \
Answer only JSON: {\"hypotheses\": [{\"text\": \"Do you want to ...?\", \"confidence\": 0.0-1.0}, ...]} \
with exactly 3 hypotheses, most likely first, personalised by the user's goals, preferences, style facets and history.";

/// Three hypotheses from the LLM, validated: exactly 3 (more are cut),
/// non-empty texts of at most 300 characters, confidences in `[0, 1]`.
pub fn hypothesize(ctx: &mut dyn Context, input: &str, context: &Value) -> Result<Vec<Hypothesis>, LlmStatus> {
    let prompt = format!("User input: {input:?}\nWhat we know about the user (JSON): {context}");
    let v = ask(ctx, HYPOTHESIZE_SYSTEM, prompt)?;
    let list = v
        .get("hypotheses")
        .and_then(Value::as_array)
        .ok_or_else(|| LlmStatus::Malformed("no `hypotheses` array".into()))?;
    if list.len() < 3 {
        return Err(LlmStatus::Malformed(format!("{} hypotheses, expected 3", list.len())));
    }
    let mut out = Vec::new();
    for (i, h) in list.iter().take(3).enumerate() {
        let text = h.get("text").and_then(Value::as_str).map(str::trim).unwrap_or_default();
        if text.is_empty() || text.chars().count() > 300 {
            return Err(LlmStatus::Malformed(format!("hypotheses[{i}].text is empty or longer than 300 characters")));
        }
        let c = h.get("confidence").and_then(Value::as_f64).filter(|c| (0.0..=1.0).contains(c));
        let Some(c) = c else {
            return Err(LlmStatus::Malformed(format!("hypotheses[{i}].confidence is not a number in [0, 1]")));
        };
        out.push(Hypothesis {
            id: format!("h{}", i + 1),
            text: text.to_string(),
            confidence: (c * 100.0).round() / 100.0,
        });
    }
    Ok(out)
}

const ANALYSE_SYSTEM: &str = "You analyse one interaction of a user with a coding assistant to update the user's persona. \
Answer only JSON: {\"facet_deltas\": {\"<facet>\": number}, \"goals\": [\"<goal>\"], \
\"preferences\": [{\"item\": \"<technology or habit>\", \"category\": \"<what it competes with, e.g. containers>\", \"avoid\": false}]}. \
Use only the listed facets; deltas are small (|delta| <= the given maximum); list only goals and preferences the interaction shows.";

/// The LLM's analysis of one interaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Analysis {
    /// Facet deltas (only configured facets, |d| ≤ max_llm_delta).
    pub facet_deltas: BTreeMap<String, f64>,
    /// Goals.
    pub goals: Vec<String>,
    /// Preferences (item, category, avoid).
    pub preferences: Vec<(String, String, bool)>,
}

/// Asks the LLM to analyse an interaction and validates the answer.
pub fn analyse(
    ctx: &mut dyn Context,
    cfg: &Config,
    interaction: &Value,
    facets: &BTreeMap<String, f64>,
) -> Result<Analysis, LlmStatus> {
    let prompt = format!(
        "Facets (0..1): {}\nMaximum |delta|: {}\nInteraction (JSON): {interaction}",
        json!(facets),
        cfg.max_llm_delta
    );
    let v = ask(ctx, ANALYSE_SYSTEM, prompt)?;
    validate_analysis(&v, cfg)
}

/// The validation of an analysis answer (separate for tests).
pub fn validate_analysis(v: &Value, cfg: &Config) -> Result<Analysis, LlmStatus> {
    let bad = |m: String| Err(LlmStatus::Malformed(m));
    let Some(obj) = v.as_object() else { return bad("the answer is not a JSON object".into()) };
    let mut a = Analysis::default();
    if let Some(d) = obj.get("facet_deltas") {
        let Some(d) = d.as_object() else { return bad("facet_deltas is not an object".into()) };
        for (f, x) in d {
            if !cfg.facets.contains(f) {
                return bad(format!("facet_deltas.{f}: not a configured facet"));
            }
            match x.as_f64() {
                Some(x) if x.is_finite() && x.abs() <= cfg.max_llm_delta + 1e-12 => {
                    if x != 0.0 {
                        a.facet_deltas.insert(f.clone(), x);
                    }
                }
                _ => return bad(format!("facet_deltas.{f}: expected a number with |delta| <= {}", cfg.max_llm_delta)),
            }
        }
    }
    if let Some(g) = obj.get("goals") {
        let Some(g) = g.as_array() else { return bad("goals is not an array".into()) };
        if g.len() > 5 {
            return bad("more than 5 goals".into());
        }
        for (i, x) in g.iter().enumerate() {
            match x.as_str().map(str::trim) {
                Some(s) if !s.is_empty() && s.chars().count() <= 200 => a.goals.push(s.to_string()),
                _ => return bad(format!("goals[{i}]: expected a non-empty string of at most 200 characters")),
            }
        }
    }
    if let Some(p) = obj.get("preferences") {
        let Some(p) = p.as_array() else { return bad("preferences is not an array".into()) };
        if p.len() > 10 {
            return bad("more than 10 preferences".into());
        }
        for (i, x) in p.iter().enumerate() {
            let item = x.get("item").and_then(Value::as_str).map(str::trim).unwrap_or_default();
            if item.is_empty() || item.chars().count() > 100 {
                return bad(format!("preferences[{i}].item: expected a non-empty string of at most 100 characters"));
            }
            let item = crate::rules::canonical(item);
            let category = match x.get("category") {
                None | Some(Value::Null) => crate::rules::category_of(&item),
                Some(Value::String(c)) if !c.trim().is_empty() && c.len() <= 64 => c.trim().to_lowercase(),
                _ => return bad(format!("preferences[{i}].category: expected a short string")),
            };
            let avoid = match x.get("avoid") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                _ => return bad(format!("preferences[{i}].avoid: expected a boolean")),
            };
            a.preferences.push((item, category, avoid));
        }
    }
    Ok(a)
}
