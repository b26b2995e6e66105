//! CSV records for `learnloop ingest`, read in bounded memory.
//!
//! A general CSV reader (the `csv` crate, Python's `csv`) reads a quoted
//! field until its quote closes, so one unclosed quote early in a file makes
//! the rest of the file one record: the good rows after it are lost and
//! memory grows with the file. This reader caps a record at
//! [`MAX_LINE_BYTES`] (the JSONL line limit), reports a record that runs
//! past it, or past the end of the input inside quotes, by the line it
//! starts on, and goes on reading at the line after that one, so every good
//! row after a bad one is still read, and nothing grows past the cap.
//!
//! The dialect is RFC 4180 as the `csv` crate reads it: comma-separated;
//! a field that starts with `"` is quoted, may hold commas, line breaks and
//! `""` for a quote; a quote inside an unquoted field is a plain character;
//! text after a closing quote belongs to the field. Records end at `\n`,
//! `\r\n` or `\r`; blank lines are skipped; a UTF-8 byte-order mark at the
//! start is dropped.
//!
//! [`MAX_LINE_BYTES`]: learnloop_core::limits::MAX_LINE_BYTES

use std::io::{self, Read};

/// Bytes asked of the reader at a time.
const CHUNK: usize = 64 * 1024;

/// One record: its fields, and the line it starts on.
#[derive(Debug, Default)]
pub struct Row {
    /// 1-based line the record starts on.
    pub line: u64,
    /// Every field's text, one after another.
    text: String,
    /// Where each field ends in `text`.
    ends: Vec<usize>,
}

impl Row {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let field = &self.text[start..end];
            start = end;
            field
        })
    }

    /// Field `i`, if the record has it.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..end])
    }
}

/// What [`CsvRows::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A record, now in the row passed in.
    Row,
    /// A record that cannot be read, starting on `line`; reading goes on.
    Bad {
        /// 1-based line the record starts on.
        line: u64,
        /// Why, in plain words.
        reason: String,
    },
    /// The end of the input.
    End,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    StartField,
    InField,
    InQuotes,
    /// A quote inside a quoted field: the field's end, or the first of `""`.
    QuoteInQuotes,
}

/// Reads CSV records from `R` with at most `max` bytes per record.
pub struct CsvRows<R> {
    inner: R,
    /// Input read but not consumed is `buf[pos..end]`; the record being read
    /// starts at `start` (see [`CsvRows::fill`]).
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Line of the byte at `pos`.
    line: u64,
    max: usize,
    at_start: bool,
}

impl<R: Read> CsvRows<R> {
    /// A reader of records of at most `max` bytes each.
    pub fn new(inner: R, max: usize) -> Self {
        Self { inner, buf: vec![0; CHUNK], pos: 0, end: 0, eof: false, line: 1, max, at_start: true }
    }

    /// Reads more input. The bytes from `start` on (the record being read)
    /// are kept, moved to the front of the buffer; `start` is updated.
    /// Returns false at the end of the input.
    fn fill(&mut self, start: &mut usize) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let keep = *start;
        self.buf.copy_within(keep..self.end, 0);
        self.end -= keep;
        self.pos -= keep;
        *start = 0;
        // A record never holds more than `max` bytes, so the buffer stays
        // below `max + CHUNK`.
        if self.buf.len() - self.end < CHUNK / 2 {
            self.buf.resize(self.buf.len() + CHUNK, 0);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.at_start && self.end - self.pos >= 3 {
            self.at_start = false;
            if self.buf[self.pos..self.end].starts_with(b"\xEF\xBB\xBF") {
                self.pos += 3;
                *start = self.pos;
            }
        } else if self.at_start && self.eof {
            self.at_start = false;
        }
        Ok(true)
    }

