//! Configuration errors stop the start, in all three binaries (issue #17,
//! section 2).
//!
//! mod list: a misspelt key in an enabled plugin's section (`[drift]
//! pvalue`) stops `learnloop-api`, `learnloop-scheduler` and every CLI
//! command that needs plugins, naming file, section, key and reason, before
//! anything is created; `learnloop config check` reports every error of a
//! file at once (text and `--json`, exit 1) and creates nothing; `learnloop
//! config show` says where each value came from and masks secrets;
//! `--bind localhost:0` is accepted and a bad bind address is a clear error.

use std::process::{Command, Stdio};

use learnloop_e2e::{Scratch, bin, start_api, terminate};
use serde_json::Value;

const MISSPELT: &str = "[drift]\npvalue = 0.05\n";

/// Runs a server binary that is expected to refuse to start.
fn refused(s: &Scratch, name: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(bin(name));
    cmd.current_dir(s.dir.path()).env_remove("LEARNLOOP_CONFIG");
    let out =
        s.store_env(&mut cmd).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("run {name}: {e}"));
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_names_file_section_key_and_reason(err: &str) {
    for fragment in ["bad.toml", "drift.pvalue", "[drift]", "unknown field \"pvalue\"", "p_value"] {
        assert!(err.contains(fragment), "error lacks {fragment:?}: {err}");
    }
}

#[test]
fn a_misspelt_plugin_key_stops_every_binary() {
    let s = Scratch::new();
    let cfg = s.write("bad.toml", &format!("data_dir = {:?}\n{MISSPELT}", s.data_dir().display().to_string()));
    let cfg = cfg.to_str().unwrap();

    let (code, err) = refused(&s, "learnloop-api", &["--config", cfg, "--bind", "127.0.0.1:0"]);
    assert_eq!(code, Some(1), "{err}");
    assert_names_file_section_key_and_reason(&err);

    let (code, err) = refused(&s, "learnloop-scheduler", &["--config", cfg]);
    assert_eq!(code, Some(1), "{err}");
    assert_names_file_section_key_and_reason(&err);

    for args in [vec!["stats"], vec!["jobs", "list"], vec!["export"], vec!["ingest", "-"], vec!["keys", "list"]] {
        let mut full = vec!["--config", cfg];
        full.extend(&args);
        let out = s.cmd(&full).stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "learnloop {args:?}: {err}");
        assert_names_file_section_key_and_reason(&err);
    }
    // Nothing was started or created on the way.
    assert!(!s.data_dir().exists(), "a refused start created the data directory");

    // `plugins list` still shows what loads and what does not.
    let out = s.run(&["--config", cfg, "--json", "plugins", "list"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["load_errors"][0].as_str().unwrap().contains("pvalue"), "{v}");

    // The same key set from the environment names the variable.
    let out = s.cmd(&["stats"]).env("LEARNLOOP__DRIFT__PVALUE", "0.05").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("environment variable LEARNLOOP__DRIFT__PVALUE") && err.contains("drift.pvalue"), "{err}");
}

