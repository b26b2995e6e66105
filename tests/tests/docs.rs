//! The documentation works as written (issue 17, section 5).
//!
//! Conventions the READMEs follow, enforced here:
//!
//! * **Every shell command shown to a user is in a ```` ```sh ```` block**, and
//!   this test runs every one of them, in document order, in a scratch
//!   directory whose `PATH` starts with the binaries built for this test run
//!   (so `learnloop` is the one just built). A command is a line, continued by
//!   a trailing `\` or an open quote; `#` lines are comments. A command fails
//!   the test when it exits non-zero or prints `error`, `warning` or a panic
//!   on stderr; the failure names the README and line. Other shell-ish fence
//!   languages (`bash`, `shell`, `console`, ...) and indented code blocks are
//!   refused, so no command can slip past the test by its formatting.
//! * Commands are run as written, except for these substitutions:
//!   `cargo run --release --bin NAME -- ARGS` runs the built `NAME ARGS`;
//!   `cargo build --release -p PKG --features dynamic` builds the plugin
//!   library into `target/cdylib-plugins` (shared with the plugin host's
//!   tests) and `target/release/` in later commands points there;
//!   `learnloop-api` gets `--bind 127.0.0.1:0` and `127.0.0.1:8080` in later
//!   commands becomes the address it listens on.
//! * `learnloop-api` and `learnloop-scheduler` (without `--once`) are servers:
//!   they run in the background until the next `## ` heading, then get
//!   SIGTERM and must exit 0 without error output.
//! * [`SKIP`] lists the commands that cannot run in a test, each with why.
//! * Plugin READMEs (`plugins/*/README.md`) show examples on the quickstart
//!   data: their commands run after `learnloop quickstart`.
//! * Inline code spans that start with `learnloop`, `learnloop-api` or
//!   `learnloop-scheduler` are synopses: each must name commands that
//!   `--help` lists and flags those commands take, and a concrete
//!   `learnloop call PLUGIN METHOD /path` must name a route the plugin has,
//!   with query parameters that route's row in the plugin README documents.
//! * Inline `METHOD /api/v1/...` spans must be routes of the running API's
//!   OpenAPI document.
//!
//! Also here: the README's CLI table lists exactly the commands of
//! `learnloop --help` (and, per row, every flag they take); each plugin's
//! README lists exactly its routes, jobs and config keys with their defaults;
//! the systemd units in `deploy/systemd` start the real binaries with
//! flags they accept and stop them with the signal they handle.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use learnloop_e2e::{Scratch, bin};

/// Commands that cannot run in a test: (prefix of the command, why).
const SKIP: &[(&str, &str)] = &[
    ("./scripts/test", "it is the whole test suite, which runs this test"),
    (
        "cargo build --release --locked",
        "a release build of the whole workspace takes many minutes; this test runs the same binaries, built for the test run",
    ),
    ("cargo bench", "a benchmark run takes minutes and measures, it does not check the docs"),
    ("LEARNLOOP_BENCH_", "a benchmark run (with its size or database set) takes minutes"),
    (
        "sudo systemctl ",
        "needs systemd and the installed units; the units are checked by `systemd_units_start_the_real_binaries`",
    ),
    (
        "systemctl ",
        "needs systemd and the installed units; the units are checked by `systemd_units_start_the_real_binaries`",
    ),
    (
        "sudo ",
        "installs onto this machine (system user, /usr/local/bin, /etc); the units it installs are checked by `systemd_units_start_the_real_binaries`",
    ),
    (
        "docker ",
        "needs a Docker daemon and the compose plugin; tests/tests/deploy.rs checks the files the image and the compose file use",
    ),
    ("pg_dump ", "needs the example's PostgreSQL server; pg_dump is PostgreSQL's own tool"),
    (
        "learnloop migrate --from sqlite:/var/lib/",
        "needs the example's PostgreSQL server; tests/tests/postgres.rs runs `migrate` against a real one",
    ),
];

/// Tools besides the shell's own that examples may pipe into; a command
/// using one is skipped (and says so) where it is not installed.
const OPTIONAL_TOOLS: &[&str] = &["jq"];

/// How long one documented command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The plugin crates (`plugins/<name>/Cargo.toml`).
fn plugin_names() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root().join("plugins"))
        .expect("plugins/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------- markdown

/// A shell command from a ```sh block.
#[derive(Debug, Clone)]
struct Cmd {
    /// 1-based line where it starts.
    line: usize,
    text: String,
    /// The `## ` section it is in.
    section: String,
}

/// Whether `text` ends inside an open quote (or with a `\` continuation).
fn continues(text: &str) -> bool {
    let (mut single, mut double, mut escaped) = (false, false, false);
    for c in text.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            _ => {}
        }
    }
    single || double || escaped || text.trim_end().ends_with('\\')
}

const SHELL_FENCES: &[&str] = &["bash", "shell", "console", "zsh", "shell-session", "sh-session", "terminal"];

