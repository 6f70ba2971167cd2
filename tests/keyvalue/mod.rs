//! `grants.keyvalue` and the stores: a real guest using `wasi:keyvalue` (0.2.0-draft)
//! against the app's redb file and against NATS JetStream on a real `nats-server`.
//! [`conformance`] runs the same tests on both stores.

/// Runs each listed test on both stores.
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Store::embedded()).await;
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(store) = super::Store::nats() else { return };
                    super::$test(store).await;
                }
            )*
        }
    };
}

/// Runs each listed test with the module in a worker process (`placement = "process"`),
/// its operations going through the host to the embedded store.
macro_rules! in_a_worker_process {
    ($($test:ident),* $(,)?) => {
        mod process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Store::process()).await;
                }
            )*
        }
    };
}

mod conformance;
mod example;
mod nats;
mod spin;

use std::path::Path;

use membrane::{
    AppSpec, BucketAccess, BucketSpec, KeyValueSpec, ModuleSpec, NatsSpec, Placement, Val,
};

use crate::common::*;
use crate::remote::nats::{Nats, nats_server};

const PROBE: &str = "membrane-test:kv/probe";

fn kv_probe() -> ModuleSpec {
    ModuleSpec::from_file(guests::KV_PROBE)
}

/// The probe granted `notes` to read and write.
fn writer() -> ModuleSpec {
    kv_probe().bucket("notes", BucketAccess::ReadWrite)
}

/// The tests' buckets: `notes` and `shared` without limits, `tiny` of 2 keys of 8 bytes.
fn buckets(kv: KeyValueSpec) -> KeyValueSpec {
    kv.bucket("notes", BucketSpec::new())
        .bucket("shared", BucketSpec::new())
        .bucket("tiny", BucketSpec::new().keys(2).value(8))
}

fn store_at(path: &Path) -> KeyValueSpec {
    buckets(KeyValueSpec::embedded(path))
}

/// Where a test's app keeps its buckets.
pub enum Store {
    /// A redb file in a temporary directory.
    Embedded(tempfile::TempDir),
    /// A `nats-server` with JetStream, and the app's name (its streams' prefix).
    Nats(Nats, String),
    /// A redb file, and the module in a worker process (`placement = "process"`).
    Process(tempfile::TempDir),
}

impl Store {
    fn embedded() -> Store {
        Store::Embedded(tempfile::tempdir().unwrap())
    }

    fn process() -> Store {
        Store::Process(tempfile::tempdir().unwrap())
    }

    /// `None` (the test is skipped, loudly) without nats-server.
    fn nats() -> Option<Store> {
        nats_server()?;
        Some(Store::Nats(
            Nats::with_jetstream(),
            crate::remote::app_name(),
        ))
    }

    /// An app with the tests' buckets in this store, without modules.
    fn spec(&self) -> AppSpec {
        match self {
            Store::Embedded(dir) | Store::Process(dir) => {
                AppSpec::new().keyvalue(store_at(&dir.path().join("state.redb")))
            }
            Store::Nats(server, name) => AppSpec::new()
                .name(name.as_str())
                .nats(NatsSpec::new([server.url.clone()]))
                .keyvalue(buckets(KeyValueSpec::nats())),
        }
    }

    /// The app of one module `m` on this store.
    async fn app(&self, module: ModuleSpec) -> membrane::App {
        let (rt, module) = match self {
            Store::Process(_) => (worker_runtime(), module.placement(Placement::Process)),
            _ => (runtime(), module),
        };
        rt.load_spec(self.spec().module("m", module)).await.unwrap()
    }
}

async fn app_with(path: &Path, module: ModuleSpec) -> membrane::App {
    runtime()
        .load_spec(AppSpec::new().keyvalue(store_at(path)).module("m", module))
        .await
        .unwrap()
}

fn s(v: &str) -> Val {
    Val::String(v.into())
}

