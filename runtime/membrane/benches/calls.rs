//! Call costs, side by side: native, raw wasmtime (the floor), Membrane's cross-module
//! link, and a separate service over loopback HTTP/1.1 keep-alive. Run with
//! `cargo bench -p membrane --bench calls`; BENCHMARKS.md has the figures.
#![allow(missing_docs)] // criterion_group! defines undocumented public functions

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::*;
use criterion::{Criterion, criterion_group, criterion_main};
use membrane::{Lifecycle, Val};

trait Inc {
    fn inc(&self, x: u64) -> u64;
}
struct Native;
impl Inc for Native {
    fn inc(&self, x: u64) -> u64 {
        x.wrapping_add(1)
    }
}

/// Per-iteration time of a loop of `n` linked calls driven from inside the driver guest,
/// the driver entered on the synchronous path (`call_blocking`, so the links are
/// synchronous) or on the async one (`App::call`, links on the fiber).
fn linked_loop(
    tokio: &tokio::runtime::Runtime,
    app: &membrane::App,
    func: &str,
    args: impl Fn(u32) -> Vec<Val>,
    iters: u64,
    async_path: bool,
) -> Duration {
    let mut left = iters;
    let mut total = Duration::ZERO;
    let func = format!("{DRIVER}#{func}");
    while left > 0 {
        let n = left.min(1_000_000) as u32;
        let start = Instant::now();
        if async_path {
            tokio.block_on(app.call("driver", &func, &args(n))).unwrap();
        } else {
            app.call_blocking("driver", &func, &args(n)).unwrap();
        }
        total += start.elapsed();
        left -= n as u64;
    }
    total
}

/// The time of `iters` awaited calls made one after another inside one task: what an async
/// embedder pays per call, without the cost of entering the runtime each time.
macro_rules! in_task {
    ($rt:expr, $iters:expr, $call:expr) => {
        $rt.block_on(async {
            let start = Instant::now();
            for _ in 0..$iters {
                black_box($call.await.unwrap());
            }
            start.elapsed()
        })
    };
}

fn small_calls(c: &mut Criterion) {
    let tokio = tokio_rt();
    let task_rt = current_rt();
    let mut g = c.benchmark_group("call_u64");
    let native: Box<dyn Inc> = Box::new(Native);
    g.bench_function("native_trait_object", |b| {
        b.iter(|| native.inc(black_box(41)))
    });

    // The floors: raw wasmtime, one store, sync and async, typed and with `Val`s.
    let setup = raw_setup(false);
    let mut raw = setup.instantiate();
    let inc = setup.func::<(u64,), (u64,)>(&mut raw, "inc");
    g.bench_function("wasmtime_host_to_guest", |b| {
        b.iter(|| inc.call(&mut raw.store, (black_box(41),)).unwrap())
    });
    let mut dyn_raw = setup.instantiate();
    let dyn_inc = setup.dyn_func(&mut dyn_raw, "inc");
    g.bench_function("wasmtime_host_to_guest_dynamic_val", |b| {
        b.iter(|| {
            let mut out = [Val::U64(0)];
            dyn_inc
                .call(&mut dyn_raw.store, &[Val::U64(black_box(41))], &mut out)
                .unwrap();
            out
        })
    });
    let async_setup = raw_setup_with(false, false, true);
    let mut async_raw = task_rt.block_on(async_setup.instantiate_async());
    let async_inc = async_setup.func::<(u64,), (u64,)>(&mut async_raw, "inc");
    g.bench_function("wasmtime_call_async_in_task", |b| {
        b.iter_custom(|iters| {
            in_task!(
                task_rt,
                iters,
                async_inc.call_async(&mut async_raw.store, (black_box(41),))
            )
        })
    });
    let mut async_dyn = task_rt.block_on(async_setup.instantiate_async());
    let async_dyn_inc = async_setup.dyn_func(&mut async_dyn, "inc");
    g.bench_function("wasmtime_call_async_dynamic_val_in_task", |b| {
        b.iter_custom(|iters| {
            let mut out = [Val::U64(0)];
            let d = &mut async_dyn;
            let f = async_dyn_inc;
            task_rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    f.call_async(&mut d.store, &[Val::U64(black_box(41))], &mut out)
                        .await
                        .unwrap();
                }
                start.elapsed()
            })
        })
    });

    let app = task_rt.block_on(linked_app(Lifecycle::Reuse));
    let func = format!("{API}#inc");
    g.bench_function("membrane_app_call_in_task", |b| {
        b.iter_custom(|iters| {
            in_task!(
                task_rt,
                iters,
                app.call("provider", &func, &[Val::U64(black_box(41))])
            )
        })
    });
    let typed = app.typed::<(u64,), (u64,)>("provider", &func).unwrap();
    g.bench_function("membrane_typed_call_in_task", |b| {
        b.iter_custom(|iters| in_task!(task_rt, iters, typed.call((black_box(41),))))
    });
    g.bench_function("membrane_call_blocking", |b| {
        b.iter(|| {
            app.call_blocking("provider", &func, &[Val::U64(black_box(41))])
                .unwrap()
        })
    });
    g.bench_function("membrane_typed_call_blocking", |b| {
        b.iter(|| typed.call_blocking((black_box(41),)).unwrap())
    });

    let linked = tokio.block_on(linked_app(Lifecycle::Reuse));
    g.bench_function("membrane_cross_module_sync", |b| {
        b.iter_custom(|iters| {
            linked_loop(
                &tokio,
                &linked,
                "loop-inc",
                |n| vec![Val::U32(n)],
                iters,
                false,
            )
        })
    });
    g.bench_function("membrane_cross_module_async", |b| {
        b.iter_custom(|iters| {
            linked_loop(
                &task_rt,
                &linked,
                "loop-inc",
                |n| vec![Val::U32(n)],
                iters,
                true,
            )
        })
    });

    // Server and client each get their own runtime, as two services would; the client's is
    // single-threaded so that a call is not also paying for a hop between worker threads.
    let server_rt = tokio_rt();
    let addr = server_rt.block_on(http::serve());
    let client_rt = current_rt();
    let mut client = client_rt.block_on(http::connect(addr));
    g.bench_function("http_loopback_keepalive", |b| {
        b.iter(|| client_rt.block_on(client.inc(black_box(41))))
    });
    g.finish();
}

