//! The deterministic path: hypotheses from a small topic table personalised
//! by the user's goals, preferences and facets; goal and preference
//! extraction by the seed's keyword rules; facet signals from the selection
//! and the wording. Everything here is a pure function, so replay gives the
//! same persona.

use std::collections::BTreeMap;

use learnloop_plugin_api::JsonSchema;
use serde::{Deserialize, Serialize};

/// A technology the preference rules recognise, with the category in which
/// two different choices contradict each other (Docker vs Podman).
struct Tech {
    name: &'static str,
    category: &'static str,
    tokens: &'static [&'static str],
}

const TECH: &[Tech] = &[
    Tech { name: "Docker", category: "containers", tokens: &["docker", "containerize", "containerized", "containers"] },
    Tech { name: "Podman", category: "containers", tokens: &["podman"] },
    Tech { name: "Kubernetes", category: "orchestration", tokens: &["kubernetes", "k8s"] },
    Tech { name: "Nomad", category: "orchestration", tokens: &["nomad"] },
    Tech { name: "FastAPI", category: "web_framework", tokens: &["fastapi"] },
    Tech { name: "Flask", category: "web_framework", tokens: &["flask"] },
    Tech { name: "Django", category: "web_framework", tokens: &["django"] },
    Tech { name: "Express", category: "web_framework", tokens: &["express"] },
    Tech { name: "Axum", category: "web_framework", tokens: &["axum"] },
    Tech { name: "PostgreSQL", category: "database", tokens: &["postgres", "postgresql"] },
    Tech { name: "MySQL", category: "database", tokens: &["mysql"] },
    Tech { name: "SQLite", category: "database", tokens: &["sqlite"] },
    Tech { name: "MongoDB", category: "database", tokens: &["mongodb", "mongo"] },
    Tech { name: "Python", category: "language", tokens: &["python"] },
    Tech { name: "Rust", category: "language", tokens: &["rust"] },
    Tech { name: "TypeScript", category: "language", tokens: &["typescript"] },
    Tech { name: "Go", category: "language", tokens: &["golang"] },
    Tech { name: "Java", category: "language", tokens: &["java"] },
    Tech { name: "JWT", category: "auth", tokens: &["jwt"] },
    Tech { name: "OAuth2", category: "auth", tokens: &["oauth", "oauth2"] },
    Tech { name: "React", category: "frontend", tokens: &["react"] },
    Tech { name: "Vue", category: "frontend", tokens: &["vue"] },
    Tech { name: "GraphQL", category: "api_style", tokens: &["graphql"] },
    Tech { name: "gRPC", category: "api_style", tokens: &["grpc"] },
    Tech { name: "Jenkins", category: "ci", tokens: &["jenkins"] },
    Tech { name: "GitHub Actions", category: "ci", tokens: &["actions"] },
];

/// The seed's preference keywords: a hypothesis or input naming a
/// technology next to one of these states a preference.
const PREFERENCE_KEYWORDS: &[&str] = &["prefer", "prefers", "like", "likes", "using", "use", "with", "framework", "in"];
/// Words before a technology that turn the preference into an avoidance.
const NEGATIONS: &[&str] = &["without", "not", "avoid", "no", "instead", "never", "except"];
/// Verbs that make a selected hypothesis a goal (the seed: want to / build / create / implement / deploy).
const GOAL_VERBS: &[&str] = &[
    "build",
    "create",
    "implement",
    "deploy",
    "develop",
    "design",
    "write",
    "make",
    "add",
    "migrate",
    "launch",
    "ship",
    "set",
];

/// Goal verbs that name the thing the user is making.
const CREATE_VERBS: &[&str] = &["build", "create", "develop", "make", "launch", "ship"];

/// Lowercase word tokens.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '+' || c == '#'))
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A preference found in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundPreference {
    /// Canonical item, e.g. `Docker`.
    pub item: String,
    /// Contradiction category, e.g. `containers`.
    pub category: String,
    /// True for "avoids".
    pub avoid: bool,
}

