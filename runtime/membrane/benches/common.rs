//! Shared setup of the benchmarks: guest paths, apps, and the raw-wasmtime floor.

#![allow(dead_code)]

use std::time::Duration;

use membrane::{AppSpec, Config, Lifecycle, ModuleSpec, Runtime};
pub use membrane_test_artifacts as guests;

pub const API: &str = "membrane-bench:calls/api";
pub const DRIVER: &str = "membrane-bench:calls/driver";

/// A single-threaded runtime: calls awaited in a task on it measure the call, not hops
/// between worker threads.
pub fn current_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// driver -> provider, the provider reused or instantiated per call.
pub async fn linked_app(provider_lifecycle: Lifecycle) -> membrane::App {
    linked_app_with(Config::default(), provider_lifecycle).await
}

/// [`linked_app`] on a runtime made with `config`.
pub async fn linked_app_with(config: Config, provider_lifecycle: Lifecycle) -> membrane::App {
    let rt = Runtime::new(config).unwrap();
    rt.load_spec(
        AppSpec::new()
            .module(
                "driver",
                ModuleSpec::from_file(guests::BENCH_DRIVER)
                    .link("membrane-bench:calls/api", "provider")
                    .link("membrane-bench:calls/res", "provider")
                    .timeout(Duration::from_secs(600)),
            )
            .module(
                "provider",
                ModuleSpec::from_file(guests::BENCH_PROVIDER)
                    .lifecycle(provider_lifecycle)
                    .timeout(Duration::from_secs(600)),
            ),
    )
    .await
    .unwrap()
}

/// The floor: one store and one instance in raw wasmtime, set up the way the notes measured
/// it (sync calls, `concurrency_support(false)`, no epochs, default allocator).
pub struct Raw {
    pub store: wasmtime::Store<RawState>,
    pub instance: wasmtime::component::Instance,
}

pub struct RawState {
    wasi: wasmtime_wasi::WasiCtx,
    table: wasmtime::component::ResourceTable,
}

impl wasmtime_wasi::WasiView for RawState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

pub struct RawSetup {
    pub engine: wasmtime::Engine,
    pub pre: wasmtime::component::InstancePre<RawState>,
    pub component: wasmtime::component::Component,
}

pub fn raw_setup(pooling: bool) -> RawSetup {
    raw_setup_with(pooling, false, false)
}

/// `concurrency`: wasmtime's default component-model-async bookkeeping;
/// `async_calls`: WASI linked for async, to be called with `call_async`.
pub fn raw_setup_with(pooling: bool, concurrency: bool, async_calls: bool) -> RawSetup {
    raw_setup_config(pooling, concurrency, async_calls, false)
}

/// [`raw_setup_with`], and with `epochs` the code instrumented for epoch interruption as
/// Membrane's is (the deadline never reached).
pub fn raw_setup_config(
    pooling: bool,
    concurrency: bool,
    async_calls: bool,
    epochs: bool,
) -> RawSetup {
    let mut config = wasmtime::Config::new();
    config.concurrency_support(concurrency);
    config.epoch_interruption(epochs);
    if pooling {
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
            wasmtime::PoolingAllocationConfig::default(),
        ));
    }
    let engine = wasmtime::Engine::new(&config).unwrap();
    let component =
        wasmtime::component::Component::from_file(&engine, guests::BENCH_PROVIDER).unwrap();
    let mut linker = wasmtime::component::Linker::new(&engine);
    if async_calls {
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    } else {
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    }
    let pre = linker.instantiate_pre(&component).unwrap();
    RawSetup {
        engine,
        pre,
        component,
    }
}

pub fn raw_state() -> RawState {
    RawState {
        wasi: wasmtime_wasi::WasiCtxBuilder::new().build(),
        table: wasmtime::component::ResourceTable::new(),
    }
}

impl RawSetup {
    pub async fn instantiate_async(&self) -> Raw {
        let mut store = wasmtime::Store::new(&self.engine, raw_state());
        let instance = self.pre.instantiate_async(&mut store).await.unwrap();
        Raw { store, instance }
    }

    pub fn instantiate(&self) -> Raw {
        let mut store = wasmtime::Store::new(&self.engine, raw_state());
        store.set_epoch_deadline(u64::MAX);
        let instance = self.pre.instantiate(&mut store).unwrap();
        Raw { store, instance }
    }

