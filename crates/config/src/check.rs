//! Checking a config file for every error at once (`learnloop config check`).
//!
//! Loading stops at the first error, which is right for starting a server
//! but slow for fixing a file: one run per typo. [`check_file`] keeps going.
//! Each core key is typed on its own (so one bad key does not hide the
//! next), bad keys are put back to their defaults, and the cross-field
//! validation is repeated until it passes, each round reporting one more
//! key. What needs more than this crate (plugin sections, job names, cron
//! expressions, the store URL, paths, bind addresses) is checked by the
//! caller on the [`CheckReport::config`] returned here.

use std::path::Path;

use crate::{Config, ConfigError, Layered, Sources, read};

/// The outcome of [`check_file`].
#[derive(Debug, Default)]
pub struct CheckReport {
    /// The configuration with every bad key at its default, for the
    /// caller's further checks; `None` when the file could not be read or
    /// parsed at all.
    pub config: Option<Config>,
    /// Where each key came from.
    pub sources: Sources,
    /// Every error found, in file order as far as possible.
    pub errors: Vec<ConfigError>,
}

/// Reads, types and validates `path` (or the defaults) with the given
/// environment, collecting every error instead of stopping at the first.
pub fn check_file(path: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> CheckReport {
    let mut report = CheckReport::default();
    let layered = match read(path).and_then(|(origin, text)| Layered::new(&origin, &text, env)) {
        Ok(l) => l,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    let mut table = layered.table.clone();
    let (plugin_sections, errors) = layered.split_plugins(&mut table);
    report.errors.extend(errors);

    // Type each key alone; drop the ones that fail.
    let mut bad = Vec::new();
    for (k, v) in &table {
        isolate(&layered, &mut vec![k.clone()], v, &mut bad);
    }
    for (path, e) in bad {
        remove_path(&mut table, &path);
        report.errors.push(e);
    }
    let mut config = match layered.typed(table.clone()) {
        Ok(c) => c,
        Err(e) => {
            // Keys that only fail together; nothing more can be checked.
            report.errors.push(e);
            report.sources = layered.sources;
            return report;
        }
    };
    // Cross-field validation reports one key at a time: report it, put the
    // key back to its default, and validate again.
    for _ in 0..64 {
        let Err((key, message)) = config.validate() else { break };
        report.errors.push(layered.invalid(key.clone(), message));
        if !remove_key(&mut table, &key) {
            break;
        }
        match layered.typed(table.clone()) {
            Ok(c) => config = c,
            Err(_) => break,
        }
    }
    config.plugin_sections = plugin_sections;
    report.config = Some(config);
    report.sources = layered.sources;
    report
}

/// Types the configuration with only `path` set to `value`; on failure,
/// looks for the failing keys inside a table before blaming it whole.
fn isolate(layered: &Layered, path: &mut Vec<String>, value: &toml::Value, out: &mut Vec<(Vec<String>, ConfigError)>) {
    let mut single = value.clone();
    for seg in path.iter().rev() {
        let mut t = toml::Table::new();
        t.insert(seg.clone(), single);
        single = toml::Value::Table(t);
    }
    let toml::Value::Table(single) = single else { unreachable!("wrapped in a table") };
    let Err(e) = layered.typed(single) else { return };
    if let toml::Value::Table(t) = value {
        let before = out.len();
        for (k, v) in t {
            path.push(k.clone());
            isolate(layered, path, v, out);
            path.pop();
        }
        if out.len() > before {
            return;
        }
    }
    out.push((path.clone(), e));
}

fn remove_path(table: &mut toml::Table, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut t = table;
    for seg in parents {
        match t.get_mut(seg) {
            Some(toml::Value::Table(inner)) => t = inner,
            _ => return false,
        }
    }
    t.remove(last).is_some()
}

/// Removes a dotted key as validation names it (`plugins.enabled[1]`
/// removes the whole list; segments may themselves contain dots, as in
/// `scheduler.jobs.drift.daily`).
fn remove_key(table: &mut toml::Table, key: &str) -> bool {
    let key = match key.find('[') {
        Some(i) => &key[..i],
        None => key,
    };
    let mut t = table;
    let mut rest = key;
    loop {
        // The longest prefix of `rest` that is a key at this level.
        let found = std::iter::once(rest.len())
            .chain(rest.rmatch_indices('.').map(|(i, _)| i))
            .map(|i| &rest[..i])
            .find(|k| t.contains_key(*k))
            .map(str::to_string);
        let Some(k) = found else { return false };
        if k.len() == rest.len() {
            return t.remove(&k).is_some();
        }
        rest = &rest[k.len() + 1..];
        match t.get_mut(&k) {
            Some(toml::Value::Table(inner)) => t = inner,
            _ => return false,
        }
    }
}

/// Several config errors, shown one per line (what the binaries print when
/// they refuse to start).
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "the configuration has {} errors:", many.len())?;
                for e in many {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigErrors {}
