//! Telling a WASI 0.3 component (component-model async) from a WASI 0.2 one, from its bytes,
//! before compiling: a 0.3 component only compiles on the engine with concurrency support.
//!
//! A component is 0.3 when it imports or exports a `wasi:` interface at version 0.3, or when
//! any of its canonical functions uses the async ABI (a lift or lower with the `async`
//! option, or one of the task, stream, future and waitable built-ins). Anything the scan
//! misses is caught at compilation: a component that the 0.2 engine refuses and the 0.3
//! engine takes is 0.3 (`compile.rs`).

use wasmparser::{CanonicalFunction, CanonicalOption, Parser, Payload};

/// Which WASI a component is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wasi {
    /// WASI 0.2: synchronous exports, one call per instance at a time.
    P2,
    /// WASI 0.3: component-model async; one instance may run many calls at once.
    P3,
}

impl Wasi {
    /// How the manifest and messages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Wasi::P2 => "WASI 0.2",
            Wasi::P3 => "WASI 0.3",
        }
    }
}

/// Scans `bytes` (a component) for the marks of WASI 0.3. Malformed bytes are left to the
/// compiler to describe: they scan as 0.2.
pub fn detect(bytes: &[u8]) -> Wasi {
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else {
            return Wasi::P2;
        };
        let p3 = match payload {
            Payload::ComponentImportSection(reader) => reader
                .into_iter()
                .flatten()
                .any(|i| is_wasi_p3(i.name.name)),
            Payload::ComponentExportSection(reader) => reader
                .into_iter()
                .flatten()
                .any(|e| is_wasi_p3(e.name.name)),
            Payload::ComponentCanonicalSection(reader) => {
                reader.into_iter().flatten().any(|f| uses_async(&f))
            }
            _ => false,
        };
        if p3 {
            return Wasi::P3;
        }
    }
    Wasi::P2
}

/// `wasi:<package>/<interface>@0.3.x`.
fn is_wasi_p3(name: &str) -> bool {
    name.starts_with("wasi:")
        && name
            .rsplit_once('@')
            .is_some_and(|(_, v)| v.starts_with("0.3."))
}

fn uses_async(f: &CanonicalFunction) -> bool {
    let async_option = |options: &[CanonicalOption]| {
        options
            .iter()
            .any(|o| matches!(o, CanonicalOption::Async | CanonicalOption::Callback(_)))
    };
    match f {
        CanonicalFunction::Lift { options, .. } | CanonicalFunction::Lower { options, .. } => {
            async_option(options)
        }
        // Resources and shared-everything threads exist without component-model async.
        CanonicalFunction::ResourceNew { .. }
        | CanonicalFunction::ResourceDrop { .. }
        | CanonicalFunction::ResourceRep { .. }
        | CanonicalFunction::ThreadSpawnRef { .. }
        | CanonicalFunction::ThreadSpawnIndirect { .. }
        | CanonicalFunction::ThreadAvailableParallelism => false,
        // Every other built-in is a task, stream, future, waitable or error-context one.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_wasi_03() {
        assert!(is_wasi_p3("wasi:http/handler@0.3.0"));
        assert!(is_wasi_p3("wasi:cli/stdout@0.3.2"));
        assert!(!is_wasi_p3("wasi:http/incoming-handler@0.2.6"));
        assert!(!is_wasi_p3("acme:kv/store@0.3.0"));
        assert!(!is_wasi_p3("wasi:cli/run"));
    }

    #[test]
    fn a_plain_component_is_02_and_garbage_is_left_to_the_compiler() {
        let plain = wat::parse_str("(component (core module))").unwrap();
        assert_eq!(detect(&plain), Wasi::P2);
        assert_eq!(detect(b"not wasm at all"), Wasi::P2);
    }

    #[test]
    fn an_async_lift_is_03() {
        let c = wat::parse_str(
            r#"(component
                (core module $m
                  (func (export "f") (result i32) i32.const 0)
                  (func (export "cb") (param i32 i32 i32) (result i32) i32.const 0))
                (core instance $i (instantiate $m))
                (func (export "f") (canon lift (core func $i "f") async (callback (func $i "cb")))))"#,
        )
        .unwrap();
        assert_eq!(detect(&c), Wasi::P3);
    }
}