/// Calls `func` of the draft probe `m` and returns its `result` as `Ok(value)` or
/// `Err(text)`.
async fn call(app: &membrane::App, func: &str, args: &[Val]) -> Result<Option<Val>, String> {
    call_in(app, "m", &format!("{PROBE}#{func}"), args).await
}

/// Calls `export` of `module`, whose answer is a `result` with a text error.
async fn call_in(
    app: &membrane::App,
    module: &str,
    export: &str,
    args: &[Val],
) -> Result<Option<Val>, String> {
    let out = app.call(module, export, args).await.unwrap();
    match out.into_iter().next() {
        Some(Val::Result(Ok(v))) => Ok(v.map(|b| *b)),
        Some(Val::Result(Err(Some(e)))) => match *e {
            Val::String(t) => Err(t),
            other => panic!("not a string error: {other:?}"),
        },
        other => panic!("not a result: {other:?}"),
    }
}

async fn get(app: &membrane::App, bucket: &str, key: &str) -> Result<Option<String>, String> {
    call(app, "get", &[s(bucket), s(key)])
        .await
        .map(|v| match v {
            Some(Val::Option(None)) => None,
            Some(Val::Option(Some(b))) => match *b {
                Val::String(t) => Some(t),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
}

async fn set(app: &membrane::App, bucket: &str, key: &str, value: &str) -> Result<(), String> {
    call(app, "set", &[s(bucket), s(key), s(value)])
        .await
        .map(|_| ())
}

async fn increment(
    app: &membrane::App,
    bucket: &str,
    key: &str,
    delta: u64,
) -> Result<u64, String> {
    match call(app, "increment", &[s(bucket), s(key), Val::U64(delta)]).await? {
        Some(Val::U64(n)) => Ok(n),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn data_outlives_the_app_and_one_process_owns_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("notes.redb");
    let module = || kv_probe().bucket("notes", BucketAccess::ReadWrite);
    let app = app_with(&path, module()).await;
    set(&app, "notes", "kept", "yes").await.unwrap();
    // A second app on the same file while the first holds it.
    let e = runtime()
        .load_spec(
            AppSpec::new()
                .keyvalue(store_at(&path))
                .module("m", module()),
        )
        .await
        .err()
        .expect("one owner");
    assert_eq!(e.key(), Some("app.keyvalue.path"), "{e}");
    assert!(e.to_string().contains("in use"), "{e}");
    drop(app);
    let app = app_with(&path, module()).await;
    assert_eq!(get(&app, "notes", "kept").await, Ok(Some("yes".into())));
}

/// A process module's worker gets no path to the store: its operations go through the
/// host, which checks them against the grants it knows; the worker's own capability denies
/// what the module was not granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_module_reaches_only_its_granted_buckets_through_the_host() {
    let store = Store::process();
    let app = store
        .app(
            kv_probe()
                .bucket("notes", BucketAccess::ReadWrite)
                .bucket("shared", BucketAccess::ReadOnly),
        )
        .await;
    set(&app, "notes", "k", "v").await.unwrap();
    assert_eq!(get(&app, "shared", "k").await, Ok(None));
    for bucket in ["tiny", "absent"] {
        assert_eq!(
            get(&app, bucket, "k").await,
            Err("access-denied".to_string())
        );
    }
    assert_eq!(
        set(&app, "shared", "k", "v").await,
        Err("access-denied".to_string())
    );
    // The worker's own denials reach the host's counter (with its audit events).
    eventually("the worker's denials are counted", || {
        app.metrics_text().lines().any(|l| {
            l.starts_with("membrane_denials_total")
                && l.contains("capability=\"keyvalue\"")
                && l.ends_with(" 3")
        })
    })
    .await;
    // The host served it: the app's store has the write, read by an isolated module.
    drop(app);
    let app = Store::Embedded(match store {
        Store::Process(dir) => dir,
        _ => unreachable!(),
    })
    .app(writer())
    .await;
    assert_eq!(get(&app, "notes", "k").await, Ok(Some("v".into())));
}