    /// Reads the next record into `row`.
    pub fn next(&mut self, row: &mut Row) -> io::Result<Next> {
        // Blank lines (and the `\n` of a `\r\n`) between records.
        loop {
            if self.pos == self.end {
                // Nothing of a record to keep.
                let mut nothing = self.pos;
                if !self.fill(&mut nothing)? {
                    return Ok(Next::End);
                }
                // A short first read cannot tell a byte-order mark yet.
                while self.at_start && self.end - self.pos < 3 && !self.eof {
                    let mut nothing = self.pos;
                    self.fill(&mut nothing)?;
                }
                if self.pos == self.end {
                    continue;
                }
            }
            match self.buf[self.pos] {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b'\r' => self.pos += 1,
                _ => break,
            }
        }
        let mut start = self.pos;
        let line = self.line;
        row.line = line;
        row.ends.clear();
        let mut bytes = std::mem::take(&mut row.text).into_bytes();
        bytes.clear();
        let mut state = State::StartField;
        loop {
            if self.pos == self.end && !self.fill(&mut start)? {
                // The end of the input ends the record, unless a quote is open.
                if state == State::InQuotes {
                    return Ok(self.recover(start, line, "a quoted field opened on this line is never closed"));
                }
                row.ends.push(bytes.len());
                break;
            }
            if self.pos - start > self.max {
                let why = if matches!(state, State::InQuotes) && self.line > line {
                    format!(
                        "the record is longer than {} bytes (a quoted field opened on this line is never closed?)",
                        self.max
                    )
                } else {
                    format!("the record is longer than {} bytes", self.max)
                };
                return Ok(self.recover(start, line, &why));
            }
            let b = self.buf[self.pos];
            self.pos += 1;
            if b == b'\n' {
                self.line += 1;
            }
            match (state, b) {
                (State::StartField, b'"') => state = State::InQuotes,
                (State::StartField | State::InField | State::QuoteInQuotes, b',') => {
                    row.ends.push(bytes.len());
                    state = State::StartField;
                }
                (State::StartField | State::InField | State::QuoteInQuotes, b'\n' | b'\r') => {
                    row.ends.push(bytes.len());
                    break;
                }
                (State::StartField | State::InField, _) => {
                    bytes.push(b);
                    state = State::InField;
                }
                (State::InQuotes, b'"') => state = State::QuoteInQuotes,
                (State::InQuotes, _) => bytes.push(b),
                (State::QuoteInQuotes, b'"') => {
                    bytes.push(b'"');
                    state = State::InQuotes;
                }
                (State::QuoteInQuotes, _) => {
                    bytes.push(b);
                    state = State::InField;
                }
            }
        }
        match String::from_utf8(bytes) {
            Ok(text) => {
                row.text = text;
                Ok(Next::Row)
            }
            Err(e) => {
                // The allocation is kept for the next record.
                let mut bytes = e.into_bytes();
                bytes.clear();
                row.text = String::from_utf8(bytes).unwrap_or_default();
                row.ends.clear();
                Ok(Next::Bad { line, reason: "the record is not valid UTF-8".into() })
            }
        }
    }

    /// Gives up on the record that starts at `start` (on `line`): reading
    /// goes on at the line after `line`, whatever the quotes said.
    fn recover(&mut self, start: usize, line: u64, why: &str) -> Next {
        let reason = format!("{why}; reading goes on at line {}", line + 1);
        match self.buf[start..self.pos].iter().position(|b| *b == b'\n') {
            Some(i) => {
                self.pos = start + i + 1;
                self.line = line + 1;
            }
            None => {
                // One line longer than the cap: skip the rest of it.
                self.skip_line();
            }
        }
        Next::Bad { line, reason }
    }

