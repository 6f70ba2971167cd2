//! Names on the wire: a bucket's NATS KV name and a guest's key as a subject token.

/// The NATS KV bucket name of an app's bucket: `<app>_<bucket>` (bucket names have no
/// `_`, so the split is unambiguous).
pub(crate) fn bucket_name(app: &str, bucket: &str) -> String {
    format!("{app}_{bucket}")
}

/// A guest's key as one subject token: ASCII letters, digits, `-`, `_` and `/` stay, every
/// other byte (`.` and `=` too) becomes `=XX`; the empty key is `=`. Distinct keys give
/// distinct tokens, and a token never holds `.`, `*`, `>` or a space.
pub(crate) fn encode(key: &str) -> String {
    if key.is_empty() {
        return "=".into();
    }
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// The key of a token [`encode`] made; `None` for a subject this backend did not write.
pub(crate) fn decode(token: &str) -> Option<String> {
    if token == "=" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_one_token_and_comes_back() {
        for key in [
            "",
            "=",
            "a",
            "a b",
            ".a",
            "a.",
            "a..b",
            "*",
            ">",
            "ü",
            "дом",
            "=3D",
            "a/b_c-d",
            "tab\there",
            "\u{0}",
        ] {
            let token = encode(key);
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_/=".contains(&b)),
                "{key:?} -> {token:?}"
            );
            assert!(!token.is_empty());
            assert_eq!(decode(&token).as_deref(), Some(key), "{key:?} -> {token:?}");
        }
        assert_ne!(encode(""), encode("="));
        assert_eq!(decode("=4"), None);
        assert_eq!(decode("=ZZ"), None);
        assert_eq!(decode("=FF"), None, "not UTF-8");
    }
}