fn string_calls(c: &mut Criterion) {
    let tokio = tokio_rt();
    let task_rt = current_rt();
    let text = "x".repeat(1024);
    let mut g = c.benchmark_group("call_string_1k");
    g.bench_function("native_string_clone", |b| {
        b.iter(|| black_box(&text).clone())
    });

    let setup = raw_setup(false);
    let mut raw = setup.instantiate();
    let echo = setup.func::<(&str,), (String,)>(&mut raw, "echo");
    g.bench_function("wasmtime_host_to_guest", |b| {
        b.iter(|| {
            echo.call(&mut raw.store, (black_box(text.as_str()),))
                .unwrap()
        })
    });
    let async_setup = raw_setup_with(false, false, true);
    let mut async_raw = task_rt.block_on(async_setup.instantiate_async());
    let async_echo = async_setup.func::<(String,), (String,)>(&mut async_raw, "echo");
    g.bench_function("wasmtime_call_async_in_task", |b| {
        b.iter_custom(|iters| {
            in_task!(
                task_rt,
                iters,
                async_echo.call_async(&mut async_raw.store, (black_box(text.clone()),))
            )
        })
    });

    let app = task_rt.block_on(linked_app(Lifecycle::Reuse));
    let func = format!("{API}#echo");
    g.bench_function("membrane_app_call_in_task", |b| {
        b.iter_custom(|iters| {
            in_task!(
                task_rt,
                iters,
                app.call("provider", &func, &[Val::String(black_box(text.clone()))])
            )
        })
    });
    let typed = app
        .typed::<(String,), (String,)>("provider", &func)
        .unwrap();
    g.bench_function("membrane_typed_call_in_task", |b| {
        b.iter_custom(|iters| in_task!(task_rt, iters, typed.call((black_box(text.clone()),))))
    });
    g.bench_function("membrane_cross_module_sync", |b| {
        b.iter_custom(|iters| {
            linked_loop(
                &tokio,
                &app,
                "loop-echo",
                |n| vec![Val::U32(n), Val::String(text.clone())],
                iters,
                false,
            )
        })
    });
    g.bench_function("membrane_cross_module_async", |b| {
        b.iter_custom(|iters| {
            linked_loop(
                &task_rt,
                &app,
                "loop-echo",
                |n| vec![Val::U32(n), Val::String(text.clone())],
                iters,
                true,
            )
        })
    });
    g.finish();
}

fn instantiation(c: &mut Criterion) {
    let tokio = tokio_rt();
    let task_rt = current_rt();
    let mut g = c.benchmark_group("instantiate");
    let setup = raw_setup(true);
    g.bench_function("wasmtime_pooling_instance_pre", |b| {
        b.iter(|| drop(black_box(setup.instantiate())))
    });
    let app = tokio.block_on(linked_app(Lifecycle::PerCall));
    g.bench_function("membrane_per_call_linked_call_sync", |b| {
        b.iter_custom(|iters| {
            linked_loop(
                &tokio,
                &app,
                "loop-inc",
                |n| vec![Val::U32(n)],
                iters,
                false,
            )
        })
    });
    g.bench_function("membrane_per_call_linked_call_async", |b| {
        b.iter_custom(|iters| {
            linked_loop(
                &task_rt,
                &app,
                "loop-inc",
                |n| vec![Val::U32(n)],
                iters,
                true,
            )
        })
    });
    g.finish();
}

