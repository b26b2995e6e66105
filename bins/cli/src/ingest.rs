//! `learnloop ingest`: load predictions and outcomes from JSONL, a JSON
//! array or CSV.
//!
//! Files from other systems are read as they come: a UTF-8 byte-order mark
//! is dropped, CRLF line ends are line ends, a file whose first character
//! is `[` is one JSON array of records. No record may be longer than
//! `MAX_LINE_BYTES`; a longer one, or a CSV record whose quote never
//! closes, is reported by the line it starts on and reading goes on at the
//! next line (`csv_rows`, `json_array`), so memory stays bounded and every
//! good record around it lands. A key repeated inside a record refuses it.
//!
//! This file reads, parses and reports; storing and learning go through the
//! plugin host's one ingest path (`learnloop_plugin_host::ingest`), as the
//! API's do. Two threads: one reads lines, parses them and has the host
//! validate and prepare each record; the other hands batches to the host's
//! group commit ([`PluginHost::append`]), so parsing and the database overlap
//! on a two-core machine. The channel between them is bounded, so memory does
//! not grow with the file. A bad line is reported with its line number and
//! reason and never stops the good lines around it from landing. When reading
//! a pipe, a partial batch is committed after a short idle time, so
//! `tail -f events | learnloop ingest` acknowledges promptly. The plugins
//! learn once, after the whole input is stored ([`PluginHost::learn`]), so
//! they absorb it in large batches.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use learnloop_core::limits::MAX_LINE_BYTES;
use learnloop_core::{RawRecord, Record, RecordDefaults, RecordType, ValidationError, WorkspaceId, parse_json_record};
use learnloop_plugin_host::{CatchUp, PluginHost, Touched};
use learnloop_store::{ItemStatus, Prepared};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::Env;
use crate::csv_rows::{CsvRows, Next, Row};
use crate::json_array::{self, ArrayItems};
use crate::progress::{self, Unit};

/// A UTF-8 byte-order mark, which some tools write at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Details kept for at most this many rejected lines; the rest are counted.
const MAX_REPORTED: usize = 10_000;

#[derive(clap::Args)]
pub struct Args {
    /// Files to read; `-` or nothing reads stdin.
    files: Vec<PathBuf>,
    /// Input format; by default `.csv` files are CSV and everything else JSONL
    /// (or one JSON array, when the input starts with `[`).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Workspace for records that name none (default: `default_workspace` from the config).
    #[arg(long)]
    workspace: Option<String>,
    /// Record type for records without a `type` field.
    #[arg(long, value_enum)]
    r#type: Option<TypeArg>,
    /// Records per store transaction.
    ///
    /// Larger batches mean fewer fsyncs; a pipe commits whatever it has after
    /// 200 ms without input, whatever the batch size.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch_size: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TypeArg {
    Prediction,
    Outcome,
}

/// One line that did not land.
#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    /// File name, or `-` for stdin.
    pub source: String,
    /// 1-based line number (CSV: the line the record starts on).
    pub line: u64,
    /// The record id, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The offending field (empty when the whole line is wrong).
    pub field: String,
    /// Why.
    pub reason: String,
}

/// What an ingest did.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Lines read (blank lines excluded).
    pub read: u64,
    /// Newly stored records.
    pub accepted: u64,
    /// Records that were already stored with the same content.
    pub duplicates: u64,
    /// Lines not stored.
    pub rejected: u64,
    /// The first 10,000 rejections, with line numbers and reasons.
    pub rejections: Vec<Rejected>,
    /// Wall time until every record was stored (and acknowledged).
    pub seconds: f64,
    /// Records (accepted + duplicates + rejected) per second of `seconds`.
    pub rows_per_second: f64,
    /// Wall time of the plugins' online updates that followed.
    pub learn_seconds: f64,
    /// New events absorbed by each plugin's online update.
    pub learned: std::collections::BTreeMap<String, u64>,
    /// Online updates that failed (the events are stored; the next catch-up retries).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub learn_errors: Vec<String>,
    /// Peak resident memory of this process, where the OS reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
}

impl Summary {
    fn reject(&mut self, r: Rejected) {
        self.rejected += 1;
        if self.rejections.len() < MAX_REPORTED {
            self.rejections.push(r);
        }
    }
}

