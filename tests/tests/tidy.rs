//! Tidy: source rules a reviewer should not have to remember, checked on
//! every `.rs` file of the repository (as rust-analyzer's
//! `xtask/src/tidy.rs` does). Target directories and hidden directories
//! (`.git`, ...) are skipped.
//!
//! * **Every file opens with a `//!` comment** saying what it is for: its
//!   first non-empty line starts with `//!`. No exception for shebangs or
//!   inner attributes: a `#![...]` goes after the opening comment (the
//!   compiler accepts inner attributes and inner doc comments in any order),
//!   so the first thing a reader sees is why the file exists.
//! * **`unsafe` stays in the crate that owns the C ABI**: outside
//!   `crates/plugin-api/` the word `unsafe` (outside `//` comments) and any
//!   `allow(unsafe_code)` appear only in [`UNSAFE_ALLOWED`], each listed with
//!   why. The workspace lints deny `unsafe_code`, so the compiler already
//!   refuses an `unsafe` block; this test also catches a new
//!   `#[allow(unsafe_code)]` that would switch the lint off unnoticed.

use std::path::{Path, PathBuf};

/// Files outside `crates/plugin-api` that may contain `unsafe`, and why.
const UNSAFE_ALLOWED: &[(&str, &str)] = &[
    ("crates/plugin-host/fixtures/wrong-abi/src/lib.rs", "hand-written `no_mangle` entry points: a misbehaving plugin"),
    ("crates/plugin-host/fixtures/no-entry/src/lib.rs", "hand-written `no_mangle` entry point: a misbehaving plugin"),
    (
        "crates/plugin-host/fixtures/garbage-pointer/src/lib.rs",
        "hand-written `no_mangle` entry points that dereference a garbage pointer: a misbehaving plugin",
    ),
    ("crates/plugin-host/fixtures/abi-panic/src/lib.rs", "hand-written `no_mangle` entry points: a misbehaving plugin"),
    ("crates/plugin-host/tests/misbehaving.rs", "sets the environment variable the panicky fixture reads"),
    ("bins/api/tests/plugin_failure.rs", "sets the environment variable the panicky fixture reads"),
];

/// The keyword, spelled in two halves so this file does not match itself.
const UNSAFE: &str = concat!("un", "safe");

/// The crate that owns the C ABI (its own lints keep `unsafe` in `abi`,
/// `guest` and `loader`).
const ABI_CRATE: &str = "crates/plugin-api/";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate lives in the repository").to_owned()
}

/// Every `.rs` file under `dir`, skipping target and hidden directories.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if name == "target" || name.starts_with('.') {
                continue;
            }
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The repository's `.rs` files as (path relative to the root with `/`, text).
fn sources() -> Vec<(String, String)> {
    let root = repo_root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 50, "found only {} .rs files under {}", files.len(), root.display());
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).expect("under the root").to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
            (rel, text)
        })
        .collect()
}

/// Why `text` breaks the opening-comment rule, if it does.
fn opening_comment_problem(text: &str) -> Option<String> {
    match text.lines().find(|l| !l.trim().is_empty()) {
        None => Some("the file is empty".into()),
        Some(first) if first.starts_with("//!") => None,
        Some(first) => Some(format!("first line {first:?} is not a `//!` comment saying what the file is for")),
    }
}

/// The 1-based numbers of the lines of `text` that use `unsafe` (code, not
/// `//` comments) or allow the `unsafe_code` lint.
fn unsafe_lines(text: &str) -> Vec<usize> {
    let word = UNSAFE;
    let allow = concat!("allow(un", "safe_code)");
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.trim_start();
            if code.starts_with("//") {
                return false;
            }
            let code = code.split("//").next().unwrap_or_default();
            code.contains(allow)
                || code
                    .match_indices(word)
                    .any(|(i, _)| !code[..i].ends_with(ident) && !code[i + word.len()..].starts_with(ident))
        })
        .map(|(n, _)| n + 1)
        .collect()
}

#[test]
fn every_source_file_opens_with_a_doc_comment() {
    let problems: Vec<String> = sources()
        .into_iter()
        .filter_map(|(path, text)| opening_comment_problem(&text).map(|p| format!("{path}: {p}")))
        .collect();
    assert!(problems.is_empty(), "files without their `//!` opening comment:\n{}", problems.join("\n"));
}

#[test]
fn unsafe_stays_in_the_abi_crate() {
    let mut problems = Vec::new();
    for (path, text) in sources() {
        if path.starts_with(ABI_CRATE) || UNSAFE_ALLOWED.iter().any(|(p, _)| *p == path) {
            continue;
        }
        for line in unsafe_lines(&text) {
            problems.push(format!("{path}:{line}"));
        }
    }
    assert!(
        problems.is_empty(),
        "`{UNSAFE}` outside {ABI_CRATE} (move it there behind a safe API, or list the file in UNSAFE_ALLOWED with why):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_allowed_list_is_current() {
    let sources = sources();
    for (allowed, why) in UNSAFE_ALLOWED {
        let text = sources.iter().find(|(p, _)| p == allowed).map(|(_, t)| t);
        let text = text.unwrap_or_else(|| panic!("{allowed} ({why}) no longer exists: drop it from UNSAFE_ALLOWED"));
        assert!(
            !unsafe_lines(text).is_empty(),
            "{allowed} ({why}) has no `{UNSAFE}` left: drop it from UNSAFE_ALLOWED"
        );
    }
}

#[test]
fn the_checks_can_fail() {
    assert!(opening_comment_problem("use std::io;\n").is_some());
    assert!(opening_comment_problem("\n#![allow(dead_code)]\n//! late\n").is_some());
    assert!(opening_comment_problem("").is_some());
    assert!(opening_comment_problem("\n//! Why this file exists.\nfn f() {}\n").is_none());
    let word = UNSAFE;
    assert_eq!(unsafe_lines(&format!("//! x\nfn f() {{ {word} {{ g() }} }}\n")), vec![2]);
    assert_eq!(unsafe_lines(&format!("//! x\n#![allow({word}_code)]\n")), vec![2]);
    assert_eq!(
        unsafe_lines(&format!("//! x\n// {word} in a comment\nlet {word}_ish = 1; // {word}\n")),
        Vec::<usize>::new()
    );
}