    /// An export of the provider's `api`, untyped.
    pub fn dyn_func(&self, raw: &mut Raw, name: &str) -> wasmtime::component::Func {
        let iface = self
            .component
            .get_export_index(None, "membrane-bench:calls/api@0.1.0")
            .unwrap();
        let f = self.component.get_export_index(Some(&iface), name).unwrap();
        raw.instance.get_func(&mut raw.store, f).unwrap()
    }

    pub fn func<P, R>(&self, raw: &mut Raw, name: &str) -> wasmtime::component::TypedFunc<P, R>
    where
        P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
        R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
    {
        let iface = self
            .component
            .get_export_index(None, "membrane-bench:calls/api@0.1.0")
            .unwrap();
        let f = self.component.get_export_index(Some(&iface), name).unwrap();
        raw.instance
            .get_typed_func::<P, R>(&mut raw.store, &f)
            .unwrap()
    }
}

/// A CommonMark document of about 20 KiB.
pub fn markdown_doc() -> String {
    let mut doc = String::new();
    for i in 0..60 {
        doc += &format!(
            "## Section {i}\n\nSome *emphasis*, some **strong** text, `code`, and a [link](https://example.com/{i}).\n\n\
             - item one\n- item two with `inline`\n- item three\n\n> A quote that goes on for a while.\n\n\
             ```rust\nfn main() {{ println!(\"{i}\"); }}\n```\n\n"
        );
    }
    doc
}

/// A counter implemented by the host, for the resource floors.
pub struct HostCounter(u64);

/// The driver in raw wasmtime with `api` and `res` implemented by the host: the floor of a
/// guest -> host resource method call (`loop-bump`).
pub struct RawDriver {
    pub store: wasmtime::Store<RawState>,
    pub loop_bump: wasmtime::component::TypedFunc<(u32,), (u64,)>,
}

pub fn raw_driver() -> RawDriver {
    use wasmtime::component::{Component, Linker, Resource, ResourceType};
    let mut config = wasmtime::Config::new();
    config.concurrency_support(false);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let component = Component::from_file(&engine, guests::BENCH_DRIVER).unwrap();
    let mut linker: Linker<RawState> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    {
        let mut api = linker.instance("membrane-bench:calls/api@0.1.0").unwrap();
        api.func_wrap("inc", |_, (x,): (u64,)| Ok((x + 1,)))
            .unwrap();
        api.func_wrap("echo", |_, (s,): (String,)| Ok((s,)))
            .unwrap();
        api.func_wrap("markdown", |_, (s,): (String,)| Ok((s,)))
            .unwrap();
    }
    let mut res = linker.instance("membrane-bench:calls/res@0.1.0").unwrap();
    res.resource(
        "counter",
        ResourceType::host::<HostCounter>(),
        |mut store, rep| {
            store
                .data_mut()
                .table
                .delete(Resource::<HostCounter>::new_own(rep))?;
            Ok(())
        },
    )
    .unwrap();
    res.func_wrap("[constructor]counter", |mut store, (start,): (u64,)| {
        Ok((store.data_mut().table.push(HostCounter(start))?,))
    })
    .unwrap();
    res.func_wrap(
        "[method]counter.bump",
        |mut store, (c,): (Resource<HostCounter>,)| {
            let c = store.data_mut().table.get_mut(&c)?;
            c.0 += 1;
            Ok((c.0,))
        },
    )
    .unwrap();
    let mut store = wasmtime::Store::new(&engine, raw_state());
    let instance = linker.instantiate(&mut store, &component).unwrap();
    let iface = component
        .get_export_index(None, "membrane-bench:calls/driver@0.1.0")
        .unwrap();
    let f = component
        .get_export_index(Some(&iface), "loop-bump")
        .unwrap();
    let loop_bump = instance.get_typed_func(&mut store, f).unwrap();
    RawDriver { store, loop_bump }
}

