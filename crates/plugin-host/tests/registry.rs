//! The registry of linked-in plugins the host is given: what loads from it,
//! and what the host says about plugins it does not run — disabled, left
//! out of this build (with the remedy the registry gives), or unknown.
//! `learnloop_test_support::quiet::Quiet` is the plugin linked in.

use std::sync::Arc;

use learnloop_config::Config;
use learnloop_plugin_host::{LoadError, Origin, PluginHost, Registry, check_plugins};
use learnloop_store::{SqliteOptions, Store};
use learnloop_test_support::quiet::Quiet;

const REMEDY: &str = "rebuild with the Cargo feature `plugin-cost`";

fn store(dir: &std::path::Path) -> Arc<dyn Store> {
    learnloop_test_support::store::test_store(dir, &SqliteOptions::default())
}

fn registry() -> Registry {
    Registry::new().with_default::<Quiet>("quiet").without("cost", REMEDY)
}

fn config(dir: &std::path::Path, enabled: &[&str]) -> Config {
    let mut c = Config::default();
    c.plugins.dir = dir.join("plugins");
    c.plugins.enabled = enabled.iter().map(|s| s.to_string()).collect();
    c
}

#[test]
fn the_registry_lists_what_is_linked_in() {
    let r = registry();
    assert_eq!(r.names(), ["quiet"]);
    assert!(r.contains("quiet") && !r.contains("cost"));
    assert_eq!(r.left_out("cost"), Some(REMEDY));
    assert_eq!(r.left_out("quiet"), None);
    assert!(r.create("quiet").is_some() && r.create("cost").is_none());
    // Linking a left-out plugin in takes it off the left-out list.
    let r = r.with_default::<Quiet>("cost");
    assert!(r.contains("cost") && r.left_out("cost").is_none());
    // An empty registry loads nothing but libraries.
    assert!(Registry::new().names().is_empty());
}

#[test]
fn plugins_load_from_the_registry_and_others_are_named_for_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::load(&registry(), &config(dir.path(), &["quiet"]), store(dir.path()));
    assert!(host.load_errors.is_empty(), "{:?}", host.load_errors);
    assert_eq!(host.plugins()["quiet"].origin, Origin::Static);
    let message = |name: &str| host.plugin(name).err().expect("not running").message;
    let left_out = message("cost");
    assert!(left_out.contains("\"cost\" is not built into this binary") && left_out.contains(REMEDY), "{left_out}");
    // A shipped plugin the registry does not mention is disabled, as before.
    assert!(message("drift").contains("\"drift\" is disabled"), "{}", message("drift"));
    assert!(message("horoscope").contains("unknown plugin \"horoscope\""), "{}", message("horoscope"));
}

#[test]
fn an_enabled_plugin_left_out_of_the_build_is_a_load_error_naming_the_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &["quiet", "cost"]);
    let host = PluginHost::load(&registry(), &c, store(dir.path()));
    assert_eq!(host.plugins().keys().collect::<Vec<_>>(), ["quiet"]);
    let e = &host.load_errors[0];
    assert!(matches!(e, LoadError::NotFound { left_out: Some(REMEDY), .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("built without it") && text.contains(REMEDY), "{text}");
    // The same without a store, as the binaries check before starting.
    let check = check_plugins(&registry(), &c);
    assert_eq!(check.manifests.keys().collect::<Vec<_>>(), ["quiet"]);
    assert_eq!(check.errors.len(), 1);
    assert!(check.errors[0].1.to_string().contains(REMEDY));
    // An unknown plugin gets no remedy.
    let check = check_plugins(&registry(), &config(dir.path(), &["horoscope"]));
    assert!(matches!(&check.errors[0].1, LoadError::NotFound { left_out: None, .. }));
}
