//! `learnloop notifications`: the outbox on the local store — list
//! deliveries, retry a dead one, send a test event to a destination, and
//! deliver what is due once (what `learnloop-scheduler` does continuously).

use anyhow::{Result, bail};
use learnloop_core::{Delivery, DeliveryStatus, PluginName, Timestamp, WorkspaceId};
use learnloop_notify::{Attempt, Deliverer, Destinations, Sender, Settings};
use learnloop_store::{DeliveryQuery, StoreError};
use serde_json::json;

use crate::Env;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Deliveries (one per notification and destination), newest first.
    List {
        /// Only pending, delivered or dead ones.
        #[arg(long)]
        status: Option<String>,
        /// Only to this destination.
        #[arg(long)]
        destination: Option<String>,
        /// Only notifications of this workspace (default: every workspace).
        #[arg(long)]
        workspace: Option<String>,
        /// Only notifications of this plugin.
        #[arg(long)]
        plugin: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = crate::DEFAULT_LIMIT, value_parser = clap::value_parser!(u32).range(1..=crate::MAX_LIMIT as i64))]
        limit: u32,
    },
    /// Send a dead (or pending) delivery again now, with its attempts reset.
    Retry {
        /// The delivery's id (from `notifications list`).
        id: i64,
    },
    /// Send a test event to a destination now and say what happened.
    Test {
        /// A destination's name from `[[notify.destinations]]`.
        destination: String,
    },
    /// Route new notifications and send everything due, once (the scheduler does this continuously).
    Deliver,
}

pub fn run(env: &Env, cmd: &Command) -> Result<()> {
    let destinations = Destinations::from_config(&env.config).map_err(anyhow::Error::msg)?;
    match cmd {
        Command::Test { destination } => {
            let Some(d) = destinations.get(destination) else {
                let known = destinations.names().join(", ");
                bail!(
                    "no destination {destination:?} in [[notify.destinations]]; configured: {}",
                    if known.is_empty() { "none" } else { &known }
                );
            };
            let n = learnloop_notify::test_notification();
            let attempt = Sender::new(Settings::from_config(&env.config.notify)).send(d, &n);
            let (ok, detail) = match &attempt {
                Attempt::Ok { status: 0 } => (true, "written".to_string()),
                Attempt::Ok { status } => (true, format!("HTTP {status}")),
                Attempt::Failed { error, .. } => (false, error.clone()),
            };
            if env.json {
                outln!("{}", json!({"destination": destination, "delivered": ok, "detail": detail, "id": n.uid}))?;
            } else {
                outln!(
                    "{destination}: test event {} {} ({detail})",
                    n.uid,
                    if ok { "delivered" } else { "NOT delivered" }
                )?;
            }
            if !ok {
                bail!("the destination {destination:?} did not accept the test event: {detail}");
            }
        }
        Command::List { status, destination, workspace, plugin, limit } => {
            let store = learnloop_services::open_store(&env.config)?;
            let query = DeliveryQuery {
                status: status
                    .as_deref()
                    .map(|s| {
                        DeliveryStatus::parse(s)
                            .ok_or_else(|| anyhow::anyhow!("--status {s:?}: expected pending, delivered or dead"))
                    })
                    .transpose()?,
                destination: destination.clone(),
                workspace: workspace
                    .as_deref()
                    .map(|w| WorkspaceId::parse("--workspace", w))
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                plugin: plugin
                    .as_deref()
                    .map(|p| PluginName::parse("--plugin", p))
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                limit: *limit as usize,
            };
            let list = store.deliveries(&query)?;
            let stats = store.outbox_stats()?;
            if env.json {
                outln!(
                    "{}",
                    json!({"deliveries": list, "unrouted": stats.unrouted, "destinations": destinations.names()})
                )?;
            } else {
                if destinations.list.is_empty() {
                    errln!(
                        "no [[notify.destinations]] configured: notifications wait in the outbox ({} so far)",
                        stats.unrouted
                    );
                } else if stats.unrouted > 0 {
                    errln!(
                        "{} notification(s) not routed yet (learnloop-scheduler, or `learnloop notifications deliver`)",
                        stats.unrouted
                    );
                }
                for d in &list {
                    outln!("{}", line(d))?;
                }
            }
        }
        Command::Retry { id } => {
            let store = learnloop_services::open_store(&env.config)?;
            let d = match store.retry_delivery(*id, Timestamp::now()) {
                Ok(d) => d,
                Err(StoreError::Invalid { message, .. }) => bail!("{message}"),
                Err(e) => return Err(e.into()),
            };
            if env.json {
                outln!("{}", json!(d))?;
            } else {
                outln!("delivery {} to {} is pending again (attempts reset)", d.id, d.destination)?;
            }
        }
        Command::Deliver => {
            if destinations.list.is_empty() {
                bail!("no [[notify.destinations]] configured: nothing to deliver to (see `notify` in the config file)");
            }
            let store = learnloop_services::open_store(&env.config)?;
            let settings = Settings::from_config(&env.config.notify);
            let d = Deliverer::new(store, destinations, settings, &format!("cli@{}", std::process::id()));
            match d.run_once()? {
                Some(r) => {
                    if env.json {
                        outln!(
                            "{}",
                            json!({"routed": r.routed, "delivered": r.delivered, "failed": r.failed, "dead": r.dead})
                        )?;
                    } else {
                        outln!(
                            "{} routed, {} delivered, {} failed (retried later), {} given up",
                            r.routed,
                            r.delivered,
                            r.failed,
                            r.dead
                        )?;
                    }
                }
                None => bail!("another process (a learnloop-scheduler) is delivering notifications now"),
            }
        }
    }
    Ok(())
}

/// One delivery as a line for people.
pub fn line(d: &Delivery) -> String {
    let n = &d.notification;
    let when = n.occurred_at.to_rfc3339();
    let state = match d.status {
        DeliveryStatus::Delivered => format!("delivered after {} attempt(s)", d.attempts),
        DeliveryStatus::Dead => {
            format!("DEAD after {} attempt(s): {}", d.attempts, d.last_error.as_deref().unwrap_or(""))
        }
        DeliveryStatus::Pending => match (&d.last_error, d.next_attempt_at) {
            (Some(e), Some(t)) => format!("pending, next attempt {}: {e}", t.to_rfc3339()),
            _ => "pending".to_string(),
        },
    };
    format!(
        "{:>5}  {}  {:<12} {:<24} {:<8} {}/{}  {}  [{state}]",
        d.id,
        &when[..19.min(when.len())],
        d.destination,
        n.event,
        format!("{:?}", n.severity).to_lowercase(),
        n.workspace.as_ref().map_or("-", |w| w.as_str()),
        n.plugin,
        n.subject,
    )
}
