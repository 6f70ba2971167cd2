//! `placement = "process"` as a [`Boundary`]: what a module in a worker process cannot be
//! part of yet, the kernel's sandbox it needs, and starting its worker.
//!
//! A `process` module is served with dynamic values over its worker's connections: calls
//! from the embedder (`App::call`), links in both directions, and resources it provides
//! (through a connection pinned to the importer instance). WASI 0.3 modules too, one call
//! at a time per connection (`serve_p3.rs`), without streams or futures across the
//! boundary. Not yet: links that carry
//! resources from it (as the importer), links from it to host interfaces, HTTP routes to
//! it (`run` of it is refused when asked: `instance.rs`). Each is refused when the app is
//! checked, with the key to change.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, Problems, Result};
use crate::link::planned::Link;
use crate::names::HOST;
use crate::spec::{ModuleSpec, Placement};
use crate::transport::Transport;
use membrane_core::boundary::{Boundary, StartCx};

/// The process placement.
pub struct Process;

impl Boundary for Process {
    fn placement(&self) -> Placement {
        Placement::Process
    }

    fn check_links(
        &self,
        specs: &BTreeMap<String, ModuleSpec>,
        links: &BTreeMap<String, Vec<Link>>,
        routes: &[(&str, &str)],
        problems: &mut Problems,
    ) {
        let process = |m: &str| {
            specs
                .get(m)
                .is_some_and(|s| s.placement == Placement::Process)
        };
        let refuse = |module: &str, what: String| {
            Error::link(format!(
                "module `{module}` is placed in a worker process, {what}; set [modules.{module}] placement = \"isolated\" (or \"fused\")"
            ))
            .with_module(module)
            .with_key(format!("modules.{module}.placement"))
        };
        for (importer, ls) in links {
            for l in ls {
                if process(&l.provider) {
                    refuse_async_values(importer, &l.provider, l, &refuse, problems);
                } else if process(importer) {
                    refuse_async_values(importer, importer, l, &refuse, problems);
                }
                if process(importer) && l.provider == HOST {
                    problems.push(refuse(
                        importer,
                        format!(
                            "and a worker cannot reach the host interface `{}` yet",
                            l.export
                        ),
                    ));
                } else if !l.resources.is_empty() && process(importer) {
                    problems.push(refuse(
                        importer,
                        format!(
                            "and its link `{}` carries resources, which a worker cannot import yet (it can provide them)",
                            l.import
                        ),
                    ));
                }
            }
        }
        // A kernel that cannot apply every layer of the worker sandbox refuses the module,
        // unless its manifest accepts a weaker one: never silently weaker.
        let mut support = None;
        for (name, spec) in specs {
            if spec.placement != Placement::Process {
                continue;
            }
            let support = support.get_or_insert_with(crate::sandbox::support);
            if let Err(e) = support.require(&super::sandbox_plan(spec)) {
                problems.push(
                    e.with_module(name.as_str())
                        .with_key(format!("modules.{name}.allow_weaker_sandbox")),
                );
            }
        }
        for (prefix, module) in routes {
            if process(module) {
                problems.push(
                    refuse(
                        module,
                        format!(
                            "and HTTP requests (route {prefix:?}) cannot be served from a worker yet"
                        ),
                    )
                    .with_key(format!("app.http.routes.{prefix}")),
                );
            }
        }
    }

    fn moves_at_upgrade(&self) -> bool {
        false
    }

    fn carries_wasi_p3(&self) -> bool {
        // One call at a time per connection (`serve_p3.rs`); streams and futures cannot
        // cross into a worker (`check_links`).
        cfg!(feature = "p3")
    }

    fn start(&self, cx: &StartCx<'_>) -> Result<Option<Arc<dyn Transport>>> {
        let c = cx.compiled;
        // Links to the host and links with resources were refused at load (above).
        let served: Vec<_> = cx
            .links
            .iter()
            .filter_map(|l| Some((l, cx.modules.get(&l.provider)?.clone())))
            .collect();
        let links = super::links::WorkerLinks::new(&served)?;
        let program = match cx.worker_program {
            Some(p) => p.to_path_buf(),
            None => std::env::current_exe().map_err(|e| {
                Error::io(
                    format!(
                        "module `{}`: cannot find this program to start its worker",
                        c.name
                    ),
                    e,
                )
            })?,
        };
        let w = super::start(
            c,
            cx.engine,
            program,
            super::Serves {
                links: Arc::new(links),
                store: cx
                    .extensions
                    .get::<membrane_core::keyvalue::Store>()
                    .map(|s| s.backend.clone()),
            },
            cx.metrics.clone(),
        )?;
        Ok(Some(Arc::new(w)))
    }
}

/// Refuses each function of link `l` (of `importer`) that passes a stream or a future,
/// naming `module`, the side in a worker: those are handles in one process's Stores, and a
/// worker's calls carry values.
fn refuse_async_values(
    importer: &str,
    module: &str,
    l: &Link,
    refuse: &dyn Fn(&str, String) -> Error,
    problems: &mut Problems,
) {
    for f in &l.funcs {
        let types = f.params.iter().chain(&f.results);
        if types
            .into_iter()
            .any(membrane_core::link::typecheck::has_async_values)
        {
            problems.push(
                refuse(
                    module,
                    format!(
                        "and {importer}'s link to {}#{} passes a stream or a future, which cannot \
                         cross into or out of a worker",
                        l.import, f.name
                    ),
                )
                .with_export(format!("{}#{}", l.import, f.name)),
            );
        }
    }
}
