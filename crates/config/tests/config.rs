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
    check_err("data_dir = 3", &[], &["learnloop.toml", "`data_dir`", "expected a path (a string), got the number 3"]);
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
        &[
            "environment variable LEARNLOOP__API__MAX_BATCH",
            "`api.max_batch`",
            "expected a whole number ≥ 0, got the string \"lots\"",
        ],
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

#[test]
fn bind_takes_host_names_and_refuses_what_is_not_host_port() {
    let c = load("[api]\nbind = \"localhost:8080\"\n", &[]).unwrap();
    assert_eq!(c.api.bind.as_str(), "localhost:8080");
    assert!(c.api.bind.resolve().unwrap().iter().all(|a| a.port() == 8080));
    check_err("[api]\nbind = \"localhost\"", &[], &["`api.bind`", "HOST:PORT"]);
    check_err("[api]\nbind = \"localhost:http\"", &[], &["`api.bind`", "port"]);
}

#[test]
fn type_errors_speak_toml_not_rust() {
    check_err("[api]\nmax_batch = \"many\"", &[], &["`api.max_batch`", "expected a whole number ≥ 0"]);
    let e = load("[api]\nmax_batch = \"many\"", &[]).unwrap_err().to_string();
    assert!(!e.contains("usize"), "{e}");
}

#[test]
fn check_file_reports_every_error_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.toml");
    std::fs::write(
        &path,
        "colour = 1\ndata_dir = \"\"\n[api]\nbnid = 1\nmax_batch = \"x\"\n[store]\nbusy_timeout_ms = 0\n\
         [improvements]\nmin_gain = 2.0\nmin_confidence = -1.0\n[drift]\np_value = 0.1\n",
    )
    .unwrap();
    let report = learnloop_config::check_file(Some(&path), env(&[("LEARNLOOP__LLM__TIMEOUT_MS", "0")]));
    let keys: Vec<String> = report
        .errors
        .iter()
        .map(|e| match e {
            ConfigError::Invalid { key, .. } => key.clone(),
            other => panic!("{other}"),
        })
        .collect();
    for k in [
        "colour",
        "api.bnid",
        "api.max_batch",
        "data_dir",
        "store.busy_timeout_ms",
        "improvements.min_confidence",
        "improvements.min_gain",
        "llm.timeout_ms",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} not reported: {keys:?}");
    }
    assert_eq!(keys.len(), 8, "{keys:?}");
    let timeout = report.errors.iter().find(|e| e.to_string().contains("llm.timeout_ms")).unwrap().to_string();
    assert!(timeout.contains("environment variable LEARNLOOP__LLM__TIMEOUT_MS"), "{timeout}");
    // What is left is the configuration with the bad keys at their defaults,
    // plugin sections kept for the plugins to check.
    let config = report.config.expect("a configuration to check further");
    assert_eq!(config.api.max_batch, 1000);
    assert_eq!(config.plugin_sections["drift"]["p_value"].as_float(), Some(0.1));

    // A good file has no errors; a syntax error is the one error.
    assert!(learnloop_config::check_file(None, env(&[])).errors.is_empty());
    std::fs::write(&path, "[api\n").unwrap();
    let report = learnloop_config::check_file(Some(&path), env(&[]));
    assert_eq!(report.errors.len(), 1);
    assert!(report.config.is_none());
}

#[test]
fn settings_say_where_each_value_came_from_and_mask_secrets() {
    use learnloop_config::Source;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(
        &path,
        "[api]\nmax_batch = 5\n[llm]\nurl = \"http://user:hunter2@ollama:11434\"\n[drift]\napi_token = \"abc\"\n",
    )
    .unwrap();
    let (config, sources) = Config::load_with_sources(
        Some(&path),
        env(&[
            ("LEARNLOOP__STORE__URL", "postgres://app:pw@db/ll?password=pw2"),
            ("LEARNLOOP__PLUGINS__ENABLED", "[\"drift\"]"),
        ]),
    )
    .unwrap();
    let settings = config.settings(&sources);
    let get = |k: &str| settings.iter().find(|s| s.key == k).unwrap_or_else(|| panic!("no {k}")).clone();
    let file = Source::File(path.display().to_string());
    assert_eq!((get("api.max_batch").value.as_integer(), get("api.max_batch").source), (Some(5), file.clone()));
    assert_eq!(get("api.max_body_bytes").source, Source::Default);
    assert_eq!(get("store.url").source, Source::Environment("LEARNLOOP__STORE__URL".into()));
    assert_eq!(get("store.url").value.as_str(), Some("postgres://app:****@db/ll?password=****"));
    assert_eq!(get("plugins.enabled").source, Source::Environment("LEARNLOOP__PLUGINS__ENABLED".into()));
    assert_eq!(get("llm.url").value.as_str(), Some("http://user:****@ollama:11434"));
    assert_eq!((get("drift.api_token").value.as_str(), get("drift.api_token").source), (Some("****"), file));
    assert_eq!(get("auth.admin_key_file").value.as_str(), Some("admin.key"), "a path, not a secret");
    let shown = format!("{settings:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("pw2") && !shown.contains(":pw@") && !shown.contains("abc"),
        "{shown}"
    );
}
