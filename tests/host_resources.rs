//! Resources implemented by the host application: constructors, methods, static functions,
//! own and borrow parameters; handles a guest cannot forge or confuse; values dropped when
//! the guest drops them or its instance ends; the handle limit. The same with dynamic
//! resources (values of no fixed Rust type, as the Python binding serves them).

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use membrane::{App, AppSpec, ErrorKind, HostInterface, MAX_PROXIES, ModuleSpec, Resource, Val};
use wasmtime::component::ResourceAny;

use crate::common::*;

const RUN: &str = "membrane-test:docs/run@0.1.0";

/// Counts live documents, so tests can see when the host's values are dropped.
#[derive(Default)]
struct Live(AtomicUsize);

struct Document {
    text: String,
    live: Arc<Live>,
}

impl Document {
    fn new(text: String, live: &Arc<Live>) -> Self {
        live.0.fetch_add(1, Ordering::SeqCst);
        Document {
            text,
            live: live.clone(),
        }
    }
}

impl Drop for Document {
    fn drop(&mut self) {
        self.live.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Tally(u32);

fn store(live: &Arc<Live>) -> HostInterface {
    let (l1, l2) = (live.clone(), live.clone());
    HostInterface::new("membrane-test:docs/store@0.1.0")
        .resource::<Document>("document")
        .resource::<Tally>("tally")
        .constructor("document", move |(text,): (String,)| {
            Ok(Document::new(text, &l1))
        })
        .method("document", "text", |d: &mut Document, (): ()| {
            Ok((d.text.clone(),))
        })
        .method(
            "document",
            "append",
            |d: &mut Document, (more,): (String,)| {
                d.text.push_str(&more);
                Ok(())
            },
        )
        .func_with(
            "[static]document.open",
            move |objects, (name,): (String,)| {
                Ok((objects.insert(Document::new(format!("# {name}"), &l2))?,))
            },
        )
        .func_with("close", |objects, (doc,): (Resource<Document>,)| {
            Ok((objects.take(doc)?.text.clone(),))
        })
        .func_with("length", |objects, (doc,): (Resource<Document>,)| {
            Ok((objects.get(&doc)?.text.len() as u32,))
        })
        .constructor("tally", |(): ()| Ok(Tally(0)))
        .method("tally", "bump", |t: &mut Tally, (): ()| {
            t.0 += 1;
            Ok((t.0,))
        })
}

async fn app_with(iface: HostInterface, spec: ModuleSpec) -> membrane::Result<App> {
    let rt = runtime();
    rt.provide(iface)?;
    rt.load_spec(AppSpec::new().module("user", spec.link("membrane-test:docs/store", "host")))
        .await
}

async fn docs_app(live: &Arc<Live>) -> App {
    app_with(store(live), ModuleSpec::from_file(guests::DOCS_USER))
        .await
        .unwrap()
}

fn f(name: &str) -> String {
    format!("{RUN}#{name}")
}

#[tokio::test]
async fn constructors_methods_static_own_and_borrow() {
    let live = Arc::new(Live::default());
    let app = docs_app(&live).await;
    let roundtrip = app
        .typed::<(String, String), (String,)>("user", &f("roundtrip"))
        .unwrap();
    let (text,) = roundtrip
        .call(("hello".into(), ", world".into()))
        .await
        .unwrap();
    assert_eq!(text, "hello, world");
    // The guest dropped its handle: the host value is gone.
    assert_eq!(live.0.load(Ordering::SeqCst), 0);

    let cycle = app
        .typed::<(String,), ((u32, String),)>("user", &f("cycle"))
        .unwrap();
    let ((n, text),) = cycle.call(("notes".into(),)).await.unwrap();
    assert_eq!((n, text.as_str()), (7, "# notes"));
    assert_eq!(live.0.load(Ordering::SeqCst), 0, "close took it back");

    // The blocking path uses the sync linker: the same resources work there.
    let (text,) = roundtrip.call_blocking(("a".into(), "b".into())).unwrap();
    assert_eq!(text, "ab");
}

#[tokio::test]
async fn values_live_until_the_guest_drops_them_or_the_instance_ends() {
    let live = Arc::new(Live::default());
    let app = docs_app(&live).await;
    let hoard = app.typed::<(u32,), (u32,)>("user", &f("hoard")).unwrap();
    let release = app.typed::<(), (u32,)>("user", &f("release")).unwrap();
    assert_eq!(hoard.call((10,)).await.unwrap(), (10,));
    assert_eq!(live.0.load(Ordering::SeqCst), 10);
    assert_eq!(release.call(()).await.unwrap(), (10,));
    assert_eq!(live.0.load(Ordering::SeqCst), 0);

    // Handles still held when the instance ends are dropped with it.
    assert_eq!(hoard.call((5,)).await.unwrap(), (5,));
    assert_eq!(live.0.load(Ordering::SeqCst), 5);
    drop((hoard, release));
    drop(app);
    assert_eq!(live.0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn per_call_instances_drop_their_values_after_each_call() {
    let live = Arc::new(Live::default());
    let app = app_with(
        store(&live),
        ModuleSpec::from_file(guests::DOCS_USER).lifecycle(membrane::Lifecycle::PerCall),
    )
    .await
    .unwrap();
    let hoard = app.typed::<(u32,), (u32,)>("user", &f("hoard")).unwrap();
    assert_eq!(hoard.call((3,)).await.unwrap(), (3,));
    assert_eq!(hoard.call((3,)).await.unwrap(), (3,), "a fresh instance");
    assert_eq!(live.0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_guest_cannot_forge_or_confuse_handles() {
    let live = Arc::new(Live::default());
    let app = docs_app(&live).await;
    // A handle number the instance never received.
    let forge = app.typed::<(u32,), (String,)>("user", &f("forge")).unwrap();
    for h in [1, 77, u32::MAX] {
        let e = forge.call((h,)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Trap, "handle {h}: {e}");
    }
    // A handle of another instance: instance A keeps a document, instance B tries its number.
    let app2 = docs_app(&live).await;
    let leak = app2.typed::<(), (u32,)>("user", &f("leak-handle")).unwrap();
    let (h,) = leak.call(()).await.unwrap();
    let e = forge.call((h,)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Trap, "{e}");
    // A tally used as a document.
    let confuse = app.typed::<(), (String,)>("user", &f("confuse")).unwrap();
    let e = confuse.call(()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Trap, "{e}");
    // The module keeps serving (five failures do not open its circuit).
    let roundtrip = app
        .typed::<(String, String), (String,)>("user", &f("roundtrip"))
        .unwrap();
    assert_eq!(
        roundtrip.call(("x".into(), "y".into())).await.unwrap().0,
        "xy"
    );
}

#[tokio::test]
async fn host_objects_count_against_the_handle_limit() {
    let live = Arc::new(Live::default());
    let app = docs_app(&live).await;
    let hoard = app.typed::<(u32,), (u32,)>("user", &f("hoard")).unwrap();
    let e = hoard.call((MAX_PROXIES as u32 + 1,)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TableLimit, "{e}");
    // The instance that failed is discarded, and its values with it.
    assert_eq!(live.0.load(Ordering::SeqCst), 0);
    assert_eq!(hoard.call((2,)).await.unwrap(), (2,));
}

#[tokio::test]
async fn a_missing_resource_or_wrong_types_fail_the_load() {
    let live = Arc::new(Live::default());
    // No `tally` resource (and so none of its functions).
    let l = live.clone();
    let partial = HostInterface::new("membrane-test:docs/store@0.1.0")
        .resource::<Document>("document")
        .constructor("document", move |(text,): (String,)| {
            Ok(Document::new(text, &l))
        });
    let e = app_with(partial, ModuleSpec::from_file(guests::DOCS_USER))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Link, "{e}");
    let exports: Vec<_> = e.problems().iter().filter_map(|p| p.export()).collect();
    assert!(
        exports.contains(&"membrane-test:docs/store@0.1.0#tally"),
        "{exports:?}"
    );

    // A method whose Rust types do not match the WIT signature.
    let wrong = store(&live).method("document", "text", |_d: &mut Document, (): ()| Ok((7u32,)));
    let e = app_with(wrong, ModuleSpec::from_file(guests::DOCS_USER))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Link, "{e}");
}

// Dynamic resources (`resource_dynamic`, `func_dynamic_with`): the same store with values
// of no fixed Rust type, as the Python binding serves it.

/// The `string` argument at `i` (its type was checked at load).
fn string_arg(args: &[Val], i: usize) -> String {
    match &args[i] {
        Val::String(s) => s.clone(),
        other => unreachable!("the signature was checked at load: {other:?}"),
    }
}

/// The handle argument at `i`.
fn handle_arg(args: &[Val], i: usize) -> ResourceAny {
    match &args[i] {
        Val::Resource(h) => *h,
        other => unreachable!("the signature was checked at load: {other:?}"),
    }
}

fn document(value: &mut (dyn Any + Send)) -> &mut Document {
    value.downcast_mut::<Document>().expect("a document")
}

/// `store` with dynamic resources; `close` takes its document back only when `take_back`.
fn dynamic_store(live: &Arc<Live>, take_back: bool) -> HostInterface {
    let (l1, l2) = (live.clone(), live.clone());
    HostInterface::new("membrane-test:docs/store@0.1.0")
        .resource_dynamic("document")
        .resource_dynamic("tally")
        .func_dynamic_with(
            "[constructor]document",
            "func(text: string) -> document",
            move |objects, _ty, args, results| {
                let doc = Document::new(string_arg(args, 0), &l1);
                results[0] = Val::Resource(objects.insert("document", Box::new(doc))?);
                Ok(())
            },
        )
        .func_dynamic_with(
            "[method]document.text",
            "func(self: borrow<document>) -> string",
            |objects, _ty, args, results| {
                let doc = document(objects.get(&handle_arg(args, 0))?);
                results[0] = Val::String(doc.text.clone());
                Ok(())
            },
        )
        .func_dynamic_with(
            "[method]document.append",
            "func(self: borrow<document>, more: string)",
            |objects, _ty, args, _results| {
                let more = string_arg(args, 1);
                document(objects.get(&handle_arg(args, 0))?)
                    .text
                    .push_str(&more);
                Ok(())
            },
        )
        .func_dynamic_with(
            "[static]document.open",
            "func(name: string) -> own<document>",
            move |objects, _ty, args, results| {
                let doc = Document::new(format!("# {}", string_arg(args, 0)), &l2);
                results[0] = Val::Resource(objects.insert("document", Box::new(doc))?);
                Ok(())
            },
        )
        .func_dynamic_with(
            "close",
            "func(doc: document) -> string",
            move |objects, _ty, args, results| {
                let h = handle_arg(args, 0);
                let text = if take_back {
                    let doc = objects
                        .take(&h)?
                        .downcast::<Document>()
                        .expect("a document");
                    // A borrowed handle cannot be taken; a taken one is gone.
                    assert_eq!(
                        objects.get(&h).err().map(|e| e.kind()),
                        Some(ErrorKind::HostPanic)
                    );
                    doc.text.clone()
                } else {
                    document(objects.get(&h)?).text.clone()
                };
                results[0] = Val::String(text);
                Ok(())
            },
        )
        .func_dynamic_with(
            "length",
            "func(doc: borrow<document>) -> u32",
            |objects, _ty, args, results| {
                let h = handle_arg(args, 0);
                let e = objects.take(&h).expect_err("a borrow cannot be taken");
                assert_eq!(e.kind(), ErrorKind::HostPanic, "{e}");
                results[0] = Val::U32(document(objects.get(&h)?).text.len() as u32);
                Ok(())
            },
        )
        .func_dynamic_with(
            "[constructor]tally",
            "func() -> tally",
            |objects, _ty, _args, results| {
                results[0] = Val::Resource(objects.insert("tally", Box::new(Tally(0)))?);
                Ok(())
            },
        )
        .func_dynamic_with(
            "[method]tally.bump",
            "func(self: borrow<tally>) -> u32",
            |objects, _ty, args, results| {
                let tally = objects.get(&handle_arg(args, 0))?;
                let tally = tally.downcast_mut::<Tally>().expect("a tally");
                tally.0 += 1;
                results[0] = Val::U32(tally.0);
                Ok(())
            },
        )
}

#[tokio::test]
async fn dynamic_resources_serve_constructors_methods_static_own_and_borrow() {
    let live = Arc::new(Live::default());
    let app = app_with(
        dynamic_store(&live, true),
        ModuleSpec::from_file(guests::DOCS_USER),
    )
    .await
    .unwrap();
    let roundtrip = app
        .typed::<(String, String), (String,)>("user", &f("roundtrip"))
        .unwrap();
    let (text,) = roundtrip
        .call(("hello".into(), ", world".into()))
        .await
        .unwrap();
    assert_eq!(text, "hello, world");
    assert_eq!(live.0.load(Ordering::SeqCst), 0, "the guest dropped it");
    let cycle = app
        .typed::<(String,), ((u32, String),)>("user", &f("cycle"))
        .unwrap();
    let ((n, text),) = cycle.call(("notes".into(),)).await.unwrap();
    assert_eq!((n, text.as_str()), (7, "# notes"));
    assert_eq!(live.0.load(Ordering::SeqCst), 0, "close took it back");
    let (text,) = roundtrip.call_blocking(("a".into(), "b".into())).unwrap();
    assert_eq!(text, "ab");

    // Values live until the guest drops them or its instance ends.
    let hoard = app.typed::<(u32,), (u32,)>("user", &f("hoard")).unwrap();
    let release = app.typed::<(), (u32,)>("user", &f("release")).unwrap();
    assert_eq!(hoard.call((4,)).await.unwrap(), (4,));
    assert_eq!(live.0.load(Ordering::SeqCst), 4);
    assert_eq!(release.call(()).await.unwrap(), (4,));
    assert_eq!(live.0.load(Ordering::SeqCst), 0);
    assert_eq!(hoard.call((3,)).await.unwrap(), (3,));
    drop((hoard, release, roundtrip, cycle));
    drop(app);
    assert_eq!(live.0.load(Ordering::SeqCst), 0, "the instance ended");
}

#[tokio::test]
async fn an_own_parameter_not_taken_is_dropped_with_the_call() {
    let live = Arc::new(Live::default());
    let app = app_with(
        dynamic_store(&live, false),
        ModuleSpec::from_file(guests::DOCS_USER),
    )
    .await
    .unwrap();
    let cycle = app
        .typed::<(String,), ((u32, String),)>("user", &f("cycle"))
        .unwrap();
    let ((n, text),) = cycle.call(("x".into(),)).await.unwrap();
    assert_eq!((n, text.as_str()), (3, "# x"));
    assert_eq!(live.0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn dynamic_resources_cannot_be_forged_or_confused() {
    let live = Arc::new(Live::default());
    let app = app_with(
        dynamic_store(&live, true),
        ModuleSpec::from_file(guests::DOCS_USER),
    )
    .await
    .unwrap();
    let forge = app.typed::<(u32,), (String,)>("user", &f("forge")).unwrap();
    for h in [1, 77, u32::MAX] {
        let e = forge.call((h,)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Trap, "handle {h}: {e}");
    }
    // A tally used as a document: two dynamic resources are two resource types.
    let confuse = app.typed::<(), (String,)>("user", &f("confuse")).unwrap();
    let e = confuse.call(()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Trap, "{e}");
    let roundtrip = app
        .typed::<(String, String), (String,)>("user", &f("roundtrip"))
        .unwrap();
    assert_eq!(
        roundtrip.call(("x".into(), "y".into())).await.unwrap().0,
        "xy"
    );
}

#[tokio::test]
async fn a_dynamic_function_returning_the_wrong_handle_fails_the_call() {
    let live = Arc::new(Live::default());
    // `open` returns a tally where the guest expects a document.
    let wrong = dynamic_store(&live, true).func_dynamic_with(
        "[static]document.open",
        "func(name: string) -> document",
        |objects, _ty, _args, results| {
            results[0] = Val::Resource(objects.insert("tally", Box::new(Tally(0)))?);
            Ok(())
        },
    );
    let app = app_with(wrong, ModuleSpec::from_file(guests::DOCS_USER))
        .await
        .unwrap();
    let cycle = app
        .typed::<(String,), ((u32, String),)>("user", &f("cycle"))
        .unwrap();
    let e = cycle.call(("x".into(),)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HostPanic, "{e}");
    let chain = membrane::chain(&e);
    assert!(
        chain.contains("another resource than its type names"),
        "{chain}"
    );
    // And one of no resource of the interface.
    let unknown = dynamic_store(&live, true).func_dynamic_with(
        "[static]document.open",
        "func(name: string) -> document",
        |objects, _ty, _args, results| {
            results[0] = Val::Resource(objects.insert("folder", Box::new(()))?);
            Ok(())
        },
    );
    let app = app_with(unknown, ModuleSpec::from_file(guests::DOCS_USER))
        .await
        .unwrap();
    let cycle = app
        .typed::<(String,), ((u32, String),)>("user", &f("cycle"))
        .unwrap();
    let e = cycle.call(("x".into(),)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HostPanic, "{e}");
    let chain = membrane::chain(&e);
    assert!(chain.contains("no dynamic resource `folder`"), "{chain}");
}

#[tokio::test]
async fn dynamic_signatures_name_resources_and_are_checked_at_load() {
    let live = Arc::new(Live::default());
    // `close` declared with a borrow where the guest passes its document (an own).
    let wrong = dynamic_store(&live, true).func_dynamic_with(
        "close",
        "func(doc: borrow<document>) -> string",
        |_objects, _ty, _args, _results| Ok(()),
    );
    let e = app_with(wrong, ModuleSpec::from_file(guests::DOCS_USER))
        .await
        .err()
        .expect("a wrong signature is refused");
    assert_eq!(e.kind(), ErrorKind::Link, "{e}");
    assert_eq!(e.export(), Some("membrane-test:docs/store@0.1.0#close"));
    let text = e.to_string();
    assert!(
        text.contains("as `func(document) -> string`")
            && text.contains("as `func(borrow<document>)->string`"),
        "{text}"
    );
    // A tally where a document is: the names tell the resources apart.
    let wrong = dynamic_store(&live, true).func_dynamic_with(
        "length",
        "func(doc: borrow<tally>) -> u32",
        |_objects, _ty, _args, _results| Ok(()),
    );
    let e = app_with(wrong, ModuleSpec::from_file(guests::DOCS_USER))
        .await
        .err()
        .expect("a wrong resource is refused");
    assert_eq!(
        e.export(),
        Some("membrane-test:docs/store@0.1.0#length"),
        "{e}"
    );
}
