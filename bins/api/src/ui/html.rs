//! Markup built so that no value can reach the page unescaped.
//!
//! [`Html`] is the only thing pages are made of. Text enters it in exactly
//! two ways: the format string of [`w!`](crate::ui_w), which must be a
//! literal (so it is written in this crate's source), and the arguments of
//! that macro, every one of which goes through [`escape`] on its way in.
//! Markup made elsewhere ([`Html`] itself: a chart, a table) is appended
//! with [`Html::push`]. So an agent id or a feature name of
//! `<script>alert(1)</script>` can only ever show as text.
//!
//! Why not a template crate: this needs one function and one type, adds no
//! dependency or proc-macro to the build, and the type makes the unescaped
//! path the one that does not compile.

use std::fmt::{self, Display, Write};

/// A piece of a page: markup that is safe to send as it is.
#[derive(Default, Clone)]
pub struct Html(String);

impl Html {
    /// Empty markup.
    pub fn new() -> Html {
        Html(String::with_capacity(4096))
    }

    /// Appends markup built elsewhere.
    pub fn push(&mut self, other: &Html) {
        self.0.push_str(&other.0);
    }

    /// Appends text written in this crate's source (not a value).
    pub fn lit(&mut self, s: &'static str) {
        self.0.push_str(s);
    }

    /// Appends `args`, whose format string is a literal and whose arguments
    /// are [`Esc`]aped; used through [`w!`](crate::ui_w).
    pub fn write_args(&mut self, args: fmt::Arguments<'_>) {
        let _ = self.0.write_fmt(args);
    }

    /// The finished markup.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The markup so far.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A value that escapes itself for HTML text and double- or single-quoted
/// attribute values when formatted.
pub struct Esc<'a, T: ?Sized>(pub &'a T);

impl<T: Display + ?Sized> Display for Esc<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(Escaper(f), "{}", self.0)
    }
}

/// Passes text through, escaping the five characters that matter.
struct Escaper<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl Write for Escaper<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut last = 0;
        for (i, c) in s.char_indices() {
            let rep = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => continue,
            };
            self.0.write_str(&s[last..i])?;
            self.0.write_str(rep)?;
            last = i + c.len_utf8();
        }
        self.0.write_str(&s[last..])
    }
}

/// The one escaping function: `s` as HTML text or attribute value.
pub fn escape(s: &str) -> String {
    Esc(s).to_string()
}

/// Writes to an [`Html`]: `w!(out, "<td>{}</td>", value)`. The format
/// string must be a literal; every argument is escaped.
#[macro_export]
#[doc(hidden)]
macro_rules! ui_w {
    ($out:expr, $fmt:literal $(, $arg:expr)* $(,)?) => {
        $out.write_args(format_args!($fmt $(, $crate::ui::html::Esc(&$arg))*))
    };
}

/// A query string (`?a=1&b=2`) with every value percent-encoded; the result
/// is text, and is escaped again like any other value when written.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    let s = s.finish();
    if s.is_empty() { s } else { format!("?{s}") }
}

/// A number for people: at most `digits` decimals, no trailing zeros.
pub fn num(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        return "—".to_string();
    }
    let s = format!("{x:.digits$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_argument_is_escaped() {
        let mut h = Html::new();
        let probe = "<script>alert(1)</script>";
        ui_w!(h, "<td title=\"{}\">{}</td>", "a\"b'c", probe);
        assert_eq!(h.as_str(), "<td title=\"a&quot;b&#39;c\">&lt;script&gt;alert(1)&lt;/script&gt;</td>");
        assert_eq!(escape("a & b"), "a &amp; b");
        assert_eq!(escape("plain é"), "plain é");
    }

    #[test]
    fn numbers_and_queries() {
        assert_eq!(num(1.5000, 3), "1.5");
        assert_eq!(num(2.0, 2), "2");
        assert_eq!(num(f64::NAN, 2), "—");
        assert_eq!(query(&[("workspace", "a b&c"), ("x", "")]), "?workspace=a+b%26c");
    }
}
