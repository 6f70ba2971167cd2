//! Placement of modules: where a module's boundary sits.

mod fused;
