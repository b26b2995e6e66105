//! Tests of loading the config file.
//!
//! mod list: everything here is about `learnloop_config::Config` loading:
//! the shipped file, environment overrides and error messages.

use learnloop_config::{Config, ConfigError, SHIPPED_CONFIG};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("learnloop.toml");
    std::fs::write(&path, text).unwrap();
    Config::load_with_env(Some(&path), env(vars))
}

/// Loads `text` and expects an error mentioning every fragment.
fn check_err(text: &str, vars: &[(&str, &str)], fragments: &[&str]) {
    let e = load(text, vars).expect_err("should be rejected").to_string();
    for f in fragments {
        assert!(e.contains(f), "error {e:?} lacks {f:?}");
    }
}

#[test]
fn shipped_file_equals_defaults() {
    let shipped = Config::from_toml("config/learnloop.toml", SHIPPED_CONFIG).unwrap();
    assert_eq!(shipped, Config::default());
}

#[test]
fn shipped_file_documents_every_key() {
    // Every key of the defaults, serialised, appears in the shipped file.
    let defaults = toml::Table::try_from(Config::default()).unwrap();
    fn walk(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in t {
            match v {
                toml::Value::Table(inner) => walk(inner, &format!("{prefix}{k}."), out),
                _ => out.push(format!("{prefix}{k}")),
            }
        }
    }
    let mut keys = Vec::new();
    walk(&defaults, "", &mut keys);
    let shipped: toml::Table = SHIPPED_CONFIG.parse().unwrap();
    for key in keys {
        let mut t = &shipped;
        let parts: Vec<&str> = key.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            t = t.get(*p).and_then(|v| v.as_table()).unwrap_or_else(|| panic!("missing [{p}]"));
        }
        assert!(t.contains_key(*parts.last().unwrap()), "shipped config lacks {key}");
    }
}

#[test]
fn no_file_means_defaults() {
    assert_eq!(Config::load_with_env(None, env(&[])).unwrap(), Config::default());
}

#[test]
fn environment_overrides() {
    let c = load(
        SHIPPED_CONFIG,
        &[
            ("LEARNLOOP__DATA_DIR", "/tmp/x"),
            ("LEARNLOOP__API__BIND", "0.0.0.0:9999"),
            ("LEARNLOOP__API__MAX_BATCH", "50"),
            ("LEARNLOOP__PLUGINS__ENABLED", "[\"drift\"]"),
            ("LEARNLOOP__DRIFT__P_VALUE", "0.01"),
            ("LEARNLOOP_CONFIG", "ignored, single underscore"),
            ("OTHER", "ignored"),
        ],
    )
    .unwrap();
    assert_eq!(c.data_dir.to_str(), Some("/tmp/x"));
    assert_eq!(c.api.bind.to_string(), "0.0.0.0:9999");
    assert_eq!(c.api.max_batch, 50);
    assert_eq!(c.plugins.enabled, vec!["drift"]);
    assert_eq!(c.plugin_sections["drift"]["p_value"].as_float(), Some(0.01));
}

#[test]
fn errors_name_file_key_and_expectation() {
    check_err("data_dir = 3", &[], &["learnloop.toml", "`data_dir`", "invalid type"]);
    check_err("[api]\nbind = \"nowhere\"", &[], &["learnloop.toml", "`api.bind`", "socket address or HOST:PORT"]);
    check_err("[api]\nbnid = \"x\"", &[], &["`api.bnid`", "unknown field", "bind"]);
    check_err("colour = 1", &[], &["`colour`", "unknown key", "enabled plugin"]);
    check_err("[store]\nsynchronous = \"sometimes\"", &[], &["`store.synchronous`", "full"]);
    check_err("[store]\nurl = \"mysql://x\"", &[], &["`store.url`", "postgres://"]);
    check_err("default_workspace = \"Big Team\"", &[], &["`default_workspace`", "lowercase"]);
    check_err("[plugins]\nenabled = [\"drift\", \"drift\"]", &[], &["plugins.enabled[1]", "twice"]);
    check_err("[scheduler]\ntick_ms = 10000", &[], &["scheduler.tick_ms", "third"]);
    check_err("drift = 1", &[], &["`drift`", "must be a table"]);
    check_err("[api\n", &[], &["learnloop.toml", "not valid TOML", "line 1"]);
    check_err(
        "",
        &[("LEARNLOOP__API__MAX_BATCH", "lots")],
        &["environment variable LEARNLOOP__API__MAX_BATCH", "`api.max_batch`", "invalid type"],
    );
}

#[test]
fn third_party_plugin_sections_are_allowed_when_enabled() {
    let c = load("[plugins]\nenabled = [\"acme\"]\n[acme]\nlevel = 3\n", &[]).unwrap();
    assert_eq!(c.plugin_sections["acme"]["level"].as_integer(), Some(3));
    check_err("[acme]\nlevel = 3\n", &[], &["`acme`", "unknown key"]);
}

#[test]
fn paths() {
    let c = Config::default();
    assert_eq!(c.sqlite_path().unwrap(), std::path::Path::new("learnloop-data/learnloop.sqlite"));
    assert_eq!(c.plugin_dir(), std::path::Path::new("learnloop-data/plugins"));
    let c = load("[store]\nurl = \"sqlite:/tmp/a.db\"", &[]).unwrap();
    assert_eq!(c.sqlite_path().unwrap(), std::path::Path::new("/tmp/a.db"));
}
