//! The C API of Membrane (include/membrane.h).
