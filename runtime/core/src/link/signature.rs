//! Signatures of dynamic host functions ([`HostInterface::func_dynamic`]): the declared
//! WIT type, normalized, is compared with the importer's when an app links to the
//! interface, and the values a function returns are checked against their types.
//!
//! [`HostInterface::func_dynamic`]: super::host::HostInterface::func_dynamic

use wasmtime::component::Val;
use wasmtime::component::types::{ComponentFunc, Type};

use crate::error::{Error, ErrorKind, Result};
use crate::value::{check, type_name};

/// `signature` without whitespace and without parameter names: `func(a: u32, b: list<u8>)
/// -> string` becomes `func(u32,list<u8>)->string`.
pub fn normalize(signature: &str) -> String {
    let s: String = signature.split_whitespace().collect();
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

/// The importer's function type in the normalized form.
pub fn render(params: &[Type], results: &[Type]) -> String {
    let p: Vec<String> = params.iter().map(type_name).collect();
    let mut s = format!("func({})", p.join(", "));
    if let [r] = results {
        s.push_str(" -> ");
        s.push_str(&type_name(r));
    }
    s
}

/// Checks that `declared` (normalized) is the importer's type.
pub fn matches(declared: &str, params: &[Type], results: &[Type]) -> bool {
    normalize(&render(params, results)) == declared
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
}
