//! The stand-ins a host holds for resources that live on the other side of a session (a
//! worker process, another host): a resource crosses as a `u32` handle, and the host
//! holds a host resource of a small Store of its own for each, which is what the link
//! code's proxies hold, as for an in-process provider.

use std::sync::OnceLock;

use wasmtime::component::types::Type;
use wasmtime::component::{ResourceAny, ResourceDynamic};
use wasmtime::{Engine, Store};

use super::message::malformed;
use super::value::Handles;
use crate::error::{Error, ErrorKind, Result};

/// The host's stand-ins for a session's remote resources: a host resource per worker
/// handle, and which handle each stands for (`ResourceAny` has no hash; a session holds
/// few handles at a time).
pub struct Stand {
    store: Store<()>,
    held: Vec<(ResourceAny, u32)>,
}

impl Default for Stand {
    fn default() -> Stand {
        Stand::new()
    }
}

impl Stand {
    /// A session's stand-ins, none yet.
    pub fn new() -> Stand {
        Stand {
            store: Store::new(engine(), ()),
            held: Vec::new(),
        }
    }
}

/// The engine of the stand-in Stores (they hold handles, never run code).
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(Engine::default)
}

impl Handles for Stand {
    fn lower(&mut self, r: &ResourceAny, ty: &Type) -> Result<u32> {
        let i = self.held.iter().position(|(h, _)| h == r).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgs,
                "a resource handle does not belong to this session",
            )
        })?;
        let rep = self.held[i].1;
        if !matches!(ty, Type::Borrow(_)) {
            // Ownership moves to the worker (or the handle is dropped): forget the stand-in.
            let (h, _) = self.held.swap_remove(i);
            let _ = h.resource_drop(&mut self.store);
        }
        Ok(rep)
    }

    fn lift(&mut self, handle: u32, ty: &Type) -> Result<ResourceAny> {
        if !matches!(ty, Type::Own(_)) {
            return Err(malformed("the other side returned a borrowed resource"));
        }
        let r = ResourceDynamic::new_own(handle, 0)
            .try_into_resource_any(&mut self.store)
            .map_err(|e| malformed(&format!("cannot hold a resource handle: {e}")))?;
        self.held.push((r, handle));
        Ok(r)
    }
}