/// The ```sh commands of a markdown file; panics on shell commands in any
/// other form (other fence languages, indented code blocks).
fn sh_commands(name: &str, text: &str) -> Vec<Cmd> {
    let mut out = Vec::new();
    let mut fence: Option<(String, String)> = None; // (marker, language)
    let mut pending: Option<Cmd> = None;
    let mut section = String::new();
    let mut prev_blank = true;
    let mut in_list = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim_start();
        if let Some((marker, lang)) = &fence {
            if trimmed.starts_with(marker.as_str()) && trimmed.trim_matches(|c| c == '`' || c == '~').is_empty() {
                assert!(
                    pending.is_none(),
                    "{name}:{n}: a command in this block is not finished (open quote or trailing \\)"
                );
                fence = None;
                continue;
            }
            if lang == "sh" {
                if let Some(p) = pending.as_mut() {
                    p.text.push('\n');
                    p.text.push_str(line);
                } else if !trimmed.is_empty() && !trimmed.starts_with('#') {
                    pending = Some(Cmd { line: n, text: line.to_string(), section: section.clone() });
                }
                if pending.as_ref().is_some_and(|p| !continues(&p.text)) {
                    out.push(pending.take().unwrap());
                }
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            let marker: String = trimmed.chars().take_while(|c| *c == '`' || *c == '~').collect();
            let lang = trimmed[marker.len()..].trim().to_string();
            assert!(
                !SHELL_FENCES.contains(&lang.as_str()),
                "{name}:{n}: shell commands go in ```sh blocks (the doc test runs those), not ```{lang}"
            );
            assert!(
                !lang.is_empty(),
                "{name}:{n}: say the fence's language (```sh for commands, ```text, ```json, ```toml ...)"
            );
            fence = Some((marker, lang));
            continue;
        }
        if let Some(h) = line.strip_prefix("## ") {
            section = h.trim().to_string();
        }
        if trimmed.starts_with("* ")
            || trimmed.starts_with("- ")
            || (trimmed.chars().next().is_some_and(|c| c.is_ascii_digit()) && trimmed.contains(". "))
        {
            in_list = true;
        } else if line.trim().is_empty() {
            // a list ends at a blank line followed by an unindented line (checked below)
        } else if !line.starts_with(' ') {
            in_list = false;
        }
        let indented_code = line.starts_with("    ") && prev_blank && !in_list && !line.trim().is_empty();
        assert!(
            !indented_code,
            "{name}:{n}: an indented code block; put commands in a ```sh block (the doc test runs those) and other text in a fenced block with its language"
        );
        prev_blank = line.trim().is_empty();
    }
    assert!(fence.is_none(), "{name}: a fenced block is never closed");
    out
}

/// Inline code spans outside fenced blocks, with the line they start on. A
/// span may continue over a line break inside its paragraph.
fn inline_spans(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_fence = false;
    // The current paragraph: its first line and its text.
    let mut para: Option<(usize, String)> = None;
    let flush = |para: &mut Option<(usize, String)>, out: &mut Vec<(usize, String)>| {
        let Some((first, text)) = para.take() else { return };
        let mut rest = text.as_str();
        let mut consumed = 0;
        while let Some(start) = rest.find('`') {
            let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
            let after = &rest[start + ticks..];
            let close = "`".repeat(ticks);
            let Some(end) = after.find(&close) else { break };
            let line = first + text[..consumed + start].matches('\n').count();
            out.push((line, after[..end].replace('\n', " ").trim().replace("\\|", "|")));
            let used = start + ticks + end + ticks;
            consumed += used;
            rest = &rest[used..];
        }
    };
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            flush(&mut para, &mut out);
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        // Blank lines and table rows end a paragraph (a table row is one).
        if line.trim().is_empty() || t.starts_with('|') {
            flush(&mut para, &mut out);
            if t.starts_with('|') {
                para = Some((i + 1, line.to_string()));
                flush(&mut para, &mut out);
            }
            continue;
        }
        match para.as_mut() {
            Some((_, p)) => {
                p.push('\n');
                p.push_str(line);
            }
            None => para = Some((i + 1, line.to_string())),
        }
    }
    flush(&mut para, &mut out);
    out
}

/// Table rows (cells, unescaped `\|` kept inside cells) in a markdown text,
/// with their line numbers; separator rows left out.
fn table_rows(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if !t.starts_with('|') {
            continue;
        }
        let mut cells = Vec::new();
        let mut cur = String::new();
        let mut chars = t[1..].chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'|') => {
                    cur.push('|');
                    chars.next();
                }
                '|' => cells.push(std::mem::take(&mut cur).trim().to_string()),
                c => cur.push(c),
            }
        }
        if cells.iter().all(|c| c.chars().all(|c| c == '-' || c == ':')) {
            continue;
        }
        out.push((i + 1, cells));
    }
    out
}

/// The text of the first `## ` section whose heading starts with `heading`
/// (any case), up to the next `## `, and the number of lines before it.
fn section<'a>(text: &'a str, heading: &str) -> Option<(usize, &'a str)> {
    let heading = heading.to_lowercase();
    let start = text
        .lines()
        .position(|l| l.strip_prefix("## ").is_some_and(|h| h.trim().to_lowercase().starts_with(&heading)))?;
    let mut offset = 0;
    let mut lines = text.lines();
    for _ in 0..=start {
        offset += lines.next().unwrap().len() + 1;
    }
    let rest = &text[offset.min(text.len())..];
    let end = rest.find("\n## ").map_or(rest.len(), |e| e + 1);
    Some((start + 1, &rest[..end]))
}

/// Code spans of a table cell.
fn cell_spans(cell: &str) -> Vec<String> {
    inline_spans(cell).into_iter().map(|(_, s)| s).collect()
}

// ---------------------------------------------------------------- --help

/// What `-h` of one command lists.
#[derive(Debug, Default, Clone)]
struct Help {
    /// Subcommands with their one-line descriptions (`help` left out).
    commands: BTreeMap<String, String>,
    /// Options, each with its aliases (`-q`, `--query`).
    options: Vec<Vec<String>>,
}

impl Help {
    fn flags(&self) -> BTreeSet<String> {
        self.options.iter().flatten().cloned().collect()
    }
}

