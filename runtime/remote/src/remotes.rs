//! What an app says about its `remote` modules' hosts (tests, tools).

use std::collections::BTreeMap;

use crate::app::App;
use crate::client::RemoteModule;
use crate::error::{Error, ErrorKind, Result};

/// How many answers each host gave to this process's calls of `module` (a `remote` module),
/// by host id, for the hosts that answered in the last minute. For tests and tools that
/// watch how calls spread over hosts.
pub fn answers(app: &App, module: &str) -> Result<BTreeMap<String, u64>> {
    let m = app.module(module)?;
    let g = m.current_full();
    g.transport()
        .and_then(|t| RemoteModule::of(&**t))
        .map(RemoteModule::answers)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("module `{module}` is not remote"),
            )
            .with_module(module)
        })
}

/// This process's id as a host of remote modules (in the `Membrane-Host` header of its
/// answers), when the app has a NATS connection.
pub fn host_id(app: &App) -> Option<String> {
    app.inner
        .cx
        .extensions
        .get::<crate::connect::Nats>()
        .map(|n| n.host_id.to_string())
}
