//! Identifiers with a documented charset and length.
//!
//! Ids appear in URLs, file names, log lines and SQL parameters, so their
//! charset is restricted to characters that need no escaping anywhere:
//!
//! | id | charset | length |
//! |----|---------|--------|
//! | [`RecordId`] (prediction and outcome ids) | `A-Z a-z 0-9 . _ : -` | 1..=128 |
//! | [`WorkspaceId`] | `a-z 0-9 _ -`, starting with a letter or digit | 1..=64 |
//! | [`PluginName`] | `a-z 0-9 _`, starting with a letter | 1..=32 |

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::limits::{MAX_ID_LEN, MAX_PLUGIN_LEN, MAX_WORKSPACE_LEN};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $check:ident, $pattern:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `s`; `field` names the input field in the error.
            pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
                $check(field, s)?;
                Ok(Self(s.to_owned()))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(s: String) -> Result<Self, ValidationError> {
                $check("", &s)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string", "pattern": $pattern, "minLength": 1, "maxLength": $max})
            }
            fn inline_schema() -> bool {
                true
            }
        }
    };
}

string_id!(
    /// A client-chosen id of a prediction or an outcome, unique per workspace.
    /// Reusing an id with the same content is an idempotent retry; with other
    /// content it is a conflict.
    RecordId,
    check_record_id,
    "^[A-Za-z0-9._:-]+$",
    MAX_ID_LEN
);
string_id!(
    /// The tenant every record and every piece of state belongs to.
    WorkspaceId,
    check_workspace,
    "^[a-z0-9][a-z0-9_-]*$",
    MAX_WORKSPACE_LEN
);
string_id!(
    /// The name of a plugin (`cost`, `trust`, `persona`, `drift`, or a third party's).
    PluginName,
    check_plugin,
    "^[a-z][a-z0-9_]*$",
    MAX_PLUGIN_LEN
);

fn check_len(field: &str, s: &str, max: usize) -> Result<(), ValidationError> {
    if s.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if s.len() > max {
        return Err(ValidationError::new(field, format!("is {} bytes long; at most {max} are allowed", s.len())));
    }
    Ok(())
}

fn bad_char(field: &str, s: &str, c: char, allowed: &str) -> ValidationError {
    ValidationError::new(field, format!("{s:?} contains {c:?}; only {allowed} are allowed"))
}

fn check_record_id(field: &str, s: &str) -> Result<(), ValidationError> {
    check_len(field, s, MAX_ID_LEN)?;
    match s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))) {
        Some(c) => Err(bad_char(field, s, c, "ASCII letters, digits and . _ : -")),
        None => Ok(()),
    }
}

fn check_workspace(field: &str, s: &str) -> Result<(), ValidationError> {
    check_len(field, s, MAX_WORKSPACE_LEN)?;
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))) {
        return Err(bad_char(field, s, c, "lowercase ASCII letters, digits, _ and -"));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(ValidationError::new(field, format!("{s:?} must start with a letter or a digit")));
    }
    Ok(())
}

fn check_plugin(field: &str, s: &str) -> Result<(), ValidationError> {
    check_len(field, s, MAX_PLUGIN_LEN)?;
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')) {
        return Err(bad_char(field, s, c, "lowercase ASCII letters, digits and _"));
    }
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(ValidationError::new(field, format!("{s:?} must start with a lowercase letter")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T>(r: Result<T, ValidationError>, expected_err: Option<&str>) {
        match (r, expected_err) {
            (Ok(_), None) => {}
            (Err(e), Some(want)) => assert!(e.to_string().contains(want), "{e} lacks {want:?}"),
            (Ok(_), Some(want)) => panic!("accepted, expected error containing {want:?}"),
            (Err(e), None) => panic!("rejected: {e}"),
        }
    }

    #[test]
    fn record_ids() {
        check(RecordId::parse("id", "rec-1:a_b.c"), None);
        check(RecordId::parse("id", ""), Some("id: must not be empty"));
        check(RecordId::parse("id", &"a".repeat(129)), Some("at most 128"));
        check(RecordId::parse("id", &"a".repeat(128)), None);
        check(RecordId::parse("id", "a b"), Some("contains ' '"));
        check(RecordId::parse("id", "a/b"), Some("contains '/'"));
        check(RecordId::parse("id", "é"), Some("contains 'é'"));
    }

    #[test]
    fn workspaces_and_plugins() {
        check(WorkspaceId::parse("workspace", "team-a_1"), None);
        check(WorkspaceId::parse("workspace", "Team"), Some("contains 'T'"));
        check(WorkspaceId::parse("workspace", "-x"), Some("must start"));
        check(PluginName::parse("plugin", "drift"), None);
        check(PluginName::parse("plugin", "1drift"), Some("must start"));
        check(PluginName::parse("plugin", "dr-ift"), Some("contains '-'"));
    }

    #[test]
    fn serde_validates() {
        let ok: RecordId = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(ok.as_str(), "abc");
        assert!(serde_json::from_str::<RecordId>("\"a b\"").is_err());
    }
}
