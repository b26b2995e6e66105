//! Which plugins a binary has linked in: a [`Registry`] of constructors,
//! filled by whoever links the plugins (the `learnloop-plugins` crate for
//! the three binaries, a test for the plugin it tests), never by the host.
//!
//! The host depends on no concrete plugin: it asks the registry for a fresh
//! instance by name. A registry also knows the plugins that exist but were
//! left out of this build (a Cargo feature turned off), so that asking for
//! one says how to get it rather than "unknown plugin".

use learnloop_plugin_api::Plugin;

/// Makes a fresh, unconfigured instance of a linked-in plugin.
pub type Constructor = fn() -> Box<dyn Plugin>;

/// The plugins linked into this binary, by name, and those left out of it.
#[derive(Clone, Default)]
pub struct Registry {
    built_in: Vec<(&'static str, Constructor)>,
    /// Known plugins not built in, with how to get one (e.g. the Cargo feature).
    left_out: Vec<(&'static str, &'static str)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("built_in", &self.names()).field("left_out", &self.left_out).finish()
    }
}

fn boxed_default<P: Plugin + Default + 'static>() -> Box<dyn Plugin> {
    Box::new(P::default())
}

impl Registry {
    /// A registry with no plugin: only libraries in the plugin directory load.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a linked-in plugin called `name`, made by `create`. A later entry
    /// of the same name replaces the earlier one.
    pub fn with(mut self, name: &'static str, create: Constructor) -> Registry {
        self.built_in.retain(|(n, _)| *n != name);
        self.left_out.retain(|(n, _)| *n != name);
        self.built_in.push((name, create));
        self
    }

    /// [`Registry::with`] for a plugin made by its `Default`.
    pub fn with_default<P: Plugin + Default + 'static>(self, name: &'static str) -> Registry {
        self.with(name, boxed_default::<P>)
    }

    /// Records that plugin `name` exists but is not linked into this
    /// binary; `remedy` says how to get it (e.g. "rebuild with the Cargo
    /// feature `plugin-cost`"), and is shown when it is asked for.
    pub fn without(mut self, name: &'static str, remedy: &'static str) -> Registry {
        if !self.built_in.iter().any(|(n, _)| *n == name) {
            self.left_out.retain(|(n, _)| *n != name);
            self.left_out.push((name, remedy));
        }
        self
    }

    /// Names of the plugins linked in, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.built_in.iter().map(|(n, _)| *n).collect()
    }

    /// Whether `name` is linked in.
    pub fn contains(&self, name: &str) -> bool {
        self.built_in.iter().any(|(n, _)| *n == name)
    }

    /// How to get `name` when it is a known plugin left out of this build.
    pub fn left_out(&self, name: &str) -> Option<&'static str> {
        self.left_out.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
    }

    /// A fresh, unconfigured instance of a linked-in plugin.
    pub fn create(&self, name: &str) -> Option<Box<dyn Plugin>> {
        self.built_in.iter().find(|(n, _)| *n == name).map(|(_, f)| f())
    }
}
