//! WASI 0.3 modules (component-model async): calls, concurrency in one instance, a
//! deadline per call, links between 0.3 and 0.2 modules, grants, upgrade and serving.

mod calls;
mod fused;
mod grants;
mod life;
mod links;
mod process;
mod serving;

use membrane::{App, AppSpec, ModuleSpec, Val};

use crate::common::*;

pub const CALC: &str = "membrane:p3lib/calc@0.1.0";

/// An app of one module `m` built from `component` with `f`'s settings.
pub async fn p3_app(component: &str, f: impl FnOnce(ModuleSpec) -> ModuleSpec) -> App {
    runtime()
        .load_spec(AppSpec::new().module("m", f(ModuleSpec::from_file(component))))
        .await
        .expect("app loads")
}

/// `calc#<func>` of module `m`.
pub async fn calc(app: &App, func: &str, args: &[Val]) -> membrane::Result<Vec<Val>> {
    app.call("m", &format!("{CALC}#{func}"), args).await
}
