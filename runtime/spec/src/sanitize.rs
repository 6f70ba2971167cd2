//! Guest-controlled text on its way to a terminal or a log.
//!
//! A guest chooses the bytes of its output, the names in its binary (function names that
//! appear in trap backtraces, import names that appear in compile errors) and the strings it
//! returns. Printed raw, such text can drive the operator's terminal (clear the screen, set
//! the window title, hide text), split one log line into two (a carriage return or a line
//! separator), or reorder what is displayed (bidi overrides). Everything a guest chose is
//! passed through [`escape`] before it is printed or logged.
//!
//! Escaped: every C0 control (U+0000..U+001F, including tab, newline and carriage return),
//! DEL, every C1 control (U+0080..U+009F), the line and paragraph separators (U+2028,
//! U+2029), and every format character (Unicode category Cf, Unicode 15.1: the bidi
//! controls, zero-width spaces and joiners such as U+200B, the soft hyphen, the byte order
//! mark, invisible operators, tag characters and the rest; see [`is_format`]). Each becomes
//! `\u{XX}`, except the common `\t`, `\n` and `\r`, and a backslash becomes `\\`, so the
//! escaped text can be read back unambiguously.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` must not reach a terminal or a log as it is.
pub fn is_dangerous(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{2028}' | '\u{2029}')
        || is_format(c)
}

/// Whether `c` is a format character (general category Cf in Unicode 15.1): invisible, and
/// able to hide, join or reorder the text around it.
pub fn is_format(c: char) -> bool {
    matches!(c,
        '\u{ad}'
        | '\u{600}'..='\u{605}'
        | '\u{61c}'
        | '\u{6dd}'
        | '\u{70f}'
        | '\u{890}'..='\u{891}'
        | '\u{8e2}'
        | '\u{180e}'
        | '\u{200b}'..='\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}'
        | '\u{feff}'
        | '\u{fff9}'..='\u{fffb}'
        | '\u{110bd}'
        | '\u{110cd}'
        | '\u{13430}'..='\u{1343f}'
        | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0001}'
        | '\u{e0020}'..='\u{e007f}')
}

/// `text` with every dangerous character (see the module docs) and every backslash escaped.
/// The result is one line that draws exactly what it says.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| is_dangerous(c) || c == '\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write as _;
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_dangerous(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// How many bytes `c` takes in [`escape`]'s output: what a character of text from a peer
/// costs once it is printed (`wire/bounds.rs` keeps such text within a printed size).
pub fn escaped_len(c: char) -> usize {
    match c {
        '\\' | '\n' | '\r' | '\t' => 2,
        // `\u{` + the hex digits + `}`.
        c if is_dangerous(c) => 4 + (32 - (c as u32).leading_zeros()).div_ceil(4).max(1) as usize,
        c => c.len_utf8(),
    }
}

/// Host text that may carry guest text inside: dangerous characters are escaped as by
/// [`escape`], except newlines, which the host uses to lay out lists; every line after the
/// first is indented by `indent`, so that no line of it can pass for a line of its own.
/// Backslashes are kept as they are (host text uses them in paths and WAVE).
pub fn escape_lines(text: &str, indent: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(indent);
        }
        for c in line.chars() {
            if c != '\\' && is_dangerous(c) {
                push_escaped(&mut out, c);
            } else {
                out.push(c);
            }
        }
    }
    out
}

/// WAVE text with dangerous characters replaced by WAVE's own `\u{..}` escapes. WAVE
/// allows dangerous characters only inside string and char literals, where the escape means
/// the same character, so the result is still valid WAVE for the same value.
pub fn escape_wave(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_dangerous) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_dangerous(c) {
            use std::fmt::Write as _;
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Displays guest text escaped and in double quotes (`"..."`, with `"` escaped too), so that
/// a reader of a log line can tell where the guest's text ends.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let escaped = escape(self.0);
        f.write_str("\"")?;
        if escaped.contains('"') {
            f.write_str(&escaped.replace('"', "\\\""))?;
        } else {
            f.write_str(&escaped)?;
        }
        f.write_str("\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_separators_and_bidi_are_escaped() {
        let hostile =
            "a\u{1b}[2Jb\rc\u{b}\u{1c}\u{0}\u{e}\u{5}\u{2028}\u{2029}\u{202e}\u{85}\u{7f}\\";
        let e = escape(hostile);
        assert!(!e.chars().any(is_dangerous), "{e}");
        assert_eq!(
            e,
            "a\\u{1b}[2Jb\\rc\\u{b}\\u{1c}\\u{0}\\u{e}\\u{5}\\u{2028}\\u{2029}\\u{202e}\\u{85}\\u{7f}\\\\"
        );
        assert!(matches!(escape("plain text, ünïcode"), Cow::Borrowed(_)));
    }

    #[test]
    fn escaped_len_is_the_length_of_the_escape() {
        let samples = (0..0x300)
            .chain(0x2000..0x2070)
            .chain([0xfeff, 0x110bd, 0xe0001, 0xe007f, 0x1f600, 0x10ffff])
            .filter_map(char::from_u32);
        for c in samples {
            let text = c.to_string();
            assert_eq!(escaped_len(c), escape(&text).len(), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn every_format_character_is_escaped() {
        // Category Cf as Python's unicodedata (Unicode 14) lists it; 15.1 adds U+13439..U+1343F.
        let ranges: &[(u32, u32)] = &[
            (0xad, 0xad),
            (0x600, 0x605),
            (0x61c, 0x61c),
            (0x6dd, 0x6dd),
            (0x70f, 0x70f),
            (0x890, 0x891),
            (0x8e2, 0x8e2),
            (0x180e, 0x180e),
            (0x200b, 0x200f),
            (0x202a, 0x202e),
            (0x2060, 0x2064),
            (0x2066, 0x206f),
            (0xfeff, 0xfeff),
            (0xfff9, 0xfffb),
            (0x110bd, 0x110bd),
            (0x110cd, 0x110cd),
            (0x13430, 0x1343f),
            (0x1bca0, 0x1bca3),
            (0x1d173, 0x1d17a),
            (0xe0001, 0xe0001),
            (0xe0020, 0xe007f),
        ];
        let mut n = 0;
        for &(a, b) in ranges {
            for c in (a..=b).filter_map(char::from_u32) {
                assert!(is_format(c), "U+{:04X}", c as u32);
                assert_eq!(escape(&c.to_string()), format!("\\u{{{:x}}}", c as u32));
                n += 1;
            }
        }
        assert_eq!(n, 170);
        // Visible neighbours are not.
        for c in [
            '\u{200a}', '\u{2010}', '\u{2065}', '\u{fff8}', '\u{fffc}', 'é', '中',
        ] {
            assert!(!is_dangerous(c), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn lines_keep_newlines_but_indent_them() {
        let e = escape_lines("one\nINFO membrane: forged\u{1b}]0;x", "    ");
        assert_eq!(e, "one\n    INFO membrane: forged\\u{1b}]0;x");
    }

    #[test]
    fn quoted_text_cannot_close_its_quotes() {
        let q = Quoted("x\" module=store").to_string();
        assert_eq!(q, "\"x\\\" module=store\"");
    }
}
