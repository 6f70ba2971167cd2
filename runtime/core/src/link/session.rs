//! What an importer instance keeps for its links with resources: one provider session per
//! such link (a provider instance pinned to this importer instance, taken from the
//! provider's pool) and the proxies of the provider resources it holds.
//!
//! The state lives in the importer's Store (so it ends with the importer instance: its
//! sessions go back to their pools, their instances are dropped) but belongs to the link
//! layer; the instance keeps it opaque.

use rustc_hash::FxHashMap;
use wasmtime::component::ResourceAny;

use super::objects::{Objects, next_rep};
use crate::generation::Session;
use crate::instance::HostState;

/// A provider's resource, seen by the importer through a host handle.
pub struct Proxy {
    /// The link slot (session) whose instance owns the resource.
    pub slot: usize,
    /// The handle in the provider's store.
    pub handle: ResourceAny,
}

/// Sessions and proxies of one importer instance.
#[derive(Default)]
pub struct Links {
    /// One per link with resources, by slot; `None` until first used or after a failure.
    pub sessions: Vec<Option<Session>>,
    /// Resource handles this instance holds on providers' resources, by proxy rep.
    pub proxies: FxHashMap<u32, Proxy>,
    next_proxy: u32,
    /// Values behind the handles of host resources this instance holds.
    pub objects: Objects,
}

impl Links {
    /// Resource handles the instance holds: proxies and host objects.
    pub fn handles(&self) -> usize {
        self.proxies.len() + self.objects.len()
    }

    /// Registers a provider handle and returns the rep of its new proxy.
    pub fn add_proxy(&mut self, slot: usize, handle: ResourceAny) -> u32 {
        let rep = next_rep(&mut self.next_proxy, |r| self.proxies.contains_key(&r));
        self.proxies.insert(rep, Proxy { slot, handle });
        rep
    }

    /// The provider's handle behind proxy `rep`, which must belong to link slot `slot`; an
    /// owned handle (`take`) leaves the proxy table.
    pub fn provider_handle(
        &mut self,
        rep: u32,
        slot: usize,
        take: bool,
    ) -> wasmtime::Result<ResourceAny> {
        let handle = match self.proxies.get(&rep) {
            Some(p) if p.slot == slot => p.handle,
            _ => wasmtime::bail!(
                "resource handle {rep} is no longer valid: the provider instance that held it was discarded after a failure"
            ),
        };
        if take {
            self.proxies.remove(&rep);
        }
        Ok(handle)
    }

    /// Forgets every proxy into a session that was discarded.
    pub fn drop_session(&mut self, slot: usize) {
        if let Some(s) = self.sessions.get_mut(slot) {
            *s = None;
        }
        self.proxies.retain(|_, p| p.slot != slot);
    }
}

/// The link state of an instance, created on first use.
pub fn links(state: &mut HostState) -> &mut Links {
    let slots = state.link_slots;
    state
        .links
        .get_or_insert_with(|| {
            Box::new(Links {
                sessions: (0..slots).map(|_| None).collect(),
                ..Links::default()
            })
        })
        .downcast_mut::<Links>()
        .expect("the link state of an instance is only ever `Links`")
}