/// The driver with `res` implemented by the host through [`membrane::HostInterface`] (and
/// `api` by the provider).
pub async fn host_res_app() -> membrane::App {
    let rt = Runtime::new(Config::default()).unwrap();
    rt.provide(
        membrane::HostInterface::new("membrane-bench:calls/res@0.1.0")
            .resource::<HostCounter>("counter")
            .constructor("counter", |(start,): (u64,)| Ok(HostCounter(start)))
            .method("counter", "bump", |c: &mut HostCounter, (): ()| {
                c.0 += 1;
                Ok((c.0,))
            }),
    )
    .unwrap();
    rt.load_spec(
        AppSpec::new()
            .module(
                "driver",
                ModuleSpec::from_file(guests::BENCH_DRIVER)
                    .link("membrane-bench:calls/api", "provider")
                    .link("membrane-bench:calls/res", "host")
                    .timeout(Duration::from_secs(600)),
            )
            .module(
                "provider",
                ModuleSpec::from_file(guests::BENCH_PROVIDER).timeout(Duration::from_secs(600)),
            ),
    )
    .await
    .unwrap()
}

/// The floor of a linked call in raw wasmtime: the driver and the provider in two stores of
/// one engine (`concurrency_support(false)`, no epochs, default allocator), the driver's
/// `api.inc` a host function that calls the provider's `inc` with a typed handle. With
/// `async_calls`, both stores are async (WASI linked for async, the import a
/// `func_wrap_async`, the provider called with `call_async` on its own fiber), as
/// Membrane's async path is; otherwise both are sync.
pub struct RawCross {
    pub store: wasmtime::Store<CrossState>,
    pub loop_inc: wasmtime::component::TypedFunc<(u32,), (u64,)>,
}

/// The driver's store data: its WASI context and the provider's store beside it.
pub struct CrossState {
    own: RawState,
    provider: wasmtime::Store<RawState>,
    inc: wasmtime::component::TypedFunc<(u64,), (u64,)>,
}

impl wasmtime_wasi::WasiView for CrossState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        self.own.ctx()
    }
}

pub fn raw_cross(async_calls: bool) -> RawCross {
    use wasmtime::component::{Component, Linker};
    let setup = raw_setup_with(false, false, async_calls);
    let engine = setup.engine.clone();
    let mut provider = if async_calls {
        futures_lite_block_on(setup.instantiate_async())
    } else {
        setup.instantiate()
    };
    let inc = setup.func::<(u64,), (u64,)>(&mut provider, "inc");
    let component = Component::from_file(&engine, guests::BENCH_DRIVER).unwrap();
    let mut linker: Linker<CrossState> = Linker::new(&engine);
    let mut api = linker.instance("membrane-bench:calls/api@0.1.0").unwrap();
    if async_calls {
        api.func_wrap_async("inc", |mut store, (x,): (u64,)| {
            Box::new(async move {
                let s = store.data_mut();
                s.inc.call_async(&mut s.provider, (x,)).await
            })
        })
        .unwrap();
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    } else {
        api.func_wrap("inc", |mut store, (x,): (u64,)| {
            let s = store.data_mut();
            s.inc.call(&mut s.provider, (x,))
        })
        .unwrap();
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    }
    linker.define_unknown_imports_as_traps(&component).unwrap();
    let state = CrossState {
        own: raw_state(),
        provider: provider.store,
        inc,
    };
    let mut store = wasmtime::Store::new(&engine, state);
    let instance = if async_calls {
        futures_lite_block_on(linker.instantiate_async(&mut store, &component)).unwrap()
    } else {
        linker.instantiate(&mut store, &component).unwrap()
    };
    let iface = component
        .get_export_index(None, "membrane-bench:calls/driver@0.1.0")
        .unwrap();
    let f = component
        .get_export_index(Some(&iface), "loop-inc")
        .unwrap();
    let loop_inc = instance.get_typed_func(&mut store, f).unwrap();
    RawCross { store, loop_inc }
}

/// Runs `f` to its end on a throwaway current-thread runtime (set-up only).
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    current_rt().block_on(f)
}

/// The floor of a resource method across a link in raw wasmtime, sync: the driver's `res`
/// a host resource whose handles proxy the provider's `counter`s (a `ResourceAny` in the
/// provider's store, kept in the driver's table), each method a typed call into the
/// provider with the provider's handle.
pub struct RawCrossRes {
    pub store: wasmtime::Store<CrossResState>,
    pub loop_bump: wasmtime::component::TypedFunc<(u32,), (u64,)>,
}

