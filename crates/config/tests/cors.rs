//! `[api] cors_origins`: off (empty) by default; each entry must be `"*"` or
//! an origin exactly as a browser sends it, and a wrong one is refused with
//! its key and index.

use learnloop_config::{Config, check_cors_origin};

fn load(text: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("learnloop.toml");
    std::fs::write(&path, text).unwrap();
    Config::load_with_env(Some(&path), Vec::new()).map_err(|e| e.to_string())
}

#[test]
fn cors_origins_are_off_by_default_and_validated() {
    assert!(Config::default().api.cors_origins.is_empty(), "CORS is off by default");
    let c = load("[api]\ncors_origins = [\"https://app.example.com\", \"http://localhost:3000\", \"*\"]\n").unwrap();
    assert_eq!(c.api.cors_origins.len(), 3);
    for good in ["*", "https://app.example.com", "http://localhost:3000", "http://[::1]:8080", "http://127.0.0.1"] {
        assert_eq!(check_cors_origin(good), Ok(()), "{good}");
    }
    for (bad, fragment) in [
        ("app.example.com", "must start with http:// or https://"),
        ("https://app.example.com/", "no path"),
        ("https://app.example.com/ui", "no path"),
        ("https://app.example.com:99999", "port"),
        ("https://", "scheme://host"),
        ("ftp://x", "http://"),
    ] {
        let e = check_cors_origin(bad).expect_err(bad);
        assert!(e.contains(fragment), "{bad}: {e}");
    }
    let e = load("[api]\ncors_origins = [\"https://ok.example.com\", \"https://bad.example.com/\"]\n").unwrap_err();
    assert!(e.contains("api.cors_origins[1]") && e.contains("no path"), "{e}");
}
