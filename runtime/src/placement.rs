//! What each placement supports, checked when an app loads (and when an upgrade is gated),
//! so that a module never ends up half-served at run time.
//!
//! A `process` module is served with dynamic values over its worker's connections: calls
//! from the embedder (`App::call`), links in both directions, and resources it provides
//! (through a connection pinned to the importer instance). Not yet: links that carry
//! resources from it (as the importer), links from it to host interfaces, HTTP routes
//! to it (`run` of it is refused when asked: `instance.rs`). Each is refused here with the key to change.
//!
//! A `remote` module is called with dynamic values over NATS (calls, links to it, resource
//! sessions); its own links are its hosts' business. HTTP routes to it are refused.

use std::collections::BTreeMap;

use crate::error::{Error, Problems};
use crate::link::Link;
use crate::names::HOST;
use crate::spec::{ModuleSpec, Placement};

/// Refuses what a `process` module cannot be part of yet.
pub(crate) fn check(
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
        if let Err(e) = support.require(&crate::worker::sandbox_plan(spec)) {
            problems.push(
                e.with_module(name.as_str())
                    .with_key(format!("modules.{name}.allow_weaker_sandbox")),
            );
        }
    }
    for (prefix, module) in routes {
        if specs
            .get(*module)
            .is_some_and(|s| s.placement == Placement::Remote)
        {
            problems.push(
                Error::link(format!(
                    "module `{module}` is remote, and HTTP requests (route {prefix:?}) are served by \
                     the host that has the route; route the path to a local module that links to it, \
                     or host `{module}` here (membrane serve --host {module})"
                ))
                .with_module(*module)
                .with_key(format!("app.http.routes.{prefix}")),
            );
        }
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
