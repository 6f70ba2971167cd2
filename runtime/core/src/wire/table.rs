//! The serving side's table of the resources a session's other side holds handles of (a
//! worker's connection, a remote host's session): a handle is an index here.

use wasmtime::component::ResourceAny;

use super::message::malformed;
use super::value::Handles;
use crate::error::Result;

/// The resources of a session's instance that the other side holds handles of.
#[derive(Default)]
pub struct Table {
    slots: Vec<Option<ResourceAny>>,
    /// How many handles are out.
    pub live: usize,
}

impl Table {
    /// Forgets every handle (their instance is gone).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.live = 0;
    }

    /// Takes the resource of `handle` out of the table.
    pub fn take(&mut self, handle: u32) -> Result<ResourceAny> {
        let r = self
            .slots
            .get_mut(handle as usize)
            .and_then(Option::take)
            .ok_or_else(|| malformed("an unknown resource handle"))?;
        self.live -= 1;
        Ok(r)
    }
}

impl Handles for Table {
    fn lower(&mut self, r: &ResourceAny, _ty: &wasmtime::component::types::Type) -> Result<u32> {
        let free = self.slots.iter().position(Option::is_none);
        let i = match free {
            Some(i) => {
                self.slots[i] = Some(*r);
                i
            }
            None => {
                self.slots.push(Some(*r));
                self.slots.len() - 1
            }
        };
        self.live += 1;
        Ok(i as u32)
    }

    fn lift(&mut self, handle: u32, ty: &wasmtime::component::types::Type) -> Result<ResourceAny> {
        match ty {
            wasmtime::component::types::Type::Own(_) => self.take(handle),
            _ => self
                .slots
                .get(handle as usize)
                .copied()
                .flatten()
                .ok_or_else(|| malformed("an unknown resource handle")),
        }
    }
}
