//! Notifications leave learnloop here.
//!
//! The store writes every notification to its outbox in the transaction of
//! its cause (see `learnloop_store::Store::route_notifications`); this
//! crate takes them from there to the outside world:
//!
//! * [`destination`]: `[[notify.destinations]]` resolved (secrets from
//!   the environment, checked at start) and their filters;
//! * [`format`]: the webhook event and its HMAC-SHA256 signature, Slack
//!   messages, PagerDuty Events API v2 events;
//! * [`deliver`]: one attempt ([`Sender`]), the retry policy (exponential
//!   backoff with jitter, `Retry-After`, dead letter) and the [`Deliverer`]
//!   (the `notifier` lease, one sender thread per destination), which the
//!   scheduler runs and `learnloop notifications deliver` runs once.
//!
//! It depends on the store and the config, never on the plugin host.

#![deny(missing_docs)]

pub mod deliver;
pub mod destination;
pub mod format;

pub use deliver::{Attempt, Deliverer, PassReport, Sender, Settings};
pub use destination::{Destination, Destinations};

use learnloop_core::{Notification, PluginName, Severity, Timestamp};

/// A `test` notification for `notifications test`: never stored, sent at once.
pub fn test_notification() -> Notification {
    let uid = {
        let mut b = [0u8; 16];
        let _ = getrandom::fill(&mut b);
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!("ntf_{hex}")
    };
    Notification {
        id: 0,
        uid,
        workspace: None,
        plugin: PluginName::parse("", "learnloop").expect("a valid plugin name"),
        event: "test".into(),
        severity: Severity::Low,
        subject: "notifications test".into(),
        summary: "A test notification from learnloop: this destination is reachable.".into(),
        dedup_key: "test".into(),
        link: "/api/v1/notifications".into(),
        data: serde_json::json!({"test": true}),
        occurred_at: Timestamp::now(),
    }
}
