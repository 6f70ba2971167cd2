//! Interfaces implemented in Rust by the embedding application.
//!
//! A module reaches a host interface only through a link that names it
//! (`links = { "acme:editor/buffer" = "host" }`); modules without that link cannot call it.
//! Functions are typed Rust closures; wasmtime checks their types against the importer's
//! when the app loads, so a mismatch is a load error, never a call-time surprise.

use std::fmt;
use std::sync::Arc;

use wasmtime::component::{ComponentNamedList, Lift, LinkerInstance, Lower};

use crate::error::{Error, ErrorKind, Result};
use crate::instance::HostState;

type Installer =
    Arc<dyn Fn(&mut LinkerInstance<'_, HostState>) -> wasmtime::Result<()> + Send + Sync>;

/// A WIT interface implemented by the host application.
///
/// ```
/// use membrane::HostInterface;
///
/// let buffer = HostInterface::new("acme:editor/buffer@0.1.0")
///     .func("line-count", |(): ()| Ok((42u32,)))
///     .func("line", |(n,): (u32,)| Ok((format!("line {n}"),)));
/// # let _ = buffer;
/// ```
#[derive(Clone)]
pub struct HostInterface {
    name: String,
    funcs: Vec<(String, Installer)>,
}

impl fmt::Debug for HostInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostInterface")
            .field("name", &self.name)
            .field("funcs", &self.func_names())
            .finish()
    }
}

impl HostInterface {
    /// An interface called `name` (`ns:pkg/iface@version`), with no functions yet.
    pub fn new(name: impl Into<String>) -> Self {
        HostInterface {
            name: name.into(),
            funcs: Vec::new(),
        }
    }

    /// Adds a function. Parameters and results are tuples of Rust types that map to the
    /// WIT types (`String` for `string`, `Vec<T>` for `list<T>`, `Option`, `Result`, ...).
    /// An `Err` becomes a failed call for the module that called it.
    pub fn func<P, R, F>(mut self, name: &str, f: F) -> Self
    where
        P: ComponentNamedList + Lift + 'static,
        R: ComponentNamedList + Lower + 'static,
        F: Fn(P) -> Result<R> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let owned = name.to_string();
        let iface = self.name.clone();
        let installer: Installer = Arc::new(move |inst: &mut LinkerInstance<'_, HostState>| {
            let f = f.clone();
            let what = format!("host function {iface}#{owned}");
            inst.func_wrap(&owned, move |_store, params: P| {
                f(params).map_err(|e| wasmtime::Error::new(e.context(&what)))
            })
        });
        self.funcs.push((name.to_string(), installer));
        self
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn has_func(&self, name: &str) -> bool {
        self.funcs.iter().any(|(n, _)| n == name)
    }

    pub(crate) fn func_names(&self) -> Vec<&str> {
        self.funcs.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        crate::names::validate_link_key(&self.name)
            .map_err(|msg| Error::new(ErrorKind::Link, format!("host interface: {msg}")))
    }

    /// Defines the functions the importer needs in its linker instance.
    pub(crate) fn install(
        &self,
        inst: &mut LinkerInstance<'_, HostState>,
        needed: &[String],
    ) -> wasmtime::Result<()> {
        for (name, installer) in &self.funcs {
            if needed.contains(name) {
                installer(inst)?;
            }
        }
        Ok(())
    }
}
