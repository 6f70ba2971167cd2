//! `membrane push`: a component to an OCI registry, in the Wasm OCI artifact layout that
//! `wkg oci push` writes (config `application/vnd.wasm.config.v0+json`, one
//! `application/wasm` layer).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use wit_component::DecodedWasm;

use membrane_core::capability::protect::read_component;
use membrane_core::capability::walk::Refused;
use membrane_core::{AppSpec, OciRef};
use membrane_oci::World;

use crate::membrane::{Error, ErrorKind};
use crate::output::{out, say};

/// Push a component to an OCI registry; prints the artifact's manifest digest.
#[derive(clap::Args)]
pub struct Args {
    /// The component file (.wasm).
    component: PathBuf,
    /// Where to push it: oci://host[:port]/repository:tag (the oci:// may be left out).
    reference: String,
}

/// Runs `membrane push`.
pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let Args {
        component,
        reference,
    } = a;
    let r = match OciRef::parse(&reference) {
        Ok(r) => r,
        Err(why) => bail!("{reference:?} is not an OCI reference: {why}"),
    };
    if r.tag().is_none() {
        bail!("{r}: a push needs a tag to put the component under (oci://host/repository:tag)");
    }
    let max = AppSpec::DEFAULT_MAX_COMPONENT_SIZE;
    let shown = component.display();
    let bytes = match read_component(&component, max) {
        Ok((bytes, _)) => bytes,
        Err(Refused::Io(e)) => {
            return Err(e).with_context(|| format!("cannot read {shown}"));
        }
        Err(Refused::NotRegular(what)) => bail!("{shown} is {what}, not a regular file"),
        Err(Refused::TooLarge(size)) => bail!(
            "{shown} is {}, more than the {} a component may be",
            membrane_core::format_size(size),
            membrane_core::format_size(max)
        ),
    };
    let world = world_of(&bytes).map_err(|e| e.context(&shown))?;
    let Some(fetcher) = crate::config::fetcher() else {
        bail!("no cache directory: set MEMBRANE_CACHE_DIR or HOME");
    };
    let size = bytes.len();
    let pushed = fetcher
        .push(&r, bytes.into(), world)
        .await
        .map_err(|e| e.into_error(None))?;
    say(&format!(
        "pushed {shown} to {r} ({}, component {}); pin it with component = \"oci://{}/{}@{}\"",
        membrane_core::format_size(size as u64),
        pushed.component,
        r.registry(),
        r.repository(),
        pushed.manifest
    ));
    out(&format!("{}\n", pushed.manifest))?;
    Ok(ExitCode::SUCCESS)
}

/// The world of component `bytes` (what the artifact's config records), or why they are
/// not a component.
fn world_of(bytes: &[u8]) -> Result<World, Error> {
    let invalid = |why: &str| Error::new(ErrorKind::InvalidComponent, why.to_string());
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0, 1, 0]) => {}
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => {
            return Err(invalid(
                "the file is a core WebAssembly module, not a component; build for wasm32-wasip2 or wrap it with `wasm-tools component new`",
            ));
        }
        Some([0, b'a', b's', b'm', ..]) => {
            return Err(invalid(
                "the file has an unknown WebAssembly version or layer, not a component's",
            ));
        }
        _ => {
            return Err(invalid(
                "the file is not WebAssembly (it does not start with \\0asm); only components are pushed",
            ));
        }
    }
    let decoded = wit_component::decode(bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidComponent,
            "the file is not a valid component: its types cannot be decoded",
        )
        .with_source(e)
    })?;
    let DecodedWasm::Component(resolve, world) = decoded else {
        return Err(invalid(
            "the file is a WIT package encoded as wasm, not a component",
        ));
    };
    let w = &resolve.worlds[world];
    Ok(World {
        exports: w
            .exports
            .keys()
            .map(|k| resolve.name_world_key(k))
            .collect(),
        imports: w
            .imports
            .keys()
            .map(|k| resolve.name_world_key(k))
            .collect(),
    })
}
