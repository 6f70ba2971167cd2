//! What a route calls, by the WASI its module is built for: `wasi:http/incoming-handler@0.2.x`
//! ([`crate::incoming`]) or `wasi:http/handler@0.3.x` ([`crate::p3::http`]).

use std::sync::Arc;

use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use crate::exports::Exports;
use crate::generation::Generation;
use crate::incoming::{self, Failure, HANDLER, HANDLER_P3, Response};
use crate::p3::Wasi;
use crate::value::Function;

/// The handler export of a generation.
pub fn handler_of(generation: &Generation) -> &'static str {
    match generation.recipe().wasi {
        Wasi::P2 => HANDLER,
        Wasi::P3 => HANDLER_P3,
    }
}

/// Why a component built for `wasi` cannot serve HTTP, if it cannot.
pub fn check_handler(exports: &Exports, wasi: Wasi) -> std::result::Result<(), String> {
    match wasi {
        Wasi::P2 => incoming::check_handler(exports),
        #[cfg(feature = "p3")]
        Wasi::P3 => crate::p3::http::check_handler(exports),
        #[cfg(not(feature = "p3"))]
        Wasi::P3 => Err(NO_P3.to_string()),
    }
}

/// Gives a request to `module`'s handler `func` (see [`incoming::serve`] and
/// [`crate::p3::http::serve`]); a body declared over `limits.body` is 413 before any guest runs.
pub async fn serve(
    module: Arc<Generation>,
    func: Arc<Function>,
    req: hyper::Request<hyper::body::Incoming>,
    scheme: Scheme,
) -> std::result::Result<Response, Failure> {
    let limit = module.recipe().limits.body;
    if incoming::declared_too_large(&req, limit) {
        return Err(Failure::BodyTooLarge { limit });
    }
    match module.recipe().wasi {
        Wasi::P2 => incoming::serve(module, func, req, scheme).await,
        #[cfg(feature = "p3")]
        Wasi::P3 => crate::p3::http::serve(module, func, req).await,
        #[cfg(not(feature = "p3"))]
        Wasi::P3 => {
            let _ = func;
            Err(Failure::Error(crate::error::Error::new(
                crate::error::ErrorKind::InvalidComponent,
                NO_P3,
            )))
        }
    }
}

/// Why a WASI 0.3 module cannot serve in a build without the `p3` feature (such a module
/// is refused at load, so no route reaches one).
#[cfg(not(feature = "p3"))]
const NO_P3: &str = "a WASI 0.3 handler needs the `p3` feature of Membrane";
