//! WASI 0.3 modules (component-model async): told apart from 0.2 ones by their bytes
//! ([`detect`]), compiled on a second engine with concurrency support ([`engine`]), and run
//! many calls per instance ([`executor`], [`driver`]), each call with its own deadline
//! ([`deadlines`]).
//!
//! What holds for 0.3 modules as for 0.2 ones: the same grants (directories, environment,
//! network, outbound HTTP, stdio) on the 0.3 interfaces of WASI, the same limits on each
//! instance (memory, time), admission, supervision and metrics per call, live upgrade.
//! What differs, because calls share an instance (docs/decisions/0013-wasi-p3.md):
//! - `limits.concurrency` calls run at once in one instance (default 16);
//! - a call's caller gets `Timeout` at its deadline while the others go on; the instance
//!   then takes no new calls and is dropped when the rest are answered;
//! - a failure of the Store (a trap, or a call's code running past its deadline) fails
//!   every call in it: the others get `Unavailable`;
//! - the budgets armed per call on 0.2 (fuel, output, open files) cover a busy period of
//!   the instance (from idle to idle), which is one call when `concurrency = 1`.

pub mod call;
pub mod deadlines;
pub mod detect;
pub mod driver;
pub mod engine;
pub mod executor;
pub mod http;

pub use detect::Wasi;