fn help(binary: &str, path: &[String]) -> Help {
    let out = Command::new(bin(binary)).args(path).arg("-h").output().expect("run -h");
    assert!(out.status.success(), "{binary} {} -h failed: {}", path.join(" "), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut h = Help::default();
    let mut part = "";
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            part = if line == "Commands:" {
                "commands"
            } else if line == "Options:" {
                "options"
            } else {
                ""
            };
            continue;
        }
        match part {
            "commands" if line.starts_with("  ") && !line.starts_with("   ") => {
                let t = line.trim();
                let (name, desc) = t.split_once("  ").unwrap_or((t, ""));
                if name != "help" {
                    h.commands.insert(name.to_string(), desc.trim().to_string());
                }
            }
            "options" if line.trim_start().starts_with('-') => {
                let aliases: Vec<String> = line
                    .split_whitespace()
                    .take_while(|t| t.starts_with('-') || t.starts_with('<') || t.starts_with('['))
                    .filter(|t| t.starts_with('-'))
                    .map(|t| t.trim_end_matches(',').to_string())
                    .collect();
                h.options.push(aliases);
            }
            _ => {}
        }
    }
    h
}

/// Every command of a binary by path, `-h` cached.
struct Helps {
    binary: &'static str,
    cache: BTreeMap<Vec<String>, Help>,
}

impl Helps {
    fn new(binary: &'static str) -> Self {
        Self { binary, cache: BTreeMap::new() }
    }

    fn get(&mut self, path: &[String]) -> &Help {
        let binary = self.binary;
        self.cache.entry(path.to_vec()).or_insert_with(|| help(binary, path))
    }

    /// Leaf command paths (commands without subcommands), depth first.
    fn leaves(&mut self, path: Vec<String>) -> Vec<Vec<String>> {
        let subs: Vec<String> = self.get(&path).commands.keys().cloned().collect();
        if subs.is_empty() {
            return vec![path];
        }
        subs.into_iter()
            .flat_map(|s| {
                let mut p = path.clone();
                p.push(s);
                self.leaves(p)
            })
            .collect()
    }
}

/// Splits a synopsis or command into words, keeping quoted parts together
/// (quotes removed).
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() || any {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() || any {
        out.push(cur);
    }
    out
}

/// A plain subcommand-like word (not a flag, placeholder or value).
fn is_word(w: &str) -> bool {
    !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '-' || c == '|') && !w.starts_with('-')
}

