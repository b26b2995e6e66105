//! `learnloop migrate --from sqlite:PATH --to postgres://...`: moves an
//! embedded installation to PostgreSQL (see `learnloop_store::copy_sqlite_to_postgres`).

use std::path::PathBuf;

use anyhow::{Result, bail};
use learnloop_store::{CopyOptions, PostgresStore, TableCopy};

use crate::Env;

#[derive(clap::Args)]
pub struct Args {
    /// The SQLite store to copy, `sqlite:PATH`. Default: the configured
    /// store (`<data_dir>/learnloop.sqlite` unless `store.url` says otherwise).
    #[arg(long, value_name = "sqlite:PATH")]
    from: Option<String>,
    /// The PostgreSQL database to copy into, `postgres://user@host:port/db`.
    /// Must be empty unless --resume.
    #[arg(long, value_name = "postgres://...")]
    to: String,
    /// Continue an interrupted copy into a non-empty target (rows already
    /// there are skipped).
    #[arg(long)]
    resume: bool,
}

pub fn run(env: &Env, args: &Args) -> Result<()> {
    let source: PathBuf = match &args.from {
        Some(from) => match from.strip_prefix("sqlite:") {
            Some(path) => PathBuf::from(path.trim_start_matches("//")),
            None => bail!("--from {from:?}: expected sqlite:PATH"),
        },
        None => match env.config.sqlite_path() {
            Some(path) => path,
            None => bail!("--from is required: the configured store ({}) is not SQLite", env.config.store.url),
        },
    };
    if !(args.to.starts_with("postgres://") || args.to.starts_with("postgresql://")) {
        bail!("--to {:?}: expected postgres://user@host:port/database", args.to);
    }
    let target = PostgresStore::open(&args.to, 2)?;
    let quiet = env.json;
    let mut last = String::new();
    let report =
        learnloop_store::copy_sqlite_to_postgres(&source, &target, CopyOptions { resume: args.resume }, |table, n| {
            if !quiet && (table != last || n % 100_000 < 2_000) {
                errln!("  {table}: {n} rows copied");
                last = table.to_string();
            }
        })?;
    print(&report, env.json, &source)?;
    Ok(())
}

fn print(report: &[TableCopy], json: bool, source: &std::path::Path) -> std::io::Result<()> {
    if json {
        return outln!("{}", serde_json::json!({ "from": source, "tables": report, "verified": true }));
    }
    outln!("{:14} {:>12} {:>12} {:>12}", "table", "source rows", "copied now", "target rows")?;
    for t in report {
        outln!("{:14} {:>12} {:>12} {:>12}", t.table, t.source_rows, t.copied, t.target_rows)?;
    }
    outln!("every table's row count matches the source; point [store] url at the target to switch")
}
