//! `learnloop export`: stored records as JSONL that `learnloop ingest` reads back.
//!
//! Predictions come before outcomes so that re-importing the file into an
//! empty store finds every outcome's prediction. Records stream page by page,
//! so exporting a large history uses little memory.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use learnloop_core::{PluginName, Record, Timestamp, WorkspaceId};
use learnloop_store::{EventQuery, EventStream, Order};

use crate::Env;

#[derive(clap::Args)]
pub struct Args {
    /// Which records.
    #[arg(long, value_enum, default_value = "all")]
    r#type: Which,
    /// Only this workspace.
    #[arg(long)]
    workspace: Option<String>,
    /// Only this plugin.
    #[arg(long)]
    plugin: Option<String>,
    /// Only this kind.
    #[arg(long)]
    kind: Option<String>,
    /// Only this subject.
    #[arg(long)]
    subject: Option<String>,
    /// Event time at or after this (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Event time before this (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Order by event time instead of ingestion order.
    #[arg(long)]
    by_event_time: bool,
    /// Write here instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Which {
    All,
    Prediction,
    Outcome,
}

pub fn run(env: &Env, args: &Args) -> Result<()> {
    let msg = anyhow::Error::msg;
    let query = EventQuery {
        workspace: args.workspace.as_deref().map(|w| WorkspaceId::parse("--workspace", w)).transpose().map_err(msg)?,
        plugin: args.plugin.as_deref().map(|p| PluginName::parse("--plugin", p)).transpose().map_err(msg)?,
        kind: args.kind.clone(),
        subject: args.subject.clone(),
        from: args.from.as_deref().map(|t| Timestamp::parse("--from", t)).transpose().map_err(msg)?,
        until: args.until.as_deref().map(|t| Timestamp::parse("--until", t)).transpose().map_err(msg)?,
        order: if args.by_event_time { Order::EventTime } else { Order::Ingestion },
        limit: 5000,
        ..Default::default()
    };
    let store = learnloop_services::open_store(&env.config)?;
    let out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?),
        None => Box::new(crate::output::Stdout),
    };
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut written = 0u64;
    if args.r#type != Which::Outcome {
        for p in EventStream::predictions(store.as_ref(), query.clone()) {
            serde_json::to_writer(&mut out, &Record::Prediction(p?.record))?;
            out.write_all(b"\n")?;
            written += 1;
        }
    }
    if args.r#type != Which::Prediction {
        for o in EventStream::outcomes(store.as_ref(), query) {
            serde_json::to_writer(&mut out, &Record::Outcome(o?.record))?;
            out.write_all(b"\n")?;
            written += 1;
        }
    }
    out.flush()?;
    if let Some(p) = &args.output {
        if env.json {
            outln!("{}", serde_json::json!({"written": written, "output": p}))?;
        } else {
            outln!("wrote {written} records to {}", p.display())?;
        }
    }
    Ok(())
}
