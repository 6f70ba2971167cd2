//! Placement of modules: where a module's boundary sits.

mod capabilities;
mod crash;
mod fused;
mod process;
mod sandbox;
