//! `placement = "remote"` as a [`Boundary`]: the checks of an app's remote setup, routes
//! that cannot reach a remote module, the app's NATS connection, and the client that
//! carries a remote module's calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, Problems, Result};
use crate::extensions::Extensions;
use crate::link::planned::Link;
use crate::spec::{AppSpec, ModuleSpec, Placement};
use crate::transport::{BoxFuture, Transport};
use membrane_core::boundary::{Boundary, StartCx};
use membrane_core::link::typecheck::has_async_values;

/// The remote placement.
pub struct Remote;

impl Boundary for Remote {
    fn placement(&self) -> Placement {
        Placement::Remote
    }

    fn check_declaration(&self, app: &AppSpec, problems: &mut Problems) {
        super::validate::check(app, problems);
    }

    fn check_links(
        &self,
        specs: &BTreeMap<String, ModuleSpec>,
        links: &BTreeMap<String, Vec<Link>>,
        routes: &[(&str, &str)],
        problems: &mut Problems,
    ) {
        check_async_values(specs, links, problems);
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
        }
    }

    fn moves_at_upgrade(&self) -> bool {
        false
    }

    fn carries_wasi_p3(&self) -> bool {
        // Calls cross as values and run on the serving host's own 0.3 executor; streams
        // and futures cannot cross (`check_async_values`).
        true
    }

    fn attach<'a>(
        &'a self,
        app: &'a AppSpec,
        connect: bool,
        extensions: &'a mut Extensions,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if connect && let Some(nats) = super::connect::for_app(app).await? {
                if super::connect::keyvalue_on_nats(app) {
                    let name = app.name.as_deref().unwrap_or_default();
                    let kv =
                        super::keyvalue::NatsKv::open(nats.clone(), name, &app.keyvalue).await?;
                    extensions.insert(Arc::new(membrane_core::keyvalue::Store::new(
                        Arc::new(kv),
                        app,
                    )));
                }
                extensions.insert(nats);
            } else if !connect && super::connect::keyvalue_on_nats(app) {
                extensions.insert(Arc::new(membrane_core::keyvalue::Store::new(
                    Arc::new(super::keyvalue::Unconnected),
                    app,
                )));
            }
            Ok(())
        })
    }

    fn start(&self, cx: &StartCx<'_>) -> Result<Option<Arc<dyn Transport>>> {
        let nats = cx.extensions.get::<super::connect::Nats>();
        super::client::RemoteModule::start(nats.as_ref(), cx.compiled).map(Some)
    }
}

/// Refuses links to a remote module that pass a stream or a future: those are handles into
/// the instances of one process and cannot cross NATS; only whole values can.
fn check_async_values(
    specs: &BTreeMap<String, ModuleSpec>,
    links: &BTreeMap<String, Vec<Link>>,
    problems: &mut Problems,
) {
    for (importer, ls) in links {
        for l in ls {
            if !specs
                .get(&l.provider)
                .is_some_and(|s| s.placement == Placement::Remote)
            {
                continue;
            }
            for f in &l.funcs {
                if f.params.iter().chain(&f.results).any(has_async_values) {
                    let provider = &l.provider;
                    problems.push(
                        Error::link(format!(
                            "module `{importer}` imports {}#{} of `{provider}`, which passes a stream \
                             or a future, and `{provider}` is remote: streams and futures cannot cross \
                             NATS; set [modules.{provider}] placement = \"isolated\", or pass the data \
                             as a list<u8>",
                            l.import, f.name
                        ))
                        .with_module(provider.as_str())
                        .with_export(format!("{}#{}", l.import, f.name))
                        .with_key(format!("modules.{provider}.placement")),
                    );
                }
            }
        }
    }
}
