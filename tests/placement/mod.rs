//! Placement of modules: where a module's boundary sits.

mod crash;
mod fused;
mod process;
mod sandbox;
