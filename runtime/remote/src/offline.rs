//! A `remote` module of an app loaded without a NATS connection (`Config::connect_nats`
//! off, for tools such as `membrane graph`): it is there to be looked at, and its calls
//! fail with `Unavailable`.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Val;

use crate::error::{Error, ErrorKind, Result};
use crate::transport::{BoxFuture, PinnedSession, Transport};
use crate::value::Function;

/// A remote module that cannot be reached from here.
pub(crate) struct Offline {
    pub name: Arc<str>,
}

impl Offline {
    fn refuse(&self) -> Error {
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "module `{}` is remote and this app was loaded without connecting to NATS \
                 (Config::connect_nats is off)",
                self.name
            ),
        )
        .with_module(&*self.name)
    }
}

impl Transport for Offline {
    fn call(&self, _: &Function, _: &[Val], _: &mut [Val], _: Instant) -> Result<()> {
        Err(self.refuse())
    }

    fn call_async<'a>(
        &'a self,
        _: &'a Function,
        _: &'a [Val],
        _: &'a mut [Val],
        _: Instant,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { Err(self.refuse()) })
    }

    fn session(self: Arc<Self>) -> Result<Box<dyn PinnedSession>> {
        Err(self.refuse())
    }

    fn governed_here(&self) -> bool {
        false
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
