//! The host's side of the worker protocol (`placement = "process"`) on arbitrary bytes: the
//! frame reader with the host's per-message bounds, and every message a worker sends, as
//! the host handles it (log events through the escaping and the budgets, errors, reports,
//! and values of many types). A compromised worker chooses these bytes: the host must
//! refuse or accept them, never panic, hang or hold more than their bounds.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wasmtime::component::Component;
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::Engine;

const WIT: &str = r#"
package fuzz:wire;

interface all {
  record point { x: s32, y: s32 }
  record shapes { name: string, points: list<point>, note: option<string> }
  variant shape { nothing, circle(f64), named(string), at(point) }
  enum color { red, green, blue }
  flags nine { f0, f1, f2, f3, f4, f5, f6, f7, f8 }

  every: func(a: bool, b: s8, c: u8, d: s16, e: u16, f: s32, g: u32, h: s64, i: u64,
              j: f32, k: f64, l: char, m: string, n: list<u8>, o: list<list<string>>,
              p: list<point>, q: shapes, r: tuple<u8, string, bool>, s: shape, t: color,
              u: option<option<u32>>, v: result<point, color>, w: nine);
}

world w { export all; }
"#;

/// The parameter types of `every`: one of each kind of value.
fn types() -> &'static [Type] {
    static TYPES: OnceLock<Vec<Type>> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut resolve = wit_parser::Resolve::default();
        let pkg = resolve.push_str("fuzz.wit", WIT).expect("WIT parses");
        let world = resolve.select_world(&[pkg], Some("w")).expect("world");
        let mut module =
            wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
        )
        .expect("metadata");
        let bytes = wit_component::ComponentEncoder::default()
            .module(&module)
            .expect("module")
            .encode()
            .expect("component");
        let engine = Engine::default();
        let component = Component::new(&engine, bytes).expect("component compiles");
        let ty = component.component_type();
        let Some(ComponentItem::ComponentInstance(all)) =
            ty.get_export(&engine, "fuzz:wire/all").map(|e| e.ty)
        else {
            panic!("no interface");
        };
        let Some(ComponentItem::ComponentFunc(f)) = all.get_export(&engine, "every").map(|e| e.ty)
        else {
            panic!("no function");
        };
        // The host logs what a worker says: format every event, into nothing.
        let _ = tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(std::io::sink)
                .finish(),
        );
        f.params().map(|(_, t)| t).collect()
    })
}

fuzz_target!(|data: &[u8]| {
    membrane::process::fuzz::host_side(data, types());
});
