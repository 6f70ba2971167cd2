//! Text from the manifest on its way into the page's HTML and SVG.
//!
//! Module and interface names, environment variable names, directory paths, network
//! destinations and origins are all written by whoever wrote the manifest, and the page
//! shows them to the operator. Each goes through [`escape`], which makes it inert in element
//! content and in quoted attribute values alike (HTML and SVG/XML): `&`, `<`, `>`, `"` and
//! `'` become character references. Controls and bidi overrides are first shown escaped as
//! in logs ([`crate::sanitize`]), so that a name cannot reorder or hide what the operator
//! reads.

/// `text` as inert markup text, for element content or a quoted attribute value.
pub(crate) fn escape(text: &str) -> String {
    let text = crate::sanitize::escape(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` cut to at most `max` characters, with an ellipsis where it was cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_become_references() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("acme:kv/store@0.1.0"), "acme:kv/store@0.1.0");
    }

    #[test]
    fn controls_and_bidi_overrides_are_shown_escaped() {
        assert_eq!(escape("a\u{202e}b\nc"), "a\\u{202e}b\\nc");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdefg", 6), "abcde…");
    }
}
