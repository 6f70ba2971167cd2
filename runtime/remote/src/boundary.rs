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
        _links: &BTreeMap<String, Vec<Link>>,
        routes: &[(&str, &str)],
        problems: &mut Problems,
    ) {
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