/// One validated record, or a rejected line, in input order.
// Nearly every item is a record: boxing it would cost an allocation per line.
#[allow(clippy::large_enum_variant)]
enum Item {
    Record { source: usize, line: u64, record: Prepared },
    Rejected(Rejected),
}

/// Where input comes from.
pub enum Source {
    /// A file (format from `--format` or its extension).
    File(PathBuf),
    /// Standard input.
    Stdin,
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Stdin => "-".into(),
        }
    }
}

/// Options shared by the CLI command and the quickstart.
pub struct Options {
    pub format: Option<Format>,
    pub defaults: RecordDefaults,
    pub batch_size: usize,
    /// Draw progress on stderr (see [`progress::wanted`]).
    pub progress: bool,
}

pub fn run(env: &Env, args: &Args) -> Result<ExitCode> {
    let workspace = args.workspace.as_deref().unwrap_or(&env.config.default_workspace);
    let defaults = RecordDefaults {
        workspace: Some(WorkspaceId::parse("--workspace", workspace).map_err(anyhow::Error::msg)?),
        record_type: args.r#type.map(|t| match t {
            TypeArg::Prediction => RecordType::Prediction,
            TypeArg::Outcome => RecordType::Outcome,
        }),
    };
    let sources: Vec<Source> = if args.files.is_empty() {
        vec![Source::Stdin]
    } else {
        args.files.iter().map(|f| if f.as_os_str() == "-" { Source::Stdin } else { Source::File(f.clone()) }).collect()
    };
    for s in &sources {
        if let Source::File(p) = s
            && !p.is_file()
        {
            bail!("cannot read {}: no such file", p.display());
        }
    }
    let host = crate::open_host(&env.config)?;
    let opts = Options {
        format: args.format,
        defaults,
        batch_size: args.batch_size as usize,
        progress: progress::wanted(env.json),
    };
    let summary = ingest(&host, sources, &opts)?;
    if env.json {
        outln!("{}", serde_json::to_string(&summary)?)?;
    } else {
        print_summary(&summary)?;
    }
    Ok(if summary.rejected > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

pub fn print_summary(s: &Summary) -> std::io::Result<()> {
    for line in summary_lines(s) {
        outln!("{line}")?;
    }
    Ok(())
}

/// The text summary of an ingest, line by line.
pub fn summary_lines(s: &Summary) -> Vec<String> {
    let mut lines = vec![format!(
        "read {} records: {} accepted, {} duplicates, {} rejected ({:.2} s, {:.0} rows/s)",
        s.read, s.accepted, s.duplicates, s.rejected, s.seconds, s.rows_per_second
    )];
    if s.learn_seconds >= 0.01 {
        lines.push(format!("  online updates took {:.2} s more", s.learn_seconds));
    }
    for r in s.rejections.iter().take(20) {
        let id = r.id.as_deref().map(|i| format!(" (id {i})")).unwrap_or_default();
        let field = if r.field.is_empty() { String::new() } else { format!("{}: ", r.field) };
        lines.push(format!("  rejected {}:{}{id}: {field}{}", r.source, r.line, r.reason));
    }
    if s.rejected > 20 {
        lines.push(format!("  ... and {} more (--json lists the first {MAX_REPORTED})", s.rejected - 20));
    }
    for (plugin, n) in &s.learned {
        lines.push(format!("  {plugin}: online update absorbed {n} new events"));
    }
    for e in &s.learn_errors {
        lines.push(format!(
            "  online update deferred (the events are stored; `learnloop replay` or the next ingest retries): {e}"
        ));
    }
    lines
}

/// Reads every source and appends what validates. Errors only for I/O
/// failures and store failures; bad lines become rejections.
pub fn ingest(host: &PluginHost, sources: Vec<Source>, opts: &Options) -> Result<Summary> {
    let started = Instant::now();
    // What each (plugin, workspace) got that is new: its online update's length.
    let mut touched = Touched::default();
    let names: Vec<String> = sources.iter().map(Source::name).collect();
    let total_bytes: u64 = sources
        .iter()
        .map(|s| match s {
            Source::File(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Source::Stdin => 0,
        })
        .sum();
    // Stdin has no known length: a spinner counts what was read.
    let all_files = sources.iter().all(|s| matches!(s, Source::File(_)));
    let bar = progress::bar(opts.progress, "storing", Unit::Bytes, all_files.then_some(total_bytes));
    let (tx, rx) = sync_channel::<Item>(opts.batch_size);
    let summary = std::thread::scope(|scope| -> Result<Summary> {
        let reader_bar = bar.clone();
        let reader = scope.spawn(move || -> Result<u64> {
            let mut read = 0;
            for (i, source) in sources.into_iter().enumerate() {
                read += read_source(host, i, source, opts, &tx, &reader_bar)?;
            }
            Ok(read)
        });
        let mut summary = Summary::default();
        let mut batch: Vec<Prepared> = Vec::with_capacity(opts.batch_size);
        let mut lines: Vec<(usize, u64)> = Vec::with_capacity(opts.batch_size);
        let mut flush =
            |batch: &mut Vec<Prepared>, lines: &mut Vec<(usize, u64)>, summary: &mut Summary| -> Result<()> {
                if batch.is_empty() {
                    return Ok(());
                }
                let committed = host.append(std::mem::take(batch), None, CatchUp::Later)?;
                let receipt = committed.receipt;
                summary.accepted += receipt.inserted as u64;
                summary.duplicates += receipt.duplicates as u64;
                bar.set_message(format!(
                    " · {} records stored",
                    progress::thousands(summary.accepted + summary.duplicates)
                ));
                touched.merge(committed.touched);
                for ((status, record), (source, line)) in receipt.items.iter().zip(&committed.records).zip(lines.iter())
                {
                    if let ItemStatus::Rejected(reason) = status {
                        summary.reject(Rejected {
                            source: names[*source].clone(),
                            line: *line,
                            id: Some(record.record().id().to_string()),
                            field: reason.field().to_string(),
                            reason: reason.message(),
                        });
                    }
                }
                // The same allocation holds the next batch.
                *batch = committed.records;
                batch.clear();
                lines.clear();
                Ok(())
            };
        loop {
            // Wait briefly for more input; an idle pipe flushes what it has.
            let item = match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(item) => item,
                Err(RecvTimeoutError::Timeout) => {
                    flush(&mut batch, &mut lines, &mut summary)?;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            match item {
                Item::Record { source, line, record } => {
                    batch.push(record);
                    lines.push((source, line));
                    if batch.len() >= opts.batch_size {
                        flush(&mut batch, &mut lines, &mut summary)?;
                    }
                }
                Item::Rejected(r) => summary.reject(r),
            }
        }
        flush(&mut batch, &mut lines, &mut summary)?;
        summary.read = reader.join().map_err(|_| anyhow::anyhow!("input reader panicked"))??;
        Ok(summary)
    })?;
    bar.finish_and_clear();
    let mut summary = summary;
    summary.seconds = started.elapsed().as_secs_f64();
    let learn_started = Instant::now();
    // Online updates run once, after everything is stored: the plugins
    // absorb the new events in large batches. Should this process die
    // before, the next catch-up absorbs them (see the plugin host's docs).
    let mut pairs = touched.iter();
    let several_workspaces = pairs.next().is_some_and(|(_, first, _)| pairs.any(|(_, w, _)| w != first));
    let mut bar: Option<((String, WorkspaceId), ProgressBar)> = None;
    let learned = host.learn(&touched, &mut |p| {
        let key = (p.plugin.to_string(), p.workspace.clone());
        if bar.as_ref().is_none_or(|(k, _)| *k != key) {
            // A pair starts: its bar, as long as what this ingest gave it.
            if let Some((_, done)) = bar.take() {
                done.finish_and_clear();
            }
            let new = touched.iter().find(|(pl, w, _)| *pl == p.plugin && *w == p.workspace).map_or(0, |(_, _, n)| n);
            let phase = if several_workspaces {
                format!("learning {} in {}", p.plugin, p.workspace)
            } else {
                format!("learning {}", p.plugin)
            };
            bar = Some((key, progress::bar(opts.progress, &phase, Unit::Events, Some(new))));
        }
        if let Some((_, b)) = &bar {
            // Events an earlier, deferred update left behind come on top.
            if p.absorbed > b.length().unwrap_or(0) {
                b.set_length(p.absorbed);
            }
            b.set_position(p.absorbed);
        }
    });
    if let Some((_, done)) = bar.take() {
        done.finish_and_clear();
    }
    for l in learned {
        match l.result {
            Ok(n) => *summary.learned.entry(l.plugin).or_default() += n,
            Err(e) => summary.learn_errors.push(format!("{} in {}: {e}", l.plugin, l.workspace)),
        }
    }
    // Rejections from the reader and from the store arrive interleaved; sort
    // them back into input order.
    summary.rejections.sort_by(|a, b| {
        (names.iter().position(|n| *n == a.source), a.line).cmp(&(names.iter().position(|n| *n == b.source), b.line))
    });
    summary.learn_seconds = learn_started.elapsed().as_secs_f64();
    let rows = summary.accepted + summary.duplicates + summary.rejected;
    summary.rows_per_second = rows as f64 / summary.seconds.max(1e-9);
    summary.peak_rss_bytes = peak_rss_bytes();
    Ok(summary)
}

/// Peak resident set size from /proc (Linux); `None` elsewhere.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn read_source(
    host: &PluginHost,
    index: usize,
    source: Source,
    opts: &Options,
    tx: &SyncSender<Item>,
    bar: &ProgressBar,
) -> Result<u64> {
    let name = source.name();
    let format = opts.format.unwrap_or(match &source {
        Source::File(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) => Format::Csv,
        _ => Format::Jsonl,
    });
    let reader: Box<dyn Read + Send> = match &source {
        Source::File(p) => Box::new(File::open(p).with_context(|| format!("cannot open {}", p.display()))?),
        Source::Stdin => Box::new(std::io::stdin()),
    };
    let reader = bar.wrap_read(reader);
    let emit = |line: u64, parsed: Result<Record, ValidationError>, id: Option<String>| -> bool {
        // The owning plugin validates before anything is stored.
        let item = match parsed.and_then(|r| host.validate(&r).map(|_| r)) {
            // Hashing and encoding happen here, on the reader thread.
            Ok(record) => Item::Record { source: index, line, record: Prepared::new(record) },
            Err(e) => Item::Rejected(Rejected { source: name.clone(), line, id, field: e.field, reason: e.message }),
        };
        tx.send(item).is_ok()
    };
    match format {
        Format::Jsonl => {
            let mut reader = BufReader::with_capacity(1 << 16, reader);
            // A file holding one JSON array (`[{...},{...}]`, as many tools
            // export) is read item by item; JSONL records are objects, so
            // a `[` first tells the two apart.
            let head = reader.fill_buf().with_context(|| format!("reading {name}"))?;
            let head = head.strip_prefix(BOM).unwrap_or(head);
            if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
                read_json_array(reader, &name, opts, emit)
            } else {
                read_jsonl(reader, &name, opts, emit)
            }
        }
        Format::Csv => read_csv(reader, &name, opts, emit),
    }
}

fn read_jsonl(
    mut reader: impl BufRead,
    name: &str,
    opts: &Options,
    emit: impl Fn(u64, Result<Record, ValidationError>, Option<String>) -> bool,
) -> Result<u64> {
    let mut buf = Vec::with_capacity(1024);
    let mut line_no = 0u64;
    let mut read = 0u64;
    loop {
        buf.clear();
        // Read at most one byte more than a line may have, so a huge line
        // cannot make us allocate without bound.
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("reading {name}"))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let too_long = buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n');
        if too_long {
            // Skip the rest of the line.
            loop {
                let available = reader.fill_buf()?;
                if available.is_empty() {
                    break;
                }
                match available.iter().position(|b| *b == b'\n') {
                    Some(pos) => {
                        reader.consume(pos + 1);
                        break;
                    }
                    None => {
                        let len = available.len();
                        reader.consume(len);
                    }
                }
            }
            read += 1;
            let e = ValidationError::new("", format!("line is longer than {MAX_LINE_BYTES} bytes"));
            if !emit(line_no, Err(e), None) {
                break;
            }
            continue;
        }
        // A byte-order mark (Windows tools write one) is not part of the
        // first record; `trim` drops the `\r` of a CRLF line end.
        let bytes = if line_no == 1 { buf.strip_prefix(BOM).unwrap_or(&buf) } else { &buf[..] };
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t.trim(),
            Err(_) => {
                read += 1;
                if !emit(line_no, Err(ValidationError::new("", "line is not valid UTF-8")), None) {
                    break;
                }
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        read += 1;
        let parsed = parse_json_record(text, &opts.defaults);
        let id = parsed.is_err().then(|| sniff_id(text)).flatten();
        if !emit(line_no, parsed, id) {
            break;
        }
    }
    Ok(read)
}

fn read_json_array(
    reader: impl Read,
    name: &str,
    opts: &Options,
    emit: impl Fn(u64, Result<Record, ValidationError>, Option<String>) -> bool,
) -> Result<u64> {
    let mut items = ArrayItems::new(reader, MAX_LINE_BYTES);
    let mut buf = Vec::with_capacity(1024);
    let mut read = 0u64;
    loop {
        let (line, parsed, id) = match items.next(&mut buf).with_context(|| format!("reading {name}"))? {
            json_array::Next::End => break,
            json_array::Next::Bad { line, reason, .. } => (line, Err(ValidationError::new("", reason)), None),
            json_array::Next::Item { line } => match std::str::from_utf8(&buf) {
                Err(_) => (line, Err(ValidationError::new("", "the record is not valid UTF-8")), None),
                Ok(text) => {
                    let parsed = parse_json_record(text, &opts.defaults);
                    let id = parsed.is_err().then(|| sniff_id(text)).flatten();
                    (line, parsed, id)
                }
            },
        };
        read += 1;
        if !emit(line, parsed, id) {
            break;
        }
    }
    Ok(read)
}

/// The `id` of a line that failed validation, if it can be read at all, so
/// the report can name the record.
fn sniff_id(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    v.get("id")?.as_str().map(str::to_string)
}

const CSV_STRINGS: [&str; 10] =
    ["type", "id", "workspace", "plugin", "subject", "kind", "label", "prediction_id", "feedback", "event_time"];
const CSV_NUMBERS: [&str; 3] = ["value", "confidence", "quality"];

fn read_csv(
    reader: impl Read,
    name: &str,
    opts: &Options,
    emit: impl Fn(u64, Result<Record, ValidationError>, Option<String>) -> bool,
) -> Result<u64> {
    let mut rows = CsvRows::new(reader, MAX_LINE_BYTES);
    let mut header = Row::default();
    match rows.next(&mut header).with_context(|| format!("reading {name}"))? {
        Next::Row => {}
        Next::End => return Ok(0),
        Next::Bad { line, reason } => bail!("{name}:{line}: the header row cannot be read: {reason}"),
    }
    let headers: Vec<String> = header.iter().map(str::to_string).collect();
    for (i, h) in headers.iter().enumerate() {
        let h = h.as_str();
        let known = CSV_STRINGS.contains(&h)
            || CSV_NUMBERS.contains(&h)
            || matches!(h, "success" | "features" | "payload")
            || h.strip_prefix("features.").is_some_and(|s| !s.is_empty())
            || h.strip_prefix("payload.").is_some_and(|s| !s.is_empty());
        if !known {
            bail!(
                "{name}: column {h:?} is not a record field; expected {}, {}, success, features, payload, features.NAME or payload.NAME",
                CSV_STRINGS.join(", "),
                CSV_NUMBERS.join(", ")
            );
        }
        if headers[..i].iter().any(|earlier| earlier == h) {
            bail!("{name}: column {h:?} appears twice in the header; each column may appear only once");
        }
    }
    let id_column = headers.iter().position(|h| h == "id");
    let mut read = 0u64;
    let mut row = Row::default();
    loop {
        let (line, parsed, id) = match rows.next(&mut row).with_context(|| format!("reading {name}"))? {
            Next::End => break,
            // An unclosed quote, an over-long record or bad UTF-8: one
            // rejection, and reading goes on at the next line.
            Next::Bad { line, reason } => (line, Err(ValidationError::new("", reason)), None),
            Next::Row => {
                let id = id_column.and_then(|i| row.get(i)).filter(|s| !s.is_empty()).map(str::to_string);
                let parsed = if row.len() == headers.len() {
                    csv_record(&headers, &row).and_then(|raw| raw.validate(&opts.defaults))
                } else {
                    Err(ValidationError::new(
                        "",
                        format!("the record has {} fields; the header has {}", row.len(), headers.len()),
                    ))
                };
                (row.line, parsed, id)
            }
        };
        read += 1;
        if !emit(line, parsed, id) {
            break;
        }
    }
    Ok(read)
}

/// Adds `key` to the `features` or `payload` object of a CSV row, refusing
/// a key that two columns set (`features` holding `{"x":1}` and a
/// `features.x` column): which one was meant?
fn insert_once(map: &mut Map<String, Value>, object: &str, key: String, value: Value) -> Result<(), ValidationError> {
    if map.contains_key(&key) {
        return Err(ValidationError::new(
            format!("{object}.{key}"),
            format!("is set twice in this row (by the {object:?} column and a \"{object}.{key}\" column)"),
        ));
    }
    map.insert(key, value);
    Ok(())
}

/// A CSV cell as a feature or payload value: a finite number when it parses
/// as one, else the string. Empty cells are left out.
fn csv_scalar(field: &str, cell: &str) -> Result<Option<Value>, ValidationError> {
    if cell.is_empty() {
        return Ok(None);
    }
    if let Ok(x) = cell.parse::<f64>() {
        if !x.is_finite() {
            return Err(ValidationError::new(field, format!("must be a finite number, got {cell}")));
        }
        return Ok(serde_json::Number::from_f64(x).map(Value::Number));
    }
    Ok(Some(Value::String(cell.to_string())))
}

fn csv_record(headers: &[String], row: &Row) -> Result<RawRecord, ValidationError> {
    let mut raw = RawRecord::default();
    let mut features = Map::new();
    let mut payload = Map::new();
    let mut has_features = false;
    for (h, cell) in headers.iter().zip(row.iter()) {
        let h = h.as_str();
        let text = (!cell.is_empty()).then(|| cell.to_string());
        match h {
            "type" => raw.record_type = text,
            "id" => raw.id = text,
            "workspace" => raw.workspace = text,
            "plugin" => raw.plugin = text,
            "subject" => raw.subject = text,
            "kind" => raw.kind = text,
            "label" => raw.label = text,
            "prediction_id" => raw.prediction_id = text,
            "feedback" => raw.feedback = text,
            "event_time" => raw.event_time = text,
            "value" | "confidence" | "quality" => {
                let x = match text {
                    None => None,
                    Some(t) => {
                        Some(t.parse::<f64>().map_err(|_| ValidationError::new(h, format!("{t:?} is not a number")))?)
                    }
                };
                match h {
                    "value" => raw.value = x,
                    "confidence" => raw.confidence = x,
                    _ => raw.quality = x,
                }
            }
            "success" => {
                raw.success = match cell.to_ascii_lowercase().as_str() {
                    "" => None,
                    "true" | "1" | "yes" => Some(true),
                    "false" | "0" | "no" => Some(false),
                    other => {
                        return Err(ValidationError::new(
                            "success",
                            format!("{other:?} is not a boolean (true/false, 1/0, yes/no)"),
                        ));
                    }
                }
            }
            "features" | "payload" => {
                if let Some(t) = text {
                    let (v, repeated) = learnloop_core::json::parse_value(t.as_bytes()).map_err(|e| {
                        let why = learnloop_core::plain::serde_message(&e.to_string());
                        ValidationError::new(h, format!("is not a JSON object ({why})"))
                    })?;
                    if let Some(d) = repeated.first() {
                        return Err(ValidationError::new(
                            format!("{h}.{}", d.path),
                            learnloop_core::json::DUPLICATE_KEY_MESSAGE,
                        ));
                    }
                    let Value::Object(map) = v else {
                        return Err(ValidationError::new(h, "is not a JSON object"));
                    };
                    let into = if h == "features" {
                        has_features = true;
                        &mut features
                    } else {
                        &mut payload
                    };
                    for (k, v) in map {
                        insert_once(into, h, k, v)?;
                    }
                }
            }
            _ => {
                if let Some(name) = h.strip_prefix("features.") {
                    if let Some(v) = csv_scalar(h, cell)? {
                        has_features = true;
                        insert_once(&mut features, "features", name.to_string(), v)?;
                    }
                } else if let Some(name) = h.strip_prefix("payload.")
                    && let Some(v) = csv_scalar(h, cell)?
                {
                    insert_once(&mut payload, "payload", name.to_string(), v)?;
                }
            }
        }
    }
    if has_features {
        raw.features = Some(features);
    }
    if !payload.is_empty() {
        raw.payload = Some(Value::Object(payload));
    }
    Ok(raw)
}