/// A resource method call: guest -> host in raw wasmtime (the floor), guest -> other module
/// across a link (a proxy), and guest -> a Membrane host resource.
fn resource_calls(c: &mut Criterion) {
    let tokio = tokio_rt();
    let task_rt = current_rt();
    let mut g = c.benchmark_group("resource_method");
    let mut raw = raw_driver();
    g.bench_function("raw_guest_to_host_resource_method", |b| {
        b.iter_custom(|iters| {
            let mut left = iters;
            let start = Instant::now();
            while left > 0 {
                let n = left.min(1_000_000) as u32;
                black_box(raw.loop_bump.call(&mut raw.store, (n,)).unwrap());
                left -= n as u64;
            }
            start.elapsed()
        })
    });
    let app = tokio.block_on(linked_app(Lifecycle::Reuse));
    g.bench_function("membrane_cross_module_resource_method_sync", |b| {
        b.iter_custom(|iters| {
            linked_loop(
                &tokio,
                &app,
                "loop-bump",
                |n| vec![Val::U32(n)],
                iters,
                false,
            )
        })
    });
    g.bench_function("membrane_cross_module_resource_method_async", |b| {
        b.iter_custom(|iters| {
            linked_loop(
                &task_rt,
                &app,
                "loop-bump",
                |n| vec![Val::U32(n)],
                iters,
                true,
            )
        })
    });
    let host = tokio.block_on(host_res_app());
    g.bench_function("membrane_host_resource_method_sync", |b| {
        b.iter_custom(|iters| {
            linked_loop(
                &tokio,
                &host,
                "loop-bump",
                |n| vec![Val::U32(n)],
                iters,
                false,
            )
        })
    });
    g.finish();
}

fn compute(c: &mut Criterion) {
    let task_rt = current_rt();
    let doc = markdown_doc();
    let mut g = c.benchmark_group("markdown_20k");
    g.bench_function("native", |b| {
        b.iter(|| {
            let mut html = String::new();
            pulldown_cmark::html::push_html(
                &mut html,
                pulldown_cmark::Parser::new(black_box(&doc)),
            );
            html
        })
    });
    let setup = raw_setup(false);
    let mut raw = setup.instantiate();
    let md = setup.func::<(&str,), (String,)>(&mut raw, "markdown");
    g.bench_function("wasmtime_guest", |b| {
        b.iter(|| md.call(&mut raw.store, (black_box(doc.as_str()),)).unwrap())
    });
    let app = task_rt.block_on(linked_app(Lifecycle::Reuse));
    let func = format!("{API}#markdown");
    g.bench_function("membrane_app_call_in_task", |b| {
        b.iter_custom(|iters| {
            in_task!(
                task_rt,
                iters,
                app.call("provider", &func, &[Val::String(doc.clone())])
            )
        })
    });
    let typed = app
        .typed::<(String,), (String,)>("provider", &func)
        .unwrap();
    g.bench_function("membrane_typed_call_blocking", |b| {
        b.iter(|| typed.call_blocking((doc.clone(),)).unwrap())
    });
    g.finish();
}

/// The microservice baseline: the same `inc` behind hyper on 127.0.0.1, one keep-alive
/// connection, a POST per call.
mod http {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;

    pub struct Client(hyper::client::conn::http1::SendRequest<Full<Bytes>>);

    impl Client {
        pub async fn inc(&mut self, x: u64) -> u64 {
            let req = hyper::Request::post("/inc")
                .body(Full::new(Bytes::from(x.to_string())))
                .unwrap();
            self.0.ready().await.unwrap();
            let res = self.0.send_request(req).await.unwrap();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            std::str::from_utf8(&body).unwrap().parse().unwrap()
        }
    }

    pub async fn serve() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        |req: hyper::Request<hyper::body::Incoming>| async move {
                            let body = req.into_body().collect().await?.to_bytes();
                            let x: u64 = std::str::from_utf8(&body).unwrap().parse().unwrap();
                            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(
                                (x + 1).to_string(),
                            ))))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    pub async fn connect(addr: std::net::SocketAddr) -> Client {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Client(send)
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = small_calls, string_calls, instantiation, resource_calls, compute
}
criterion_main!(benches);
