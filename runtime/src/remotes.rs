//! What an app says about its `remote` modules' hosts (tests, tools).

use std::collections::BTreeMap;

use crate::app::App;
use crate::error::{Error, ErrorKind, Result};
use crate::remote::client::RemoteModule;

impl App {
    /// How many answers each host gave to this process's calls of `module` (a `remote`
    /// module), by host id, for the hosts that answered in the last minute. For tests and
    /// tools that watch how calls spread over hosts.
    #[doc(hidden)]
    pub fn remote_answers(&self, module: &str) -> Result<BTreeMap<String, u64>> {
        let m = self.module(module)?;
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
    #[doc(hidden)]
    pub fn remote_host_id(&self) -> Option<String> {
        self.inner
            .cx
            .extensions
            .get::<crate::remote::connect::Nats>()
            .map(|n| n.host_id.to_string())
    }
}
