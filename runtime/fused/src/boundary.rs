//! `placement = "fused"` as a [`Boundary`]: the declaration's rules for fused links, the
//! links a composed importer is planned with, its composition before compilation, and the
//! upgrades a composition would have to be made again for.

use std::collections::BTreeMap;

use crate::compile::Compiled;
use crate::error::Problems;
use crate::link::LinkInfo;
use crate::spec::{AppSpec, ModuleSpec, Placement};
use crate::transport::BoxFuture;
use membrane_core::boundary::{Boundary, Decl, Prepared};

use super::group;
use super::prepare::Fusion;

/// The fused placement.
pub struct Fused;

impl Boundary for Fused {
    fn placement(&self) -> Placement {
        Placement::Fused
    }

    fn carries_wasi_p3(&self) -> bool {
        // A composition of 0.3 members is a 0.3 component (detected from its bytes) and runs
        // on the 0.3 executor in this process; its inner links are calls inside it.
        true
    }

    fn check_declaration(&self, app: &AppSpec, problems: &mut Problems) {
        group::check(&group::decl(&app.modules), problems);
    }

    fn planned_links(&self, decl: &Decl<'_>, module: &str) -> Option<BTreeMap<String, String>> {
        if group::wires(decl, module).is_empty() {
            return None;
        }
        Some(group::planned_links(decl, module))
    }

    fn prepare<'a>(
        &'a self,
        modules: &'a BTreeMap<String, ModuleSpec>,
        max_component: u64,
        problems: &'a mut Problems,
    ) -> BoxFuture<'a, Option<Box<dyn Prepared>>> {
        Box::pin(async move {
            let fusion = super::prepare::prepare(modules, max_component, problems).await;
            Some(Box::new(fusion) as Box<dyn Prepared>)
        })
    }

    fn check_upgrade(
        &self,
        old: &Decl<'_>,
        new: &Decl<'_>,
        changed: &[&str],
        problems: &mut Problems,
    ) {
        group::check_upgrade(old, new, changed.iter().copied(), problems);
    }
}

impl Prepared for Fusion {
    fn swap(&self, modules: BTreeMap<String, ModuleSpec>) -> BTreeMap<String, ModuleSpec> {
        Fusion::swap(self, modules)
    }

    fn restore(&self, compiled: BTreeMap<String, Compiled>) -> BTreeMap<String, Compiled> {
        Fusion::restore(self, compiled)
    }

    fn report(&self, links: &mut Vec<LinkInfo>) {
        Fusion::report(self, links);
    }

    fn warnings(&self) -> Vec<String> {
        Fusion::warnings(self).to_vec()
    }
}
