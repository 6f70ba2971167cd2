//! Names and their rules: exports as written on the command line and in the API
//! (`ns:pkg/iface#func`, `ns:pkg/iface@1.2.3#func`, or a bare `func` for a root-level
//! export), interface names used as link keys, and module names.

use crate::error::{Error, ErrorKind, Result};

/// The provider name that means "the embedding application".
pub const HOST: &str = "host";

/// Module names appear in logs, errors, link targets and (later) network subjects: keep
/// them simple.
pub fn validate_module_name(name: &str) -> std::result::Result<(), String> {
    if name == HOST {
        return Err("`host` is reserved for interfaces the embedding application provides".into());
    }
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "module name {name:?} is not valid: use letters, digits, '-' and '_', starting with a letter"
        ))
    }
}

/// Checks an interface name used as a link key: `ns:pkg/iface` with an optional `@version`.
pub fn validate_link_key(key: &str) -> std::result::Result<(), String> {
    let (base, version) = split_version(key);
    let shape_ok = base
        .split_once(':')
        .and_then(|(ns, rest)| rest.split_once('/').map(|(pkg, iface)| [ns, pkg, iface]))
        .is_some_and(|parts| {
            parts
                .iter()
                .all(|p| !p.is_empty() && !p.contains(['/', ':', '#']))
        });
    if !shape_ok {
        return Err(format!(
            "{key:?} is not an interface name: write `ns:pkg/iface`, optionally with `@version`"
        ));
    }
    if let Some(v) = version {
        crate::semver::parse(v).map_err(|e| format!("{key:?}: {e}"))?;
    }
    Ok(())
}

/// A parsed export name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportName<'a> {
    /// The interface, with its version when one was written.
    pub interface: Option<&'a str>,
    /// The function.
    pub func: &'a str,
}

impl<'a> ExportName<'a> {
    /// Parses `ns:pkg/iface[@version]#func` or a bare root-level name.
    pub fn parse(text: &'a str) -> Result<ExportName<'a>> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidArgs,
                format!(
                    "export name {text:?} {why}: write `ns:pkg/iface#func`, `ns:pkg/iface@1.0.0#func` or a root-level `func`"
                ),
            )
        };
        match text.split_once('#') {
            Some((iface, func)) => {
                if func.is_empty() || func.contains(['#', '/', ':']) {
                    return Err(bad("has no valid function after '#'"));
                }
                if !iface.contains(':') || !iface.contains('/') {
                    return Err(bad("has no `ns:pkg/iface` before '#'"));
                }
                Ok(ExportName {
                    interface: Some(iface),
                    func,
                })
            }
            None if text.is_empty() => Err(bad("is empty")),
            None if text.contains(['/', ':']) => Err(bad("names an interface but no function")),
            None => Ok(ExportName {
                interface: None,
                func: text,
            }),
        }
    }
}

/// Splits `ns:pkg/iface@1.2.3` into the unversioned name and the version.
pub fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (name, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = ExportName::parse("acme:kv/store@1.0.0#get").unwrap();
        assert_eq!(n.interface, Some("acme:kv/store@1.0.0"));
        assert_eq!(n.func, "get");
        assert_eq!(ExportName::parse("hello").unwrap().interface, None);
        assert!(ExportName::parse("acme:kv/store").is_err());
        assert!(ExportName::parse("acme:kv/store#").is_err());
        assert!(ExportName::parse("store#get").is_err());
        assert!(ExportName::parse("").is_err());
        assert_eq!(split_version("a:b/c@0.1.0"), ("a:b/c", Some("0.1.0")));
    }
}
