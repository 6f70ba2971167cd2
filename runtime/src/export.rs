//! Export names as written on the command line and in the API: `ns:pkg/iface#func`,
//! `ns:pkg/iface@1.2.3#func`, or a bare `func` for a root-level export.

use crate::error::{Error, ErrorKind, Result};

/// A parsed export name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExportName<'a> {
    /// The interface, with its version when one was written.
    pub interface: Option<&'a str>,
    /// The function.
    pub func: &'a str,
}

impl<'a> ExportName<'a> {
    pub(crate) fn parse(text: &'a str) -> Result<ExportName<'a>> {
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
pub(crate) fn split_version(name: &str) -> (&str, Option<&str>) {
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
