//! Resources implemented by the host application: constructors, methods, static functions,
//! own and borrow parameters; handles a guest cannot forge or confuse; values dropped when
//! the guest drops them or its instance ends; the handle limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use membrane::{App, AppSpec, ErrorKind, HostInterface, MAX_PROXIES, ModuleSpec, Resource};

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