/// The seed's rule: a text with a preference keyword states a preference
/// for every technology it names (an avoidance when the nearest keyword
/// within three words before it is a negation).
pub fn extract_preferences(text: &str) -> Vec<FoundPreference> {
    let toks = tokens(text);
    let keyword = toks.iter().any(|t| PREFERENCE_KEYWORDS.contains(&t.as_str()) || NEGATIONS.contains(&t.as_str()));
    let mut out: Vec<FoundPreference> = Vec::new();
    if !keyword {
        return out;
    }
    for (i, t) in toks.iter().enumerate() {
        if let Some(tech) = TECH.iter().find(|x| x.tokens.contains(&t.as_str())) {
            // The nearest keyword within three words before it decides:
            // "without docker, using podman" avoids Docker, prefers Podman.
            let avoid = toks[i.saturating_sub(3)..i]
                .iter()
                .rev()
                .find(|w| NEGATIONS.contains(&w.as_str()) || PREFERENCE_KEYWORDS.contains(&w.as_str()))
                .is_some_and(|w| NEGATIONS.contains(&w.as_str()));
            if !out.iter().any(|p| p.item == tech.name) {
                out.push(FoundPreference { item: tech.name.into(), category: tech.category.into(), avoid });
            }
        }
    }
    out
}

/// The category of a technology name (its lowercase name when unknown).
pub fn category_of(item: &str) -> String {
    let lower = item.to_lowercase();
    TECH.iter()
        .find(|t| t.name.to_lowercase() == lower || t.tokens.contains(&lower.as_str()))
        .map_or(lower, |t| t.category.to_string())
}

/// The canonical spelling of a technology name (unchanged when unknown).
pub fn canonical(item: &str) -> String {
    let lower = item.trim().to_lowercase();
    TECH.iter()
        .find(|t| t.name.to_lowercase() == lower || t.tokens.contains(&lower.as_str()))
        .map_or(item.trim().to_string(), |t| t.name.to_string())
}

/// The action phrase of a hypothesis: "Do you want to build a REST API?" →
/// "build a REST API".
pub fn action_of(hypothesis: &str) -> String {
    let mut s = hypothesis.trim().trim_end_matches(['?', '.', '!']).trim().to_string();
    for prefix in ["do you want to ", "would you like to ", "want to ", "shall we ", "should we ", "let's "] {
        if s.to_lowercase().starts_with(prefix) {
            s = s[prefix.len()..].to_string();
            break;
        }
    }
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => s,
    }
}

/// The seed's goal rule: the selected hypothesis's action is a goal when it
/// starts with a goal verb ("build a REST API").
pub fn extract_goal(hypothesis: &str) -> Option<String> {
    let action = action_of(hypothesis);
    let first = tokens(&action).into_iter().next()?;
    GOAL_VERBS.contains(&first.as_str()).then_some(action)
}

/// The object of a goal: "build a REST API" → "REST API".
pub fn goal_object(goal: &str) -> Option<String> {
    let words: Vec<&str> = goal.split_whitespace().collect();
    let mut i = 1;
    if words.first().is_some_and(|w| w.eq_ignore_ascii_case("set"))
        && words.get(1).is_some_and(|w| w.eq_ignore_ascii_case("up"))
    {
        i = 2;
    }
    while i < words.len() && ["a", "an", "the", "your", "my", "our", "new"].contains(&words[i].to_lowercase().as_str())
    {
        i += 1;
    }
    // Stop before a clause: "build a REST API with FastAPI" → "REST API".
    let rest: Vec<&str> = words[i.min(words.len())..]
        .iter()
        .take_while(|w| !["with", "using", "for", "to", "in", "on"].contains(&w.to_lowercase().as_str()))
        .copied()
        .collect();
    (!rest.is_empty()).then(|| rest.join(" "))
}

/// Facet signals of one interaction by rules: the selected id's facet
/// (`selection_facets`), `code_first` from asking for code vs concepts,
/// `formal` from polite vs casual wording. Only configured facets.
pub fn facet_deltas(
    facets: &[String],
    selection_facets: &BTreeMap<String, String>,
    delta: f64,
    selected_id: &str,
    input: &str,
) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let mut add = |f: &str, d: f64| {
        if facets.iter().any(|x| x == f) {
            *out.entry(f.to_string()).or_insert(0.0) += d;
        }
    };
    if let Some(f) = selection_facets.get(selected_id) {
        add(f, delta);
    }
    let toks = tokens(input);
    let has = |ws: &[&str]| toks.iter().any(|t| ws.contains(&t.as_str()));
    if has(&["code", "snippet", "example", "examples", "implementation"]) {
        add("code_first", delta);
    } else if has(&["explain", "why", "concept", "concepts", "overview", "theory"]) {
        add("code_first", -delta);
    }
    if has(&["please", "kindly", "would", "could", "regards"]) {
        add("formal", delta);
    } else if has(&["hey", "pls", "thx", "lol", "gonna", "wanna", "yo"]) {
        add("formal", -delta);
    }
    out.retain(|_, d| *d != 0.0);
    out
}