    /// Skips input up to and including the next `\n`.
    fn skip_line(&mut self) {
        loop {
            if let Some(i) = self.buf[self.pos..self.end].iter().position(|b| *b == b'\n') {
                self.pos += i + 1;
                self.line += 1;
                return;
            }
            self.pos = self.end;
            let mut start = self.pos;
            // A read error here shows up again on the next read.
            if !self.fill(&mut start).unwrap_or(false) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `input` in chunks of `chunk` bytes.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Every record as `line: a|b|c`, or `line: BAD reason`.
    fn read_all(input: &[u8], max: usize, chunk: usize) -> Vec<String> {
        let mut rows = CsvRows::new(Trickle(input, chunk), max);
        let mut row = Row::default();
        let mut out = Vec::new();
        loop {
            match rows.next(&mut row).unwrap() {
                Next::Row => out.push(format!("{}: {}", row.line, row.iter().collect::<Vec<_>>().join("|"))),
                Next::Bad { line, reason } => out.push(format!("{line}: BAD {reason}")),
                Next::End => break,
            }
        }
        out
    }

    fn check(input: &str, max: usize, expected: &[&str]) {
        for chunk in [1, 2, 3, 7, CHUNK] {
            assert_eq!(read_all(input.as_bytes(), max, chunk), expected, "chunk {chunk}: {input:?}");
        }
    }

    #[test]
    fn reads_rfc_4180() {
        check("a,b,c\n1,2,3\n", 1000, &["1: a|b|c", "2: 1|2|3"]);
        check("a,b\n\"x, y\",\"say \"\"hi\"\"\"\n", 1000, &["1: a|b", "2: x, y|say \"hi\""]);
        check("a,b\n\"two\nlines\",2\nnext,3", 1000, &["1: a|b", "2: two\nlines|2", "4: next|3"]);
        check("a,,\n,,\n", 1000, &["1: a||", "2: ||"]);
        check("ab\"c,\"d\"e\n", 1000, &["1: ab\"c|de"]);
        check("a\n\n\nb\n", 1000, &["1: a", "4: b"]);
        check("", 1000, &[]);
    }

    #[test]
    fn a_byte_order_mark_and_crlf_are_accepted() {
        check("\u{feff}a,b\r\n1,2\r\n\r\n3,\"4\r\n5\"\r\n", 1000, &["1: a|b", "2: 1|2", "4: 3|4\r\n5"]);
        check("\u{feff}", 1000, &[]);
        check("\u{feff}a", 1000, &["1: a"]);
        check("a\r1\r", 1000, &["1: a", "1: 1"]);
    }

    #[test]
    fn an_unclosed_quote_costs_its_record_only() {
        check(
            "a,b\n1,\"oops\n2,x\n3,y\n",
            1000,
            &[
                "1: a|b",
                "2: BAD a quoted field opened on this line is never closed; reading goes on at line 3",
                "3: 2|x",
                "4: 3|y",
            ],
        );
        // Past the cap, long before the end of the input.
        let mut input = String::from("a,b\n1,\"oops\n");
        for i in 0..100 {
            input.push_str(&format!("{i},row\n"));
        }
        let got = read_all(input.as_bytes(), 64, 5);
        assert_eq!(got.len(), 102, "{got:?}");
        assert!(got[1].starts_with("2: BAD the record is longer than 64 bytes (a quoted"), "{}", got[1]);
        assert_eq!(got[2], "3: 0|row");
        assert_eq!(got[101], "102: 99|row");
    }

    #[test]
    fn an_over_long_line_is_skipped() {
        let input = format!("a,b\n1,{}\n2,z\n", "x".repeat(500));
        for chunk in [1, 7, CHUNK] {
            let got = read_all(input.as_bytes(), 100, chunk);
            assert_eq!(
                got,
                ["1: a|b", "2: BAD the record is longer than 100 bytes; reading goes on at line 3", "3: 2|z"]
            );
        }
        // Exactly at the cap is fine.
        check("abcde\n", 5, &["1: abcde"]);
    }

    #[test]
    fn bad_utf8_is_one_bad_record() {
        let got = read_all(b"a\n\xff\xfe\nb\n", 100, CHUNK);
        assert_eq!(got, ["1: a", "2: BAD the record is not valid UTF-8", "3: b"]);
    }

    #[test]
    fn memory_stays_bounded() {
        // Megabytes inside one open quote: the buffer never grows past the cap.
        let input = format!("a\n\"{}", "x\n".repeat(1 << 20));
        let mut rows = CsvRows::new(input.as_bytes(), 4096);
        let mut row = Row::default();
        let mut n = 0;
        while rows.next(&mut row).unwrap() != Next::End {
            n += 1;
            assert!(rows.buf.len() <= 4096 + 2 * CHUNK, "{}", rows.buf.len());
        }
        // The header, the bad record, then every line after it.
        assert_eq!(n, 1 + 1 + (1 << 20) - 1);
    }
}
