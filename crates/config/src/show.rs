//! Where each configuration value came from, and the effective
//! configuration as a flat list of settings (`learnloop config show`).
//!
//! Secrets never leave this module unmasked: keys named like a secret
//! (`key`, `*_key`, `token`, `secret`, `password`) and passwords inside URLs
//! are replaced by `****`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::Config;

/// Where one value of the effective configuration came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Source {
    /// The config file (its path).
    File(String),
    /// An environment variable (its name).
    Environment(String),
    /// A command-line option (e.g. `--data-dir`).
    Option(String),
    /// Nobody set it: the built-in default.
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "file {p}"),
            Source::Environment(v) => write!(f, "environment {v}"),
            Source::Option(o) => write!(f, "option {o}"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// Which keys the file set and which the environment overrode.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    origin: String,
    file: Option<toml::Table>,
    env: BTreeMap<String, String>,
}

impl Sources {
    pub(crate) fn new(origin: &str, file: Option<toml::Table>, env: BTreeMap<String, String>) -> Sources {
        Sources { origin: origin.to_string(), file, env }
    }

    /// The config file's name as errors give it (`built-in defaults` without one).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// What an error about `key` (dotted) should name: the environment
    /// variable that set it (or one of its parents or children), else the file.
    pub fn origin_of(&self, key: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| key == k.as_str() || key.starts_with(&format!("{k}.")) || k.starts_with(&format!("{key}.")))
            .map(|(_, var)| format!("environment variable {var}"))
            .unwrap_or_else(|| self.origin.clone())
    }

    /// Where the value at `path` (one segment per table level) came from.
    pub fn source_of(&self, path: &[String]) -> Source {
        for n in (1..=path.len()).rev() {
            if let Some(var) = self.env.get(&path[..n].join(".")) {
                return Source::Environment(var.clone());
            }
        }
        let mut table = self.file.as_ref();
        for (i, seg) in path.iter().enumerate() {
            match table.and_then(|t| t.get(seg)) {
                Some(toml::Value::Table(inner)) if i + 1 < path.len() => table = Some(inner),
                Some(_) => return Source::File(self.origin.clone()),
                None => return Source::Default,
            }
        }
        Source::Default
    }
}

/// One value of the effective configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    /// Dotted key as TOML writes it, e.g. `api.bind` or `scheduler.jobs."drift.daily".schedule`.
    pub key: String,
    /// The value, secrets masked.
    pub value: toml::Value,
    /// Where it came from.
    pub source: Source,
}

impl Config {
    /// Every leaf value of the configuration (core keys and plugin sections
    /// as far as they are set) with its source, secrets masked, in key order.
    pub fn settings(&self, sources: &Sources) -> Vec<Setting> {
        let mut table = toml::Table::try_from(self).expect("the configuration serialises");
        for (name, section) in &self.plugin_sections {
            table.insert(name.clone(), toml::Value::Table(section.clone()));
        }
        let mut out = Vec::new();
        flatten(&table, &mut Vec::new(), sources, &mut out);
        out
    }
}

fn flatten(table: &toml::Table, path: &mut Vec<String>, sources: &Sources, out: &mut Vec<Setting>) {
    for (k, v) in table {
        path.push(k.clone());
        match v {
            // An empty table (a plugin section nobody set) has no values to show.
            toml::Value::Table(inner) => flatten(inner, path, sources, out),
            _ => out.push(Setting { key: dotted(path), value: mask(k, v), source: sources.source_of(path) }),
        }
        path.pop();
    }
}

/// `a.b."c.d"`: segments that are not bare TOML keys are quoted.
fn dotted(path: &[String]) -> String {
    let bare = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    path.iter().map(|s| if bare(s) { s.clone() } else { format!("{s:?}") }).collect::<Vec<_>>().join(".")
}

/// Whether a key holds a secret by its name.
pub fn is_secret_key(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "key"
        || n.ends_with("_key")
        || n.ends_with("-key")
        || n.ends_with("apikey")
        || ["secret", "token", "password", "passwd"].iter().any(|w| n.contains(w))
}

/// The value with secrets replaced by `****`.
fn mask(name: &str, value: &toml::Value) -> toml::Value {
    match value {
        toml::Value::String(s) if is_secret_key(name) && !s.is_empty() => toml::Value::String("****".into()),
        toml::Value::String(s) => toml::Value::String(mask_url(s)),
        toml::Value::Array(items) => toml::Value::Array(items.iter().map(|v| mask(name, v)).collect()),
        toml::Value::Table(t) => toml::Value::Table(t.iter().map(|(k, v)| (k.clone(), mask(k, v))).collect()),
        other => other.clone(),
    }
}

/// Masks the password of `scheme://user:password@host` and the values of
/// secret-named query parameters (`?password=...`, `&api_key=...`).
pub fn mask_url(s: &str) -> String {
    let Some(scheme_end) = s.find("://").map(|i| i + 3) else { return s.to_string() };
    let mut out = s.to_string();
    let authority_end = out[scheme_end..].find(['/', '?', '#']).map_or(out.len(), |i| scheme_end + i);
    if let Some(at) = out[scheme_end..authority_end].rfind('@').map(|i| scheme_end + i)
        && let Some(colon) = out[scheme_end..at].find(':').map(|i| scheme_end + i)
    {
        out.replace_range(colon + 1..at, "****");
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if is_secret_key(k) && !v.is_empty() => format!("{k}=****"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(mask_url("postgres://app:s3cr3t@db:5432/ll"), "postgres://app:****@db:5432/ll");
        assert_eq!(
            mask_url("postgres://app@db/ll?sslmode=require&password=x"),
            "postgres://app@db/ll?sslmode=require&password=****"
        );
        assert_eq!(mask_url("http://127.0.0.1:11434"), "http://127.0.0.1:11434");
        assert_eq!(mask_url("sqlite:/tmp/a.db"), "sqlite:/tmp/a.db");
        assert!(is_secret_key("api_key") && is_secret_key("token") && is_secret_key("db_password"));
        assert!(!is_secret_key("admin_key_file") && !is_secret_key("embed_model"));
    }
}
