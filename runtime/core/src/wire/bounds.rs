//! How much of an error that crosses a boundary (from a worker, from a remote host) is
//! kept: the other side may be hostile, and an error's text ends up in memory, in logs and
//! on a terminal. The sender cuts its own errors to the same bounds, so that an honest
//! error always arrives whole, with a visible mark where it was cut.
//!
//! Text is measured as it will be printed, escaped (`sanitize::escape`): a character that
//! needs an escape counts as its escape (ESC as the six bytes of `\u{1b}`), so that what a
//! log line or a terminal receives is within the bounds whatever the text, not six times
//! them.
//!
//! | what | bound, printed |
//! |---|---|
//! | the whole error message (JSON) | [`MAX_ERROR_BODY`] bytes as received; a larger one is not read |
//! | its message | [`MAX_MESSAGE`] bytes |
//! | its causes | [`MAX_CAUSES`], each [`MAX_CAUSE`] bytes, [`MAX_CAUSES_TEXT`] bytes in all |
//! | module, export and manifest key | [`MAX_NAME`] bytes each |

use std::fmt;

use serde::Deserializer;
use serde::de::{IgnoredAny, SeqAccess, Visitor};

use crate::sanitize::escaped_len;

/// The largest error message read (the NATS server's default `max_payload`).
pub const MAX_ERROR_BODY: usize = 1 << 20;
/// The longest message kept, in bytes once printed.
pub const MAX_MESSAGE: usize = 16 << 10;
/// The most causes kept.
pub const MAX_CAUSES: usize = 32;
/// The longest cause kept, in bytes once printed.
pub const MAX_CAUSE: usize = 8 << 10;
/// The bytes of all causes kept together, once printed.
pub const MAX_CAUSES_TEXT: usize = 48 << 10;
/// The longest module name, export name or manifest key kept, in bytes once printed.
pub const MAX_NAME: usize = 1 << 10;

/// The most bytes `c` takes once printed: its escape, or for a newline, the newline and
/// the indent that `error::describe` puts after it in a Membrane message.
fn printed_len(c: char) -> usize {
    if c == '\n' {
        1 + "    ".len()
    } else {
        escaped_len(c)
    }
}

/// The most bytes `text` takes once printed.
pub fn printed(text: &str) -> usize {
    text.chars().map(printed_len).sum()
}

/// `text` cut (on a character boundary) to what takes at most `max` bytes once printed,
/// with a mark saying how many bytes were cut.
pub fn clip(mut text: String, max: usize) -> String {
    let mut width = 0;
    let over = text.char_indices().find(|&(_, c)| {
        width += printed_len(c);
        width > max
    });
    let Some((end, _)) = over else {
        return text;
    };
    let cut = text.len() - end;
    text.truncate(end);
    text.push_str(&format!(" [... {cut} more bytes cut]"));
    text
}

/// A message and its causes within the bounds: each text clipped; causes beyond
/// [`MAX_CAUSES`] or [`MAX_CAUSES_TEXT`] replaced by one that says how many were left out.
/// `more` causes were left out already (while reading them: [`Causes`]).
pub fn bound(message: String, causes: Vec<String>, more: usize) -> (String, Vec<String>) {
    let total = causes.len() + more;
    let mut kept = Vec::with_capacity(causes.len().min(MAX_CAUSES));
    let mut budget = MAX_CAUSES_TEXT;
    // Room for the mark, when there will be one.
    let room = if total > MAX_CAUSES {
        MAX_CAUSES - 1
    } else {
        MAX_CAUSES
    };
    for c in causes {
        if kept.len() == room || budget == 0 {
            break;
        }
        let c = clip(c, MAX_CAUSE.min(budget));
        budget = budget.saturating_sub(printed(&c));
        kept.push(c);
    }
    if kept.len() < total {
        kept.push(format!("[... {} more causes cut]", total - kept.len()));
    }
    (clip(message, MAX_MESSAGE), kept)
}

/// Causes as read from an error message: the first [`MAX_CAUSES`] kept, the rest counted
/// without being kept (a peer may send millions).
#[derive(Debug, Default)]
pub struct Causes {
    pub kept: Vec<String>,
    pub more: usize,
}

impl serde::Serialize for Causes {
    /// The causes kept; a sender bounds them first ([`bound`]), which marks what it left out.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.kept.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Causes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Causes, D::Error> {
        d.deserialize_seq(CausesVisitor)
    }
}

struct CausesVisitor;

