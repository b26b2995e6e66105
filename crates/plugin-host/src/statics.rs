//! Plugins linked into this binary, one Cargo feature each
//! (`plugin-cost`, `plugin-trust`, `plugin-persona`, `plugin-drift`; all on
//! by default), so a team can build only the plugins it needs.

use learnloop_plugin_api::Plugin;

type Ctor = fn() -> Box<dyn Plugin>;

const STATICS: &[(&str, Ctor)] = &[
    #[cfg(feature = "plugin-cost")]
    ("cost", || Box::new(learnloop_plugin_cost::CostPlugin::default())),
    #[cfg(feature = "plugin-trust")]
    ("trust", || Box::new(learnloop_plugin_trust::TrustPlugin::default())),
    #[cfg(feature = "plugin-persona")]
    ("persona", || Box::new(learnloop_plugin_persona::PersonaPlugin::default())),
    #[cfg(feature = "plugin-drift")]
    ("drift", || Box::new(learnloop_plugin_drift::DriftPlugin::default())),
];

/// Names of the plugins compiled into this binary.
pub fn static_plugin_names() -> Vec<&'static str> {
    STATICS.iter().map(|(n, _)| *n).collect()
}

/// A fresh, unconfigured instance of a built-in plugin.
pub(crate) fn create(name: &str) -> Option<Box<dyn Plugin>> {
    STATICS.iter().find(|(n, _)| *n == name).map(|(_, f)| f())
}
