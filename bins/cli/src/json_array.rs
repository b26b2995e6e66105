//! The records of a file that holds one JSON array, one at a time.
//!
//! Tools that export JSON often write `[{...},{...}]` rather than JSONL.
//! `learnloop ingest` reads such a file item by item in bounded memory:
//! this scanner finds where each item starts and ends (strings and nesting
//! tracked, nothing else parsed) and hands over its text with the line it
//! starts on; the record parser does the rest, so an item is accepted or
//! refused exactly as a JSONL line would be. An item longer than the cap is
//! skipped and reported; a broken array (the input ends inside it, or
//! something else than `,` or `]` follows an item) ends the file with a
//! report naming the line, since where the next item would start is
//! anyone's guess.

use std::io::{self, Read};

const CHUNK: usize = 64 * 1024;

/// What [`ArrayItems::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// An item's text, now in the buffer passed in; it starts on `line`.
    Item {
        /// 1-based line the item starts on.
        line: u64,
    },
    /// An item that cannot be read, starting on `line`. With `last`,
    /// nothing more of the input is read.
    Bad {
        /// 1-based line.
        line: u64,
        /// Why, in plain words.
        reason: String,
        /// The array is broken: reading stops here.
        last: bool,
    },
    /// The end of the array.
    End,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the opening `[`.
    Start,
    /// After `[`: an item or `]`.
    First,
    /// After `,`: an item.
    Item,
    /// After an item: `,` or `]`.
    After,
    Done,
}

/// Reads the items of one JSON array from `R`, at most `max` bytes each.
pub struct ArrayItems<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    line: u64,
    max: usize,
    state: State,
}

impl<R: Read> ArrayItems<R> {
    /// A reader whose input starts at `line` (1 for a whole file).
    pub fn new(inner: R, max: usize) -> Self {
        Self { inner, buf: vec![0; CHUNK], pos: 0, end: 0, line: 1, max, state: State::Start }
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            if self.end == 0 {
                return Ok(None);
            }
        }
        Ok(Some(self.buf[self.pos]))
    }

    fn bump(&mut self, b: u8) {
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
    }

    /// Skips white space (and a byte-order mark before the array).
    fn skip_space(&mut self) -> io::Result<Option<u8>> {
        while let Some(b) = self.peek()? {
            if b.is_ascii_whitespace() || (self.state == State::Start && matches!(b, 0xEF | 0xBB | 0xBF)) {
                self.bump(b);
            } else {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    fn broken(&mut self, reason: String) -> Next {
        self.state = State::Done;
        Next::Bad { line: self.line, reason, last: true }
    }

    /// Reads the next item's text into `out`.
    pub fn next(&mut self, out: &mut Vec<u8>) -> io::Result<Next> {
        loop {
            let next = self.skip_space()?;
            match (self.state, next) {
                (State::Done, _) => return Ok(Next::End),
                (State::Start, Some(b'[')) => {
                    self.bump(b'[');
                    self.state = State::First;
                }
                (State::Start, None) => return Ok(Next::End),
                (State::Start, Some(_)) => return Ok(self.broken("the file does not start with `[`".into())),
                (State::First | State::After, Some(b']')) => {
                    self.bump(b']');
                    self.state = State::Done;
                    // Anything but white space after the array is an error.
                    return Ok(match self.skip_space()? {
                        None => Next::End,
                        Some(_) => self.broken("text follows the end of the array".into()),
                    });
                }
                (State::After, Some(b',')) => {
                    self.bump(b',');
                    self.state = State::Item;
                }
                (State::After, Some(_)) => {
                    return Ok(self.broken("expected `,` or `]` after the record before; the array ends here".into()));
                }
                (State::Item, Some(b']')) => {
                    return Ok(self.broken("a comma before `]` (JSON allows none)".into()));
                }
                (_, None) => {
                    return Ok(self.broken("the input ends before the array's closing `]`".into()));
                }
                (State::First | State::Item, Some(_)) => {
                    self.state = State::After;
                    return self.item(out);
                }
            }
        }
    }

    /// Copies one item (an object, an array or a scalar) into `out`.
    fn item(&mut self, out: &mut Vec<u8>) -> io::Result<Next> {
        out.clear();
        let line = self.line;
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let mut too_long = false;
        loop {
            let Some(b) = self.peek()? else {
                return Ok(self.broken(format!("the input ends inside the record that starts on line {line}")));
            };
            if !in_string && depth == 0 && !out.is_empty() && !too_long {
                // A scalar ends at the first character that cannot be part of it.
                if matches!(b, b',' | b']') || b.is_ascii_whitespace() {
                    break;
                }
            }
            if !in_string && depth == 0 && too_long && (matches!(b, b',' | b']') || b.is_ascii_whitespace()) {
                break;
            }
            self.bump(b);
            if out.len() < self.max {
                out.push(b);
            } else {
                too_long = true;
            }
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                if !in_string && depth == 0 {
                    break;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        if too_long {
            return Ok(Next::Bad {
                line,
                reason: format!("the record is longer than {} bytes", self.max),
                last: false,
            });
        }
        Ok(Next::Item { line })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn read_all(input: &str, max: usize) -> Vec<String> {
        let mut all = Vec::new();
        for chunk in [1, 3, CHUNK] {
            let mut items = ArrayItems::new(Trickle(input.as_bytes(), chunk), max);
            let mut out = Vec::new();
            let mut got = Vec::new();
            loop {
                match items.next(&mut out).unwrap() {
                    Next::Item { line } => got.push(format!("{line}: {}", String::from_utf8_lossy(&out))),
                    Next::Bad { line, reason, last } => {
                        got.push(format!("{line}: BAD{} {reason}", if last { "!" } else { "" }))
                    }
                    Next::End => break,
                }
            }
            all.push(got);
        }
        assert!(all.windows(2).all(|w| w[0] == w[1]), "{all:?}");
        all.pop().unwrap()
    }

    #[test]
    fn splits_an_array_into_items() {
        let input = "\u{feff}[\r\n  {\"a\":\"x,]}\\\"\",\"b\":[1,{\"c\":2}]},\r\n  {\"d\":1}\r\n, 5 ,\"s\"]\r\n";
        assert_eq!(
            read_all(input, 1000),
            ["2: {\"a\":\"x,]}\\\"\",\"b\":[1,{\"c\":2}]}", "3: {\"d\":1}", "4: 5", "4: \"s\""]
        );
        assert_eq!(read_all("[]", 1000), Vec::<String>::new());
        assert_eq!(read_all("  ", 1000), Vec::<String>::new());
    }

    #[test]
    fn a_long_item_is_skipped_and_a_broken_array_stops() {
        let input = format!("[{{\"a\":\"{}\"}},\n{{\"b\":1}}]", "x".repeat(100));
        assert_eq!(read_all(&input, 50), ["1: BAD the record is longer than 50 bytes", "2: {\"b\":1}"]);
        assert_eq!(
            read_all("[{\"a\":1}\n{\"b\":2}]", 100)[1],
            "2: BAD! expected `,` or `]` after the record before; the array ends here"
        );
        assert_eq!(
            read_all("[{\"a\":1},\n{\"b\":", 100)[1],
            "2: BAD! the input ends inside the record that starts on line 2"
        );
        assert_eq!(read_all("[{\"a\":1},]", 100)[1], "1: BAD! a comma before `]` (JSON allows none)");
        assert_eq!(read_all("[{\"a\":1}] x", 100)[1], "1: BAD! text follows the end of the array");
    }
}
