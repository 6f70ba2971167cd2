//! The Python package of Membrane (python/membrane).
