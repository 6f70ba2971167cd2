//! Signatures of dynamic host functions ([`HostInterface::func_dynamic`]): the declared
//! WIT type, normalized, is compared with the importer's when an app links to the
//! interface, and the values a function returns are checked against their types.
//!
//! Resources of the interface are written by name, as in WIT: `document` (or
//! `own<document>`) for an owned handle, `borrow<document>` for a borrowed one.
//!
//! [`HostInterface::func_dynamic`]: super::host::HostInterface::func_dynamic

use wasmtime::component::types::{ComponentFunc, Type};
use wasmtime::component::{ResourceType, Val};

use crate::error::{Error, ErrorKind, Result};
use crate::value::{check, type_name_with};

/// The importer's resources of an interface, by name.
pub type Named = [(String, ResourceType)];

/// `signature` without whitespace, without parameter names and with `own<r>` written `r`:
/// `func(a: u32, b: list<u8>) -> own<doc>` becomes `func(u32,list<u8>)->doc`.
pub fn normalize(signature: &str) -> String {
    let s = unwrap_own(&signature.split_whitespace().collect::<String>());
    let Some(inner) = s.strip_prefix("func(") else {
        return s;
    };
    // The parameter list ends at the `)` that closes `func(`.
    let mut depth = 0usize;
    let mut end = None;
    for (i, c) in inner.char_indices() {
        match c {
            '(' | '<' | '{' => depth += 1,
            ')' if depth == 0 => {
                end = Some(i);
                break;
            }
            ')' | '>' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let Some(end) = end else { return s };
    let params: Vec<&str> = split_top(&inner[..end])
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(strip_name)
        .collect();
    format!("func({}){}", params.join(","), &inner[end + 1..])
}

/// The importer's function type, its resources named from `resources`.
pub fn render(params: &[Type], results: &[Type], resources: &Named) -> String {
    let name = |t: &Type| {
        type_name_with(t, &|r| {
            resources
                .iter()
                .find(|(_, rt)| rt == r)
                .map(|(n, _)| n.clone())
        })
    };
    let p: Vec<String> = params.iter().map(name).collect();
    let mut s = format!("func({})", p.join(", "));
    if let [r] = results {
        s.push_str(" -> ");
        s.push_str(&name(r));
    }
    s
}

/// Checks that `declared` (normalized) is the importer's type.
pub fn matches(declared: &str, params: &[Type], results: &[Type], resources: &Named) -> bool {
    normalize(&render(params, results, resources)) == declared
}

/// Checks that a dynamic function filled each result with a value of its type.
pub fn check_results(ty: &ComponentFunc, results: &[Val]) -> Result<()> {
    for (i, (val, t)) in results.iter().zip(ty.results()).enumerate() {
        check(val, &t).map_err(|why| {
            Error::new(
                ErrorKind::InvalidArgs,
                format!("result {i} does not match the function's type: {why}"),
            )
        })?;
    }
    Ok(())
}

/// Splits at the commas outside any `<>`, `{}` or `()`.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '<' | '{' | '(' => depth += 1,
            '>' | '}' | ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Every `own<r>` written `r` (the form WIT and [`render`] use), in a signature without
/// whitespace.
fn unwrap_own(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("own<") {
        let word_before = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '%');
        let name_end = rest[at + 4..].find('>').map(|e| at + 4 + e);
        match name_end {
            Some(end) if !word_before => {
                out.push_str(&rest[..at]);
                out.push_str(&rest[at + 4..end]);
                rest = &rest[end + 1..];
            }
            _ => {
                out.push_str(&rest[..at + 4]);
                rest = &rest[at + 4..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `a:u32` becomes `u32`; a type alone stays as it is.
fn strip_name(p: &str) -> &str {
    match p.split_once(':') {
        Some((name, ty))
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '%') =>
        {
            ty
        }
        _ => p,
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn names_and_spaces_do_not_count() {
        assert_eq!(
            normalize("func(a: u32, b: list<tuple<u8, string>>) -> string"),
            "func(u32,list<tuple<u8,string>>)->string"
        );
        assert_eq!(
            normalize("func(u32,list<tuple<u8,string>>)->string"),
            normalize("func(x:u32, y: list<tuple<u8,string>>) ->  string")
        );
        assert_eq!(
            normalize("func(r: record { a: u32, b: string })"),
            "func(record{a:u32,b:string})"
        );
        assert_eq!(normalize("func()"), "func()");
        assert_ne!(normalize("func(u32) -> u32"), normalize("func(u32) -> u64"));
    }

    #[test]
    fn own_is_the_bare_resource_name() {
        assert_eq!(
            normalize("func(d: own<document>, b: borrow<document>) -> own<tally>"),
            "func(document,borrow<document>)->tally"
        );
        assert_eq!(
            normalize("func(d: document) -> list<own<tally>>"),
            "func(document)->list<tally>"
        );
        // `own<` inside a longer name is not the `own` of a handle.
        assert_eq!(normalize("func(x: unknown<a>)"), "func(unknown<a>)");
    }
}
