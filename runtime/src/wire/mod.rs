//! What crosses a process boundary: component values in the component model's value
//! encoding (the one wRPC specifies), and the messages between a host and its workers.

pub(crate) mod bounds;
pub(crate) mod message;
pub(crate) mod sizes;
pub(crate) mod stand;
pub(crate) mod table;
pub(crate) mod value;
