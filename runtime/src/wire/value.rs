//! Component values in the component model's value definition encoding.
