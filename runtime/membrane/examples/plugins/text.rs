//! Typed handles on the `membrane-examples:plugin/text` interface of examples/plugins/wit,
//! in plain Rust types: no bindings generator, the types are checked against the plugin's
//! exports once, when the handles are made. Shared by the example host, its benchmark
//! (`--example plugin_bench`) and the integration tests (tests/plugins.rs).

#![allow(dead_code)]

use membrane::{App, Result, Typed};
use wasmtime::component::{ComponentType, Lift, Lower};

/// The interface, with its version, as export names start.
pub const TEXT: &str = "membrane-examples:plugin/text@0.1.0";

/// The WIT record `text-stats`.
#[derive(ComponentType, Lift, Lower, Debug, Clone, PartialEq, Eq)]
#[component(record)]
pub struct TextStats {
    /// Unicode scalar values.
    pub chars: u32,
    /// Whitespace-separated words.
    pub words: u32,
    /// Length in UTF-8.
    pub bytes: u32,
}

/// Every function of the interface, on one module of an app.
#[derive(Clone, Debug)]
pub struct TextPlugin {
    /// `name: func() -> string`
    pub name: Typed<(), (String,)>,
    /// `transform: func(input: string) -> string`
    pub transform: Typed<(String,), (String,)>,
    /// `stats: func(input: string) -> text-stats`
    pub stats: Typed<(String,), (TextStats,)>,
    /// `env: func(key: string) -> option<string>`
    pub env: Typed<(String,), (Option<String>,)>,
    /// `allocate: func(megabytes: u32) -> u32`
    pub allocate: Typed<(u32,), (u32,)>,
    /// `spin: func()`
    pub spin: Typed<(), ()>,
}

impl TextPlugin {
    /// The typed handles on `module` of `app`; fails if the module does not export the
    /// interface with these types.
    pub fn new(app: &App, module: &str) -> Result<TextPlugin> {
        let f = |func: &str| format!("{TEXT}#{func}");
        Ok(TextPlugin {
            name: app.typed(module, &f("name"))?,
            transform: app.typed(module, &f("transform"))?,
            stats: app.typed(module, &f("stats"))?,
            env: app.typed(module, &f("env"))?,
            allocate: app.typed(module, &f("allocate"))?,
            spin: app.typed(module, &f("spin"))?,
        })
    }
}