impl<'de> Visitor<'de> for CausesVisitor {
    type Value = Causes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Causes, A::Error> {
        let mut causes = Causes::default();
        while causes.kept.len() < MAX_CAUSES {
            match seq.next_element::<String>()? {
                Some(c) => causes.kept.push(c),
                None => return Ok(causes),
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {
            causes.more += 1;
        }
        Ok(causes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_on_a_character_boundary_and_says_so() {
        assert_eq!(clip("abc".into(), 3), "abc");
        let c = clip("é".repeat(10), 5);
        assert!(c.starts_with("éé ["), "{c}");
        assert!(c.ends_with("[... 16 more bytes cut]"), "{c}");
        // Measured as printed: an ESC takes the six bytes of its escape, a newline five.
        assert_eq!(
            clip("\u{1b}".repeat(10), 12),
            "\u{1b}\u{1b} [... 8 more bytes cut]"
        );
        assert_eq!(printed("a\nb\\\u{e0001}"), 1 + 5 + 1 + 2 + 9);
    }

    #[test]
    fn text_that_needs_escapes_is_kept_within_its_printed_bounds() {
        use crate::wire::message::read_error;
        // Every byte of it needs an escape: as kept before, 6 times the bounds in a log.
        let body = serde_json::to_vec(&serde_json::json!({
            "kind": "denied",
            "message": "\u{1b}".repeat(MAX_MESSAGE),
            "module": "\u{1b}".repeat(MAX_NAME),
            "export": null,
            "key": null,
            "upstream": false,
            "exit": null,
            // More than MAX_CAUSES_TEXT, within the JSON's 1 MiB (ESC is 6 bytes there too).
            "causes": (0..8)
                .map(|i| format!("{i}{}", "\u{1b}".repeat(MAX_CAUSE)))
                .collect::<Vec<_>>(),
        }))
        .unwrap();
        assert!(body.len() < MAX_ERROR_BODY);
        let e = read_error(&body);
        assert_eq!(e.kind(), crate::ErrorKind::Denied);
        assert!(printed(e.message()) < MAX_MESSAGE + 64);
        assert!(printed(e.module().unwrap()) < MAX_NAME + 64);
        let c = causes(&e);
        let text: usize = c.iter().map(|c| printed(c)).sum();
        assert!(text < MAX_CAUSES_TEXT + 2 * 64, "{text}");
        assert!(c.last().unwrap().contains("more causes cut"), "{c:?}");
        let rendered = crate::chain(&e);
        assert!(
            rendered.len() < MAX_MESSAGE + MAX_CAUSES_TEXT + (4 << 10),
            "{}",
            rendered.len()
        );
    }

    #[test]
    fn causes_are_bounded_in_number_and_size() {
        let (m, c) = bound("m".repeat(MAX_MESSAGE * 2), vec!["c".into(); 10], 0);
        assert!(m.len() < MAX_MESSAGE + 64);
        assert_eq!(c.len(), 10);
        let (_, c) = bound(String::new(), vec!["c".into(); MAX_CAUSES], 0);
        assert_eq!(c, vec!["c".to_string(); MAX_CAUSES]);
        let (_, c) = bound(String::new(), vec!["c".into(); 40], 1000);
        assert_eq!(c.len(), MAX_CAUSES);
        assert_eq!(c[MAX_CAUSES - 1], "[... 1009 more causes cut]");
        let (_, c) = bound(String::new(), vec!["x".repeat(MAX_CAUSE * 3); 20], 0);
        let text: usize = c.iter().map(String::len).sum();
        assert!(text < MAX_CAUSES_TEXT + MAX_CAUSES * 64, "{text}");
        assert!(c.last().unwrap().contains("more causes cut"), "{c:?}");
    }

    #[test]
    fn reading_causes_keeps_few_and_counts_the_rest() {
        let many = serde_json::to_string(&vec![""; 100_000]).unwrap();
        let c: Causes = serde_json::from_str(&many).unwrap();
        assert_eq!((c.kept.len(), c.more), (MAX_CAUSES, 100_000 - MAX_CAUSES));
        let c: Causes = serde_json::from_str("[\"a\", \"b\"]").unwrap();
        assert_eq!((c.kept, c.more), (vec!["a".to_string(), "b".into()], 0));
        // The rest must still be well-formed.
        let bad = format!("[{}1,]", "\"a\",".repeat(40));
        assert!(serde_json::from_str::<Causes>(&bad).is_err());
    }

    /// The causes of `e`, outermost first.
    fn causes(e: &crate::Error) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = std::error::Error::source(e);
        while let Some(c) = cur {
            out.push(c.to_string());
            cur = c.source();
        }
        out
    }

    #[test]
    fn hostile_error_messages_are_read_within_bounds() {
        use crate::ErrorKind;
        use crate::wire::message::read_error;
        let body = |causes: usize, message: usize| {
            serde_json::to_vec(&serde_json::json!({
                "kind": "denied",
                "message": "m".repeat(message),
                "module": "x".repeat(MAX_NAME * 4),
                "export": null,
                "key": null,
                "upstream": false,
                "exit": null,
                "causes": vec![""; causes],
            }))
            .unwrap()
        };
        // 250,000 causes and a 100 KiB message in a body just under 1 MiB.
        let e = read_error(&body(250_000, 100 << 10));
        assert_eq!(e.kind(), ErrorKind::Denied);
        assert!(e.message().len() < MAX_MESSAGE + 64);
        assert!(e.module().unwrap().len() < MAX_NAME + 64);
        let c = causes(&e);
        assert_eq!(c.len(), MAX_CAUSES);
        assert_eq!(c[MAX_CAUSES - 1], "[... 249969 more causes cut]");
        assert!(crate::chain(&e).len() < 64 << 10);
        // Larger than a reader takes: not read at all.
        let e = read_error(&body(0, MAX_ERROR_BODY));
        assert_eq!(e.kind(), ErrorKind::Crashed);
        assert!(e.message().contains("larger than"), "{e}");
        // Nested past the parser's depth, or not an error at all.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        for bad in [deep.as_bytes(), b"{\"kind\": 1}", b"", &[0xff; 64]] {
            assert_eq!(read_error(bad).kind(), ErrorKind::Crashed);
        }
    }

    #[test]
    fn an_honest_error_is_cut_by_its_sender_and_arrives_whole() {
        use crate::wire::message::{put_error, read_error};
        let mut e = crate::Error::new(crate::ErrorKind::Trap, "t".repeat(MAX_MESSAGE * 2));
        for i in 0..100 {
            e = crate::Error::new(crate::ErrorKind::Trap, format!("layer {i}")).with_source(e);
        }
        let mut body = Vec::new();
        put_error(&mut body, &e);
        assert!(body.len() < MAX_ERROR_BODY);
        let back = read_error(&body);
        assert_eq!(back.message(), "layer 99");
        let c = causes(&back);
        assert_eq!(c.len(), MAX_CAUSES);
        assert_eq!(c[0], "layer 98");
        assert_eq!(c[MAX_CAUSES - 1], "[... 69 more causes cut]");
    }
}
