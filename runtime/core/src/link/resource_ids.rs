//! Ids of resource types made at run time: every proxy of a linked module's resource
//! (`forward.rs`) and every dynamic host resource (`dynamic.rs`) gets its own, for
//! `ResourceType::host_dynamic`, so that handles of one resource can never be passed where
//! another is expected.

use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_RESOURCE_TYPE: AtomicU32 = AtomicU32::new(1);

/// A resource type id no other proxy or dynamic host resource has.
pub fn new_resource_type() -> u32 {
    NEXT_RESOURCE_TYPE.fetch_add(1, Ordering::Relaxed)
}
