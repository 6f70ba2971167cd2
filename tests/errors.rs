//! Bad input of every kind gives a clear, typed error and never a panic.

use membrane::{AppSpec, ErrorKind, ModuleSpec};

use crate::common::*;

async fn load_err(module: ModuleSpec) -> membrane::Error {
    runtime()
        .load_spec(AppSpec::new().module("bad", module))
        .await
        .err()
        .expect("load must fail")
}

#[tokio::test]
async fn missing_component_file() {
    let e = load_err(ModuleSpec::from_file("/no/such/component.wasm")).await;
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.module(), Some("bad"));
    assert_eq!(e.key(), Some("modules.bad.component"));
}

#[tokio::test]
async fn core_module_is_not_a_component() {
    let core = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let e = load_err(ModuleSpec::from_bytes(core)).await;
    assert_eq!(e.kind(), ErrorKind::InvalidComponent);
    assert_eq!(e.module(), Some("bad"));
}

#[tokio::test]
async fn random_bytes_are_not_webassembly() {
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let e = load_err(ModuleSpec::from_bytes(junk)).await;
    assert_eq!(e.kind(), ErrorKind::InvalidComponent);
    assert_eq!(e.module(), Some("bad"));
}

#[tokio::test]
async fn truncated_component() {
    let bytes = std::fs::read(guests::TYPES).unwrap();
    let e = load_err(ModuleSpec::from_bytes(&bytes[..bytes.len() / 2])).await;
    assert_eq!(e.kind(), ErrorKind::InvalidComponent);
}

#[tokio::test]
async fn unlinked_import_is_refused_with_the_fix() {
    let e = load_err(ModuleSpec::from_file(guests::NEEDS_KV)).await;
    assert_eq!(e.kind(), ErrorKind::Link);
    assert_eq!(e.module(), Some("bad"));
    assert_eq!(e.export(), Some("acme:kv/store@0.1.0"));
    // The fix names the key to add.
    assert_eq!(e.key(), Some("modules.bad.links"));
}

#[tokio::test]
async fn every_module_problem_is_reported_at_once() {
    let spec = AppSpec::new()
        .module("a", ModuleSpec::from_file("/missing/a.wasm"))
        .module("b", ModuleSpec::from_file(guests::NEEDS_KV))
        .module("c", ModuleSpec::from_file(guests::PROBE));
    let e = runtime().load_spec(spec).await.err().unwrap();
    let modules: Vec<_> = e.problems().iter().map(|p| p.module()).collect();
    assert_eq!(modules, [Some("a"), Some("b")], "{e}");
    let kinds: Vec<_> = e.problems().iter().map(|p| p.kind()).collect();
    assert_eq!(kinds, [ErrorKind::NotFound, ErrorKind::Link]);
}

#[tokio::test]
async fn unknown_module_export_and_bad_arguments() {
    let app = probe(|m| m).await;
    let e = app.call("nope", "x", &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.module(), Some("nope"));
    let e = app
        .call("m", &format!("{CAPS}#nope"), &[])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.module(), Some("m"));
    assert_eq!(e.export(), Some(format!("{CAPS}#nope").as_str()));
    let e = app.call("m", "other:pkg/iface#f", &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.export(), Some("other:pkg/iface#f"));
    let e = app.call("m", "not a name/", &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgs);
    let e = caps(&app, "read-file", &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgs);
    assert_eq!(e.export(), Some(format!("{CAPS}@0.1.0#read-file").as_str()));
    let e = caps(&app, "read-file", &[membrane::Val::U32(1)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgs);
    assert!(e.to_string().contains("expected string, got u32"), "{e}");
    // None of that cost the module anything.
    let out = caps(&app, "get-env", &[s("X")]).await.unwrap();
    assert_eq!(out[0], membrane::Val::Option(None));
}

#[tokio::test]
async fn bad_manifests_are_errors_with_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_manifest(
        tmp.path(),
        "[modules.a]\ncomponent = \"a.wasm\"\nlimits = { memroy = \"1MiB\" }\n",
    );
    let e = runtime().load(&path).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Manifest);
    let at = e.location().expect("a location");
    assert_eq!((at.file.as_path(), at.line), (path.as_path(), 3));
    assert!(e.message().contains("memroy"), "{e}");
    let e = runtime()
        .load(tmp.path().join("absent.toml"))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let path = write_manifest(tmp.path(), "this is not toml");
    let e = runtime().load(&path).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Manifest);
}