/// A topic of the hypothesis table.
struct Topic {
    keys: &'static [&'static str],
    /// Three action phrases; `{obj}` is the user's current object ("your
    /// containerized REST API"), `{with}` a relevant preference (" with Docker").
    phrases: [&'static str; 3],
    /// Preference categories relevant to the topic.
    categories: &'static [&'static str],
}

const TOPICS: &[Topic] = &[
    Topic {
        keys: &["deploy", "deployment", "release", "ship", "hosting", "host"],
        phrases: ["deploy {obj}{with}", "containerize {obj} with Docker", "set up a CI/CD pipeline for {obj}"],
        categories: &["containers", "orchestration", "ci"],
    },
    Topic {
        keys: &["auth", "login", "authentication", "authorization", "oauth", "jwt", "security"],
        phrases: ["add JWT auth to {obj}", "set up OAuth2{with}", "implement role-based access control"],
        categories: &["auth", "containers"],
    },
    Topic {
        keys: &["test", "tests", "testing", "coverage"],
        phrases: ["write unit tests for {obj}", "set up integration tests{with}", "measure test coverage"],
        categories: &["ci", "language"],
    },
    Topic {
        keys: &["database", "db", "sql", "schema", "migration", "migrations", "postgres", "postgresql"],
        phrases: ["design the database schema{with}", "add database migrations", "optimize slow queries"],
        categories: &["database"],
    },
    Topic {
        keys: &["bug", "fix", "error", "crash", "debug", "broken", "failing"],
        phrases: ["fix the error in {obj}", "write a failing test that reproduces it", "add logging to find the cause"],
        categories: &["language"],
    },
    Topic {
        keys: &["doc", "docs", "documentation", "readme"],
        phrases: ["write documentation for {obj}", "draft a README", "add code examples to the docs"],
        categories: &[],
    },
    Topic {
        keys: &["ui", "frontend", "page", "css", "react", "vue"],
        phrases: ["build the user interface{with}", "design the page layout", "add client-side validation"],
        categories: &["frontend"],
    },
    Topic {
        keys: &["data", "analysis", "analyze", "analyse", "chart", "report", "metrics"],
        phrases: ["analyze the data", "build a report", "visualize the results"],
        categories: &["database", "language"],
    },
    Topic {
        keys: &["api", "endpoint", "endpoints", "rest", "backend", "server"],
        phrases: ["build a REST API{with}", "design API endpoints", "set up authentication"],
        categories: &["web_framework", "language", "api_style"],
    },
];

/// What the rule-based hypothesizer knows about the user.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// Facet scores.
    pub facets: &'a BTreeMap<String, f64>,
    /// Active goals, most recent first.
    pub goals: Vec<String>,
    /// Active preferences (item, category), most recent first.
    pub preferences: Vec<(String, String)>,
}

/// One hypothesis (as JSON: `{"id", "text", "confidence"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Hypothesis {
    /// `h1`, `h2`, `h3`.
    pub id: String,
    /// The question put to the user.
    pub text: String,
    /// How likely the user means this, in `[0, 1]`.
    pub confidence: f64,
}

/// The seed's base confidences of h1..h3.
const BASE: [f64; 3] = [0.75, 0.68, 0.60];

