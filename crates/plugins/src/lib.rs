//! The one list of learnloop's built-in plugins.
//!
//! [`registry`] gives the plugin host a constructor for each plugin linked
//! into this build — one Cargo feature per plugin (`plugin-cost`,
//! `plugin-trust`, `plugin-persona`, `plugin-drift`; all on by default) —
//! and names the others as left out, with the feature that would bring each
//! back, so that asking for one says how to get it. The host itself depends
//! on no plugin; the three binaries call [`registry`] and hand the result to
//! `PluginHost::load`, `check_plugins` and `require_plugins`.
//!
//! The names are those of `learnloop_config::BUILTIN_PLUGINS` (which the
//! config needs below every plugin: the default `enabled` list and the
//! sections it always accepts); a test keeps the two lists equal.

#![deny(missing_docs)]

use learnloop_plugin_host::Registry;

/// Every built-in plugin with the Cargo feature that links it in.
pub const FEATURES: [(&str, &str); 4] =
    [("cost", "plugin-cost"), ("trust", "plugin-trust"), ("persona", "plugin-persona"), ("drift", "plugin-drift")];

/// The plugins linked into this build, and the built-in ones left out of it.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    #[cfg(feature = "plugin-cost")]
    {
        registry = registry.with_default::<learnloop_plugin_cost::CostPlugin>("cost");
    }
    #[cfg(not(feature = "plugin-cost"))]
    {
        registry = registry.without("cost", "rebuild with the Cargo feature `plugin-cost`");
    }
    #[cfg(feature = "plugin-trust")]
    {
        registry = registry.with_default::<learnloop_plugin_trust::TrustPlugin>("trust");
    }
    #[cfg(not(feature = "plugin-trust"))]
    {
        registry = registry.without("trust", "rebuild with the Cargo feature `plugin-trust`");
    }
    #[cfg(feature = "plugin-persona")]
    {
        registry = registry.with_default::<learnloop_plugin_persona::PersonaPlugin>("persona");
    }
    #[cfg(not(feature = "plugin-persona"))]
    {
        registry = registry.without("persona", "rebuild with the Cargo feature `plugin-persona`");
    }
    #[cfg(feature = "plugin-drift")]
    {
        registry = registry.with_default::<learnloop_plugin_drift::DriftPlugin>("drift");
    }
    #[cfg(not(feature = "plugin-drift"))]
    {
        registry = registry.without("drift", "rebuild with the Cargo feature `plugin-drift`");
    }
    registry
}

/// Names of the built-in plugins linked into this build.
pub fn built_in() -> Vec<&'static str> {
    registry().names()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The features' list is the config's list of shipped plugins, and each
    /// plugin is either linked in or named as left out with its feature.
    #[test]
    fn every_shipped_plugin_is_listed_once() {
        let names: Vec<&str> = FEATURES.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, learnloop_config_names());
        let r = registry();
        for (name, feature) in FEATURES {
            match r.left_out(name) {
                Some(remedy) => assert!(remedy.contains(feature) && !r.contains(name), "{name}: {remedy}"),
                None => assert!(r.contains(name), "{name} is neither built in nor left out"),
            }
        }
    }

    fn learnloop_config_names() -> Vec<&'static str> {
        learnloop_config::BUILTIN_PLUGINS.to_vec()
    }
}
