//! Helpers for plugin state documents, shared by every plugin: typed reads
//! that return the version to compare-and-set against, and paged scans.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Context, Expect, PluginError};

/// A document decoded as `T` (its default when absent) and what to expect
/// when writing it back.
pub fn get_doc<T: DeserializeOwned + Default>(ctx: &mut dyn Context, key: &str) -> Result<(T, Expect), PluginError> {
    Ok(match ctx.get_state(key)? {
        Some(s) => (serde_json::from_value(s.value)?, Expect::Version(s.version)),
        None => (T::default(), Expect::Absent),
    })
}

/// Writes `v` as the document `key` if it is as `expect` says.
pub fn put_doc<T: Serialize>(ctx: &mut dyn Context, key: &str, v: &T, expect: Expect) -> Result<(), PluginError> {
    ctx.put_state(key, serde_json::to_value(v)?, expect)?;
    Ok(())
}

/// A document's value (null when absent).
pub fn get_value(ctx: &mut dyn Context, key: &str) -> Result<Value, PluginError> {
    Ok(ctx.get_state(key)?.map(|s| s.value).unwrap_or(Value::Null))
}

/// Every document under `prefix`, in key order, read in pages.
pub fn scan_all(ctx: &mut dyn Context, prefix: &str) -> Result<Vec<(String, Value)>, PluginError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ctx.scan_state(prefix, after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        out.extend(page.into_iter().map(|(k, s)| (k, s.value)));
    }
    Ok(out)
}
