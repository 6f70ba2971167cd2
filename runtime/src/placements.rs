//! The placements this build serves, and the checks of a declaration against them.

use std::sync::Arc;

use crate::boundary::Boundaries;
use crate::error::Result;
use crate::spec::AppSpec;

/// Every placement this build serves: isolated, fused, process and remote.
pub(crate) fn built_in() -> Boundaries {
    let mut b = Boundaries::isolated();
    b.register(Arc::new(crate::fuse::boundary::Fused));
    b.register(Arc::new(crate::worker::boundary::Process));
    b.register(Arc::new(crate::remote::boundary::Remote));
    b
}

/// Checks an app's declaration without opening or compiling anything; every problem is
/// reported in one error ([`Error::problems`](crate::Error::problems)).
/// [`Runtime::load_spec`](crate::Runtime::load_spec) runs the same checks first.
pub fn validate(spec: &AppSpec) -> Result<()> {
    crate::validate::validate_with(spec, &built_in())
}