/// Three hypotheses for `input`, personalised: the object of the user's
/// latest goal replaces the generic one (+0.10 confidence, "deploy your
/// REST API"), a preferred container technology qualifies it
/// ("your containerized REST API", +0.05), a relevant preference fills
/// `{with}` (+0.05), and facets shape the wording (formal: "Would you like
/// to"; step_by_step / code_first ≥ 0.6: "step by step" / "with code
/// examples").
pub fn hypothesize(input: &str, ctx: &Context<'_>) -> Vec<Hypothesis> {
    let toks = tokens(input);
    let topic = TOPICS.iter().find(|t| toks.iter().any(|w| t.keys.contains(&w.as_str())));
    // The thing the user is making: the object of the latest goal with a
    // creating verb ("build a REST API" → "REST API"), not of "set up tests".
    let goal_obj = ctx
        .goals
        .iter()
        .filter(|g| tokens(g).first().is_some_and(|v| CREATE_VERBS.contains(&v.as_str())))
        .find_map(|g| goal_object(g));
    let containers = ctx.preferences.iter().find(|(_, c)| c == "containers").map(|(i, _)| i.clone());
    let mut boost = 0.0;
    let obj = match &goal_obj {
        Some(o) => {
            boost += 0.10;
            match &containers {
                Some(_) => {
                    boost += 0.05;
                    format!("your containerized {o}")
                }
                None => format!("your {o}"),
            }
        }
        None => "your application".to_string(),
    };
    let phrases: Vec<String> = match topic {
        Some(t) => {
            let with = ctx
                .preferences
                .iter()
                .find(|(_, c)| t.categories.contains(&c.as_str()))
                .map(|(item, _)| format!(" with {item}"))
                .unwrap_or_default();
            t.phrases
                .iter()
                .map(|p| {
                    // Already containerized: don't propose Docker again.
                    let p = if containers.is_some() && p.starts_with("containerize") {
                        "run {obj} on Kubernetes"
                    } else {
                        p
                    };
                    p.replace("{obj}", &obj).replace("{with}", &with)
                })
                .collect()
        }
        None => {
            let what = input.trim().trim_end_matches(['?', '.', '!']);
            vec![
                what.to_string(),
                format!("get a step-by-step plan for {what}"),
                format!("see a code example for {what}"),
            ]
        }
    };
    let with_boost = |i: usize, text: &str| {
        let mut c = BASE[i] + boost;
        if topic.is_some() && ctx.preferences.iter().any(|(item, _)| text.contains(&format!("with {item}"))) {
            c += 0.05;
        }
        (c.min(0.95) * 100.0).round() / 100.0
    };
    let facet = |f: &str| ctx.facets.get(f).copied().unwrap_or(0.5);
    let ask = if facet("formal") >= 0.6 { "Would you like to" } else { "Do you want to" };
    phrases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut p = p.clone();
            if i == 0 && facet("code_first") >= 0.6 {
                p.push_str(" with code examples");
            }
            if i == 1 && facet("step_by_step") >= 0.6 {
                p.push_str(" step by step");
            }
            Hypothesis { id: format!("h{}", i + 1), confidence: with_boost(i, &p), text: format!("{ask} {p}?") }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_and_preferences_follow_the_seed_rules() {
        assert_eq!(extract_goal("Do you want to build a REST API?").as_deref(), Some("build a REST API"));
        assert_eq!(extract_goal("Do you want to containerize with Docker?"), None);
        assert_eq!(goal_object("build a REST API with FastAPI").as_deref(), Some("REST API"));
        assert_eq!(goal_object("set up a CI/CD pipeline").as_deref(), Some("CI/CD pipeline"));
        let p = extract_preferences("Do you want to containerize with Docker?");
        assert_eq!(p, vec![FoundPreference { item: "Docker".into(), category: "containers".into(), avoid: false }]);
        let p = extract_preferences("deploy it without docker, using podman");
        assert_eq!(
            p.iter().map(|p| (p.item.as_str(), p.avoid)).collect::<Vec<_>>(),
            [("Docker", true), ("Podman", false)]
        );
        assert!(extract_preferences("Docker").is_empty(), "no preference keyword");
    }

    #[test]
    fn facet_rules() {
        let facets: Vec<String> = ["concise", "step_by_step", "code_first", "formal"].map(String::from).to_vec();
        let sel = crate::config::Config::default().selection_facets;
        let d = facet_deltas(&facets, &sel, 0.02, "h1", "build api");
        assert_eq!(d, BTreeMap::from([("concise".to_string(), 0.02)]));
        let d = facet_deltas(&facets, &sel, 0.02, "h3", "hey show me code");
        assert_eq!(
            d,
            BTreeMap::from([
                ("step_by_step".to_string(), 0.02),
                ("code_first".to_string(), 0.02),
                ("formal".to_string(), -0.02)
            ])
        );
    }
}
