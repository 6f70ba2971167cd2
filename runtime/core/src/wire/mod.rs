//! What crosses a process boundary: component values in the component model's value
//! encoding (the one wRPC specifies), and the messages between a host and its workers.

pub mod bounds;
pub mod keyvalue;
pub mod message;
pub mod sizes;
pub mod stand;
pub mod table;
pub mod value;
