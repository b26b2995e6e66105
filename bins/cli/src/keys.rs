//! `learnloop keys`: API keys on the embedded store. A key is shown once,
//! when it is created; only its hash is stored.

use anyhow::{Result, bail};
use learnloop_core::{Role, Timestamp, WorkspaceId};
use learnloop_store::NewApiKey;
use serde_json::json;

use crate::Env;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a key and print it once.
    Create {
        /// reader, writer or admin.
        #[arg(long)]
        role: String,
        /// The workspace a reader or writer key is limited to (admin keys cover all).
        #[arg(long)]
        workspace: Option<String>,
        /// A name for people.
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// List keys (prefix, role, workspace, created, revoked); never the keys themselves.
    List,
    /// Revoke a key by id; requests with it fail from then on.
    Revoke {
        /// The key's id (from `keys list`).
        id: i64,
    },
}

pub fn run(env: &Env, cmd: &Command) -> Result<()> {
    let store = learnloop_services::open_store(&env.config)?;
    match cmd {
        Command::Create { role, workspace, name } => {
            let role = Role::parse(role)
                .ok_or_else(|| anyhow::anyhow!("--role {role:?}: expected reader, writer or admin"))?;
            let workspace = workspace
                .as_deref()
                .map(|w| WorkspaceId::parse("--workspace", w))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            match (role, &workspace) {
                (Role::Admin, Some(_)) => bail!("--workspace: admin keys cover every workspace; leave it out"),
                (Role::Reader | Role::Writer, None) => bail!("--workspace is required for {} keys", role.as_str()),
                _ => {}
            }
            let mut bytes = [0u8; 20];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
            let key = learnloop_core::keys::format_key(bytes);
            let stored = store.create_api_key(&NewApiKey {
                name: name.clone(),
                prefix: learnloop_core::keys::key_prefix(&key),
                hash: learnloop_core::keys::hash_key(&key),
                workspace,
                role,
                now: Timestamp::now(),
            })?;
            if env.json {
                outln!("{}", json!({"key": key, "id": stored.id, "role": stored.role, "workspace": stored.workspace}))?;
            } else {
                outln!("{key}")?;
                errln!(
                    "key {} ({}, {}) created; it is shown only now",
                    stored.id,
                    stored.role.as_str(),
                    stored.workspace.as_ref().map_or("all workspaces".into(), |w| format!("workspace {w}"))
                );
            }
        }
        Command::List => {
            let keys = store.api_keys()?;
            if env.json {
                outln!("{}", json!({"keys": keys}))?;
            } else {
                for k in keys {
                    outln!(
                        "{:>4}  {}…  {:6}  {:16}  {}  {}{}",
                        k.id,
                        k.prefix,
                        k.role.as_str(),
                        k.workspace.as_ref().map_or("*".to_string(), |w| w.to_string()),
                        k.created_at,
                        k.name,
                        k.revoked_at.map(|t| format!("  (revoked {t})")).unwrap_or_default()
                    )?;
                }
            }
        }
        Command::Revoke { id } => {
            let k = store.revoke_api_key(*id, Timestamp::now())?;
            if env.json {
                outln!("{}", json!(k))?;
            } else {
                outln!("key {} revoked", k.id)?;
            }
        }
    }
    Ok(())
}