#[test]
fn config_check_reports_every_error_at_once_without_creating_anything() {
    let s = Scratch::new();
    let cfg = s.write(
        "bad.toml",
        &format!(
            "data_dir = {:?}\n{MISSPELT}p_vaule = 2\n\
             [api]\nbind = \"nowhere\"\nmax_batch = \"many\"\n\
             [store]\nurl = \"postgres://u:pw@host:notaport/db\"\n\
             [improvements]\nmin_gain = 7.0\n\
             [scheduler.jobs.\"cost.learning_cycle\"]\nschedule = \"* * *\"\n\
             [scheduler.jobs.\"trust.nightly_typo\"]\nenabled = false\n",
            s.data_dir().display().to_string()
        ),
    );
    let cfg = cfg.to_str().unwrap();
    // The file's own store URL is under test, not the scratch store's.
    let check = |args: &[&str]| s.cmd(args).env_remove("LEARNLOOP__STORE__URL").output().unwrap();
    let out = check(&["--config", cfg, "config", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "`drift.pvalue`",
        "`drift.p_vaule`",
        "`api.bind`",
        "`api.max_batch`",
        "`store.url`",
        "`improvements.min_gain`",
        "`scheduler.jobs.\"cost.learning_cycle\".schedule`",
        "`scheduler.jobs.\"trust.nightly_typo\"`",
    ] {
        assert!(err.contains(key), "config check does not name {key}: {err}");
    }
    assert!(err.contains("8 errors"), "{err}");

    let out = check(&["--config", cfg, "--json", "config", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["errors"].as_array().unwrap().len(), 8, "{v}");
    assert!(v["errors"].as_array().unwrap().iter().all(|e| e["key"].is_string() && e["origin"] == cfg), "{v}");
    assert!(!s.data_dir().exists(), "config check created the data directory");

    // A good file: OK, exit 0.
    let good = s.write("good.toml", "[api]\nbind = \"localhost:8080\"\n[drift]\np_value = 0.01\n");
    let out = s.cmd(&["--config", good.to_str().unwrap(), "config", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("good.toml: OK"));
    let out = s.cmd(&["--config", good.to_str().unwrap(), "--json", "config", "check"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["ok"].as_bool(), v["errors"].as_array().map(Vec::len)), (Some(true), Some(0)));
}

#[test]
fn config_show_names_sources_and_masks_secrets() {
    let s = Scratch::new();
    let cfg = s.write("show.toml", "[api]\nmax_batch = 50\n[drift]\np_value = 0.01\n");
    let out = s
        .cmd(&["--config", cfg.to_str().unwrap(), "--json", "config", "show"])
        .env("LEARNLOOP__STORE__URL", "postgres://app:s3cr3t@db.example:5432/ll")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("s3cr3t"), "the password leaked: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let setting = |k: &str| {
        v["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == k)
            .unwrap_or_else(|| panic!("no {k}: {v}"))
            .clone()
    };
    assert_eq!(setting("api.max_batch")["value"], 50);
    assert_eq!(setting("api.max_batch")["source"], serde_json::json!({"kind": "file", "name": cfg.to_str().unwrap()}));
    assert_eq!(setting("store.url")["value"], "postgres://app:****@db.example:5432/ll");
    assert_eq!(setting("store.url")["source"]["name"], "LEARNLOOP__STORE__URL");
    assert_eq!(setting("api.max_body_bytes")["source"]["kind"], "default");
    assert_eq!(setting("drift.p_value")["source"]["kind"], "file");
    // A plugin key nobody set shows the plugin's default.
    assert_eq!(setting("drift.min_samples")["source"]["kind"], "default");
    assert_eq!(setting("data_dir")["source"], serde_json::json!({"kind": "option", "name": "--data-dir"}));

    let out = s.cmd(&["--config", cfg.to_str().unwrap(), "config", "show"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("api.max_batch") && l.contains("= 50") && l.contains("show.toml")),
        "{text}"
    );
}

#[test]
fn bind_accepts_a_host_name_and_refuses_a_bad_address_clearly() {
    let s = Scratch::new();
    let (api, addr) = start_api(&s, &["--data-dir", s.data_dir().to_str().unwrap(), "--bind", "localhost:0"]);
    let (status, _) = learnloop_e2e::http(&addr, "GET", "/health", None, "");
    assert_eq!(status, 200);
    terminate(&api.0);
    drop(api);

    let (code, err) = refused(&s, "learnloop-api", &["--data-dir", "d2", "--bind", "no-such-host.invalid:8080"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("api.bind") && err.contains("no-such-host.invalid:8080"), "{err}");
    let (code, err) = refused(&s, "learnloop-api", &["--data-dir", "d2", "--bind", "8080"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("HOST:PORT"), "{err}");
    // From the config file too, naming the key.
    let cfg = s.write("b.toml", "[api]\nbind = \"localhost\"\n");
    let (code, err) = refused(&s, "learnloop-api", &["--config", cfg.to_str().unwrap(), "--data-dir", "d2"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("b.toml") && err.contains("`api.bind`") && err.contains("HOST:PORT"), "{err}");
    assert!(!s.path("d2").exists());
}