pub struct CrossResState {
    own: RawState,
    provider: wasmtime::Store<RawState>,
    new: wasmtime::component::TypedFunc<(u64,), (wasmtime::component::ResourceAny,)>,
    bump: wasmtime::component::TypedFunc<(wasmtime::component::ResourceAny,), (u64,)>,
}

impl wasmtime_wasi::WasiView for CrossResState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        self.own.ctx()
    }
}

/// A driver-side handle on a provider's counter.
pub struct ProxyCounter(wasmtime::component::ResourceAny);

pub fn raw_cross_res() -> RawCrossRes {
    use wasmtime::component::{Component, Linker, Resource, ResourceAny, ResourceType};
    let setup = raw_setup(false);
    let engine = setup.engine.clone();
    let mut provider = setup.instantiate();
    let res = setup
        .component
        .get_export_index(None, "membrane-bench:calls/res@0.1.0")
        .unwrap();
    let f = |name: &str| setup.component.get_export_index(Some(&res), name).unwrap();
    let new = provider
        .instance
        .get_typed_func::<(u64,), (ResourceAny,)>(&mut provider.store, f("[constructor]counter"))
        .unwrap();
    let bump = provider
        .instance
        .get_typed_func::<(ResourceAny,), (u64,)>(&mut provider.store, f("[method]counter.bump"))
        .unwrap();
    let component = Component::from_file(&engine, guests::BENCH_DRIVER).unwrap();
    let mut linker: Linker<CrossResState> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    let mut r = linker.instance("membrane-bench:calls/res@0.1.0").unwrap();
    r.resource(
        "counter",
        ResourceType::host::<ProxyCounter>(),
        |mut store, rep| {
            let s = store.data_mut();
            let p = s.own.table.delete(Resource::<ProxyCounter>::new_own(rep))?;
            p.0.resource_drop(&mut s.provider)
        },
    )
    .unwrap();
    r.func_wrap("[constructor]counter", |mut store, (start,): (u64,)| {
        let s = store.data_mut();
        let (handle,) = s.new.call(&mut s.provider, (start,))?;
        Ok((s.own.table.push(ProxyCounter(handle))?,))
    })
    .unwrap();
    r.func_wrap(
        "[method]counter.bump",
        |mut store, (c,): (Resource<ProxyCounter>,)| {
            let s = store.data_mut();
            let handle = s.own.table.get(&c)?.0;
            s.bump.call(&mut s.provider, (handle,))
        },
    )
    .unwrap();
    linker.define_unknown_imports_as_traps(&component).unwrap();
    let state = CrossResState {
        own: raw_state(),
        provider: provider.store,
        new,
        bump,
    };
    let mut store = wasmtime::Store::new(&engine, state);
    let instance = linker.instantiate(&mut store, &component).unwrap();
    let iface = component
        .get_export_index(None, "membrane-bench:calls/driver@0.1.0")
        .unwrap();
    let f = component
        .get_export_index(Some(&iface), "loop-bump")
        .unwrap();
    let loop_bump = instance.get_typed_func(&mut store, f).unwrap();
    RawCrossRes { store, loop_bump }
}

/// The kv probe guest granted bucket `b` of an embedded store at `path`, holding `k`.
pub async fn kv_app(path: &std::path::Path) -> membrane::App {
    // The on-demand allocator: valgrind cannot reserve the pooling allocator's memory, and
    // callcost builds this app for every path it counts.
    let mut config = Config::default();
    config.instance_slots = 0;
    let app = Runtime::new(config)
        .unwrap()
        .load_spec(
            AppSpec::new()
                .keyvalue(
                    membrane::KeyValueSpec::embedded(path).bucket("b", membrane::BucketSpec::new()),
                )
                .module(
                    "m",
                    ModuleSpec::from_file(guests::KV_PROBE)
                        .bucket("b", membrane::BucketAccess::ReadWrite),
                ),
        )
        .await
        .unwrap();
    let v = "x".repeat(100);
    app.call(
        "m",
        "membrane-test:kv/probe#set",
        &[
            membrane::Val::String("b".into()),
            membrane::Val::String("k".into()),
            membrane::Val::String(v),
        ],
    )
    .await
    .unwrap();
    app
}