/// Checks one synopsis (`learnloop jobs run PLUGIN JOB [--server URL]`)
/// against `-h`: returns the leaf command paths it names, or what is wrong.
fn check_synopsis(helps: &mut Helps, synopsis: &str) -> Result<Vec<Vec<String>>, String> {
    let ws = words(synopsis);
    let mut path: Vec<String> = Vec::new();
    let mut i = 1;
    let mut leaves = Vec::new();
    while i < ws.len() {
        let w = ws[i].trim_matches(|c| c == '[' || c == ']' || c == '(' || c == ')');
        let subs = helps.get(&path).commands.clone();
        if subs.is_empty() || !is_word(w) {
            break;
        }
        let alts: Vec<&str> = w.split('|').collect();
        if let Some(bad) = alts.iter().find(|a| !subs.contains_key(**a)) {
            return Err(format!(
                "`{} {}` has no subcommand {bad:?} (it has: {})",
                helps.binary,
                path.join(" "),
                subs.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if alts.len() > 1 {
            for a in alts {
                let mut p = path.clone();
                p.push(a.to_string());
                leaves.push(p);
            }
            path.clear();
            break;
        }
        path.push(w.to_string());
        i += 1;
    }
    if !path.is_empty() || leaves.is_empty() {
        leaves.push(path);
    }
    let mut flags: BTreeSet<String> = BTreeSet::new();
    for l in &leaves {
        flags.extend(helps.get(l).flags());
    }
    for w in &ws[i..] {
        let w = w.trim_start_matches(['[', '(']);
        if w.starts_with('-') && w.chars().nth(1).is_some_and(|c| c.is_ascii_alphabetic() || c == '-') && w.len() > 1 {
            let flag: String = w.split(['=', ']', ')', ' ']).next().unwrap().to_string();
            if !flags.contains(&flag) {
                return Err(format!("{flag} is not an option of `{} {}`", helps.binary, leaves[0].join(" ")));
            }
        }
    }
    Ok(leaves)
}

// ---------------------------------------------------------------- routes

/// Every plugin's routes (`GET /agents/{agent}`) and jobs, from the real
/// manifests (`learnloop plugins list --json`).
fn manifests() -> BTreeMap<String, (BTreeSet<String>, BTreeMap<String, String>)> {
    let s = Scratch::sqlite();
    let (code, v) = s.json(&["plugins", "list"]);
    assert_eq!(code, 0, "learnloop plugins list: {v}");
    let mut out = BTreeMap::new();
    for p in v["plugins"].as_array().expect("plugins") {
        let name = p["name"].as_str().unwrap().to_string();
        let prefix = format!("/api/v1/{name}");
        let routes = p["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let (m, path) = r.as_str().unwrap().split_once(' ').unwrap();
                format!("{m} {}", path.strip_prefix(&prefix).unwrap_or(path))
            })
            .collect();
        let jobs = p["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| (j["name"].as_str().unwrap().to_string(), j["schedule"].as_str().unwrap().to_string()))
            .collect();
        out.insert(name, (routes, jobs));
    }
    out
}

/// Whether `METHOD /concrete/path` matches a route pattern with `{x}` segments.
fn route_matches(pattern: &str, concrete: &str) -> bool {
    let (pm, pp) = pattern.split_once(' ').unwrap();
    let (cm, cp) = concrete.split_once(' ').unwrap();
    let ps: Vec<&str> = pp.split('/').collect();
    let cs: Vec<&str> = cp.split('/').collect();
    pm.eq_ignore_ascii_case(cm) && ps.len() == cs.len() && ps.iter().zip(&cs).all(|(p, c)| p.starts_with('{') || p == c)
}

/// For `learnloop call PLUGIN METHOD PATH ...` with concrete values: the
/// route it calls (`GET /agents/agent-0`) unless the words are placeholders.
fn called_route(ws: &[String]) -> Option<(String, String)> {
    let pos = ws.iter().position(|w| w == "call")?;
    let rest: Vec<&String> = ws[pos + 1..].iter().filter(|w| !w.starts_with('-')).collect();
    let (plugin, method, path) = (rest.first()?, rest.get(1)?, rest.get(2)?);
    if !is_word(plugin) || !["GET", "POST", "PUT", "DELETE"].contains(&method.as_str()) || !path.starts_with('/') {
        return None;
    }
    let path = path.split('?').next().unwrap();
    Some((plugin.to_string(), format!("{method} {path}")))
}

/// The rows of a plugin README's Routes tables by route (`GET /agents/{agent}`).
fn route_rows(plugin: &str) -> BTreeMap<String, String> {
    let text = read(&format!("plugins/{plugin}/README.md"));
    let (_, routes) =
        section(&text, "routes").unwrap_or_else(|| panic!("plugins/{plugin}/README.md has no Routes section"));
    table_rows(routes)
        .into_iter()
        .filter_map(|(_, cells)| {
            let span = cell_spans(&cells[0]).into_iter().next()?;
            let mut w = span.split_whitespace();
            let (m, p) = (w.next()?, w.next()?);
            Some((format!("{m} {}", p.split('?').next().unwrap()), cells.join(" | ")))
        })
        .collect()
}

/// The query parameter names of a `learnloop call` command: `PATH?k=v&...`
/// and `-q k=v` / `--query k=v`.
fn query_keys(ws: &[String]) -> Vec<String> {
    let mut keys = Vec::new();
    for (i, w) in ws.iter().enumerate() {
        if w.starts_with('/')
            && let Some((_, q)) = w.split_once('?')
        {
            keys.extend(
                q.split('&').filter_map(|kv| kv.split('=').next()).filter(|k| !k.is_empty()).map(str::to_string),
            );
        }
        if (w == "-q" || w == "--query")
            && let Some(kv) = ws.get(i + 1)
        {
            keys.extend(kv.split('=').next().map(str::to_string));
        }
    }
    keys
}

/// Whether `text` names `word` as a whole word.
fn mentions(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

// ---------------------------------------------------------------- running

/// A server started by a documented command.
struct Server {
    child: std::process::Child,
    what: String,
    stderr: Arc<Mutex<String>>,
}

fn drain(mut r: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
}

fn error_output(stderr: &str) -> Option<&str> {
    stderr.lines().find(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("error") || l.contains("warning") || l.contains("panicked")
    })
}

/// Runs the documented commands of one markdown file in `dir`.
struct Runner {
    name: String,
    dir: PathBuf,
    path_var: String,
    target: PathBuf,
    api_addr: Option<String>,
    plugin_lib_dir: Option<PathBuf>,
    servers: Vec<Server>,
    ran: usize,
    skipped: Vec<String>,
}

impl Runner {
    fn new(name: &str, dir: &Path) -> Self {
        let bin_dir = bin("learnloop").parent().unwrap().to_path_buf();
        let target = bin_dir.parent().unwrap().to_path_buf();
        let path_var = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        Self {
            name: name.into(),
            dir: dir.into(),
            path_var,
            target,
            api_addr: None,
            plugin_lib_dir: None,
            servers: Vec::new(),
            ran: 0,
            skipped: Vec::new(),
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.dir).env("PATH", &self.path_var).stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k == "LEARNLOOP_CONFIG" || k == "LEARNLOOP_API_KEY" || k.starts_with("LEARNLOOP__") {
                c.env_remove(k);
            }
        }
        c
    }

    fn on_path(&self, tool: &str) -> bool {
        self.path_var.split(':').any(|d| Path::new(d).join(tool).is_file())
    }

    /// The command with the documented substitutions applied.
    fn substitute(&self, text: &str) -> String {
        let mut t = text.trim().to_string();
        if let Some(rest) = t.strip_prefix("cargo run --release --bin ") {
            let (bin, args) = rest.split_once(" -- ").unwrap_or((rest, ""));
            t = format!("{} {args}", bin.trim()).trim().to_string();
        }
        if let Some(addr) = &self.api_addr {
            t = t.replace("127.0.0.1:8080", addr).replace("localhost:8080", addr);
        }
        if let Some(dir) = &self.plugin_lib_dir {
            t = t.replace("target/release/", &format!("{}/", dir.display()));
        }
        t
    }

    fn at(&self, cmd: &Cmd) -> String {
        format!("{}:{}: `{}`", self.name, cmd.line, cmd.text.trim())
    }

    fn stop_servers(&mut self) {
        for mut s in self.servers.drain(..) {
            learnloop_e2e::terminate(&s.child);
            let deadline = Instant::now() + Duration::from_secs(120);
            let status = loop {
                if let Some(st) = s.child.try_wait().unwrap() {
                    break st;
                }
                if Instant::now() > deadline {
                    let _ = s.child.kill();
                    panic!("{}: did not stop within 120 s of SIGTERM", s.what);
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            std::thread::sleep(Duration::from_millis(100));
            let err = s.stderr.lock().unwrap().clone();
            assert!(status.success(), "{}: exited with {status} after SIGTERM; stderr:\n{err}", s.what);
            if let Some(l) = error_output(&err) {
                panic!("{}: error output while it ran: {l}\nstderr:\n{err}", s.what);
            }
        }
        self.api_addr = None;
    }

    fn run_all(&mut self, cmds: &[Cmd]) {
        let mut section = None;
        for cmd in cmds {
            if section.as_ref() != Some(&cmd.section) {
                self.stop_servers();
                section = Some(cmd.section.clone());
            }
            self.run(cmd);
        }
        self.stop_servers();
    }

    fn run(&mut self, cmd: &Cmd) {
        let text = self.substitute(&cmd.text);
        if let Some((_, why)) = SKIP.iter().find(|(p, _)| text.starts_with(p)) {
            eprintln!("docs: skipped {} ({why})", self.at(cmd));
            self.skipped.push(cmd.text.clone());
            return;
        }
        // Tools a reader may not have; the command runs wherever they are installed.
        if let Some(tool) = OPTIONAL_TOOLS.iter().find(|t| words(&text).iter().any(|w| w == **t) && !self.on_path(t)) {
            eprintln!("docs: skipped {} ({tool} is not installed here)", self.at(cmd));
            self.skipped.push(cmd.text.clone());
            return;
        }
        self.ran += 1;
        eprintln!("docs: {}", self.at(cmd));
        let ws = words(&text);
        if let Some(pkg) =
            text.strip_prefix("cargo build --release -p ").and_then(|r| r.strip_suffix(" --features dynamic"))
        {
            return self.build_plugin(cmd, pkg.trim());
        }
        let program = ws.first().map(String::as_str).unwrap_or("");
        if (program == "learnloop-api" || program == "learnloop-scheduler")
            && !ws.iter().any(|w| w == "--once" || w == "--help" || w == "-h")
        {
            return self.start_server(cmd, &text, program);
        }
        let mut c = self.command("bash");
        c.args(["-e", "-o", "pipefail", "-c", &text]).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let mut child = c.spawn().expect("run bash");
        let (out, err) = (Arc::new(Mutex::new(String::new())), Arc::new(Mutex::new(String::new())));
        drain(child.stdout.take().unwrap(), out.clone());
        drain(child.stderr.take().unwrap(), err.clone());
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
                panic!("{}: still running after {COMMAND_TIMEOUT:?}", self.at(cmd));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(50));
        let (out, err) = (out.lock().unwrap().clone(), err.lock().unwrap().clone());
        let tail = |s: &str| s.chars().rev().take(3000).collect::<Vec<_>>().into_iter().rev().collect::<String>();
        assert!(
            status.success(),
            "{} failed ({status}) as run: {text}\nstdout: {}\nstderr: {}",
            self.at(cmd),
            tail(&out),
            tail(&err)
        );
        if let Some(l) = error_output(&err) {
            panic!("{}: error output: {l}\nstderr: {}", self.at(cmd), tail(&err));
        }
    }

    fn build_plugin(&mut self, cmd: &Cmd, package: &str) {
        // The plugin host's tests build the same libraries with the same
        // flags into the same directory, so one build serves both.
        let dir = self.target.join("cdylib-plugins");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--quiet", "--lib", "-p", package, "--features", "dynamic"])
            .env("CARGO_TARGET_DIR", &dir)
            .current_dir(root())
            .output()
            .expect("run cargo");
        assert!(out.status.success(), "{}: {}", self.at(cmd), String::from_utf8_lossy(&out.stderr));
        self.plugin_lib_dir = Some(dir.join("debug"));
    }

    fn start_server(&mut self, cmd: &Cmd, text: &str, program: &str) {
        let mut ws = words(text);
        if program == "learnloop-api" {
            assert!(!ws.iter().any(|w| w.starts_with("--bind")), "{}: the doc test binds the API itself", self.at(cmd));
            ws.extend(["--bind".into(), "127.0.0.1:0".into()]);
        }
        let mut c = self.command(&bin(program).display().to_string());
        c.args(&ws[1..]).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("start server");
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().unwrap(), stderr.clone());
        let stdout = child.stdout.take().unwrap();
        if program == "learnloop-api" {
            let mut lines = BufReader::new(stdout).lines();
            let addr = loop {
                match lines.next() {
                    Some(Ok(l)) => {
                        if let Some(a) = l.strip_prefix("learnloop-api listening on http://") {
                            break a.to_string();
                        }
                    }
                    _ => panic!("{}: exited before listening: {}", self.at(cmd), stderr.lock().unwrap()),
                }
            };
            std::thread::spawn(move || for _ in lines {});
            self.api_addr = Some(addr);
        } else {
            drain(stdout, Arc::new(Mutex::new(String::new())));
            // Up and leading (or standing by) within a few seconds.
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stderr.lock().unwrap().contains("leader") && !stderr.lock().unwrap().contains("standing by") {
                if let Some(st) = child.try_wait().unwrap() {
                    panic!("{}: exited ({st}): {}", self.at(cmd), stderr.lock().unwrap());
                }
                assert!(
                    Instant::now() < deadline,
                    "{}: no leadership line within 60 s: {}",
                    self.at(cmd),
                    stderr.lock().unwrap()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.servers.push(Server { child, what: self.at(cmd), stderr });
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn readme_commands_work_as_written() {
    let text = read("README.md");
    let cmds = sh_commands("README.md", &text);
    assert!(cmds.len() >= 10, "README.md shows only {} commands in ```sh blocks", cmds.len());
    let s = Scratch::sqlite();
    let mut r = Runner::new("README.md", s.dir.path());
    r.run_all(&cmds);
    assert!(r.ran >= 10, "README.md: only {} commands ran", r.ran);
    eprintln!("docs: README.md: ran {} commands, skipped {}", r.ran, r.skipped.len());
}

#[test]
fn plugin_readme_commands_work_on_the_quickstart_data() {
    for plugin in plugin_names() {
        let name = format!("plugins/{plugin}/README.md");
        let text = read(&name);
        let cmds = sh_commands(&name, &text);
        assert!(!cmds.is_empty(), "{name} shows no example command in a ```sh block");
        let s = Scratch::sqlite();
        let mut r = Runner::new(&name, s.dir.path());
        let quickstart = Cmd { line: 0, text: "learnloop quickstart".into(), section: String::new() };
        r.run(&quickstart);
        r.run_all(&cmds);
        eprintln!("docs: {name}: ran {} commands, skipped {}", r.ran - 1, r.skipped.len());
    }
}

/// The keys of a plugin's section of the shipped config with their
/// defaults: `key = value` lines, commented out (`# key = value  # doc`) or
/// not.
fn shipped_keys(text: &str, plugin: &str) -> toml::Table {
    let mut out = toml::Table::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with('[') {
            inside = line.trim() == format!("[{plugin}]");
            continue;
        }
        if !inside {
            continue;
        }
        let l = line.strip_prefix("# ").unwrap_or(line);
        let Some((key, _)) = l.split_once(" = ") else { continue };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let setting = l.split("  #").next().unwrap().trim();
        let t: toml::Table =
            setting.parse().unwrap_or_else(|e| panic!("config/learnloop.toml [{plugin}]: {setting}: {e}"));
        out.extend(t);
    }
    assert!(!out.is_empty(), "config/learnloop.toml has no keys for [{plugin}]");
    out
}

#[test]
fn every_plugin_has_a_readme_with_every_part() {
    let manifests = manifests();
    let toml_text = read("config/learnloop.toml");
    for plugin in plugin_names() {
        let name = format!("plugins/{plugin}/README.md");
        let text = read(&name);
        let headings: Vec<String> =
            text.lines().filter_map(|l| l.strip_prefix("## ")).map(|h| h.trim().to_lowercase()).collect();
        for part in ["records", "routes", "jobs", "configuration", "alerts", "accuracy"] {
            assert!(
                headings.iter().any(|h| h.starts_with(part)),
                "{name}: no `## {part}...` section (has: {headings:?})"
            );
        }
        let (routes, jobs) = manifests.get(&plugin).unwrap_or_else(|| panic!("no manifest for {plugin}"));

        // Routes: the first code span of each row of the Routes section's tables.
        let (_, routes_text) = section(&text, "routes").unwrap();
        let documented: BTreeSet<String> = table_rows(routes_text)
            .into_iter()
            .filter_map(|(_, cells)| cell_spans(&cells[0]).into_iter().next())
            .filter_map(|span| {
                let mut w = span.split_whitespace();
                let (m, p) = (w.next()?, w.next()?);
                ["GET", "POST", "PUT", "DELETE"].contains(&m).then(|| format!("{m} {}", p.split('?').next().unwrap()))
            })
            .collect();
        assert_eq!(&documented, routes, "{name}: the Routes tables must list exactly the plugin's routes");

        // Jobs: `name` | `schedule` rows.
        let (_, jobs_text) = section(&text, "jobs").unwrap();
        let documented: BTreeMap<String, String> = table_rows(jobs_text)
            .into_iter()
            .filter_map(|(_, cells)| {
                Some((cell_spans(&cells[0]).into_iter().next()?, cell_spans(cells.get(1)?).into_iter().next()?))
            })
            .collect();
        assert_eq!(&documented, jobs, "{name}: the Jobs table must list every job with its default schedule");

        // Configuration: `key` | `default` rows equal config/learnloop.toml's section.
        let (conf_at, conf_text) = section(&text, "configuration").unwrap();
        let section = shipped_keys(&toml_text, &plugin);
        let mut seen = BTreeSet::new();
        for (line, cells) in table_rows(conf_text) {
            let line = line + conf_at;
            let (Some(key), Some(default)) =
                (cell_spans(&cells[0]).into_iter().next(), cells.get(1).and_then(|c| cell_spans(c).into_iter().next()))
            else {
                continue;
            };
            let shipped = section.get(&key).unwrap_or_else(|| {
                panic!("{name}:{line}: `{key}` is not a key of [{plugin}] in config/learnloop.toml")
            });
            let parsed: toml::Table = format!("v = {default}")
                .parse()
                .unwrap_or_else(|e| panic!("{name}:{line}: default `{default}` is not TOML: {e}"));
            let same = match (&parsed["v"], shipped) {
                (toml::Value::Integer(a), toml::Value::Float(b)) | (toml::Value::Float(b), toml::Value::Integer(a)) => {
                    (*a as f64 - b).abs() < 1e-12
                }
                (a, b) => a == b,
            };
            assert!(
                same,
                "{name}:{line}: `{key}` defaults to {shipped} in config/learnloop.toml, the README says {default}"
            );
            seen.insert(key);
        }
        let all: BTreeSet<String> = section.keys().cloned().collect();
        assert_eq!(
            seen, all,
            "{name}: the Configuration table must list every [{plugin}] key of config/learnloop.toml"
        );
    }
}

#[test]
fn readme_cli_table_matches_help() {
    let text = read("README.md");
    let (offset, cli) = section(&text, "CLI").expect("README.md has a `## CLI` section");
    let mut helps = Helps::new("learnloop");
    let globals = helps.get(&[]).flags();
    let mut listed: BTreeSet<Vec<String>> = BTreeSet::new();
    for (line, cells) in table_rows(cli) {
        let line = line + offset;
        let spans = cell_spans(&cells[0]);
        let Some(first) = spans.first().filter(|s| s.starts_with("learnloop ")) else { continue };
        let group: Vec<String> = words(first)[1..2].to_vec();
        let mut leaves = Vec::new();
        for span in &spans {
            let synopsis = if span.starts_with("learnloop ") {
                span.clone()
            } else {
                format!("learnloop {} {span}", group.join(" "))
            };
            let l =
                check_synopsis(&mut helps, &synopsis).unwrap_or_else(|e| panic!("README.md:{line}: `{synopsis}`: {e}"));
            leaves.extend(l);
        }
        // Every flag the row's commands take is mentioned in the row.
        let row = cells.join(" | ");
        for leaf in &leaves {
            for aliases in &helps.get(leaf).options.clone() {
                if aliases
                    .iter()
                    .any(|a| globals.contains(a) || a == "-h" || a == "--help" || a == "-V" || a == "--version")
                {
                    continue;
                }
                let mentioned = aliases.iter().any(|a| {
                    row.match_indices(a.as_str())
                        .any(|(i, _)| !row[i + a.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-'))
                });
                assert!(
                    mentioned,
                    "README.md:{line}: `learnloop {}` takes {} (see -h), the CLI table's row does not mention it",
                    leaf.join(" "),
                    aliases.join("/")
                );
            }
        }
        listed.extend(leaves);
    }
    let all: BTreeSet<Vec<String>> = helps.leaves(Vec::new()).into_iter().collect();
    let missing: Vec<String> = all.difference(&listed).map(|p| p.join(" ")).collect();
    let extra: Vec<String> = listed.difference(&all).map(|p| p.join(" ")).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README.md's CLI table vs `learnloop --help`: missing {missing:?}, not a command {extra:?}"
    );
}

#[test]
fn inline_commands_name_real_commands_flags_and_routes() {
    let manifests = manifests();
    let mut helps: BTreeMap<&str, Helps> =
        ["learnloop", "learnloop-api", "learnloop-scheduler"].into_iter().map(|b| (b, Helps::new(b))).collect();
    let mut files = vec!["README.md".to_string()];
    files.extend(plugin_names().into_iter().map(|p| format!("plugins/{p}/README.md")));
    let mut checked = 0;
    for file in &files {
        let text = read(file);
        let mut spans = inline_spans(&text);
        // Commands in ```sh blocks name real routes too.
        spans.extend(sh_commands(file, &text).into_iter().map(|c| (c.line, c.text)));
        for (line, span) in spans {
            for part in span.split(['|', ';']).map(str::trim) {
                let ws = words(part);
                let Some(first) = ws.first() else { continue };
                let Some(h) = helps.get_mut(first.as_str()) else { continue };
                if part.contains("&&") {
                    continue;
                }
                check_synopsis(h, part).unwrap_or_else(|e| panic!("{file}:{line}: `{span}`: {e}"));
                checked += 1;
                if first == "learnloop"
                    && let Some((plugin, route)) = called_route(&ws)
                {
                    let (routes, _) = manifests
                        .get(&plugin)
                        .unwrap_or_else(|| panic!("{file}:{line}: `{span}`: no plugin {plugin:?}"));
                    let pattern = routes.iter().find(|r| route_matches(r, &route));
                    let pattern = pattern.unwrap_or_else(|| {
                        panic!("{file}:{line}: `{span}`: plugin {plugin} has no route {route} (it has: {routes:?})")
                    });
                    // Every query parameter is one the route's row in the plugin README documents.
                    let rows = route_rows(&plugin);
                    let row = rows
                        .get(pattern)
                        .unwrap_or_else(|| panic!("plugins/{plugin}/README.md documents no {pattern}"));
                    for key in query_keys(&ws) {
                        assert!(
                            mentions(row, &key),
                            "{file}:{line}: `{span}`: query parameter {key:?} is not documented for {pattern} in plugins/{plugin}/README.md (its row: {row})"
                        );
                    }
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} commands found in the READMEs");
    eprintln!("docs: {checked} inline and ```sh commands checked against --help and the manifests");
}

#[test]
fn http_routes_in_the_readmes_exist() {
    // The OpenAPI document of a running API lists every route, plugin routes included.
    let s = Scratch::sqlite();
    let data = s.data_dir().display().to_string();
    let (_api, addr) = learnloop_e2e::start_api(&s, &["--data-dir", &data, "--bind", "127.0.0.1:0"]);
    let (status, body) = learnloop_e2e::http(&addr, "GET", "/api/v1/openapi.json", None, "");
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("OpenAPI JSON");
    let mut routes = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().unwrap().keys() {
            routes.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let mut files = vec!["README.md".to_string()];
    files.extend(plugin_names().into_iter().map(|p| format!("plugins/{p}/README.md")));
    let mut checked = 0;
    for file in &files {
        for (line, span) in inline_spans(&read(file)) {
            let mut w = span.split_whitespace();
            let (Some(method), Some(path)) = (w.next(), w.next()) else { continue };
            if !["GET", "POST", "PUT", "DELETE"].contains(&method) || !path.starts_with("/api/v1/") {
                continue;
            }
            let route = format!("{method} {}", path.split('?').next().unwrap());
            assert!(
                routes.iter().any(|r| route_matches(r, &route)),
                "{file}:{line}: `{span}`: the API has no route {route}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} HTTP routes found in the READMEs");
}

#[test]
fn the_old_broken_examples_are_caught() {
    // The checks above must be able to fail: each of these was in README.md.
    let manifests = manifests();
    let (routes, _) = &manifests["trust"];
    let ws = words("learnloop call trust GET /agents/a1/trust");
    let (_, route) = called_route(&ws).unwrap();
    assert!(!routes.iter().any(|r| route_matches(r, &route)), "GET /agents/a1/trust is not a trust route");
    // An undocumented query parameter (the old `?window_days=7`) is caught.
    let ws = words("learnloop call drift GET '/models/m1/performance?window_days=7'");
    assert_eq!(query_keys(&ws), ["window_days"]);
    let rows = route_rows("drift");
    let row = &rows["GET /models/{model}/performance"];
    assert!(!mentions(row, "window_days") && mentions(row, "version"), "{row}");
    assert_eq!(query_keys(&words("learnloop call cost GET /outcomes -q type=x --query limit=3")), ["type", "limit"]);
    let mut helps = Helps::new("learnloop");
    assert!(check_synopsis(&mut helps, "learnloop jobs start cost learning_cycle").is_err());
    assert!(check_synopsis(&mut helps, "learnloop call trust GET /agents --window 7").is_err());
    assert!(check_synopsis(&mut helps, "learnloop improvements list|approve|reject|rollback").is_ok());
    let r = std::panic::catch_unwind(|| sh_commands("x.md", "text\n\n    learnloop stats\n"));
    assert!(r.is_err(), "an indented command is refused");
    let r = std::panic::catch_unwind(|| sh_commands("x.md", "```bash\nlearnloop stats\n```\n"));
    assert!(r.is_err(), "a ```bash block is refused");
    let spans = inline_spans(
        "text `learnloop\njobs run cost learning_cycle` and\n`learnloop stats`\n\n| `learnloop call` | x |\n",
    );
    assert_eq!(
        spans,
        [
            (1, "learnloop jobs run cost learning_cycle".to_string()),
            (3, "learnloop stats".into()),
            (5, "learnloop call".into())
        ]
    );
    let cmds = sh_commands("x.md", "## A\n```sh\necho 'a\nb' | wc -l\nlearnloop stats \\\n  --json\n# note\n```\n");
    assert_eq!(cmds.len(), 2);
    assert_eq!((cmds[0].line, cmds[1].line), (3, 5));
    // A failing command fails the run, naming the file and line.
    let s = Scratch::sqlite();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut r = Runner::new("x.md", s.dir.path());
        r.run_all(&sh_commands("x.md", "## A\n```sh\nlearnloop call trust GET /agents/a1/trust\n```\n"));
    }));
    let msg = r.expect_err("a failing command fails the test");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("x.md:3"), "{msg}");
    // The init step creates the plugin directory that the README copies into.
    let out = s.run(&["init"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(s.data_dir().join("plugins").is_dir(), "learnloop init creates <data_dir>/plugins");
}

/// `Key=value` lines of a unit file's `[Service]` section.
fn unit(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut service = false;
    for l in text.lines().map(str::trim) {
        if l.starts_with('[') {
            service = l == "[Service]";
        } else if service
            && !l.starts_with('#')
            && let Some((k, v)) = l.split_once('=')
        {
            out.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

#[test]
fn systemd_units_start_the_real_binaries() {
    for (file, program) in
        [("learnloop-api.service", "learnloop-api"), ("learnloop-scheduler.service", "learnloop-scheduler")]
    {
        let name = format!("deploy/systemd/{file}");
        let u = unit(&read(&name));
        let exec = u.get("ExecStart").unwrap_or_else(|| panic!("{name}: no ExecStart"));
        let ws = words(exec);
        assert_eq!(ws[0], format!("/usr/local/bin/{program}"), "{name}: ExecStart runs the installed {program}");
        assert_eq!(
            u.get("KillSignal").map(String::as_str),
            Some("SIGTERM"),
            "{name}: the binaries stop gracefully on SIGTERM"
        );
        let mut helps = Helps::new(if program == "learnloop-api" { "learnloop-api" } else { "learnloop-scheduler" });
        let synopsis = format!("{program} {}", ws[1..].join(" "));
        check_synopsis(&mut helps, &synopsis).unwrap_or_else(|e| panic!("{name}: ExecStart: {e}"));
        let state = u.get("StateDirectory").expect("StateDirectory");
        assert_eq!(u.get("WorkingDirectory").map(String::as_str), Some(format!("/var/lib/{state}").as_str()), "{name}");

        // Run ExecStart with its paths moved into a scratch directory: it
        // starts, and stops with exit 0 on the unit's KillSignal.
        let s = Scratch::sqlite();
        let config = s.write("learnloop.toml", "[api]\nbind = \"127.0.0.1:0\"\n");
        let data = s.data_dir();
        let args: Vec<String> = ws[1..]
            .iter()
            .map(|a| {
                a.replace("/etc/learnloop/learnloop.toml", &config.display().to_string())
                    .replace(&format!("/var/lib/{state}"), &data.display().to_string())
            })
            .collect();
        let mut child = Command::new(bin(program))
            .args(&args)
            .current_dir(s.dir.path())
            .env_remove("LEARNLOOP_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start");
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().unwrap(), stderr.clone());
        let up = Instant::now();
        while up.elapsed() < Duration::from_secs(3) {
            assert!(
                child.try_wait().unwrap().is_none(),
                "{name}: {program} {args:?} exited at start: {}",
                stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        learnloop_e2e::terminate(&child);
        let status = child.wait().unwrap();
        assert!(status.success(), "{name}: exit {status} on SIGTERM: {}", stderr.lock().unwrap());
        let err = stderr.lock().unwrap().clone();
        assert!(error_output(&err).is_none(), "{name}: error output: {err}");
    }
}
